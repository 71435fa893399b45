"""Deriche's recursive (IIR) Gaussian as used by SimpleITK's LaplacianRecursiveGaussian, as line operators.

pyradiomics computes its LoG images with SimpleITK's `LaplacianRecursiveGaussianImageFilter`
(NormalizeAcrossScale on): per axis, a 4th-order causal + anti-causal recursive filter approximating the
second derivative of a Gaussian along that axis and the Gaussian along the others (Deriche 1993, with the
exponential-series constants used by ITK), lines extended by their edge values, the axis term scaled by
sigma^2 / spacing^2. The filter is linear, so for a line of n samples it is an n x n matrix; we build that
matrix once per (n, sigma / spacing, order) by running the recursion on the identity (float64, numpy)
and apply it to every line with a matrix product. This reproduces SimpleITK's LoG to rounding.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

# Exponential-series fit of the Gaussian (order 0) and its second derivative (order 2): (a1, b1, a2, b2).
_WEIGHTS = {0: (1.3530, 1.8151, -0.3531, 0.0902), 2: (-1.3563, 5.2318, 0.3446, -2.2355)}
_OMEGA, _LAMBDA = (0.6681, 2.0787), (-1.3932, -1.3732)


def _denominator(sigma: float) -> np.ndarray:
    """Feedback coefficients d1..d4 of the 4th-order recursion for sigma in samples."""
    (c1, c2), (e1, e2) = (math.cos(w / sigma) for w in _OMEGA), (math.exp(lam / sigma) for lam in _LAMBDA)
    return np.array([
        -2 * (e2 * c2 + e1 * c1),
        4 * c2 * c1 * e1 * e2 + e1 * e1 + e2 * e2,
        -2 * c1 * e1 * e2 * e2 - 2 * c2 * e2 * e1 * e1,
        e1 * e1 * e2 * e2,
    ])  # fmt: skip


def _numerator(sigma: float, order: int) -> np.ndarray:
    """Feed-forward coefficients n0..n3 (before normalisation) of one exponential series."""
    a1, b1, a2, b2 = _WEIGHTS[order]
    (s1, s2), (c1, c2) = (math.sin(w / sigma) for w in _OMEGA), (math.cos(w / sigma) for w in _OMEGA)
    e1, e2 = (math.exp(lam / sigma) for lam in _LAMBDA)
    n1 = e2 * (b2 * s2 - (a2 + 2 * a1) * c2) + e1 * (b1 * s1 - (a1 + 2 * a2) * c1)
    n2 = 2 * e1 * e2 * ((a1 + a2) * c2 * c1 - b1 * c2 * s1 - b2 * c1 * s2) + a2 * e1 * e1 + a1 * e2 * e2
    n3 = e2 * e1 * e1 * (b2 * s2 - a2 * c2) + e1 * e2 * e2 * (b1 * s1 - a1 * c1)
    return np.array([a1 + a2, n1, n2, n3])


def _moments(coefficients: np.ndarray, first: float) -> tuple[float, float, float]:
    """Sum, first and second moments of a coefficient sequence whose index-0 weight is `first`."""
    k = np.arange(1, 1 + len(coefficients))
    return first + coefficients.sum(), float((k * coefficients).sum()), float((k**2 * coefficients).sum())


def _coefficients(sigma: float, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised causal (n0..n3), anti-causal (m1..m4) and feedback (d1..d4) coefficients."""
    d = _denominator(sigma)
    sd, dd, ed = _moments(d, 1.0)
    if order == 0:
        n = _numerator(sigma, 0)
        n = n / (2 * n.sum() / sd - n[0])
    else:  # second derivative: remove the DC response with the order-0 series, normalise the curvature
        n0, n2 = _numerator(sigma, 0), _numerator(sigma, 2)
        beta = -(2 * n2.sum() - sd * n2[0]) / (2 * n0.sum() - sd * n0[0])
        n = n2 + beta * n0
        sn, dn, en = n.sum(), float((np.arange(4) * n).sum()), float((np.arange(4) ** 2 * n).sum())
        alpha = (en * sd * sd - ed * sn * sd - 2 * dn * dd * sd + 2 * dd * dd * sn) / sd**3
        n = n * sigma**2 / alpha  # NormalizeAcrossScale: sigma^2 in samples; spacing handled by the caller
    m = np.array([n[1] - d[0] * n[0], n[2] - d[1] * n[0], n[3] - d[2] * n[0], -d[3] * n[0]])
    return n, m, d


@lru_cache(maxsize=64)
def line_operator(length: int, sigma: float, order: int) -> torch.Tensor:
    """(length, length) float64 matrix of the recursive filter (sigma in samples, order 0 or 2) on a line."""
    if length < 4:
        raise ValueError(f"recursive Gaussian needs lines of >= 4 samples, got {length}")
    n, m, d = _coefficients(sigma, order)
    sd = 1.0 + d.sum()
    boundary_n, boundary_m = d * n.sum() / sd, d * m.sum() / sd
    x = np.eye(length)

    def sample(i: int, edge: np.ndarray) -> np.ndarray:
        return x[i] if 0 <= i < length else edge

    causal = np.zeros((length, length))
    for i in range(length):  # y[i] = sum n_k x[i-k] - sum d_k y[i-k]; before the start: edge-extended input
        y = sum(n[k] * sample(i - k, x[0]) for k in range(4))
        y = y - sum(d[k - 1] * causal[i - k] if i - k >= 0 else boundary_n[k - 1] * x[0] for k in range(1, 5))
        causal[i] = y
    anti = np.zeros((length, length))
    for i in range(length - 1, -1, -1):  # z[i] = sum m_k x[i+k] - sum d_k z[i+k]; past the end: edge
        z = sum(m[k - 1] * sample(i + k, x[-1]) for k in range(1, 5))
        z = z - sum(d[k - 1] * anti[i + k] if i + k < length else boundary_m[k - 1] * x[-1] for k in range(1, 5))
        anti[i] = z
    return torch.from_numpy(causal + anti)


def recursive_laplacian_of_gaussian(images: torch.Tensor, sigma_mm: float, spacing: tuple[float, ...]) -> torch.Tensor:
    """SimpleITK-equivalent scale-normalised LoG of (N, *spatial) images (sigma in mm, spacing in mm)."""
    x = images.double()
    result = torch.zeros_like(x)
    for axis in range(x.ndim - 1):
        term = x
        for other in range(x.ndim - 1):
            order = 2 if other == axis else 0
            operator = line_operator(x.shape[other + 1], sigma_mm / spacing[other], order).to(x.device)
            term = (term.movedim(other + 1, -1) @ operator.T).movedim(-1, other + 1)
        # ITK scales by the physical sigma^2 and divides by spacing^2: the same as sigma^2 in samples
        result = result + term
    return result
