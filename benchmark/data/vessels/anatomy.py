"""Static head tissue on any voxel grid, from the MNI152 maps nilearn ships: grey and white matter and CSF
inside the brain, then, by distance outside the brain, a CSF rim, the skull (dark cortical bone with a
fatty diploe), the scalp's subcutaneous fat and the skin. A TOF-MRA slab shows all of them; fat is the
one static tissue that stays bright (short T1, no magnetisation transfer)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

from benchmark.data.phantom import load_mni_template

TISSUES = ("wm", "gm", "csf", "bone", "fat", "skin")
# Layers outside the brain surface, as (tissue, inner, outer) distances in mm (adult head, Gray's Anatomy).
HEAD_LAYERS: tuple[tuple[str, float, float], ...] = (
    ("csf", 0.0, 2.0), ("bone", 2.0, 4.0), ("fat", 4.0, 5.5), ("bone", 5.5, 7.5), ("fat", 7.5, 12.0),
    ("skin", 12.0, 14.0),
)
# The Circle of Willis in MNI152 mm: where a crop of a real Circle-of-Willis mask is placed.
CIRCLE_OF_WILLIS_MNI = np.array([0.0, -8.0, -18.0])


@lru_cache(maxsize=1)
def _mni_maps() -> tuple[np.ndarray, np.ndarray]:
    """(4, X, Y, Z) float32 maps on MNI's 1 mm grid (gm, wm, csf, distance outside the brain in mm) and
    the grid's origin (mm)."""
    template = load_mni_template(1.0)
    gm, wm, brain, _ = template.maps.numpy()
    inside = brain > 0.5
    outside_mm = ndimage.distance_transform_edt(~inside).astype(np.float32)
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0) * inside
    return np.stack([gm * inside, wm * inside, csf, outside_mm]).astype(np.float32), template.origin_mm


def head_tissues(shape: tuple[int, int, int], affine: np.ndarray, mni_offset_mm: np.ndarray) -> dict[str, np.ndarray]:
    """Tissue fractions (0-1, float32, one map per name in TISSUES, summing to at most 1; air is the rest)
    on the grid of `shape` voxels and voxel-to-world `affine`, whose world point p lies at MNI p + offset."""
    maps, origin = _mni_maps()
    matrix = np.asarray(affine, np.float64)[:3, :3]
    offset = np.asarray(affine, np.float64)[:3, 3] + np.asarray(mni_offset_mm, np.float64) - origin
    sampled = [ndimage.affine_transform(m, matrix, offset, output_shape=shape, order=1, mode="nearest")
               for m in maps]
    gm, wm, csf, outside = sampled
    outside = np.where(gm + wm + csf > 0.5, 0.0, outside)
    tissues = {"gm": gm, "wm": wm, "csf": csf.copy(), "bone": np.zeros(shape, np.float32),
               "fat": np.zeros(shape, np.float32), "skin": np.zeros(shape, np.float32)}
    for name, inner, outer in HEAD_LAYERS:
        share = np.clip(np.minimum(outside - inner, outer - outside) + 0.5, 0.0, 1.0) * (outside > 0)
        tissues[name] += share.astype(np.float32)
    total = sum(tissues.values())
    scale = np.where(total > 1.0, 1.0 / np.maximum(total, 1e-6), 1.0).astype(np.float32)
    return {name: (tissues[name] * scale).astype(np.float32) for name in TISSUES}


def head_mask(tissues: dict[str, np.ndarray]) -> np.ndarray:
    """The imaged head (bool): voxels at least half filled by tissue."""
    return sum(tissues.values()) >= 0.5
