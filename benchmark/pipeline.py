"""The study as a sequence of stages, each reading the composed config and writing under output_dir."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from benchmark.runtime import resolve_device, seed_everything

log = logging.getLogger("benchmark")


def run_pipeline(cfg: DictConfig) -> None:
    """Prepare the data, then run the later stages listed in `cfg.stages`."""
    from benchmark.data.prepare import prepare_data
    from benchmark.data.summary import write_data_summary

    device = resolve_device(str(cfg.device))
    seed_everything(int(cfg.seed))
    output_dir = Path(cfg.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    log.info("output_dir=%s device=%s seed=%s", output_dir, device, cfg.seed)

    data = prepare_data(cfg.data, seed=int(cfg.seed))
    write_data_summary(data, output_dir)
    if list(cfg.stages) == ["data"]:
        return
