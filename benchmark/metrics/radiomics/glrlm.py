"""Grey-level run-length matrix (GLRLM) features, batched; definitions of pyradiomics `glrlm`.

A run is a maximal line of voxels with the same level inside the mask along one of the 4 (2D) / 13 (3D)
directions. Each direction's image lines are gathered once (index table cached per shape), runs are found
by comparing each voxel with its neighbours on the line, and counted into P(level, length) per direction.
Features are computed per direction and averaged over the directions that hold runs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from benchmark.metrics.radiomics.discretise import directions

NAMES = [
    "GrayLevelNonUniformity", "GrayLevelNonUniformityNormalized", "GrayLevelVariance", "HighGrayLevelRunEmphasis",
    "LongRunEmphasis", "LongRunHighGrayLevelEmphasis", "LongRunLowGrayLevelEmphasis", "LowGrayLevelRunEmphasis",
    "RunEntropy", "RunLengthNonUniformity", "RunLengthNonUniformityNormalized", "RunPercentage", "RunVariance",
    "ShortRunEmphasis", "ShortRunHighGrayLevelEmphasis", "ShortRunLowGrayLevelEmphasis",
]  # fmt: skip

EPS = torch.finfo(torch.float64).eps


@lru_cache(maxsize=32)
def _line_index(shape: tuple[int, ...], offset: tuple[int, ...]) -> torch.Tensor:
    """(L, Lmax) flat voxel indices of the image lines along `offset`, -1 past a line's end."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, len(shape))
    step = np.array(offset)
    previous = grid - step
    is_start = ~np.all((previous >= 0) & (previous < np.array(shape)), axis=1)
    starts = grid[is_start]
    length = max(shape)
    points = starts[:, None, :] + np.arange(length)[None, :, None] * step
    inside = np.all((points >= 0) & (points < np.array(shape)), axis=2)
    flat = np.ravel_multi_index(tuple(np.where(inside[..., None], points, 0).transpose(2, 0, 1)), shape)
    return torch.from_numpy(np.where(inside, flat, -1))


def _lines(flat_levels: torch.Tensor, spatial: tuple[int, ...], offset: tuple[int, ...]) -> torch.Tensor:
    """(N, L, Lmax) levels along the image lines of `offset`, 0-padded (flat_levels has a trailing 0 column)."""
    axes = [a for a, step in enumerate(offset) if step != 0]
    if len(axes) == 1:  # along one axis: a transpose, no gather
        volume = flat_levels[:, :-1].reshape(-1, *spatial)
        return volume.movedim(axes[0] + 1, -1).reshape(volume.shape[0], -1, spatial[axes[0]])
    return flat_levels[:, _line_index(spatial, offset)]  # index -1 picks the appended 0


def run_length_matrices(levels: torch.Tensor) -> torch.Tensor:
    """(N, A, G, R) float64 run counts by level 1..G and run length 1..R for the A directions.

    On the gathered lines (N, L, Lmax), laid out contiguously, runs are disjoint intervals in flat order, so
    the k-th run start pairs with the k-th run end and length = end - start + 1.
    """
    n, spatial = levels.shape[0], tuple(levels.shape[1:])
    n_levels, max_run = int(levels.max()), max(spatial)
    small = torch.int16 if n_levels < torch.iinfo(torch.int16).max else torch.int64
    offsets = directions(len(spatial))
    matrices = torch.zeros(n, len(offsets), n_levels * max_run, dtype=torch.float64)
    flat_levels = torch.cat([levels.flatten(1), torch.zeros(n, 1, dtype=levels.dtype)], 1).to(small)
    for a, offset in enumerate(offsets):
        lines = _lines(flat_levels, spatial, offset)
        changes = lines[..., 1:] != lines[..., :-1]
        starts, ends = lines > 0, lines > 0
        starts[..., 1:] &= changes
        ends[..., :-1] &= changes
        start_pos = torch.nonzero(starts.flatten()).squeeze(1)
        end_pos = torch.nonzero(ends.flatten()).squeeze(1)
        lengths = end_pos - start_pos + 1
        start_level = lines.flatten()[start_pos].long()
        start_image = start_pos // (lines.numel() // n)
        key = start_image * (n_levels * max_run) + (start_level - 1) * max_run + (lengths - 1)
        counts = torch.bincount(key, minlength=n * n_levels * max_run).view(n, -1)
        matrices[:, a] = counts.double()
    return matrices.view(n, len(offsets), n_levels, max_run)


def glrlm_features(levels: torch.Tensor) -> torch.Tensor:
    """(N, 16) float64 features in the order of NAMES from discretised levels (N, *spatial), 0 = outside."""
    counts = run_length_matrices(levels)
    n_runs = counts.sum((-1, -2))
    n_runs = torch.where(n_runs > 0, n_runs, torch.nan)
    i = torch.arange(1, counts.shape[-2] + 1, dtype=torch.float64).view(-1, 1)
    j = torch.arange(1, counts.shape[-1] + 1, dtype=torch.float64).view(1, -1)
    pg, pr = counts.sum(-1), counts.sum(-2)
    p = counts / n_runs[..., None, None]
    ig, jr = i.squeeze(-1), j.squeeze(0)
    mean_level = (pg / n_runs[..., None] * ig).sum(-1, keepdim=True)
    mean_length = (pr / n_runs[..., None] * jr).sum(-1, keepdim=True)

    def weighted(weight: torch.Tensor) -> torch.Tensor:
        return (counts * weight).sum((-1, -2)) / n_runs

    values = {
        "GrayLevelNonUniformity": (pg**2).sum(-1) / n_runs,
        "GrayLevelNonUniformityNormalized": (pg**2).sum(-1) / n_runs**2,
        "GrayLevelVariance": (pg / n_runs[..., None] * (ig - mean_level) ** 2).sum(-1),
        "HighGrayLevelRunEmphasis": weighted(i**2),
        "LongRunEmphasis": weighted(j**2),
        "LongRunHighGrayLevelEmphasis": weighted(i**2 * j**2),
        "LongRunLowGrayLevelEmphasis": weighted(j**2 / i**2),
        "LowGrayLevelRunEmphasis": weighted(1 / i**2),
        "RunEntropy": -(p * torch.log2(p + EPS)).sum((-1, -2)),
        "RunLengthNonUniformity": (pr**2).sum(-1) / n_runs,
        "RunLengthNonUniformityNormalized": (pr**2).sum(-1) / n_runs**2,
        "RunPercentage": n_runs / (pr * jr).sum(-1),
        "RunVariance": (pr / n_runs[..., None] * (jr - mean_length) ** 2).sum(-1),
        "ShortRunEmphasis": weighted(1 / j**2),
        "ShortRunHighGrayLevelEmphasis": weighted(i**2 / j**2),
        "ShortRunLowGrayLevelEmphasis": weighted(1 / (i**2 * j**2)),
    }
    return torch.stack([values[name].nanmean(1) for name in NAMES], dim=1)
