"""A 2D feature extractor applied to maximum-intensity projections (MIP) of volumes, for FID / KID on MIPs.

Radiologists read TOF-MRA as MIPs: a missing or bulging artery that fills a few voxels of any one slice is
obvious in the projection. Each volume (N, C, D, H, W) becomes one image, its maximum along `axis` (0: along
D, the axial MIP; 1: coronal; 2: sagittal), which the wrapped extractor then embeds like any slice. One
sample per volume, so FID on MIPs needs many volumes (its bias grows as the sample shrinks). Axial slices
(data.mode=2d) have no depth to project: a MetricInputError says so.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from benchmark.features.base import FeatureExtractor
from benchmark.metrics.checks import MetricInputError, as_float_tensor, check_finite


class MaximumIntensityProjection(FeatureExtractor):
    """Features of `extractor` (a 2D FeatureExtractor or a factory of one) on each volume's MIP along `axis`."""

    spatial_dims = 3

    def __init__(self, extractor: FeatureExtractor | Callable[[], FeatureExtractor], axis: int = 0,
                 batch_size: int = 32) -> None:
        super().__init__(batch_size)
        if axis not in (0, 1, 2):
            raise MetricInputError(f"mip: axis must be 0 (axial), 1 (coronal) or 2 (sagittal), got {axis!r}.")
        self.inner = extractor if isinstance(extractor, FeatureExtractor) else extractor()
        if self.inner.spatial_dims != 2:
            raise MetricInputError(f"mip: the projected extractor must take 2D images, {self.inner.name} takes 3D.")
        self.axis = axis
        self.name, self.dim = f"{self.inner.name}_mip", self.inner.dim

    def describe(self) -> str:
        return f"{self.inner.describe()} on maximum-intensity projections along spatial axis {self.axis}"

    def as_samples(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, D, H, W) volumes -> (N, C, ., .) projections."""
        images = as_float_tensor(images, "images", self.name)
        check_finite(images, "images", self.name)
        if images.ndim != 5:
            raise MetricInputError(f"{self.name}: maximum-intensity projections need volumes (N, C, D, H, W) "
                                   f"(data.mode=3d), got shape {tuple(images.shape)}; with axial slices use the "
                                   "plain extractor.")
        return images.amax(dim=2 + self.axis)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        return self.inner.preprocess(images)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)
