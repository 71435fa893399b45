"""LPIPS (Zhang et al. 2018), the learned perceptual distance, on offline AlexNet / VGG16 backbones.

Both images go through an ImageNet backbone; the five tapped activations are unit-normalised along
channels, their squared difference is weighted by the LPIPS v0.1 linear heads, averaged over space and
summed over layers. Grey MRI in [0, 1] is mapped to [-1, 1] and repeated to three channels (the LPIPS
input convention); multi-channel items are scored channel by channel and 3D volumes slice by slice
along the first spatial axis, then averaged. Lower is more similar; 0 for identical images.
"""

from __future__ import annotations

import torch

from benchmark.features.lpips_backbones import LpipsBackbone, load_lpips_weights
from benchmark.metrics.checks import MetricInputError, check_image_pair

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
MIN_SIDE = {"alex": 32, "vgg": 16}
_MODELS: dict[tuple[str, str], tuple[LpipsBackbone, list[torch.Tensor]]] = {}


def _model(net: str, device: torch.device) -> tuple[LpipsBackbone, list[torch.Tensor]]:
    """The backbone and heads on `device`, loaded once per process."""
    key = (net, str(device))
    if key not in _MODELS:
        backbone, heads = load_lpips_weights(net)
        _MODELS[key] = (backbone.to(device), [h.to(device) for h in heads])
    return _MODELS[key]


def lpips_rgb(x: torch.Tensor, y: torch.Tensor, net: str = "alex") -> torch.Tensor:
    """LPIPS between RGB batches (N, 3, H, W) in [-1, 1], exactly as the reference implementation."""
    backbone, heads = _model(net, x.device)
    shift = torch.tensor(SHIFT, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    scale = torch.tensor(SCALE, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    with torch.no_grad():
        features = backbone(torch.cat([x, y]).sub(shift).div(scale))
        total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for feature, head in zip(features, heads, strict=True):
            unit = feature / (feature.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fx, fy = unit.chunk(2)
            total += torch.nn.functional.conv2d((fx - fy) ** 2, head).mean((1, 2, 3))
    return total


def lpips(candidate: torch.Tensor, reference: torch.Tensor, net: str = "alex", batch_size: int = 64
          ) -> torch.Tensor:
    """LPIPS per item (N,) for images in [0, 1], 2D (N, C, H, W) or 3D (N, C, D, H, W, per D-slice).

    net: "alex" (the LPIPS default) or "vgg". Sides must be >= 32 px for alex, >= 16 for vgg.
    """
    if net not in MIN_SIDE:
        raise MetricInputError(f"lpips: net must be 'alex' or 'vgg', got {net!r}.")
    x, y = check_image_pair(candidate, reference, "lpips")
    n = x.shape[0]
    height, width = x.shape[-2:]
    if min(height, width) < MIN_SIDE[net]:
        raise MetricInputError(f"lpips: slices of {height}x{width} px are too small for {net} (>= {MIN_SIDE[net]}).")
    per_item = x[0, ..., 0, 0].numel()
    grey_x = x.reshape(-1, 1, height, width).float().mul(2).sub(1).expand(-1, 3, -1, -1)
    grey_y = y.reshape(-1, 1, height, width).float().mul(2).sub(1).expand(-1, 3, -1, -1)
    values = torch.cat(
        [
            lpips_rgb(grey_x[start : start + batch_size], grey_y[start : start + batch_size], net)
            for start in range(0, grey_x.shape[0], batch_size)
        ]
    )
    return values.view(n, per_item).mean(1)
