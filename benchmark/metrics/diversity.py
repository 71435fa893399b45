"""Diversity of a generated set: mean pairwise MS-SSIM within the set (Odena et al. 2017).

High values mean the samples resemble each other (mode collapse, duplicated training images); real
data sets the baseline. All pairs are scored when there are at most `max_pairs` of them, otherwise a
seeded random subset of distinct pairs.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.metrics.checks import MetricInputError, as_float_tensor, check_finite
from benchmark.metrics.image import ms_ssim


def ms_ssim_diversity(
    images: torch.Tensor, data_range: float = 1.0, max_pairs: int = 2000, batch_size: int = 64, seed: int = 0
) -> float:
    """Mean MS-SSIM over pairs of distinct items of one (N, C, ...) batch, N >= 2 (lower = more diverse)."""
    images = as_float_tensor(images, "images", "ms_ssim_diversity")
    check_finite(images, "images", "ms_ssim_diversity")
    n = images.shape[0]
    if images.ndim not in (4, 5) or n < 2:
        raise MetricInputError(
            f"ms_ssim_diversity: needs an (N, C, ...) batch with N >= 2, got shape {tuple(images.shape)}."
        )
    first, second = np.triu_indices(n, k=1)
    if first.size > max_pairs:
        chosen = np.random.default_rng(seed).choice(first.size, max_pairs, replace=False)
        first, second = first[chosen], second[chosen]
    first_t, second_t = torch.from_numpy(first), torch.from_numpy(second)
    total = 0.0
    for start in range(0, first_t.numel(), batch_size):
        a = images[first_t[start : start + batch_size].to(images.device)]
        b = images[second_t[start : start + batch_size].to(images.device)]
        total += float(ms_ssim(a, b, data_range=data_range).double().sum())
    return total / first_t.numel()
