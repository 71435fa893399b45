"""Run a deterministic TorchIO transform on one item of an ImageSet (TorchIO works on CPU 4D tensors).

TorchIO wants (C, X, Y, Z) with an affine in mm. A 2D slice (C, H, W) gets a singleton axis: at the end
(C, H, W, 1), TorchIO's own 2D convention, or at the front (C, 1, H, W) for `Motion`, whose k-space
segments run along the last axis and would be empty along a singleton one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torchio as tio


def run_torchio(
    transform: Callable[[tio.ScalarImage], tio.ScalarImage],
    image: torch.Tensor,
    spacing: tuple[float, ...],
    singleton_first: bool = False,
) -> torch.Tensor:
    """Apply `transform` to an item image (C, *spatial) on any device; returns the same shape and device."""
    data = image.detach().to("cpu", torch.float32)
    two_d = data.ndim == 3
    if two_d:
        data = data.unsqueeze(1) if singleton_first else data.unsqueeze(-1)
        spacing = (1.0, *spacing) if singleton_first else (*spacing, 1.0)
    affine = np.diag([*map(float, spacing), 1.0])
    out = transform(tio.ScalarImage(tensor=data, affine=affine)).data
    if two_d:
        out = out[:, 0] if singleton_first else out[..., 0]
    return out.to(image.device, image.dtype)


def in_plane_axes(spatial_dims: int) -> tuple[int, int]:
    """TorchIO axes of the slice plane: (0, 1) for a 2D slice padded at the end, (1, 2) for (D, H, W)."""
    return (0, 1) if spatial_dims == 2 else (1, 2)
