"""RadImageNet ResNet50 features (Mei et al., Radiology: AI 2022), 2D, from a user-supplied weight file.

RadImageNet trained ImageNet-style classifiers on 1.35 M radiology images (CT, MRI, ultrasound); its
pooled ResNet50 features give a medical-domain alternative to Inception for FID-type metrics. The
weights are not on any package index: supply a PyTorch state dict with torchvision-style ResNet50
names (`conv1.weight`, `layer1.0.conv1.weight`, ...; a `module.`/`backbone.` prefix and a classifier head
are ignored). The network is MONAI's ResNet50, whose layer names match. Preprocessing: one channel,
bilinear resize to `image_size`, repeated to 3 channels, ImageNet mean/std normalisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.nets import resnet50

from benchmark.features._resnet import load_resnet_weights
from benchmark.features.base import FeatureExtractor
from benchmark.features.weights import user_file

HOW_TO_GET = (
    "RadImageNet weights are distributed by the RadImageNet authors on request (radimagenet.com); convert the "
    "ResNet50 to a PyTorch state dict with torchvision-style layer names and set the extractor's `weights` to its path."
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RadImageNetFeatures(FeatureExtractor):
    """2048-d pooled RadImageNet ResNet50 features of 2D slices (3D volumes: every slice a sample).

    weights: path of the state-dict file (required). image_size: side after resizing (224 as trained).
    channel: which image channel is fed. batch_size: images per forward pass.
    """

    name = "radimagenet"
    dim = 2048
    spatial_dims = 2

    def __init__(self, weights: str | None = None, image_size: int = 224, channel: int = 0, batch_size: int = 32):
        super().__init__(batch_size)
        path = user_file(weights, "RadImageNetFeatures", HOW_TO_GET)
        self.weights, self.image_size, self.channel = str(path), image_size, channel
        network = resnet50(spatial_dims=2, n_input_channels=3, feed_forward=False, conv1_t_stride=2)
        self.network = load_resnet_weights(network, path, "RadImageNetFeatures", HOW_TO_GET)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def describe(self) -> str:
        return (
            f"RadImageNet ResNet50 pooled (2048-d), weights {self.weights}; channel {self.channel}, bilinear "
            f"resize to {self.image_size}, grey repeated to RGB, ImageNet mean/std"
        )

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        grey = images[:, self.channel : self.channel + 1]
        grey = F.interpolate(grey, size=(self.image_size,) * 2, mode="bilinear", align_corners=False)
        return (grey.expand(-1, 3, -1, -1) - self.mean) / self.std

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.network(inputs)
