"""`python -m perturbations.preview`: a PNG grid, rows = perturbations, columns = severity 0..5.

A small Hydra app on the project's config (conf/config.yaml), so the data and the perturbations are chosen
exactly as for a study: `python -m perturbations.preview perturbation=[ghosting,tumour_move]`; with no
perturbation selected it shows every one on the config search path (user directories included). The slice
is the test-split item with the largest lesion (or `+preview.item=N`) of the configured data, or of the
synthetic set of the tests with `+preview.source=synthetic`, or of the real BRATS 2015 patients in DeepMedic's
layout with `+preview.source=real` (`+preview.real_root=DIR`, default ../shared/data/brats2015-deepmedic,
FLAIR tumour slices at 192 x 192: `perturbations.real_patients`); sample-level perturbations act on it
alone, set-level ones on the whole test split (the tile shows the same slot and names its source). The red
line outlines the lesion in the perturbed item's label. Writes `<output_dir>/perturbation_preview.png`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from benchmark import config_schema
from benchmark.data.imageset import ImageSet, PreparedData
from benchmark.errors import BenchmarkError, ConfigError, report_error
from perturbations.base import SEVERITIES, Perturbation
from perturbations.config import instantiate_perturbations

CONFIG_DIR = str(config_schema.CONFIG_DIR)
log = logging.getLogger("perturbations.preview")


def preview_slice(item: ImageSet) -> tuple[np.ndarray, np.ndarray]:
    """(image, label) 2D arrays of the first item: itself for slices, the axial slice through the lesion for volumes."""
    image, label = item.images[0, 0].cpu().numpy(), item.labels[0, 0].cpu().numpy()
    if image.ndim == 3:
        depth = np.argwhere(label > 0)[:, 0]
        k = int(np.median(depth)) if depth.size else image.shape[0] // 2
        image, label = image[k], label[k]
    return image, label


def perturbed_tiles(perturbation: Perturbation, test: ImageSet, train: ImageSet, index: int, seed: int):
    """[(image, label, caption)] for severities 0..5 of one perturbation."""
    tiles = []
    for severity in SEVERITIES:
        if perturbation.scope == "set":
            out = perturbation.apply(test, severity, seed, train=train)
            slot = index
        else:
            out = perturbation.apply(test.subset([index]), severity, seed, train=train)
            slot = 0
        image, label = preview_slice(out.data.subset([slot]))
        params = perturbation.parameters(severity)
        shown = [f"{k}={v:.3g}" for k, v in params.items() if isinstance(v, float)][:1]
        source = out.sources[slot] if perturbation.scope == "set" else ""
        tiles.append((image, label, " ".join([f"s{severity}", *shown, source]).strip()))
    return tiles


def draw_grid(rows: dict[str, list], path: Path, dpi: int = 90) -> None:
    """Write the grid PNG: one row per perturbation, lesion outlines in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), len(SEVERITIES)
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols, 2.0 * n_rows), squeeze=False)
    for r, (name, tiles) in enumerate(rows.items()):
        for c, (image, label, caption) in enumerate(tiles):
            axis = axes[r, c]
            axis.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if (label > 0).any():
                axis.contour(label > 0, levels=[0.5], colors="red", linewidths=0.6)
            axis.set_title(caption, fontsize=6)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)


def all_perturbations_config() -> DictConfig:
    """cfg.perturbation with every option of the perturbation group on the search path."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra

    options = GlobalHydra.instance().config_loader().get_group_options("perturbation")
    return compose(config_name="config", overrides=[f"perturbation=[{','.join(options)}]"]).perturbation


def preview_data(cfg: DictConfig, source: str) -> PreparedData:
    """The configured dataset (source=data) or the small synthetic set of the tests (source=synthetic)."""
    if source == "synthetic":
        from perturbations.synthetic import synthetic_imageset

        train = synthetic_imageset(n=12, size=128, seed=int(cfg.seed) + 1)
        test = synthetic_imageset(n=12, size=128, seed=int(cfg.seed), tumour_free=(3, 7))
        return PreparedData(train=train, val=test, test=test, summary={"source": "synthetic"})
    if source == "real":  # the tumour slices of real patients in DeepMedic's layout (a development check)
        from perturbations.real_patients import real_tumour_slices

        root = (cfg.get("preview") or {}).get("real_root", "../shared/data/brats2015-deepmedic")
        slices = real_tumour_slices(Path(str(root)))
        return PreparedData(train=slices, val=slices, test=slices, summary={"source": str(root)})
    if source != "data":
        raise ConfigError(f"preview.source must be 'data', 'synthetic' or 'real', got {source!r}")
    from benchmark.data.prepare import prepare_data

    return prepare_data(cfg.data, seed=int(cfg.seed))


def run_preview(cfg: DictConfig) -> Path:
    """Build the perturbations (validated first), prepare the data, draw the grid; returns the PNG path."""
    selected = cfg.perturbation if cfg.get("perturbation") else all_perturbations_config()
    perturbations = instantiate_perturbations(selected)
    preview_cfg = cfg.get("preview") or {}
    data = preview_data(cfg, str(preview_cfg.get("source", "data")))
    test = data.test
    sizes = test.labels.flatten(1).gt(0).sum(1)
    index = int(preview_cfg.get("item", int(sizes.argmax())))
    rows = {name: perturbed_tiles(p, test, data.train, index, int(cfg.seed)) for name, p in perturbations.items()}
    path = Path(cfg.output_dir) / "perturbation_preview.png"
    draw_grid(rows, path)
    log.info("wrote %s (%d perturbations, test item %d: %s)", path, len(rows), index, test.subject_ids[index])
    return path


@hydra.main(config_path=CONFIG_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Entry point; user-facing errors become one paragraph and exit status 2."""
    try:
        run_preview(cfg)
    except BenchmarkError as error:
        if cfg.debug:
            raise
        report_error(error)
        sys.exit(2)


if __name__ == "__main__":
    main()
