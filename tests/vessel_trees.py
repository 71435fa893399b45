"""Hand-made arterial trees for the vessel tests: tubes drawn in numpy, rendered like TOF-MRA (bright blood on
dim noisy tissue, a one-voxel partial-volume wall), in 2D or 3D."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from benchmark.data.imageset import ImageSet

CONF = Path(__file__).resolve().parent.parent / "conf"


def tube(shape: tuple[int, ...], start, end, radius: float) -> np.ndarray:
    """Voxels within `radius` of the segment start-end (voxel units)."""
    points = np.moveaxis(np.indices(shape), 0, -1).astype(float)
    a, b = np.asarray(start, float), np.asarray(end, float)
    t = np.clip(((points - a) @ (b - a)) / max(float((b - a) @ (b - a)), 1e-12), 0.0, 1.0)
    return np.linalg.norm(points - a - t[..., None] * (b - a), axis=-1) <= radius


def y_tree(size: int = 48, spatial_dims: int = 3) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(label, parts): a trunk (radius 3) splitting into a wide (2.5) and a narrow (1.5) branch, plus a thin
    (1) twig off the wide branch; `parts` holds each segment's own mask."""
    shape = (size,) * spatial_dims
    c = size // 2
    def at(*yx):
        return (c, *yx) if spatial_dims == 3 else yx
    fork, wide_end, narrow_end = at(c, c), at(size - 6, c - 14), at(size - 6, c + 14)
    twig_root = tuple((np.array(fork) + np.array(wide_end)) // 2)
    parts = {
        "trunk": tube(shape, at(4, c), fork, 3.0),
        "wide": tube(shape, fork, wide_end, 2.5),
        "narrow": tube(shape, fork, narrow_end, 1.5),
        "twig": tube(shape, twig_root, at(c + 6, 4), 1.0),
    }
    label = np.zeros(shape, np.uint8)
    for part in parts.values():
        label[part] = 1
    return label, parts


def tof_image(label: np.ndarray, seed: int = 0, tissue: float = 0.3, blood: float = 0.85,
              noise: float = 0.03) -> np.ndarray:
    """A TOF-like image of a vessel label: blood on tissue, the wall blurred over a voxel, Gaussian noise."""
    rng = np.random.default_rng(seed)
    vessel = gaussian_filter((label > 0).astype(float), 0.7)
    return np.clip(tissue + (blood - tissue) * vessel + noise * rng.standard_normal(label.shape), 0, 1)


def vessel_imageset(n: int = 2, size: int = 48, spatial_dims: int = 3, spacing: float = 0.5) -> ImageSet:
    """`n` items of the Y tree (each its own noise), brain = everything, `spacing` mm isotropic."""
    label, _ = y_tree(size, spatial_dims)
    images = np.stack([tof_image(label, seed=i) for i in range(n)])[:, None]
    labels = np.repeat(label[None, None], n, axis=0)
    brain = torch.ones(labels.shape, dtype=torch.bool)
    return ImageSet(torch.from_numpy(images).float(), torch.from_numpy(labels), brain,
                    [f"tree{i}" for i in range(n)], [-1 if spatial_dims == 3 else 0] * n, ("tof",),
                    (spacing,) * spatial_dims)
