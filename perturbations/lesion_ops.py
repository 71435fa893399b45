"""Geometry and infill helpers for the tumour edits, on numpy arrays (2D or 3D, channel-first images).

Healthy-tissue infill: the mirror image across the brain's left-right midline (the contralateral
hemisphere, the last spatial axis), shifted to match the mean intensity of a ring of healthy tissue around
the filled region; where the mirrored voxel is outside the brain or itself lesion, a multi-scale normalised
convolution of the nearby healthy tissue (Knutsson & Westin 1993), i.e. a smooth fill without texture.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation, distance_transform_edt, gaussian_filter, map_coordinates


def soft_mask(region: np.ndarray, width: float) -> np.ndarray:
    """1 inside `region`, falling linearly to 0 over `width` voxels outside it."""
    if width <= 0:
        return region.astype(np.float32)
    outside = distance_transform_edt(~region)
    return np.clip(1.0 - outside / width, 0.0, 1.0).astype(np.float32)


def equivalent_radius(region: np.ndarray) -> float:
    """Radius in voxels of the disc (2D) or ball (3D) with the region's size."""
    n = float(region.sum())
    return float(np.sqrt(n / np.pi)) if region.ndim == 2 else float((3 * n / (4 * np.pi)) ** (1 / 3))


def centroid(region: np.ndarray) -> np.ndarray:
    """Centre of mass of a boolean region, in voxel coordinates."""
    return np.array([c.mean() for c in np.nonzero(region)])


def identity_grid(shape: tuple[int, ...]) -> np.ndarray:
    """(ndim, *shape) voxel coordinates."""
    return np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"))


def warp(array: np.ndarray, coords: np.ndarray, order: int) -> np.ndarray:
    """Sample `array` ((C,) *spatial) at `coords` (ndim, *spatial): order 1 linear, 0 nearest (labels)."""
    if array.ndim == coords.shape[0]:
        return map_coordinates(array, coords, order=order, mode="nearest")
    return np.stack([map_coordinates(channel, coords, order=order, mode="nearest") for channel in array])


def warp_labels(label: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Resample a label map at `coords`: each label's indicator linearly, then the most likely label per voxel.

    Unlike nearest-neighbour sampling, volumes change smoothly with the geometry (partial-volume aware), so a
    slightly shrunk lesion is slightly smaller even on a coarse grid.
    """
    values = np.unique(label)
    scores = np.stack([map_coordinates((label == v).astype(np.float32), coords, order=1, mode="nearest")
                       for v in values])
    return values[np.argmax(scores, axis=0)].astype(label.dtype)


def healthy_fill(image: np.ndarray, brain: np.ndarray, lesion: np.ndarray, region: np.ndarray) -> np.ndarray:
    """An image ((C,) *spatial) of plausible healthy tissue, meant to be used inside `region`."""
    n = image.shape[-1]
    mirror_index = np.clip(np.round(2 * centroid(brain)[-1] - np.arange(n)).astype(int), 0, n - 1)
    mirrored = np.take(image, mirror_index, axis=-1)
    healthy = brain & ~lesion
    mirror_ok = np.take(healthy, mirror_index, axis=-1)
    ring = binary_dilation(region, iterations=3) & ~region & healthy & mirror_ok
    if ring.any():
        mirrored = mirrored + (image[:, ring] - mirrored[:, ring]).mean(1).reshape(-1, *[1] * brain.ndim)
    smooth = multiscale_fill(image, (healthy & ~region).astype(np.float64), region & ~mirror_ok)
    return np.where(mirror_ok, mirrored, smooth).astype(image.dtype)


def multiscale_fill(image: np.ndarray, known: np.ndarray, needed: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """Normalised convolution of the known voxels at growing scales (1, 2, 4, ... voxels), computed for the
    `needed` voxels: each takes the finest scale whose Gaussian window holds at least `threshold` known
    weight, so the fill follows the nearby tissue rather than the brain's mean."""
    filled = np.zeros_like(image, dtype=np.float64)
    todo = needed.copy()
    sigmas = [2.0**k for k in range(int(np.log2(max(known.shape))) + 1)]
    for sigma in sigmas:
        if not todo.any():
            break
        weight = gaussian_filter(known, sigma, truncate=3.0)
        use = todo & (weight >= (threshold if sigma < sigmas[-1] else 1e-9))
        for c, channel in enumerate(image):
            filled[c][use] = gaussian_filter(channel * known, sigma, truncate=3.0)[use] / weight[use]
        todo &= ~use
    return filled


def blend(base: np.ndarray, top: np.ndarray, weight: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """weight * top + (1 - weight) * base inside the brain; `base` outside it."""
    mixed = weight * top + (1.0 - weight) * base
    return np.where(brain, mixed, base).astype(base.dtype)


def paste_lesion(image: np.ndarray, label: np.ndarray, brain: np.ndarray, coords: np.ndarray,
                 feather: float, lesion: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Remove the lesion (healthy infill) and draw it again resampled at `coords` (pull-back coordinates).

    Returns (image, label) with the moved / rescaled lesion; outside `feather` voxels of the old and the new
    lesion the image is unchanged. The new label is clipped to the brain mask. `lesion` (default label > 0)
    marks every lesion voxel of the item, so that the infill never copies another tumour in.
    """
    lesion = label > 0 if lesion is None else lesion
    old = soft_mask(label > 0, feather)
    healthy = blend(image, healthy_fill(image, brain, lesion, old > 0), old, brain)
    new_label = np.where(brain, warp_labels(label, coords), 0).astype(label.dtype)
    new_lesion = new_label > 0
    new = soft_mask(new_lesion, feather) * brain
    return blend(healthy, warp(image, coords, order=1).astype(image.dtype), new, brain), new_label
