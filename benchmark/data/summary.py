"""What the data stage writes for a person to check: a JSON summary and a montage of example slices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from omegaconf import DictConfig, OmegaConf

from benchmark.atomic import replace_atomically, write_text_atomically
from benchmark.data.imageset import LABEL_NAMES, REGIONS, ImageSet, PreparedData

REGION_COLOURS = {"WT": "#ffd400", "TC": "#ff3b30", "ET": "#00e5ff"}


def _label_statistics(images: ImageSet) -> dict[str, Any]:
    labels = images.labels  # count_nonzero: `.sum()` of a bool tensor makes an int64 copy (8 bytes a voxel)
    brain_voxels = int(torch.count_nonzero(images.brain_masks))
    return {
        "items_with_tumour": int(images.tumour_present.sum()),
        "voxels_per_label": {LABEL_NAMES[k]: int(torch.count_nonzero(labels == k)) for k in LABEL_NAMES},
        "tumour_fraction_of_brain": int(torch.count_nonzero(labels > 0)) / max(brain_voxels, 1),
    }


def summarise(data: PreparedData, data_cfg: DictConfig, splits: dict[str, list[str]], root: Path
              ) -> dict[str, Any]:
    """Cases, split sizes, shapes, spacing, label statistics and the preprocessing that produced them."""
    sets = {"train": data.train, "val": data.val, "test": data.test}
    return {
        "source": data_cfg.source,
        "root": str(root),
        "modalities": list(data.train.modalities),
        "mode": data_cfg.mode,
        "item_shape": list(data.train.images.shape[1:]),
        "spacing_mm": list(data.train.spacing),
        "cases": sum(len(ids) for ids in splits.values()),
        "splits": {
            name: {"subjects": len(splits[name]), "items": len(s), "subject_ids": splits[name],
                   **_label_statistics(s)}
            for name, s in sets.items()
        },
        "preprocessing": {
            "clip_percentiles": list(data_cfg.clip_percentiles),
            "scaling": "[0, 1] inside the brain mask, 0 outside",
            "size": list(data_cfg.size),
            "resample_mm": data_cfg.resample_mm,
            "slices": OmegaConf.to_container(data_cfg.slices) if data_cfg.mode == "2d" else None,
            "orientation": "RAS+ reoriented to axial display order (Z, H, W), anterior up",
        },
    }


def draw_label_outlines(ax: Axes, labels: np.ndarray) -> None:
    """Outline the BraTS regions (WT yellow, TC red, ET cyan) of a 2D label map on `ax`."""
    for region, values in REGIONS.items():
        mask = np.isin(labels, values)
        if mask.any():
            ax.contour(mask.astype(float), levels=[0.5], colors=REGION_COLOURS[region], linewidths=0.8)


def _spread(indices: np.ndarray, count: int) -> list[int]:
    """`count` entries spread evenly over `indices` (all of them when there are fewer)."""
    if count <= 0 or len(indices) == 0:
        return []
    return indices[np.linspace(0, len(indices) - 1, min(count, len(indices))).round().astype(int)].tolist()


def write_montage(images: ImageSet, path: Path, *, columns: int = 6, rows: int = 2, title: str = "") -> None:
    """A grid of example slices (tumour slices first) with label outlines; 3D items show their middle
    tumour slice."""
    area = images.labels.flatten(1).gt(0).sum(1).numpy()
    tumour, healthy = np.flatnonzero(area > 0), np.flatnonzero(area == 0)
    tumour = tumour[np.argsort(-area[tumour], kind="stable")][: max(len(tumour) // 2, 1)]  # the larger half
    n_tumour = min(len(tumour), columns * rows - min(len(healthy), columns * rows // 2))
    picks = [*_spread(tumour, n_tumour), *_spread(healthy, columns * rows - n_tumour)]
    fig = Figure(figsize=(2.2 * columns, 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, index in zip(axes.ravel(), picks, strict=False):
        image, labels = images.images[index, 0].numpy(), images.labels[index, 0].numpy()
        if image.ndim == 3:
            z = int(np.argmax((labels > 0).sum(axis=(1, 2)))) if labels.any() else image.shape[0] // 2
            image, labels = image[z], labels[z]
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        draw_label_outlines(ax, labels)
        ax.set_title(f"{images.subject_ids[index]} z={images.slice_indices[index]}", fontsize=7)
    fig.suptitle(title or f"{images.modalities[0]} slices; outlines: WT yellow, TC red, ET cyan", fontsize=9)
    save_figure(fig, path)


def save_figure(fig: Figure, path: Path) -> None:
    """Save a figure atomically: a reader never sees a half-written PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


def write_json(payload: Any, path: Path) -> None:
    """Write JSON atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(payload, indent=2))


def write_data_summary(data: PreparedData, output_dir: Path) -> None:
    """Write `data_summary.json` and `data_montage.png` under `output_dir`."""
    write_json(data.summary, output_dir / "data_summary.json")
    write_montage(data.train, output_dir / "data_montage.png")
