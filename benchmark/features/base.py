"""The common shape of a feature extractor: preprocess a batch of MRI, run a frozen network, pool."""

from __future__ import annotations

import torch
from torch import nn

from benchmark.metrics.checks import MetricInputError, as_float_tensor, check_finite


class FeatureExtractor(nn.Module):
    """Frozen network mapping images in [0, 1] to (N, d) float32 features, batched, on any device.

    Subclasses set `name`, `dim`, `spatial_dims` (2 or 3) and implement `preprocess` (images on the
    device -> network input) and `forward` (network input -> (n, d) features). 2D extractors given 3D
    volumes score every slice along the first spatial axis as its own sample.
    """

    name = "features"
    dim = 0
    spatial_dims = 2

    def __init__(self, batch_size: int = 32) -> None:
        super().__init__()
        if batch_size < 1:
            raise MetricInputError(f"{self.name}: batch_size must be >= 1, got {batch_size}.")
        self.batch_size = batch_size

    def describe(self) -> str:
        """One line naming the network, weights and preprocessing (printed next to every figure)."""
        return self.name

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def as_samples(self, images: torch.Tensor) -> torch.Tensor:
        """Validate (N, C, ...) images and reshape them to this extractor's sample layout."""
        images = as_float_tensor(images, "images", self.name)
        check_finite(images, "images", self.name)
        if images.ndim - 2 == self.spatial_dims:
            return images
        if self.spatial_dims == 2 and images.ndim == 5:
            return images.movedim(2, 1).flatten(0, 1)
        layout = "(N, C, H, W)" if self.spatial_dims == 2 else "(N, C, D, H, W)"
        raise MetricInputError(f"{self.name}: expects images {layout}, got shape {tuple(images.shape)}.")

    @torch.no_grad()
    def extract(self, images: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
        """(N, d) float32 features on the CPU, computed in batches of `batch_size` on `device`."""
        device = torch.device(device) if device is not None else next(self.parameters(), torch.empty(0)).device
        self.to(device).eval()
        samples = self.as_samples(images)
        chunks = []
        for start in range(0, samples.shape[0], self.batch_size):
            batch = samples[start : start + self.batch_size].to(device, torch.float32)
            chunks.append(self.forward(self.preprocess(batch)).float().cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, self.dim)
