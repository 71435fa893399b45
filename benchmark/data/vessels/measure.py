"""Three image properties of a TOF-MRA crop, measured the same way on real and rendered images (no ground
truth used): vessels are segmented by an Otsu threshold, then

- contrast: median vessel intensity / median tissue intensity (tissue: the crop's non-vessel voxels
  farther than 1 mm from a vessel, brighter than a quarter of the crop's median to leave out air);
- noise: the robust standard deviation (1.4826 MAD) of the tissue's high-pass residual (image minus its
  3x3x3 median) relative to the median tissue intensity;
- edge width: the 10-90 % rise, in mm, of the median intensity profile across the wall of the larger
  vessels (radius >= 0.8 mm), against the signed distance to the thresholded wall.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

LARGE_RADIUS_MM = 0.8
PROFILE_BIN_MM = 0.1


def segment_vessels(image: np.ndarray) -> np.ndarray:
    """Bright vessels (bool): above the Otsu threshold of the crop, components of at least 10 voxels."""
    above = image > threshold_otsu(image)
    labels, count = ndimage.label(above, np.ones((3, 3, 3)))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= 10
    keep[0] = False
    return keep[labels]


def _tissue(image: np.ndarray, vessels: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    far = ndimage.distance_transform_edt(~vessels, sampling=spacing) > 1.0
    return far & (image > 0.25 * float(np.median(image)))


def edge_profile(image: np.ndarray, vessels: np.ndarray, spacing: tuple[float, ...]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Median intensity against signed distance to the wall (mm; negative inside) around the larger vessels."""
    inside = ndimage.distance_transform_edt(vessels, sampling=spacing)
    outside = ndimage.distance_transform_edt(~vessels, sampling=spacing)
    signed = np.where(vessels, -inside + 0.5 * min(spacing), outside - 0.5 * min(spacing))
    large = vessels & (ndimage.maximum_filter(inside, size=5) >= LARGE_RADIUS_MM)
    near_large = ndimage.distance_transform_edt(~large, sampling=spacing) <= 3.0
    region = near_large & (signed >= -2.0) & (signed <= 3.0)
    if not region.any():
        return np.zeros(0), np.zeros(0)
    bins = np.round(signed[region] / PROFILE_BIN_MM).astype(int)
    values = image[region]
    centres, medians = [], []
    for b in np.unique(bins):
        chosen = values[bins == b]
        if len(chosen) >= 5:
            centres.append(b * PROFILE_BIN_MM)
            medians.append(float(np.median(chosen)))
    return np.array(centres), np.array(medians)


def rise_width_mm(distance: np.ndarray, profile: np.ndarray) -> float:
    """The 10-90 % rise distance (mm) of a profile that falls from the vessel (negative distance) to tissue."""
    if len(profile) < 4:
        return float("nan")
    high = float(np.max(profile[distance <= 0])) if (distance <= 0).any() else float("nan")
    low = float(np.median(profile[distance >= 1.5])) if (distance >= 1.5).any() else float("nan")
    if not np.isfinite(high) or not np.isfinite(low) or high <= low:
        return float("nan")
    peak = int(np.argmax(np.where(distance <= 0, profile, -np.inf)))
    tail_d, tail_p = distance[peak:], profile[peak:]

    def crossing(level: float) -> float:
        below = np.flatnonzero(tail_p <= level)
        if len(below) == 0:
            return float("nan")
        k = int(below[0])
        if k == 0:
            return float(tail_d[0])
        d0, d1, p0, p1 = tail_d[k - 1], tail_d[k], tail_p[k - 1], tail_p[k]
        return float(d0 + (p0 - level) / (p0 - p1) * (d1 - d0))

    return crossing(low + 0.1 * (high - low)) - crossing(low + 0.9 * (high - low))


def measure_tof(image: np.ndarray, spacing: tuple[float, ...]) -> dict[str, float]:
    """Contrast, relative noise and edge width (mm) of a TOF crop (X, Y, Z) with `spacing` mm; see the module
    docstring. Also the vessel share of the crop, for context."""
    image = np.asarray(image, dtype=np.float32)
    vessels = segment_vessels(image)
    tissue = _tissue(image, vessels, spacing)
    tissue_level = float(np.median(image[tissue]))
    residual = image - ndimage.median_filter(image, size=3)
    noise = 1.4826 * float(np.median(np.abs(residual[tissue] - np.median(residual[tissue]))))
    distance, profile = edge_profile(image, vessels, spacing)
    return {"contrast": float(np.median(image[vessels])) / tissue_level,
            "noise": noise / tissue_level,
            "edge_width_mm": rise_width_mm(distance, profile),
            "vessel_fraction": float(vessels.mean())}
