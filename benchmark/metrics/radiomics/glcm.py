"""Grey-level co-occurrence matrix (GLCM) features, batched; definitions of pyradiomics `glcm`.

Distance 1, symmetrical matrix (P + P^T), one matrix per direction (4 in 2D, 13 in 3D) normalised to sum 1,
features computed per direction and averaged over the directions that hold any pair (pyradiomics'
default, `weightingNorm=None`). Grey levels i, j are the discretised values 1..G; Ng in Idmn / Idn is the
highest level present in the mask, as in pyradiomics. MCC uses the symmetric form D^-1/2 Q D^1/2 of
pyradiomics' Q matrix (same eigenvalues) so `eigvalsh` can be used.
"""

from __future__ import annotations

import torch

from benchmark.metrics.radiomics.discretise import directions, shifted_pairs

NAMES = [
    "Autocorrelation", "ClusterProminence", "ClusterShade", "ClusterTendency", "Contrast", "Correlation",
    "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance", "Id", "Idm", "Idmn", "Idn", "Imc1", "Imc2",
    "InverseVariance", "JointAverage", "JointEnergy", "JointEntropy", "MCC", "MaximumProbability", "SumAverage",
    "SumEntropy", "SumSquares",
]  # fmt: skip

EPS = torch.finfo(torch.float64).eps


def cooccurrence_matrices(levels: torch.Tensor) -> torch.Tensor:
    """(N, A, G, G) float64 symmetrical co-occurrence counts for the A directions at distance 1."""
    n, n_levels = levels.shape[0], int(levels.max())
    size = n_levels + 1
    offsets = directions(levels.ndim - 1)
    matrices = torch.zeros(n, len(offsets), size * size, dtype=torch.float64)
    image_index = torch.arange(n).view(-1, *([1] * (levels.ndim - 1)))
    for a, offset in enumerate(offsets):
        first, second = shifted_pairs(levels, offset)
        # pairs with a voxel outside the mask (level 0) land in row or column 0, dropped below
        key = image_index * size * size + first * size + second
        counts = torch.bincount(key.flatten(), minlength=n * size * size).view(n, -1)
        matrices[:, a] = counts.double()
    matrices = matrices.view(n, len(offsets), size, size)[:, :, 1:, 1:]
    return matrices + matrices.transpose(-1, -2)


def _diagonal_sums(p: torch.Tensor, index: torch.Tensor, length: int) -> torch.Tensor:
    """Sum p(i, j) over all (i, j) sharing index[i, j] (i + j or |i - j|): (..., length)."""
    flat = p.flatten(-2)
    out = torch.zeros(*flat.shape[:-1], length, dtype=p.dtype)
    return out.index_add_(-1, index.flatten(), flat)


