"""Grey-level size-zone matrix (GLSZM) features; definitions of pyradiomics `glszm`.

A zone is a connected set of voxels with the same level inside the mask, with full connectivity (8 in 2D,
26 in 3D) as in pyradiomics. Zones are labelled on CPU by `skimage.measure.label` (which joins neighbours of
equal value) in one call for the whole batch: items are stacked along the first spatial axis with a
background (level 0) plane between them. Features are computed from the zone list without building the
dense (N, G, voxels) matrix.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.measure import label

NAMES = [
    "GrayLevelNonUniformity", "GrayLevelNonUniformityNormalized", "GrayLevelVariance", "HighGrayLevelZoneEmphasis",
    "LargeAreaEmphasis", "LargeAreaHighGrayLevelEmphasis", "LargeAreaLowGrayLevelEmphasis",
    "LowGrayLevelZoneEmphasis", "SizeZoneNonUniformity", "SizeZoneNonUniformityNormalized", "SmallAreaEmphasis",
    "SmallAreaHighGrayLevelEmphasis", "SmallAreaLowGrayLevelEmphasis", "ZoneEntropy", "ZonePercentage",
    "ZoneVariance",
]  # fmt: skip

EPS = torch.finfo(torch.float64).eps


def size_zones(levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every zone as (item index, level 1..G, size in voxels), three int64 tensors of length Z."""
    array = levels.cpu().numpy()
    n = array.shape[0]
    padded = np.pad(array, [(0, 0), (0, 1)] + [(0, 0)] * (array.ndim - 2))
    stacked = padded.reshape(-1, *padded.shape[2:])
    zones = label(stacked, background=0, connectivity=stacked.ndim).reshape(padded.shape)
    flat_zones = zones.reshape(n, -1)
    inside = flat_zones > 0
    zone_ids = flat_zones[inside]
    sizes = np.bincount(zone_ids)
    zone_level = np.zeros(sizes.shape[0], dtype=np.int64)
    zone_item = np.zeros(sizes.shape[0], dtype=np.int64)
    zone_level[zone_ids] = padded.reshape(n, -1)[inside]
    zone_item[zone_ids] = np.nonzero(inside)[0]
    keep = sizes > 0
    return tuple(torch.from_numpy(a[keep]) for a in (zone_item, zone_level, sizes))


def glszm_features(levels: torch.Tensor) -> torch.Tensor:
    """(N, 16) float64 features in the order of NAMES from discretised levels (N, *spatial), 0 = outside."""
    n = levels.shape[0]
    item, level, size = size_zones(levels)
    n_levels, max_size = int(levels.max()), int(size.max())
    i, s = level.double(), size.double()
    n_zones = torch.bincount(item, minlength=n).double()
    n_voxels = torch.zeros(n, dtype=torch.float64).index_add_(0, item, s)

    def per_item(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(n, dtype=torch.float64).index_add_(0, item, values)

    def weighted(values: torch.Tensor) -> torch.Tensor:
        return per_item(values) / n_zones

    pg = torch.bincount(item * n_levels + level - 1, minlength=n * n_levels).view(n, n_levels).double()
    ps = torch.bincount(item * max_size + size - 1, minlength=n * max_size).view(n, max_size).double()
    g = torch.arange(1, n_levels + 1, dtype=torch.float64)
    sizes = torch.arange(1, max_size + 1, dtype=torch.float64)
    mean_level = (pg / n_zones[:, None] * g).sum(1, keepdim=True)
    mean_size = (ps / n_zones[:, None] * sizes).sum(1, keepdim=True)
    cell, cell_counts = torch.unique((item * n_levels + level - 1) * max_size + size - 1, return_counts=True)
    cell_p = cell_counts.double() / n_zones[cell // (n_levels * max_size)]
    entropy_terms = -cell_p * torch.log2(cell_p + EPS)
    entropy = torch.zeros(n, dtype=torch.float64).index_add_(0, cell // (n_levels * max_size), entropy_terms)
    values = {
        "GrayLevelNonUniformity": (pg**2).sum(1) / n_zones,
        "GrayLevelNonUniformityNormalized": (pg**2).sum(1) / n_zones**2,
        "GrayLevelVariance": (pg / n_zones[:, None] * (g - mean_level) ** 2).sum(1),
        "HighGrayLevelZoneEmphasis": weighted(i**2),
        "LargeAreaEmphasis": weighted(s**2),
        "LargeAreaHighGrayLevelEmphasis": weighted(i**2 * s**2),
        "LargeAreaLowGrayLevelEmphasis": weighted(s**2 / i**2),
        "LowGrayLevelZoneEmphasis": weighted(1 / i**2),
        "SizeZoneNonUniformity": (ps**2).sum(1) / n_zones,
        "SizeZoneNonUniformityNormalized": (ps**2).sum(1) / n_zones**2,
        "SmallAreaEmphasis": weighted(1 / s**2),
        "SmallAreaHighGrayLevelEmphasis": weighted(i**2 / s**2),
        "SmallAreaLowGrayLevelEmphasis": weighted(1 / (i**2 * s**2)),
        "ZoneEntropy": entropy,
        "ZonePercentage": n_zones / n_voxels,
        "ZoneVariance": (ps / n_zones[:, None] * (sizes - mean_size) ** 2).sum(1),
    }
    return torch.stack([values[name] for name in NAMES], dim=1)
