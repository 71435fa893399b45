"""Input checks shared by the no-reference metrics: shapes, finite values, non-empty masks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from benchmark.errors import BenchmarkError, DataError

ITEM_CHUNK = 32  # items per call of a per-item statistic: its float64 temporaries stay a few MiB whatever N


def in_item_chunks(function: Callable[..., Any], images: torch.Tensor, *per_item: torch.Tensor | None) -> Any:
    """`function(images, *per_item)` run on `ITEM_CHUNK` items at a time and concatenated along the item axis
    (a tensor, or each element of a tuple of tensors). For functions whose output for an item depends on
    that item only, the result equals one whole-set call while memory stays flat in the number of items.
    On an error the whole set is run once more, so the message names items by their position in the set."""
    starts = range(0, images.shape[0], ITEM_CHUNK)
    try:
        parts = [function(images[s:s + ITEM_CHUNK], *(None if t is None else t[s:s + ITEM_CHUNK] for t in per_item))
                 for s in starts]
    except BenchmarkError:
        return function(images, *per_item)
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(column) for column in zip(*parts, strict=True))
    return torch.cat(parts)


def check_images(images: torch.Tensor, metric: str, spatial_dims: tuple[int, ...] = (2, 3)) -> torch.Tensor:
    """Validate (N, 1, H, W) or (N, 1, D, H, W) finite images; return them as float64 (N, *spatial)."""
    if not isinstance(images, torch.Tensor):
        raise DataError(f"{metric}: images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim - 2 not in spatial_dims or images.shape[1] != 1 or images.shape[0] == 0:
        allowed = " or ".join({2: "(N, 1, H, W)", 3: "(N, 1, D, H, W)"}[d] for d in spatial_dims)
        raise DataError(f"{metric}: images must be {allowed} with N >= 1, got {tuple(images.shape)}")
    if not torch.isfinite(images).all():
        raise DataError(f"{metric}: images contain NaN or Inf")
    return images[:, 0].detach().double()


def check_mask(
    mask: torch.Tensor | None, images: torch.Tensor, metric: str, name: str = "mask", min_voxels: int = 1
) -> torch.Tensor:
    """Validate a bool mask of the images' (N, 1, *spatial) shape; None means everywhere. Returns (N, *spatial)."""
    spatial = (images.shape[0], *images.shape[2:])
    if mask is None:
        return torch.ones(spatial, dtype=torch.bool, device=images.device)
    if tuple(mask.shape) != tuple(images.shape):
        raise DataError(f"{metric}: {name} shape {tuple(mask.shape)} does not match images {tuple(images.shape)}")
    mask = mask[:, 0].bool().to(images.device)
    counts = mask.flatten(1).sum(1)
    if (counts < min_voxels).any():
        bad = torch.nonzero(counts < min_voxels).flatten().tolist()
        raise DataError(
            f"{metric}: {name} of items {bad[:10]} has fewer than {min_voxels} voxels; "
            "select items where the region exists or pass a larger mask"
        )
    return mask
