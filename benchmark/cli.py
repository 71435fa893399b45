"""Command-line entry: check the command line, compose the Hydra config, run the configured stages, report
errors in one paragraph.

A `BenchmarkError` (bad input, bad configuration, missing weights) is printed as one paragraph on stderr
with exit status 2 and no traceback; `debug=true` re-raises it to show the traceback. Overrides that Hydra
itself would reject with a traceback (an output_dir that is a file, a misspelt option name) are checked
before Hydra runs; Hydra's own composition errors (override grammar, unknown keys) are reported the same way.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from benchmark import config_schema
from benchmark.atomic import disk_full_error, is_disk_full
from benchmark.errors import BenchmarkError, report_error

CONFIG_DIR = str(config_schema.CONFIG_DIR)
log = logging.getLogger("benchmark")


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def run(cfg: DictConfig) -> None:
    """Run the stages listed in `cfg.stages` (data first), writing everything under `cfg.output_dir`."""
    from benchmark.pipeline import run_pipeline

    try:
        run_pipeline(cfg)
    except BenchmarkError as error:
        if cfg.debug:
            raise
        report_error(error)
        sys.exit(2)
    except OSError as error:  # a full disk in a write that does not go through benchmark.atomic
        if cfg.debug or not is_disk_full(error):
            raise
        report_error(disk_full_error(error.filename or cfg.output_dir, error))
        sys.exit(2)


def main() -> None:
    """`python -m benchmark` / `mribench`: the command-line checks, then the Hydra app; `mribench score ...`
    runs the scoring app (`benchmark.score`)."""
    from benchmark.config_checks import check_command_line, run_reporting_hydra_errors

    args = sys.argv[1:]
    if args[:1] == ["score"]:
        from benchmark.score.cli import main as score_main

        score_main(args[1:])
        return
    if not any(a in ("--help", "-h", "--hydra-help", "--info", "-i") or a.startswith("--info") for a in args):
        try:
            check_command_line(args, Path(CONFIG_DIR))
        except BenchmarkError as error:
            if "debug=true" in args:
                raise
            report_error(error)
            sys.exit(2)
    run_reporting_hydra_errors(run, args, "config")