def glcm_features(levels: torch.Tensor, with_mcc: bool = True) -> torch.Tensor:
    """(N, 24) float64 features in the order of NAMES from discretised levels (N, *spatial), 0 = outside.
    with_mcc=False skips the costly MCC (an eigendecomposition per matrix) and leaves it NaN."""
    counts = cooccurrence_matrices(levels)
    total = counts.sum((-1, -2), keepdim=True)
    p = counts / torch.where(total > 0, total, torch.nan)
    n_levels = p.shape[-1]
    g = torch.arange(1, n_levels + 1, dtype=torch.float64)
    i, j = g.view(-1, 1), g.view(1, -1)
    ng = levels.flatten(1).amax(1).double().view(-1, 1)
    px, py = p.sum(-1), p.sum(-2)
    ux = (px * g).sum(-1, keepdim=True)
    uy = (py * g).sum(-1, keepdim=True)
    k_diff = torch.arange(n_levels, dtype=torch.float64)
    k_sum = torch.arange(2 * n_levels + 1, dtype=torch.float64)
    p_diff = _diagonal_sums(p, (i - j).abs().long(), n_levels)
    p_sum = _diagonal_sums(p, (i + j).long(), 2 * n_levels + 1)

    # Only entropies, energy and the maximum need the full (G, G) matrices; every polynomial moment goes through
    # the marginals or the diagonal sums: i j = ((i + j)^2 - (i - j)^2) / 4 and, p being symmetric (ux = uy),
    # (i - ux)(j - uy) = ((i + j - ux - uy)^2 - (i - j)^2) / 4.
    hxy = -(p * torch.log2(p + EPS)).sum((-1, -2))
    hx = -(px * torch.log2(px + EPS)).sum(-1)
    hy = -(py * torch.log2(py + EPS)).sum(-1)
    pxpy = px.unsqueeze(-1) * py.unsqueeze(-2)
    log_pxpy = torch.log2(pxpy + EPS)
    hxy1 = -(p * log_pxpy).sum((-1, -2))
    hxy2 = -(pxpy * log_pxpy).sum((-1, -2))
    centred_sum = k_sum - (ux + uy)
    contrast = (p_diff * k_diff**2).sum(-1)
    cluster_tendency = (p_sum * centred_sum**2).sum(-1)
    sigx = (px * (g - ux) ** 2).sum(-1).sqrt()
    sigy = (py * (g - uy) ** 2).sum(-1).sqrt()
    covariance = (cluster_tendency - contrast) / 4
    correlation = torch.where(sigx * sigy == 0, 1.0, covariance / (sigx * sigy + EPS))
    divisor = torch.maximum(hx, hy)
    imc1 = torch.where(divisor == 0, 0.0, (hxy - hxy1) / torch.where(divisor == 0, 1.0, divisor))
    imc2 = torch.where(hxy2 == hxy, 0.0, (1 - torch.exp(-2 * (hxy2 - hxy))).clamp_min(0).sqrt())
    diff_average = (p_diff * k_diff).sum(-1)
    values = {
        "Autocorrelation": ((p_sum * k_sum**2).sum(-1) - contrast) / 4,
        "ClusterProminence": (p_sum * centred_sum**4).sum(-1),
        "ClusterShade": (p_sum * centred_sum**3).sum(-1),
        "ClusterTendency": cluster_tendency,
        "Contrast": contrast,
        "Correlation": correlation,
        "DifferenceAverage": diff_average,
        "DifferenceEntropy": -(p_diff * torch.log2(p_diff + EPS)).sum(-1),
        "DifferenceVariance": (p_diff * (k_diff - diff_average.unsqueeze(-1)) ** 2).sum(-1),
        "Id": (p_diff / (1 + k_diff)).sum(-1),
        "Idm": (p_diff / (1 + k_diff**2)).sum(-1),
        "Idmn": (p_diff / (1 + k_diff**2 / ng.unsqueeze(-1) ** 2)).sum(-1),
        "Idn": (p_diff / (1 + k_diff / ng.unsqueeze(-1))).sum(-1),
        "Imc1": imc1,
        "Imc2": imc2,
        "InverseVariance": (p_diff[..., 1:] / k_diff[1:] ** 2).sum(-1),
        "JointAverage": ux.squeeze(-1),
        "JointEnergy": (p * p).sum((-1, -2)),
        "JointEntropy": hxy,
        "MCC": _maximal_correlation(p, px, py, levels) if with_mcc else torch.full_like(hxy, torch.nan),
        "MaximumProbability": p.flatten(-2).amax(-1),
        "SumAverage": (p_sum * k_sum).sum(-1),
        "SumEntropy": -(p_sum * torch.log2(p_sum + EPS)).sum(-1),
        "SumSquares": sigx**2,
    }
    return torch.stack([values[name].nanmean(1) for name in NAMES], dim=1)


def _maximal_correlation(p: torch.Tensor, px: torch.Tensor, py: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Maximal correlation coefficient: sqrt of the second-largest eigenvalue of Q (pyradiomics: 1 if < 2 levels)."""
    p, px, py = torch.nan_to_num(p), torch.nan_to_num(px), torch.nan_to_num(py)
    m = p / (px.unsqueeze(-1) * py.unsqueeze(-2) + EPS).sqrt()
    eigenvalues = torch.linalg.eigvalsh(m @ m.transpose(-1, -2))
    if eigenvalues.shape[-1] < 2:  # a single grey level in the whole batch
        return torch.where(px.sum(-1) > 0, 1.0, torch.nan)
    mcc = eigenvalues[..., -2].clamp_min(0).sqrt()
    present = _present_levels(levels)
    mcc = torch.where(present.view(-1, 1) < 2, 1.0, mcc)
    return torch.where(px.sum(-1) > 0, mcc, torch.nan)


def _present_levels(levels: torch.Tensor) -> torch.Tensor:
    """(N,) number of distinct grey levels inside each mask."""
    n_levels = int(levels.max())
    flat = levels.flatten(1)
    offsets = torch.arange(flat.shape[0]).unsqueeze(1) * (n_levels + 1)
    counts = torch.bincount((flat + offsets).flatten(), minlength=flat.shape[0] * (n_levels + 1))
    return counts.view(flat.shape[0], -1)[:, 1:].gt(0).sum(1)
