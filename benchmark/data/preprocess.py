"""Preprocessing as in the study we reproduce: brain mask, percentile clipping, [0, 1] scaling, display
orientation, optional resampling, and centre crop/pad to a fixed size (Deo et al. 2025, REFERENCE.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu


def constant_background(channel: np.ndarray) -> float | None:
    """The value of every border voxel of a 3D channel when they all share it (0 for skull-stripped data,
    a negative constant for data z-scored inside the brain), else None. Axes of length 1 or 2 (a slice
    stored as a volume) have no border of their own."""
    value = channel.flat[0]
    faces = (np.moveaxis(channel, axis, 0)[index] for axis in range(channel.ndim) if channel.shape[axis] > 2
             for index in (0, -1))  # views, compared lazily: most volumes fail on the first face
    return float(value) if all((face == value).all() for face in faces) else None


def brain_mask_from_image(image: np.ndarray) -> np.ndarray:
    """Brain mask of a (C, X, Y, Z) image: the voxels that differ from a constant background (skull-stripped
    data such as BraTS: zero; z-scored data: a negative constant), else an Otsu threshold with holes
    filled, largest component."""
    backgrounds = [constant_background(channel) for channel in image]
    if all(b is not None for b in backgrounds):
        foreground = np.zeros(image.shape[1:], dtype=bool)
        for channel, background in zip(image, backgrounds, strict=True):
            foreground |= channel != background
        if foreground.mean() < 0.9:
            return foreground
    mean = image.mean(axis=0)
    mask = np.zeros(mean.shape, dtype=bool)
    threshold = threshold_otsu(mean)
    box = _padded_box(mean > threshold)
    inside = fill_holes(mean[box] > threshold)
    components, count = ndimage.label(inside)
    if count > 1:
        sizes = np.bincount(components.ravel(), minlength=count + 1)[1:]
        inside = components == (1 + int(np.argmax(sizes)))
    mask[box] = inside
    return mask


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """`mask` with its holes filled: background not face-connected to the array's border becomes foreground.
    Equal to `scipy.ndimage.binary_fill_holes` (tested), by one labelling of the background instead of a
    dilation repeated until it converges (seconds on a 240x240x155 volume)."""
    background, count = ndimage.label(~mask)
    outside = np.zeros(count + 1, dtype=bool)
    for axis in range(mask.ndim):
        for index in (0, -1):
            outside[np.moveaxis(background, axis, 0)[index]] = True
    outside[0] = False  # label 0: the foreground itself
    return ~outside[background]


def _padded_box(mask: np.ndarray) -> tuple[slice, ...]:
    """The bounding box of `mask` grown by one voxel per side (clipped to the array): filling holes and
    labelling components inside it gives what they give on the whole array, since everything outside is
    background connected to the border, at a fraction of the cost."""
    if not mask.any():
        return tuple(slice(0, 0) for _ in mask.shape)
    box = []
    for axis in range(mask.ndim):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(int(present[0]) - 1, 0), int(present[-1]) + 2))
    return tuple(box)


def normalise_intensity(image: np.ndarray, brain: np.ndarray, percentiles: Sequence[float]) -> np.ndarray:
    """Clip each channel at its `percentiles` (low, high) inside the brain, scale to [0, 1], zero outside."""
    out = np.zeros_like(image, dtype=np.float32)
    low_q, high_q = percentiles
    box = _padded_box(brain)  # outside it the result is 0: scale only the brain's bounding box
    for channel, data in enumerate(image):
        values = data[brain] if brain.any() else data.ravel()
        low, high = np.percentile(values, [low_q, high_q])
        scale = high - low if high > low else 1.0
        out[channel][box] = np.clip((data[box] - low) / scale, 0.0, 1.0) * brain[box]
    return out


def resample(array: np.ndarray, spacing: Sequence[float], target_mm: float | Sequence[float], *, order: int
             ) -> np.ndarray:
    """Resample the last three axes of `array` from `spacing` to `target_mm` (mm, one value or one per axis);
    order 0 (nearest) for labels and masks, 1 (linear) for images."""
    targets = [float(target_mm)] * 3 if isinstance(target_mm, int | float) else [float(t) for t in target_mm]
    factors = [1.0] * (array.ndim - 3) + [s / t for s, t in zip(spacing, targets, strict=True)]
    source = array.astype(np.uint8) if array.dtype == bool else array
    out = ndimage.zoom(source, factors, order=order, mode="nearest", grid_mode=True)
    return out.astype(bool) if array.dtype == bool else out


def zoom_plane(array: np.ndarray, zoom: Sequence[float], *, order: int) -> np.ndarray:
    """Zoom the last two axes of `array` by `zoom` (H, W factors): order 1 for images, 0 for labels/masks."""
    factors = [1.0] * (array.ndim - 2) + [float(z) for z in zoom]
    source = array.astype(np.uint8) if array.dtype == bool else array
    out = ndimage.zoom(source, factors, order=order, mode="nearest", grid_mode=True)
    return out.astype(bool) if array.dtype == bool else out


def to_display_order(array: np.ndarray) -> np.ndarray:
    """RAS+ (..., X, Y, Z) -> (..., Z, H, W): axial slices with anterior at the top, patient right on the
    image's left (radiological convention)."""
    rotated = np.rot90(array, k=1, axes=(-3, -2))  # (..., Y, X, Z), anterior first
    return np.ascontiguousarray(np.moveaxis(rotated, -1, -3))


def crop_or_pad(array: np.ndarray, size: Sequence[int], centre: Sequence[float]) -> np.ndarray:
    """Crop or zero-pad the last len(size) axes to `size`, centred on `centre` (voxel coordinates)."""
    out = np.zeros((*array.shape[: array.ndim - len(size)], *size), dtype=array.dtype)
    source, target = [slice(None)] * (array.ndim - len(size)), [slice(None)] * (array.ndim - len(size))
    for axis_len, want, c in zip(array.shape[-len(size):], size, centre, strict=True):
        start = math.floor(c - want / 2 + 0.5)
        lo, hi = max(start, 0), min(start + want, axis_len)
        source.append(slice(lo, hi))
        target.append(slice(lo - start, lo - start + max(hi - lo, 0)))
    out[tuple(target)] = array[tuple(source)]
    return out


def bounding_box_centre(mask: np.ndarray) -> np.ndarray:
    """Centre of the bounding box of a boolean mask, per axis (the array centre for an empty mask)."""
    if not mask.any():
        return (np.array(mask.shape) - 1) / 2
    coords = np.nonzero(mask)
    return np.array([(c.min() + c.max() + 1) / 2 for c in coords])
