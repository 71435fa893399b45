"""A trained segmentation model with what it was trained on: predicts label maps, exposes its encoder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from benchmark.errors import DataError
from segmentation.network import bottleneck, feature_dim, forward_padded


@dataclass
class Segmenter:
    """A MONAI network trained on BraTS labels (4-class softmax), in eval mode.

    `modalities` and `spatial_dims` describe the input it expects; `history` holds the training curves
    (iteration, loss, val_iteration, val_dice_WT/TC/ET); `info` the run's facts (cache_key, cache_hit,
    checkpoint, train_seconds, n_train, best_iteration, device, warnings).
    """

    network: nn.Module
    modalities: tuple[str, ...]
    spatial_dims: int
    history: dict[str, list[float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 32

    def __post_init__(self) -> None:
        self.network.eval()

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @property
    def feature_dim(self) -> int:
        """d of `encoder_features`: the channel count of the bottleneck."""
        return feature_dim(self.network)

    def to(self, device: torch.device | str) -> Segmenter:
        self.network.to(device)
        return self

    def _check_images(self, images: torch.Tensor) -> None:
        expected = 2 + self.spatial_dims
        if images.ndim != expected or images.shape[1] != len(self.modalities):
            raise DataError(
                f"the segmenter expects images (N, {len(self.modalities)}, ...) with {self.spatial_dims} spatial axes "
                f"(modalities {self.modalities}), got shape {tuple(images.shape)}"
            )

    @torch.no_grad()
    def predict_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits (N, 4, *spatial), float32 on the images' device, computed in batches."""
        self._check_images(images)
        self.network.eval()
        out = [
            forward_padded(self.network, batch.to(self.device)).float().to(images.device)
            for batch in images.split(self.batch_size)
        ]
        return torch.cat(out) if out else images.new_zeros((0, 4, *images.shape[2:]))

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Label maps (N, 1, *spatial) int64 in {0, 1, 2, 3}: the argmax of the softmax."""
        return self.predict_logits(images).argmax(dim=1, keepdim=True)

    @torch.no_grad()
    def encoder_features(self, images: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled bottleneck features (N, d), float32 on the images' device.

        A task-aware feature space for Fréchet distances: the encoder learnt what matters for finding
        tumours in this data, unlike ImageNet networks.
        """
        self._check_images(images)
        self.network.eval()
        out = [
            bottleneck(self.network, batch.to(self.device)).float().flatten(2).mean(-1).to(images.device)
            for batch in images.split(self.batch_size)
        ]
        return torch.cat(out) if out else images.new_zeros((0, self.feature_dim))
