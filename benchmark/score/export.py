"""Write the study's prepared splits as folders of 16-bit PNG slices (`<out>/{train,val,test}/images/`, with
`labels/` beside them), the input `mribench score` reads: real data with exactly the study's
preprocessing. `python -m benchmark.score.export data=brats data.root=/path output_dir=OUT`.

With the generators of a study (`experiment=generators`), each trained generator at each budget also writes
the slices it generates for the test split's masks as `<out>/generated/<generator>_<budget>/`, under the
names of the test slices they were conditioned on (so `mribench score` pairs them with the real slices).
The generators are trained by the study's own code and checkpoint cache (`study.checkpoint_dir`): after a
study with the same data and generator settings they load from its checkpoints instead of training again.
"""

from __future__ import annotations

import logging
import sys
from functools import partial
from pathlib import Path

import hydra
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from benchmark.data.imageset import ImageSet, PreparedData
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


def write_generated_sets(cfg: DictConfig, data: PreparedData, folder: Path) -> dict[str, Path]:
    """Train (or load from the study's checkpoint cache) every generator of `cfg.generators` on the training
    split and write, per budget, its slices for the test split's masks; returns {set name: folder}."""
    from benchmark.generators.sets import GeneratorSet
    from benchmark.generators.training import train_generator
    from benchmark.runtime import resolve_device
    from benchmark.study.generator_stage import instantiate_generators

    device = resolve_device(str(cfg.device))
    seed = int(cfg.study.seeds[0])
    cache_dir = Path(str(cfg.study.checkpoint_dir)).expanduser()
    test_names = [f"{s}_z{i:03d}" for s, i in zip(data.test.subject_ids, data.test.slice_indices, strict=True)]
    written = {}
    for name, generator in instantiate_generators(cfg.generators).items():
        config = OmegaConf.to_container(cfg.generators[name], resolve=True)
        run = train_generator(name, generator, config, data.train, seed, device, cache_dir)
        log.info("generator %s: %s", name, "loaded from the checkpoint cache" if run.from_cache else "trained")
        for budget in generator.budgets:
            if budget in run.failures:
                log.warning("generator %s at %d steps failed (%s): not written", name, budget, run.failures[budget])
                continue
            set_name = f"{name}_{budget}"
            made = GeneratorSet(set_name, generator.architecture, budget, partial(instantiate, cfg.generators[name]),
                                {seed: run}, data.train.images.shape[1], device)
            written[set_name] = folder / set_name
            write_png_slices(made.generated(data.test, seed), written[set_name], names=test_names)
            log.info("generated %s: %d slices for the test masks in %s", set_name, len(data.test), written[set_name])
    return written


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def run(cfg: DictConfig) -> None:
    """Prepare `cfg.data` and write its three splits under `cfg.output_dir`."""
    from benchmark.data.prepare import prepare_data

    try:
        data = prepare_data(cfg.data, seed=int(cfg.seed))
        for split in ("train", "val", "test"):
            paths = write_png_slices(getattr(data, split), Path(str(cfg.output_dir)) / split)
            log.info("%s: %d slices", split, len(paths))
        if cfg.get("generators"):
            write_generated_sets(cfg, data, Path(str(cfg.output_dir)) / "generated")
    except BenchmarkError as error:
        report_error(error)
        sys.exit(2)


if __name__ == "__main__":
    run()
