"""Fréchet radiomics distance (FRD, Konz et al., arXiv 2412.01496).

Both feature sets are z-scored with the reference set's per-feature mean and standard deviation
(population std), then the Fréchet distance between Gaussian fits (means, unbiased covariances) is taken.
FD is the squared distance d^2 = ||mu1 - mu2||^2 + tr(...). Reported: log(d^2) = log FD by default, which is
frd-score 1.0.1's default (FRDv1 as published in its code); `paper_log=True` gives log(d) = log FD / 2, the
paper's Eq. 3 (frd-score's `--use_paper_log`). Features constant in the reference are only centred
(`drop_constant=False`) or dropped, as frd-score does (its z-score divides by 0 and it drops every column
with NaN/Inf). Identical sets give FD = 0; the distance is floored at 1e-12 before the log, so they score
log(1e-12) = -27.6 (or half that) rather than frd-score's -inf. Lower is better.
"""

from __future__ import annotations

import math

import torch

from benchmark.errors import DataError
from benchmark.metrics.distribution import frechet_distance

FD_FLOOR = 1e-12


def zscore_with_reference(
    reference_feats: torch.Tensor, candidate_feats: torch.Tensor, drop_constant: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both (n, d) sets standardised with the reference's mean and population std (std 0: divide by 1, or
    drop the column when `drop_constant`)."""
    mean = reference_feats.mean(0)
    std = reference_feats.std(0, correction=0)
    if drop_constant:
        keep = std > 0
        return (reference_feats[:, keep] - mean[keep]) / std[keep], (candidate_feats[:, keep] - mean[keep]) / std[keep]
    std = torch.where(std > 0, std, torch.ones_like(std))
    return (reference_feats - mean) / std, (candidate_feats - mean) / std


def frd(
    candidate_feats: torch.Tensor, reference_feats: torch.Tensor, paper_log: bool = False, drop_constant: bool = False
) -> float:
    """log FD (or log sqrt FD with `paper_log`) between radiomics features z-scored with the reference's
    statistics, (n_cand, d) and (n_ref, d), n >= 2; see the module docstring."""
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
    ref, cand = zscore_with_reference(reference_feats, candidate_feats, drop_constant)
    if ref.shape[1] == 0:
        raise DataError("frd: every feature is constant over the reference set; FRD is undefined")
    # atleast_2d: torch.cov of a single feature column is 0-d
    distance = frechet_distance(ref.mean(0), torch.atleast_2d(torch.cov(ref.T)), cand.mean(0),
                                torch.atleast_2d(torch.cov(cand.T)))
    log_distance = math.log(max(distance, FD_FLOOR))
    return log_distance / 2 if paper_log else log_distance
