"""Geometry and infill helpers for the tumour edits, on numpy arrays (2D or 3D, channel-first images).

Healthy-tissue infill: the mirror image across the brain's left-right midline (the contralateral
hemisphere, the last spatial axis); where the mirrored voxel is outside the brain or itself lesion, healthy
tissue copied from the best nearby translation; each shifted to match the mean intensity of a ring of
healthy tissue around the filled region; a multi-scale normalised convolution of the nearby healthy tissue
(Knutsson & Westin 1993), a smooth fill without texture, for anything left.
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
    """An image ((C,) *spatial) of plausible healthy tissue, meant to be used inside `region`.

    Sources, in order, each voxel taking the first that lands on healthy brain: the contralateral mirror;
    a copy of healthy tissue shifted by the translation that covers most of what is left (for lesions on the
    midline, whose mirror is lesion too); a multi-scale normalised convolution for any remainder. Each copied
    source is shifted in intensity to match a ring of healthy tissue around the region.
    """
    healthy = brain & ~lesion
    fill = image.astype(np.float64).copy()
    todo = np.argwhere(region)
    ring = np.argwhere(binary_dilation(region, iterations=3) & ~region & healthy)
    mirror_column = 2 * centroid(brain)[-1] if brain.any() else image.shape[-1] - 1
    mirrored = lambda points: np.concatenate([points[:, :-1], np.round(mirror_column - points[:, -1:])], 1)  # noqa: E731
    for source in (mirrored, best_translation(healthy, todo, region)):
        if source is None or len(todo) == 0:
            continue
        found, origin = valid_source(source(todo).astype(int), healthy)
        offset = ring_offset(image, ring, source, healthy)
        fill[(slice(None), *todo[found].T)] = image[(slice(None), *origin.T)] + offset
        todo = todo[~found]
    if len(todo):
        needed = np.zeros_like(region)
        needed[tuple(todo.T)] = True
        smooth = multiscale_fill(image, (healthy & ~region).astype(np.float64), needed)
        fill[:, needed] = smooth[:, needed]
    return fill.astype(image.dtype)


def valid_source(points: np.ndarray, healthy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of points inside the grid and on healthy tissue, those points)."""
    inside = np.all((points >= 0) & (points < np.array(healthy.shape)), axis=1)
    found = inside.copy()
    found[inside] = healthy[tuple(points[inside].T)]
    return found, points[found]


def ring_offset(image: np.ndarray, ring: np.ndarray, source, healthy: np.ndarray) -> np.ndarray:
    """Per-channel intensity offset making the source's ring match the region's ring (0 without a ring)."""
    if len(ring) == 0:
        return np.zeros((image.shape[0], 1))
    found, origin = valid_source(source(ring).astype(int), healthy)
    if not found.any():
        return np.zeros((image.shape[0], 1))
    target = image[(slice(None), *ring[found].T)]
    return (target.mean(1) - image[(slice(None), *origin.T)].mean(1))[:, None]


def best_translation(healthy: np.ndarray, points: np.ndarray, region: np.ndarray):
    """The shift (as a source function) that lands most `points` on healthy tissue, among 24 directions x
    3 distances (1, 1.5, 2 region diameters); None when there is nothing to place."""
    if len(points) == 0:
        return None
    rng = np.random.default_rng(0)  # fixed candidate directions: a deterministic geometric search
    directions = rng.standard_normal((24, healthy.ndim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    diameter = 2 * equivalent_radius(region)
    best, best_count = None, -1
    for distance in (1.0, 1.5, 2.0):
        for direction in directions:
            shift = np.round(distance * diameter * direction).astype(int)
            count = int(valid_source(points + shift, healthy)[0].sum())
            if count > best_count:
                best, best_count = shift, count
    return lambda p: p + best


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


def vacate(image: np.ndarray, brain: np.ndarray, lesion: np.ndarray, region: np.ndarray, reach: int) -> np.ndarray:
    """`image` with `region` (lesion voxels to clear) and its FLAIR halo within `reach` voxels refilled with
    healthy tissue (`perturbations.fill`); `lesion` marks every lesion voxel of the item."""
    from perturbations.fill import clearance, fill_healthy

    return fill_healthy(image, brain, lesion, clearance(image, brain, lesion, region, reach))


def draw_lesion(image: np.ndarray, original: np.ndarray, label: np.ndarray, brain: np.ndarray, coords: np.ndarray,
                feather: float) -> tuple[np.ndarray, np.ndarray]:
    """Draw the lesion of `label` resampled at `coords` (pull-back) from `original` onto `image`, feathered.

    Returns (image, label of the drawn lesion, clipped to the brain: a moved or grown tumour never enters air).
    """
    new_label = np.where(brain, warp_labels(label, coords), 0).astype(label.dtype)
    new = soft_mask(new_label > 0, feather) * brain
    return blend(image, warp(original, coords, order=1).astype(image.dtype), new, brain), new_label


def paste_lesion(image: np.ndarray, label: np.ndarray, brain: np.ndarray, coords: np.ndarray,
                 feather: float, lesion: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Remove the lesion (healthy infill) and draw it again resampled at `coords` (pull-back coordinates).

    Returns (image, label) with the moved / rescaled lesion; outside `feather` voxels of the new lesion and two
    voxels of the old one the image is unchanged. `lesion` (default label > 0) marks every lesion voxel of the
    item, so that the infill never copies another tumour in.
    """
    lesion = label > 0 if lesion is None else lesion
    healthy = vacate(image, brain, lesion, label > 0, int(2 * feather) - 1)
    return draw_lesion(healthy, image, label, brain, coords, feather)
