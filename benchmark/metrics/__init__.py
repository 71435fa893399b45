"""Metric core: full-reference, distribution, memorisation and diversity metrics on batched torch code.

Image metrics take (N, C, H, W) or (N, C, D, H, W) tensors and return one value per item; distribution
metrics take (N, d) feature matrices (from `benchmark.features`) and come with streaming accumulators.
"""

from benchmark.metrics._checks import MetricInputError
from benchmark.metrics.distribution import (
    FeatureStatistics,
    StreamingFeatureMetric,
    StreamingFID,
    fid,
    frechet_distance,
    inception_score,
    kid,
    mmd,
    prdc,
)
from benchmark.metrics.image import mae, ms_ssim, mse, nmi, nmse, psnr, ssim

__all__ = [
    "FeatureStatistics",
    "MetricInputError",
    "StreamingFID",
    "StreamingFeatureMetric",
    "fid",
    "frechet_distance",
    "inception_score",
    "kid",
    "mae",
    "mmd",
    "ms_ssim",
    "mse",
    "nmi",
    "nmse",
    "prdc",
    "psnr",
    "ssim",
]
