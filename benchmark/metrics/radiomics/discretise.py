"""Input checks, grey-level discretisation by fixed bin width, and neighbour directions (pyradiomics conventions).

Discretisation follows pyradiomics `imageoperations.getBinEdges` with a fixed `binWidth` W:
level = floor(x / W) - floor(min_roi / W) + 1, so the lowest level inside the region of interest is 1 and
bins are equally spaced from 0. Our images lie in [0, 1]; the default W = 1/32 (an exact binary fraction,
so floor(x / W) is computed without rounding error) gives at most 32 levels on an original image, in the
range pyradiomics recommends (16-128 bins). Voxels outside the mask get level 0.
"""

from __future__ import annotations

import itertools

import torch

from benchmark.errors import DataError

DEFAULT_BIN_WIDTH = 1.0 / 32
MAX_LEVELS = 1024  # texture matrices are (G x G) per direction: refuse accidental CT-range inputs


def check_images_and_masks(images: torch.Tensor, masks: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate (N, 1, H, W) / (N, 1, D, H, W) images and masks; return float64 images and bool masks (N, *spatial).

    A missing mask means the whole image. Raises DataError for wrong shapes, NaN/Inf, or an item whose mask
    has fewer than 2 voxels (texture matrices are undefined there).
    """
    if not isinstance(images, torch.Tensor) or images.ndim not in (4, 5) or images.shape[1] != 1:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"radiomics: images must be a tensor (N, 1, H, W) or (N, 1, D, H, W), got {shape}")
    if not torch.isfinite(images).all():
        raise DataError("radiomics: images contain NaN or Inf; radiomics features are undefined there")
    if masks is None:
        masks = torch.ones_like(images, dtype=torch.bool)
    if masks.shape != images.shape:
        raise DataError(f"radiomics: mask shape {tuple(masks.shape)} does not match images {tuple(images.shape)}")
    masks = masks[:, 0].bool()
    counts = masks.flatten(1).sum(1)
    if (counts < 2).any():
        bad = torch.nonzero(counts < 2).flatten().tolist()
        raise DataError(f"radiomics: the masks of items {bad[:10]} hold fewer than 2 voxels; give a larger mask")
    return images[:, 0].detach().cpu().double(), masks.cpu()


def discretise(images: torch.Tensor, masks: torch.Tensor, bin_width: float = DEFAULT_BIN_WIDTH) -> torch.Tensor:
    """Grey levels (N, *spatial) int64 in 1..G inside each mask and 0 outside, by fixed bin width (intensity units)."""
    if bin_width <= 0:
        raise ValueError(f"discretise: bin_width must be > 0, got {bin_width}")
    bins = torch.floor(images / bin_width)
    lowest = torch.where(masks, bins, torch.inf).flatten(1).amin(1)
    lowest = lowest.view(-1, *([1] * (images.ndim - 1)))
    levels = torch.where(masks, bins - lowest + 1, 0).long()
    n_levels = int(levels.max())
    if n_levels > MAX_LEVELS:
        raise DataError(
            f"radiomics: the images span {n_levels} bins of width {bin_width:g} (more than {MAX_LEVELS}); "
            "scale the images to [0, 1] or choose a larger bin_width"
        )
    return levels


def directions(spatial_dims: int) -> list[tuple[int, ...]]:
    """The unique neighbour offsets at distance 1 (infinity norm): 4 in 2D, 13 in 3D, one of each +/- pair."""
    offsets = []
    for offset in itertools.product((-1, 0, 1), repeat=spatial_dims):
        first = next((o for o in offset if o != 0), 0)
        if first > 0:
            offsets.append(offset)
    return offsets


def shifted_pairs(levels: torch.Tensor, offset: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Levels of each voxel and of its neighbour at `offset`, over all positions where both lie in the image."""
    source, target = [slice(None)], [slice(None)]
    for axis, step in enumerate(offset, start=1):
        size = levels.shape[axis]
        source.append(slice(max(0, -step), size - max(0, step)))
        target.append(slice(max(0, step), size - max(0, -step)))
    return levels[tuple(source)], levels[tuple(target)]
