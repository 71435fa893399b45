"""`python -m reports output_dir=PATH [n_boot=1000] [seed=0]`: rebuild the report from stored results.

Arguments use Hydra's key=value style so the same words work as for the study itself. Nothing is
recomputed but the analysis; a folder without results is a one-line error and exit status 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from benchmark.errors import BenchmarkError, ConfigError

USAGE = "usage: python -m reports output_dir=PATH [n_boot=1000] [seed=0]"
DEFAULTS = {"n_boot": "1000", "seed": "0"}


def parse_arguments(argv: list[str]) -> dict[str, str]:
    """key=value pairs; output_dir is required, n_boot and seed are optional integers."""
    values = dict(DEFAULTS)
    for argument in argv:
        key, sep, value = argument.partition("=")
        key = key.lstrip("+")
        if not sep or key not in {"output_dir", *DEFAULTS}:
            raise ConfigError(f"unknown argument {argument!r}; {USAGE}")
        values[key] = value
    if not values.get("output_dir"):
        raise ConfigError(f"output_dir is required; {USAGE}")
    for key in DEFAULTS:
        if not values[key].lstrip("-").isdigit():
            raise ConfigError(f"{key}={values[key]} is not an integer; {USAGE}")
    return values


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        args = parse_arguments(sys.argv[1:] if argv is None else argv)
        output_dir = Path(args["output_dir"]).expanduser()
        if not output_dir.is_dir():
            raise ConfigError(f"output_dir={output_dir} is not a folder; point it at the output of a study run.")
        from reports.build import build_report

        path = build_report(output_dir, n_boot=int(args["n_boot"]), seed=int(args["seed"]))
    except (BenchmarkError, ValueError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
