"""`python -m benchmark.score.detect_copies train=DIR real=DIR output_dir=OUT`: the copy-detection benchmark
(`benchmark.score.copy_detection`) on a user's own training and held-out folders, read as `mribench score` reads
them; writes copy_detection.csv / .md / .png."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from benchmark.errors import BenchmarkError, ConfigError, report_error
from benchmark.score.cli import CONFIG_DIR
from benchmark.score.copy_detection import copy_detection, markdown_table
from benchmark.score.features import load_disk_cache, save_disk_cache
from reports.copy_detection import draw_figure


@hydra.main(config_path=CONFIG_DIR, config_name="score", version_base="1.3")
def run(cfg: DictConfig) -> None:
    """Read `cfg.train` and `cfg.real` as `mribench score` does, run the benchmark, write
    copy_detection.csv / .md / .png under output_dir."""
    from benchmark.atomic import replace_atomically, write_text_atomically
    from benchmark.runtime import resolve_device
    from benchmark.score.inputs import read_folder, shape_template
    from benchmark.score.run import build_suite

    try:
        device = resolve_device(str(cfg.device))
        suite = build_suite(cfg)
        cache = Path(str(cfg.feature_cache)).expanduser() if cfg.feature_cache else None
        for name in suite.extractors:
            load_disk_cache(suite, cache, name)
        if cfg.train is None:
            raise ConfigError("train= is not set; pass train=/path/to/training/images and real=/path/to/held-out.")
        template = shape_template(cfg.data)
        sets = {key: read_folder(Path(str(cfg[key])).expanduser().resolve(), None, cfg.data, template, int(cfg.seed),
                                 key) for key in ("train", "real")}
        table = copy_detection(sets["train"], sets["real"], suite, int(cfg.seed), device=device)
        for name in suite.extractors:
            save_disk_cache(suite, cache, name)
    except BenchmarkError as error:
        report_error(error)
        sys.exit(2)
    output_dir = Path(str(cfg.output_dir))
    output_dir.mkdir(parents=True, exist_ok=True)
    replace_atomically(output_dir / "copy_detection.csv", lambda tmp: table.to_csv(tmp, index=False))
    write_text_atomically(output_dir / "copy_detection.md", markdown_table(table) + "\n")
    draw_figure(table, output_dir / "copy_detection.png")
    print(markdown_table(table))


if __name__ == "__main__":
    run()
