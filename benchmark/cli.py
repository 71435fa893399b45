"""Command-line entry: compose the Hydra config, run the configured stages, report errors in one paragraph.

A `BenchmarkError` (bad input, bad configuration, missing weights) is printed as one paragraph on stderr
with exit status 2 and no traceback; `debug=true` re-raises it to show the traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from benchmark.errors import BenchmarkError, report_error

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
log = logging.getLogger("benchmark")


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Run the stages listed in `cfg.stages` (data first), writing everything under `cfg.output_dir`."""
    from benchmark.pipeline import run_pipeline

    try:
        run_pipeline(cfg)
    except BenchmarkError as error:
        if cfg.get("debug", False):
            raise
        report_error(error)
        sys.exit(2)
