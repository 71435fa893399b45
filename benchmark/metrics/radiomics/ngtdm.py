"""Neighbouring grey-tone difference matrix (NGTDM) features, batched; definitions of pyradiomics `ngtdm`.

For each voxel in the mask, A = mean level of its neighbours at distance 1 (8 in 2D, 26 in 3D) that lie
in the mask. Per level i: n_i voxels, s_i = sum |i - A|, p_i = n_i / Nvp. A voxel with no neighbour in the
mask is counted in n_i with a zero difference, as pyradiomics 3.0.1's C code does (its docs say such
voxels are left out; the code and its baseline values count them). Coarseness is 10^6 when sum p_i s_i = 0,
as in pyradiomics.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

NAMES = ["Busyness", "Coarseness", "Complexity", "Contrast", "Strength"]


def _neighbour_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum over the 8 (2D) / 26 (3D) neighbours of each voxel of (N, *spatial) values, zero outside the image."""
    spatial = values.shape[1:]
    padded = F.pad(values, [1, 1] * len(spatial))
    total = torch.zeros_like(values)
    for offset in itertools.product((0, 1, 2), repeat=len(spatial)):
        if offset != (1,) * len(spatial):
            total += padded[(slice(None), *[slice(o, o + size) for o, size in zip(offset, spatial, strict=True)])]
    return total


def neighbourhood_differences(levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, G) voxel counts n_i and (N, G) summed absolute differences s_i."""
    n, spatial_dims = levels.shape[0], levels.ndim - 1
    n_levels = int(levels.max())
    neighbour_sum = _neighbour_sum(levels.double())
    neighbour_count = _neighbour_sum((levels > 0).double())
    valid = levels > 0
    difference = torch.where(neighbour_count > 0, (levels - neighbour_sum / neighbour_count.clamp_min(1)).abs(), 0.0)
    dump = n * n_levels  # invalid voxels go to an extra bin, cheaper than boolean indexing
    key = torch.where(valid, torch.arange(n).view(-1, *([1] * spatial_dims)) * n_levels + levels - 1, dump).flatten()
    counts = torch.bincount(key, minlength=dump + 1)[:dump].view(n, n_levels).double()
    sums = torch.bincount(key, weights=difference.flatten(), minlength=dump + 1)[:dump].view(n, n_levels)
    return counts, sums


def ngtdm_features(levels: torch.Tensor) -> torch.Tensor:
    """(N, 5) float64 features in the order of NAMES from discretised levels (N, *spatial), 0 = outside."""
    counts, s = neighbourhood_differences(levels)
    n_valid = counts.sum(1, keepdim=True)
    p = counts / n_valid.clamp_min(1)
    present = p > 0
    pair = present.unsqueeze(2) & present.unsqueeze(1)
    g = torch.arange(1, p.shape[1] + 1, dtype=torch.float64)
    level_diff = g.view(-1, 1) - g.view(1, -1)
    n_present = present.sum(1).double()
    ps_sum = (p * s).sum(1)
    s_total = s.sum(1)
    coarseness = torch.where(ps_sum != 0, 1 / torch.where(ps_sum != 0, ps_sum, 1.0), 1e6)
    divisor = n_present * (n_present - 1)
    pp = p.unsqueeze(2) * p.unsqueeze(1)
    contrast = (pp * level_diff**2).sum((1, 2)) * s_total / n_valid.squeeze(1)
    contrast = torch.where(divisor != 0, contrast / torch.where(divisor != 0, divisor, 1.0), 0.0)
    ip = g * p
    absdiff = torch.where(pair, (ip.unsqueeze(2) - ip.unsqueeze(1)).abs(), 0.0).sum((1, 2))
    busyness = torch.where(absdiff != 0, ps_sum / torch.where(absdiff != 0, absdiff, 1.0), 0.0)
    pis = p * s
    numerator = torch.where(pair, pis.unsqueeze(2) + pis.unsqueeze(1), 0.0)
    denominator = p.unsqueeze(2) + p.unsqueeze(1)
    denominator = torch.where(denominator == 0, 1.0, denominator)
    complexity = (level_diff.abs() * numerator / denominator).sum((1, 2)) / n_valid.squeeze(1)
    strength = torch.where(pair, (p.unsqueeze(2) + p.unsqueeze(1)) * level_diff**2, 0.0).sum((1, 2))
    strength = torch.where(s_total != 0, strength / torch.where(s_total != 0, s_total, 1.0), 0.0)
    values = {"Busyness": busyness, "Coarseness": coarseness, "Complexity": complexity, "Contrast": contrast,
              "Strength": strength}  # fmt: skip
    return torch.stack([values[name] for name in NAMES], dim=1)
