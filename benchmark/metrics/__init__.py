"""Metric core: full-reference, no-reference, distribution, memorisation and diversity metrics in torch.

Image metrics take (N, C, H, W) or (N, C, D, H, W) tensors (candidate first, clean reference second) and
return one value per item; distribution metrics take (N, d) feature matrices (from `benchmark.features`)
and come with streaming accumulators; `MetricSuite` runs a configured set of them.
"""

from benchmark.checks import MetricInputError
from benchmark.metrics.distribution import (
    FeatureStatistics,
    StreamingFeatureMetric,
    StreamingFID,
    feature_statistics,
    fid,
    frechet_distance,
    inception_score,
    kid,
    mmd,
    prdc,
)
from benchmark.metrics.diversity import ms_ssim_diversity
from benchmark.metrics.image import mae, ms_ssim, ms_ssim_scales, mse, nmi, nmse, psnr, ssim
from benchmark.metrics.lpips import lpips
from benchmark.metrics.memorisation import authenticity, copy_rate, fid_train_gap
from benchmark.metrics.no_reference import (
    NIQE,
    BRISQUEDistance,
    blur_effect,
    cnr,
    snr,
    total_variation,
    tumour_cnr,
    variance_of_laplacian,
)
from benchmark.metrics.radiomics import RadiomicsExtractor, frd, radiomics_features
from benchmark.metrics.suite import FeatureCache, ItemFeatureCache, MetricSuite

__all__ = [
    "NIQE",
    "BRISQUEDistance",
    "FeatureCache",
    "FeatureStatistics",
    "ItemFeatureCache",
    "MetricInputError",
    "MetricSuite",
    "RadiomicsExtractor",
    "StreamingFID",
    "StreamingFeatureMetric",
    "authenticity",
    "blur_effect",
    "cnr",
    "copy_rate",
    "feature_statistics",
    "fid",
    "fid_train_gap",
    "frd",
    "frechet_distance",
    "inception_score",
    "kid",
    "lpips",
    "mae",
    "mmd",
    "ms_ssim",
    "ms_ssim_diversity",
    "ms_ssim_scales",
    "mse",
    "nmi",
    "nmse",
    "prdc",
    "psnr",
    "radiomics_features",
    "snr",
    "ssim",
    "total_variation",
    "tumour_cnr",
    "variance_of_laplacian",
]
