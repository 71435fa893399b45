"""MedicalNet 3D ResNet features (Chen et al., "Med3D", arXiv 1904.00625), from a user-supplied weight file.

Med3D pre-trained 3D ResNets on 23 segmentation datasets; the pooled last-stage features serve as a 3D
feature space for Fréchet-type distances on volumes. The weights are not on any package index: supply one
of MedicalNet's `resnet_{10,18,34,50}*.pth` files (a `module.` prefix and the `conv_seg` head are
ignored). The network is MONAI's ResNet with MedicalNet's shortcut and bias settings
(`get_medicalnet_pretrained_resnet_args`). Preprocessing as in Med3D: each volume z-scored over its
non-zero voxels.
"""

from __future__ import annotations

import torch
from monai.networks.nets import resnet
from monai.networks.nets.resnet import get_medicalnet_pretrained_resnet_args

from benchmark.errors import ConfigError
from benchmark.features._resnet import load_resnet_weights
from benchmark.features.base import FeatureExtractor
from benchmark.features.weights import user_file

HOW_TO_GET = (
    "Download a MedicalNet checkpoint (e.g. resnet_10_23dataset.pth, github.com/Tencent/MedicalNet) once and set "
    "the extractor's `weights` to its path and `depth` to its ResNet depth."
)
FEATURE_DIM = {10: 512, 18: 512, 34: 512, 50: 2048}


class MedicalNetFeatures(FeatureExtractor):
    """Pooled MedicalNet 3D ResNet features of volumes (N, C, D, H, W) -> (N, 512 or 2048).

    weights: checkpoint path (required). depth: 10, 18, 34 or 50, matching the file. channel: which
    image channel (modality) is fed. batch_size: volumes per forward pass.
    """

    name = "medicalnet"
    spatial_dims = 3

    def __init__(self, weights: str | None = None, depth: int = 10, channel: int = 0, batch_size: int = 2) -> None:
        super().__init__(batch_size)
        if depth not in FEATURE_DIM:
            raise ConfigError(f"MedicalNetFeatures: depth must be one of {sorted(FEATURE_DIM)}, got {depth}.")
        path = user_file(weights, "MedicalNetFeatures", HOW_TO_GET)
        self.weights, self.depth, self.channel, self.dim = str(path), depth, channel, FEATURE_DIM[depth]
        bias_downsample, shortcut_type = get_medicalnet_pretrained_resnet_args(depth)
        network = getattr(resnet, f"resnet{depth}")(
            spatial_dims=3,
            n_input_channels=1,
            feed_forward=False,
            shortcut_type=shortcut_type,
            bias_downsample=bias_downsample,
            conv1_t_stride=2,
        )
        self.network = load_resnet_weights(network, path, "MedicalNetFeatures", HOW_TO_GET)

    def describe(self) -> str:
        return f"MedicalNet 3D ResNet{self.depth} pooled ({self.dim}-d), weights {self.weights}; per-volume z-score"

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        volume = images[:, self.channel : self.channel + 1]
        foreground = volume != 0
        count = foreground.flatten(1).sum(1).clamp_min(1).view(-1, 1, 1, 1, 1)
        mean = (volume * foreground).flatten(1).sum(1).view(-1, 1, 1, 1, 1) / count
        variance = (((volume - mean) * foreground) ** 2).flatten(1).sum(1).view(-1, 1, 1, 1, 1) / count
        return torch.where(foreground, (volume - mean) / variance.sqrt().clamp_min(1e-6), torch.zeros_like(volume))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.network(inputs)
