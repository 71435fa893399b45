"""Fréchet radiomics distance (FRD, Konz et al., arXiv 2412.01496).

Both feature sets are z-scored with the reference set's per-feature mean and standard deviation
(population std; features constant in the reference are only centred), then the Fréchet distance between
Gaussian fits (means, unbiased covariances) is taken and its natural log reported, as in the paper:
log FRD = log FD(z(ref), z(cand)). Identical sets give FD = 0; the distance is floored at 1e-12 before
the log, so they score log(1e-12) = -27.6 rather than -inf. Lower is better.
"""

from __future__ import annotations

import math

import torch

from benchmark.errors import DataError
from benchmark.metrics.distribution import frechet_distance

FD_FLOOR = 1e-12


def zscore_with_reference(
    reference_feats: torch.Tensor, candidate_feats: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both (n, d) sets standardised with the reference's mean and population std (std 0 -> 1)."""
    mean = reference_feats.mean(0)
    std = reference_feats.std(0, correction=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return (reference_feats - mean) / std, (candidate_feats - mean) / std


def frd(reference_feats: torch.Tensor, candidate_feats: torch.Tensor) -> float:
    """log of the Fréchet distance between z-scored radiomics features, (n_ref, d) and (n_cand, d), n >= 2."""
    reference_feats = torch.as_tensor(reference_feats, dtype=torch.float64)
    candidate_feats = torch.as_tensor(candidate_feats, dtype=torch.float64)
    for name, feats in (("reference", reference_feats), ("candidate", candidate_feats)):
        if feats.ndim != 2 or feats.shape[0] < 2:
            raise DataError(f"frd: {name} features must be (n >= 2, d), got {tuple(feats.shape)}")
        if not torch.isfinite(feats).all():
            raise DataError(f"frd: {name} features contain NaN or Inf")
    if reference_feats.shape[1] != candidate_feats.shape[1]:
        raise DataError(
            f"frd: feature dimensions differ: reference {reference_feats.shape[1]}, "
            f"candidate {candidate_feats.shape[1]}"
        )
    ref, cand = zscore_with_reference(reference_feats, candidate_feats)
    distance = frechet_distance(ref.mean(0), torch.cov(ref.T), cand.mean(0), torch.cov(cand.T))
    return math.log(max(distance, FD_FLOOR))
