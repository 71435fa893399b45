"""The segmentation network: a MONAI UNet or SegResNet built from the config, and its bottleneck.

Output: 4 classes (0 background, 1 NCR, 2 ED, 3 ET) with a softmax, trained with DiceCELoss on the
one-hot label. The BraTS labels are mutually exclusive, so a softmax over them gives a valid label map by
argmax, from which the nested regions (ET inside TC inside WT) follow consistently and the per-label
scores come for free. Three sigmoid region channels (WT/TC/ET, as many BraTS entries use) can produce
inconsistent nestings and need a rule to recover labels; their advantage, optimising each region's Dice
directly, matters little for a yardstick model.
"""

from __future__ import annotations

import math

import torch
from hydra.utils import instantiate
from monai.networks.layers.simplelayers import SkipConnection
from monai.networks.nets import SegResNet, UNet
from omegaconf import DictConfig
from torch import nn
from torch.nn import functional as F

from benchmark.errors import ConfigError

N_CLASSES = 4


def build_network(network_cfg: DictConfig, spatial_dims: int, in_channels: int) -> nn.Module:
    """Instantiate `network_cfg` (`_target_` a MONAI UNet or SegResNet) for the data's dims and channels."""
    try:
        network = instantiate(network_cfg, spatial_dims=spatial_dims, in_channels=in_channels, out_channels=N_CLASSES)
    except Exception as error:
        raise ConfigError(f"segmentation.network could not be built from {dict(network_cfg)}: {error}") from error
    if not isinstance(network, UNet | SegResNet):
        raise ConfigError(
            f"segmentation.network._target_ must be monai.networks.nets.UNet or SegResNet, got {type(network)}"
        )
    if spatial_dims == 2:  # channels-last 2D convolutions: ~15 % faster training on a 2-core CPU
        network = network.to(memory_format=torch.channels_last)
    return network


def size_divisor(network: nn.Module) -> int:
    """Every spatial side of the input must be a multiple of this (the product of the down-sampling strides)."""
    if isinstance(network, UNet):
        return math.prod(int(torch.tensor(s).max()) for s in network.strides)
    return 2 ** (len(network.blocks_down) - 1)


def pad_to_divisor(images: torch.Tensor, divisor: int) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Zero-pad the spatial sides up to a multiple of `divisor`; return the padded batch and the crop back."""
    spatial = images.shape[2:]
    extra = [(-size) % divisor for size in spatial]
    if not any(extra):
        return images, tuple(slice(None) for _ in spatial)
    pad = [p for e in reversed(extra) for p in (e // 2, e - e // 2)]
    crop = tuple(slice(e // 2, e // 2 + size) for e, size in zip(extra, spatial, strict=True))
    return F.pad(images, pad), crop


def forward_padded(network: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Logits (N, 4, *spatial) for images of any size: padded to the divisor, cropped back."""
    padded, crop = pad_to_divisor(images, size_divisor(network))
    if padded.ndim == 4:
        padded = padded.contiguous(memory_format=torch.channels_last)  # as build_network lays out 2D weights
    return network(padded)[(slice(None), slice(None), *crop)]


def bottleneck(network: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Encoder path only: the deepest feature map (N, d, *coarse spatial) of a UNet or SegResNet."""
    padded, _ = pad_to_divisor(images, size_divisor(network))
    if isinstance(network, SegResNet):
        return network.encode(padded)[0]
    block, x = network.model, padded
    while True:
        x = block[0](x)  # down-sampling layer of this level
        inner = block[1].submodule
        if isinstance(inner, nn.Sequential) and len(inner) == 3 and isinstance(inner[1], SkipConnection):
            block = inner
        else:
            return inner(x)  # the bottom layer


def feature_dim(network: nn.Module) -> int:
    """Length of the pooled bottleneck feature vector."""
    if isinstance(network, SegResNet):
        return network.init_filters * 2 ** (len(network.blocks_down) - 1)
    return int(network.channels[-1])
