"""Metric core: full-reference, no-reference, distribution, memorisation and diversity metrics in torch.

Every metric takes the candidate first and its reference second: image metrics (N, C, H, W) or
(N, C, D, H, W) tensors and return one value per item; distribution metrics (N, d) feature matrices (from
`benchmark.features`); memorisation detectors the candidate's and the training set's features. Each
functional metric has a class twin in `benchmark.metrics.streaming` (`update()` per batch, `compute()` once,
tensors out), and `MetricSuite` runs a configured set of them. Everything public is exported here; the
submodules are imported on first use, so `benchmark.metrics.checks` stays importable by the feature
extractors that the suite itself uses.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "MetricInputError": "benchmark.metrics.checks",
    "FeatureStatistics": "benchmark.metrics.distribution",
    "StreamingFID": "benchmark.metrics.distribution",
    "StreamingFeatureMetric": "benchmark.metrics.distribution",
    "feature_statistics": "benchmark.metrics.distribution",
    "fid": "benchmark.metrics.distribution",
    "frechet_distance": "benchmark.metrics.distribution",
    "inception_score": "benchmark.metrics.distribution",
    "kid": "benchmark.metrics.distribution",
    "mmd": "benchmark.metrics.distribution",
    "prdc": "benchmark.metrics.distribution",
    "ms_ssim_diversity": "benchmark.metrics.diversity",
    "mae": "benchmark.metrics.image",
    "ms_ssim": "benchmark.metrics.image",
    "ms_ssim_scales": "benchmark.metrics.image",
    "mse": "benchmark.metrics.image",
    "nmi": "benchmark.metrics.image",
    "nmse": "benchmark.metrics.image",
    "psnr": "benchmark.metrics.image",
    "ssim": "benchmark.metrics.image",
    "lpips": "benchmark.metrics.perceptual",
    "authenticity": "benchmark.metrics.memorisation",
    "copy_rate": "benchmark.metrics.memorisation",
    "fid_train_gap": "benchmark.metrics.memorisation",
    "BRISQUEDistance": "benchmark.metrics.no_reference",
    "NIQE": "benchmark.metrics.no_reference",
    "blur_effect": "benchmark.metrics.no_reference",
    "cnr": "benchmark.metrics.no_reference",
    "snr": "benchmark.metrics.no_reference",
    "total_variation": "benchmark.metrics.no_reference",
    "tumour_cnr": "benchmark.metrics.no_reference",
    "variance_of_laplacian": "benchmark.metrics.no_reference",
    "RadiomicsExtractor": "benchmark.metrics.radiomics",
    "frd": "benchmark.metrics.radiomics",
    "radiomics_features": "benchmark.metrics.radiomics",
    "Authenticity": "benchmark.metrics.streaming",
    "CopyRate": "benchmark.metrics.streaming",
    "FID": "benchmark.metrics.streaming",
    "KID": "benchmark.metrics.streaming",
    "LPIPS": "benchmark.metrics.streaming",
    "MAE": "benchmark.metrics.streaming",
    "MMD": "benchmark.metrics.streaming",
    "MSE": "benchmark.metrics.streaming",
    "MSSSIM": "benchmark.metrics.streaming",
    "NMI": "benchmark.metrics.streaming",
    "NMSE": "benchmark.metrics.streaming",
    "PRDC": "benchmark.metrics.streaming",
    "PSNR": "benchmark.metrics.streaming",
    "SSIM": "benchmark.metrics.streaming",
    "FeatureCache": "benchmark.metrics.suite",
    "ItemFeatureCache": "benchmark.metrics.suite",
    "MetricSuite": "benchmark.metrics.suite",
}

__all__ = [
    "FID",
    "KID",
    "LPIPS",
    "MAE",
    "MMD",
    "MSE",
    "MSSSIM",
    "NIQE",
    "NMI",
    "NMSE",
    "PRDC",
    "PSNR",
    "SSIM",
    "Authenticity",
    "BRISQUEDistance",
    "CopyRate",
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


def __getattr__(name: str) -> Any:
    """Import the submodule that defines `name` on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'benchmark.metrics' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from benchmark.metrics.checks import MetricInputError
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
    from benchmark.metrics.perceptual import lpips
    from benchmark.metrics.radiomics import RadiomicsExtractor, frd, radiomics_features
    from benchmark.metrics.streaming import (
        FID,
        KID,
        LPIPS,
        MAE,
        MMD,
        MSE,
        MSSSIM,
        NMI,
        NMSE,
        PRDC,
        PSNR,
        SSIM,
        Authenticity,
        CopyRate,
    )
    from benchmark.metrics.suite import FeatureCache, ItemFeatureCache, MetricSuite
