"""Input checks shared by the no-reference metrics: shapes, finite values, non-empty masks."""

from __future__ import annotations

import torch

from benchmark.errors import DataError


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
