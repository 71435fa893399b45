"""Task-aware features: the bottleneck of the downstream segmentation model.

A Fréchet distance in this space asks whether generated images differ from real ones in what the
segmenter actually uses. The model comes from the segmentation stage (`Segmenter.encoder_features`),
so this extractor wraps a trained segmenter object rather than a weight file.
"""

from __future__ import annotations

from typing import Protocol

import torch

from benchmark.errors import BenchmarkError
from benchmark.features.base import FeatureExtractor


class HasEncoderFeatures(Protocol):
    def encoder_features(self, images: torch.Tensor) -> torch.Tensor: ...


class SegmentationEncoderFeatures(FeatureExtractor):
    """(N, d) bottleneck features of a trained segmenter; `segmenter` may be attached after construction.

    batch_size: images per call of `segmenter.encoder_features`.
    """

    name = "segmentation_encoder"

    def __init__(self, segmenter: HasEncoderFeatures | None = None, batch_size: int = 32) -> None:
        super().__init__(batch_size)
        self.segmenter = segmenter

    def attach(self, segmenter: HasEncoderFeatures) -> None:
        """Use this trained segmenter's encoder from now on."""
        self.segmenter = segmenter

    def describe(self) -> str:
        return "bottleneck features of the downstream segmentation model (task-aware)"

    def as_samples(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        return images

    @torch.no_grad()
    def extract(self, images: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
        if self.segmenter is None:
            raise BenchmarkError(
                "segmentation_encoder features need a trained segmentation model: run the segmentation stage "
                "first and attach it with SegmentationEncoderFeatures.attach(segmenter) / MetricSuite.attach_segmenter."
            )
        chunks = []
        for start in range(0, images.shape[0], self.batch_size):
            batch = images[start : start + self.batch_size]
            if device is not None:
                batch = batch.to(device)
            chunks.append(self.segmenter.encoder_features(batch).float().flatten(1).cpu())
        return torch.cat(chunks)
