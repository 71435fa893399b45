"""Geometry helpers for the tumour edits, on numpy arrays (2D or 3D, channel-first images): soft masks,
resampling of images and labels, and vacating / redrawing a lesion. The healthy-tissue fill itself (mirror,
exemplar, Poisson blend) lives in `perturbations.fill`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
from scipy.ndimage import distance_transform_edt, map_coordinates

# A healthy-tissue fill: (image, brain, lesion, region) -> image with `region` replaced (`fill.fill_healthy`).
Fill = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


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


def blend(base: np.ndarray, top: np.ndarray, weight: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """weight * top + (1 - weight) * base inside the brain; `base` outside it."""
    mixed = weight * top + (1.0 - weight) * base
    return np.where(brain, mixed, base).astype(base.dtype)


_VACATED: dict[bytes, np.ndarray] = {}


def vacate(image: np.ndarray, brain: np.ndarray, lesion: np.ndarray, region: np.ndarray, reach: int,
           fill: Fill | None = None) -> np.ndarray:
    """`image` with `region` (lesion voxels to clear) and its FLAIR halo within `reach` voxels refilled with
    healthy tissue (`perturbations.fill`); `lesion` marks every lesion voxel of the item. Remembered by content
    (up to 256 results, 256 MiB): shrink, move and deform clear the whole lesion, the same at every severity.
    `fill` (default `fill.fill_healthy`) replaces a region by healthy tissue; another fill (the learned
    inpainter) is not remembered: the key says nothing of the method."""
    from perturbations.fill import clearance, fill_healthy

    if fill is not None and fill is not fill_healthy:
        return fill(image, brain, lesion, clearance(image, brain, lesion, region, reach))

    key = hashlib.blake2b(b"".join(np.ascontiguousarray(a).tobytes() for a in (image, brain, lesion, region)) +
                          f"{image.shape}{image.dtype}{reach}".encode(), digest_size=16).digest()
    if key not in _VACATED:
        while _VACATED and (len(_VACATED) >= 256 or sum(a.nbytes for a in _VACATED.values()) > 2**28):
            _VACATED.pop(next(iter(_VACATED)))  # oldest first; at most 256 results and 256 MiB
        _VACATED[key] = fill_healthy(image, brain, lesion, clearance(image, brain, lesion, region, reach))
    return _VACATED[key].copy()


def draw_lesion(image: np.ndarray, original: np.ndarray, label: np.ndarray, brain: np.ndarray, coords: np.ndarray,
                feather: float, support: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw the lesion of `label` resampled at `coords` (pull-back) from `original` onto `image`, feathered.

    `support` (original space, 0..1; `fill.lesion_support`) limits what of the original comes along outside the
    lesion: its halo, not the normal tissue, CSF or background next to it; None takes everything within the
    feather. Returns (image, label of the drawn lesion, clipped to the brain: a moved or grown tumour never
    enters air).
    """
    new_label = np.where(brain, warp_labels(label, coords), 0).astype(label.dtype)
    new = soft_mask(new_label > 0, feather) * brain
    if support is not None:
        new = new * np.clip(warp(support.astype(np.float32), coords, order=1), 0.0, 1.0)
    return blend(image, warp(original, coords, order=1).astype(image.dtype), new, brain), new_label


def paste_lesion(image: np.ndarray, label: np.ndarray, brain: np.ndarray, coords: np.ndarray,
                 feather: float, lesion: np.ndarray | None = None, fill: Fill | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Remove the lesion (healthy infill) and draw it again resampled at `coords` (pull-back coordinates).

    Returns (image, label) with the moved / rescaled lesion; outside `feather` voxels of the new lesion and two
    voxels of the old one the image is unchanged. `lesion` (default label > 0) marks every lesion voxel of the
    item, so that the infill never copies another tumour in; `fill` as for `vacate`.
    """
    from perturbations.fill import lesion_support

    lesion = label > 0 if lesion is None else lesion
    reach = int(2 * feather) - 1
    healthy = vacate(image, brain, lesion, label > 0, reach, fill)
    support = lesion_support(image, brain, lesion, reach)
    return draw_lesion(healthy, image, label, brain, coords, feather, support)
