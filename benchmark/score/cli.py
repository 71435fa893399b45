"""`mribench score` / `python -m benchmark.score`: the Hydra app of a scoring run (config `conf/score.yaml`).

A `BenchmarkError` is printed as one paragraph with exit status 2 and nothing written; `debug=true`
re-raises it with its traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from benchmark import config_schema
from benchmark.errors import BenchmarkError, report_error

CONFIG_DIR = str(config_schema.CONFIG_DIR)
log = logging.getLogger("benchmark.score")


@hydra.main(config_path=CONFIG_DIR, config_name="score", version_base="1.3")
def run(cfg: DictConfig) -> None:
    """Score, print the table, write score.json, score.csv, images.csv and score.html under output_dir."""
    from benchmark.config_checks import check_seeds
    from benchmark.runtime import resolve_device, seed_everything
    from benchmark.score.outputs import terminal_table, write_outputs
    from benchmark.score.run import score

    try:
        check_seeds(cfg)
        device = resolve_device(str(cfg.device))
        seed_everything(int(cfg.seed))
        result = score(cfg, device)
        paths = write_outputs(result, Path(str(cfg.output_dir)))
    except BenchmarkError as error:
        if cfg.debug:
            raise
        report_error(error)
        sys.exit(2)
    print(terminal_table(result))
    print("wrote " + ", ".join(str(p) for p in paths))


def main(args: list[str] | None = None) -> None:
    """Run the app on `args` (default: the command line after `score`); Hydra's own errors (a wrong type,
    an unknown key) are one paragraph and exit 2, as ours."""
    from benchmark.config_checks import run_reporting_hydra_errors

    if args is not None:
        sys.argv = [sys.argv[0], *args]
    run_reporting_hydra_errors(run, sys.argv[1:], "score")
