"""Distribution metrics on feature matrices: the Fréchet distance and its relatives.

Convention (REFERENCE, Heusel et al. 2017): FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2).
The trace of the matrix square root is the sum of square roots of the eigenvalues of the symmetric
positive semi-definite matrix S1^1/2 S2 S1^1/2, computed in float64 with `eigh` and clamped at zero, so
the result stays real and finite when the covariances are singular (n < d), unlike `scipy.linalg.sqrtm`.
"""

from __future__ import annotations

import torch


def _symmetric_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix (negative eigenvalues clamped to 0)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return (eigenvectors * eigenvalues.clamp_min(0).sqrt()) @ eigenvectors.T


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """Fréchet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2), in float64.

    mu: (d,) means; sigma: (d, d) covariances. Returns a non-negative float, 0 for identical statistics
    up to rounding.
    """
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64) for m in (mu1, mu2))
    sigma1, sigma2 = (torch.as_tensor(s, dtype=torch.float64) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.numel(),) * 2:
        raise ValueError(
            f"frechet_distance: shapes do not match: mu {tuple(mu1.shape)} / {tuple(mu2.shape)}, "
            f"sigma {tuple(sigma1.shape)} / {tuple(sigma2.shape)}"
        )
    for name, tensor in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not torch.isfinite(tensor).all():
            raise ValueError(f"frechet_distance: {name} contains NaN or Inf")
    sigma1 = (sigma1 + sigma1.T) / 2
    sigma2 = (sigma2 + sigma2.T) / 2
    root1 = _symmetric_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    diff = mu1 - mu2
    value = diff.dot(diff) + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt
    return float(value.clamp_min(0))
