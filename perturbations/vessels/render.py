"""Redraw a TOF-MRA image after its vessel mask changed: tissue where a vessel left, blood where one arrived.

Only voxels within `margin` voxels of a changed vessel voxel are touched. There the image is rebuilt as
tissue + partial-volume vessel + texture: the tissue is a normalised Gaussian convolution of the voxels that are
neither vessel nor its partial-volume halo (what the scanner shows behind a vessel: suppressed static tissue);
the blood is the original voxel where the vessel stays and the brightness of the nearest original centreline
voxel where it is new, weighted by the new mask blurred over about a voxel (partial volume at the wall); the
tissue's texture is residuals (image minus tissue) drawn at random from tissue voxels around the edit, so the
noise level matches. The rebuilt part meets the original over a one-voxel
feather. An occluded artery thus leaves tissue of the surrounding brightness and noise, no bright residue.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation, distance_transform_edt, gaussian_filter

HALO_VOXELS = 2  # partial-volume halo of a vessel: excluded from the tissue estimate
TISSUE_SIGMA = 3.0  # voxels: scale of the tissue estimate behind a vessel
WALL_SIGMA = 0.6  # voxels: partial-volume blur of a redrawn vessel wall
TEXTURE_REACH = 6  # voxels around the edit whose tissue residuals give the texture


def tissue_estimate(image: np.ndarray, tissue: np.ndarray) -> np.ndarray:
    """(C, *spatial) local mean of the `tissue` voxels (normalised convolution, widening where too few are near)."""
    weight = tissue.astype(np.float64)
    out = np.empty(image.shape, dtype=np.float64)
    for c, channel in enumerate(image):
        estimate = np.full(channel.shape, np.median(channel[tissue]) if tissue.any() else 0.0)
        for sigma in (4 * TISSUE_SIGMA, TISSUE_SIGMA):  # the finest scale wins where it has support
            reach = gaussian_filter(weight, sigma)
            smooth = gaussian_filter(channel * weight, sigma) / np.maximum(reach, 1e-12)
            estimate = np.where(reach > 0.05, smooth, estimate)
        out[c] = estimate
    return out


def redraw_vessels(image: np.ndarray, old: np.ndarray, new: np.ndarray, brain: np.ndarray, rng: np.random.Generator,
                   margin: int, centre: np.ndarray | None = None) -> np.ndarray:
    """The image (C, *spatial) with the vessels of mask `old` replaced by those of `new`, changed only within
    `margin` voxels of `old ^ new`. Blood takes the brightness of the nearest voxel of `centre` (the old
    centreline; default the old mask)."""
    changed = old ^ new
    if not changed.any():
        return image.copy()
    region = binary_dilation(changed, iterations=margin)
    halo = binary_dilation(old | new, iterations=HALO_VOXELS)
    tissue = ~halo & (brain if brain.any() else np.ones_like(brain))
    if not tissue.any():
        tissue = ~halo
    background = tissue_estimate(image, tissue)
    core = centre if centre is not None and centre.any() else (old if old.any() else new)
    nearest = distance_transform_edt(~core, return_distances=False, return_indices=True)
    blood = np.where(old, image, image[(slice(None), *nearest)])  # vessel that stays keeps its own voxels
    wall = gaussian_filter(new.astype(np.float64), WALL_SIGMA)
    rendered = (1.0 - wall) * (background + texture(image, background, tissue, region, rng)) + wall * blood
    alpha = np.clip(distance_transform_edt(region) / 2.0, 0.0, 1.0)
    out = alpha * rendered + (1.0 - alpha) * image
    return np.where(region, out, image).astype(image.dtype)


def texture(image: np.ndarray, background: np.ndarray, tissue: np.ndarray, region: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """(C, *spatial) residuals of tissue voxels near `region`, drawn at random into it (zero elsewhere)."""
    pool = tissue & binary_dilation(region, iterations=TEXTURE_REACH)
    if not pool.any():
        pool = tissue
    out = np.zeros(image.shape, dtype=np.float64)
    if not pool.any():
        return out
    residual = image[:, pool] - background[:, pool]
    drawn = rng.integers(0, residual.shape[1], int(region.sum()))
    out[:, region] = residual[:, drawn]
    return out
