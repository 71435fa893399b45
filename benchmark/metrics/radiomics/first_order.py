"""First-order (histogram) features inside the mask, batched; definitions of pyradiomics `firstorder`.

Raw intensities except Entropy and Uniformity, which use the discretised histogram. Variance is the
population variance; Kurtosis is not excess kurtosis (a Gaussian gives 3); percentiles interpolate
linearly (numpy's default). Energy = sum (x + c)^2 and RootMeanSquared = sqrt(mean (x + c)^2) with c the
`voxel_array_shift` (pyradiomics `voxelArrayShift`, default 0 there and here; its baseline uses 2000 and
frd-score 300); TotalEnergy = Energy x voxel volume (mm^2 in 2D, mm^3 in 3D).
"""

from __future__ import annotations

import math

import torch

NAMES = [
    "10Percentile", "90Percentile", "Energy", "Entropy", "InterquartileRange", "Kurtosis", "Maximum",
    "MeanAbsoluteDeviation", "Mean", "Median", "Minimum", "Range", "RobustMeanAbsoluteDeviation",
    "RootMeanSquared", "Skewness", "TotalEnergy", "Uniformity", "Variance",
]  # fmt: skip

EPS = torch.finfo(torch.float64).eps


def _masked_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (values * weights).sum(1) / weights.sum(1)


def first_order_features(
    images: torch.Tensor, masks: torch.Tensor, levels: torch.Tensor, spacing: tuple[float, ...],
    voxel_array_shift: float = 0.0,
) -> torch.Tensor:
    """(N, 18) float64 features in the order of NAMES; images float64 (N, *spatial), masks bool, levels int.
    voxel_array_shift: added to the intensities in Energy, TotalEnergy and RootMeanSquared only."""
    x = images.flatten(1)
    w = masks.flatten(1).double()
    p10, p25, median, p75, p90 = _masked_quantiles(x, masks.flatten(1), (0.1, 0.25, 0.5, 0.75, 0.9))
    mean = _masked_mean(x, w)
    centred = x - mean[:, None]
    m2, m3, m4 = (_masked_mean(centred**k, w) for k in (2, 3, 4))
    safe_m2 = torch.where(m2 == 0, 1.0, m2)
    skewness = torch.where(m2 == 0, 0.0, m3 / safe_m2**1.5)
    kurtosis = torch.where(m2 == 0, 0.0, m4 / safe_m2**2)
    minimum = torch.where(masks.flatten(1), x, torch.inf).amin(1)
    maximum = torch.where(masks.flatten(1), x, -torch.inf).amax(1)
    energy = ((x + voxel_array_shift) ** 2 * w).sum(1)
    robust = w * ((x >= p10[:, None]) & (x <= p90[:, None]))
    robust_mean = _masked_mean(x, robust)
    robust_mad = _masked_mean((x - robust_mean[:, None]).abs(), robust)
    histogram = _level_histogram(levels)
    p = histogram / histogram.sum(1, keepdim=True)
    entropy = -(p * torch.log2(p + EPS)).sum(1)
    values = {
        "10Percentile": p10, "90Percentile": p90, "Energy": energy, "Entropy": entropy,
        "InterquartileRange": p75 - p25, "Kurtosis": kurtosis, "Maximum": maximum,
        "MeanAbsoluteDeviation": _masked_mean(centred.abs(), w), "Mean": mean, "Median": median,
        "Minimum": minimum, "Range": maximum - minimum, "RobustMeanAbsoluteDeviation": robust_mad,
        "RootMeanSquared": (energy / w.sum(1)).sqrt(), "Skewness": skewness,
        "TotalEnergy": energy * math.prod(spacing), "Uniformity": (p**2).sum(1), "Variance": m2,
    }  # fmt: skip
    return torch.stack([values[name] for name in NAMES], dim=1)


def _masked_quantiles(x: torch.Tensor, inside: torch.Tensor, qs: tuple[float, ...]) -> torch.Tensor:
    """(len(qs), N) quantiles of each row's masked values, linear interpolation (numpy's default)."""
    ordered = torch.where(inside, x, torch.inf).sort(1).values
    count = inside.sum(1, keepdim=True)
    position = torch.tensor(qs, dtype=x.dtype).view(1, -1) * (count - 1)
    lower = position.floor().long()
    upper = torch.minimum(lower + 1, count - 1)
    fraction = position - lower
    low, high = ordered.gather(1, lower), ordered.gather(1, upper)
    return (low + (high - low) * fraction).T


def _level_histogram(levels: torch.Tensor) -> torch.Tensor:
    """(N, G) counts of grey levels 1..G inside the mask (level 0 = outside)."""
    flat = levels.flatten(1)
    n_levels = int(flat.max())
    offsets = torch.arange(flat.shape[0]).unsqueeze(1) * (n_levels + 1)
    counts = torch.bincount((flat + offsets).flatten(), minlength=flat.shape[0] * (n_levels + 1))
    return counts.view(flat.shape[0], n_levels + 1)[:, 1:].double()
