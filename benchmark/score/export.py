"""Write the study's prepared splits as folders of 16-bit PNG slices (`<out>/{train,val,test}/images/`, with
`labels/` beside them), the input `mribench score` reads: real data with exactly the study's
preprocessing. `python -m benchmark.score.export data=brats data.root=/path output_dir=OUT`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig
from PIL import Image

from benchmark.data.imageset import ImageSet
from benchmark.errors import BenchmarkError, DataError, report_error
from benchmark.score.cli import CONFIG_DIR

log = logging.getLogger("benchmark.score")


def write_png_slices(images: ImageSet, folder: Path, names: list[str] | None = None) -> list[Path]:
    """Each 2D item as `<folder>/images/<name>.png` (16 bits, [0, 1] x 65535) and `<folder>/labels/<name>.png`
    (8 bits, values 0-3). names: file stems (default `<subject>_z<slice>`)."""
    if images.spatial_dims != 2:
        raise DataError("PNG export needs 2D slices (data.mode=2d).")
    names = names or [f"{s}_z{i:03d}" for s, i in zip(images.subject_ids, images.slice_indices, strict=True)]
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    paths = []
    for k, name in enumerate(names):
        pixels = np.round(images.images[k, 0].clamp(0, 1).numpy() * 65535).astype(np.uint16)
        Image.fromarray(pixels).save(folder / "images" / f"{name}.png")
        Image.fromarray(images.labels[k, 0].numpy().astype(np.uint8)).save(folder / "labels" / f"{name}.png")
        paths.append(folder / "images" / f"{name}.png")
    return paths


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def run(cfg: DictConfig) -> None:
    """Prepare `cfg.data` and write its three splits under `cfg.output_dir`."""
    from benchmark.data.prepare import prepare_data

    try:
        data = prepare_data(cfg.data, seed=int(cfg.seed))
        for split in ("train", "val", "test"):
            paths = write_png_slices(getattr(data, split), Path(str(cfg.output_dir)) / split)
            log.info("%s: %d slices", split, len(paths))
    except BenchmarkError as error:
        report_error(error)
        sys.exit(2)


if __name__ == "__main__":
    run()
