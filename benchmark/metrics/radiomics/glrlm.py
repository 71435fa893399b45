"""Grey-level run-length matrix (GLRLM) features, batched; definitions of pyradiomics `glrlm`.

A run is a maximal line of voxels with the same level inside the mask along one of the 4 (2D) / 13 (3D)
directions. Runs are found from each voxel's neighbours along the direction and followed from their starts
(see `run_length_matrices`), then counted into P(level, length) per direction.
Features are computed per direction and averaged over the directions that hold runs.
"""

from __future__ import annotations

import torch

from benchmark.metrics.radiomics.discretise import directions

NAMES = [
    "GrayLevelNonUniformity", "GrayLevelNonUniformityNormalized", "GrayLevelVariance", "HighGrayLevelRunEmphasis",
    "LongRunEmphasis", "LongRunHighGrayLevelEmphasis", "LongRunLowGrayLevelEmphasis", "LowGrayLevelRunEmphasis",
    "RunEntropy", "RunLengthNonUniformity", "RunLengthNonUniformityNormalized", "RunPercentage", "RunVariance",
    "ShortRunEmphasis", "ShortRunHighGrayLevelEmphasis", "ShortRunLowGrayLevelEmphasis",
]  # fmt: skip

EPS = torch.finfo(torch.float64).eps


def _continues(levels: torch.Tensor, offset: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Bool (N, *spatial): whether the voxel at -offset (first) / +offset (second) lies in the image and has the
    same level. A run starts where the first is False, and goes on while the second is True."""
    source, target = [slice(None)], [slice(None)]
    for axis, step in enumerate(offset, start=1):
        size = levels.shape[axis]
        source.append(slice(max(0, -step), size - max(0, step)))
        target.append(slice(max(0, step), size - max(0, -step)))
    same = levels[tuple(source)] == levels[tuple(target)]
    from_previous = torch.zeros_like(levels, dtype=torch.bool)
    to_next = torch.zeros_like(levels, dtype=torch.bool)
    from_previous[tuple(target)] = same
    to_next[tuple(source)] = same
    return from_previous, to_next


def run_length_matrices(levels: torch.Tensor) -> torch.Tensor:
    """(N, A, G, R) float64 run counts by level 1..G and run length 1..R for the A directions.

    Per direction, every run start (a voxel in the mask whose predecessor along the direction is outside the
    image or differs) is followed voxel by voxel while the next voxel has the same level; only the runs
    still growing are visited, so the work is one step per voxel in the mask and the memory a few volumes.
    """
    n, spatial = levels.shape[0], tuple(levels.shape[1:])
    levels = levels.contiguous()
    n_levels, max_run = int(levels.max()), max(spatial)
    offsets = directions(len(spatial))
    matrices = torch.zeros(n, len(offsets), n_levels * max_run, dtype=torch.float64)
    flat_levels = levels.flatten()
    per_image = flat_levels.numel() // n
    for a, offset in enumerate(offsets):
        from_previous, to_next = _continues(levels, offset)
        starts = torch.nonzero(((levels > 0) & ~from_previous).flatten()).squeeze(1)
        goes_on = to_next.flatten()
        step = sum(o * stride for o, stride in zip(offset, levels.stride()[1:], strict=True))
        lengths = torch.ones_like(starts)
        active, position = torch.arange(len(starts)), starts
        while len(active):
            keep = goes_on[position]
            active, position = active[keep], position[keep] + step
            lengths[active] += 1
        key = (starts // per_image) * (n_levels * max_run) + (flat_levels[starts] - 1) * max_run + (lengths - 1)
        matrices[:, a] = torch.bincount(key, minlength=n * n_levels * max_run).view(n, -1).double()
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
