"""Class twins of the functional metrics, in the torchmetrics way: `update()` batch after batch, `compute()`
once (a 0-d float64 tensor, or a dict of them), `reset()` to start again.

Every `update` takes the candidate first and its reference second, as the functions do:

    ssim = SSIM(data_range=1.0)
    for generated, real in batches:
        ssim.update(generated, real)
    ssim.compute()                       # mean SSIM over every item seen

    fid = FID()
    fid.update(generated_features, real=False)
    fid.update(real_features, real=True)
    fid.compute()

Paired image metrics keep one value per item (memory O(N)); PSNR keeps the pooled squared error, so its
value is 10 log10(range^2 / MSE over all items), the convention of the study's bootstrap. FID keeps running
moments (O(d^2)); KID, MMD and PRDC keep the feature rows, which those metrics need (O(N d)); the
memorisation detectors hold the training features given at construction.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from benchmark.metrics import distribution, image, memorisation, perceptual
from benchmark.metrics.checks import MetricInputError, check_features


def _scalar(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64)


class PairedImageMean:
    """Mean of a per-item image metric `function(candidate, reference, **options)` over every item seen."""

    def __init__(self, function: Callable[..., torch.Tensor], **options: object) -> None:
        self.function, self.options = function, options
        self.reset()

    def reset(self) -> None:
        self.values: list[torch.Tensor] = []

    def update(self, candidate: torch.Tensor, reference: torch.Tensor) -> None:
        """Score one batch of candidate items against their references, (N, C, H, W) or (N, C, D, H, W)."""
        self.values.append(self.function(candidate, reference, **self.options).detach().double().cpu())

    def compute(self) -> torch.Tensor:
        if not self.values:
            raise MetricInputError(f"{self.function.__name__}: compute() before any update().")
        return torch.cat(self.values).mean()


class SSIM(PairedImageMean):
    """Mean SSIM (`benchmark.metrics.image.ssim`)."""

    def __init__(self, data_range: float = 1.0, **options: object) -> None:
        super().__init__(image.ssim, data_range=data_range, **options)


class MSSSIM(PairedImageMean):
    """Mean MS-SSIM with the number of scales adapted to the image size (`image.ms_ssim`)."""

    def __init__(self, data_range: float = 1.0, **options: object) -> None:
        super().__init__(image.ms_ssim, data_range=data_range, **options)


class MSE(PairedImageMean):
    """Mean squared error (`image.mse`)."""

    def __init__(self) -> None:
        super().__init__(image.mse)


class MAE(PairedImageMean):
    """Mean absolute error (`image.mae`)."""

    def __init__(self) -> None:
        super().__init__(image.mae)


class NMSE(PairedImageMean):
    """Mean normalised MSE (`image.nmse`)."""

    def __init__(self) -> None:
        super().__init__(image.nmse)


class NMI(PairedImageMean):
    """Mean normalised mutual information (`image.nmi`)."""

    def __init__(self, bins: int = 100) -> None:
        super().__init__(image.nmi, bins=bins)


class LPIPS(PairedImageMean):
    """Mean LPIPS (`benchmark.metrics.perceptual.lpips`)."""

    def __init__(self, net: str = "alex", batch_size: int = 64) -> None:
        super().__init__(perceptual.lpips, net=net, batch_size=batch_size)


class PSNR:
    """PSNR of the pooled squared error of every item seen, in dB (+inf when every item is identical)."""

    def __init__(self, data_range: float = 1.0) -> None:
        if not data_range > 0:
            raise MetricInputError(f"psnr: data_range must be positive, got {data_range}.")
        self.data_range = data_range
        self.reset()

    def reset(self) -> None:
        self.squared_error, self.items = 0.0, 0

    def update(self, candidate: torch.Tensor, reference: torch.Tensor) -> None:
        errors = image.mse(candidate, reference)
        self.squared_error += float(errors.double().sum())
        self.items += errors.numel()

    def compute(self) -> torch.Tensor:
        if not self.items:
            raise MetricInputError("psnr: compute() before any update().")
        mse = self.squared_error / self.items
        return _scalar(math.inf if mse == 0 else 10 * math.log10(self.data_range**2 / mse))


class FID(distribution.StreamingFID):
    """FID from running feature moments: `update(features, real=True|False)`, memory O(d^2)."""

    def compute(self) -> torch.Tensor:
        return _scalar(super().compute())


class _FeatureRows(distribution.StreamingFeatureMetric):
    """A distribution metric on the accumulated feature rows of the two streams."""

    def compute(self) -> torch.Tensor | dict[str, torch.Tensor]:
        value = super().compute()
        if isinstance(value, dict):
            return {key: _scalar(v) for key, v in value.items()}
        return _scalar(value[0] if isinstance(value, tuple) else value)


class KID(_FeatureRows):
    """KID mean (`distribution.kid`) of the two streams."""

    def __init__(self, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> None:
        super().__init__(distribution.kid, subsets=subsets, subset_size=subset_size, seed=seed)


class MMD(_FeatureRows):
    """Unbiased squared MMD (`distribution.mmd`) of the two streams."""

    def __init__(self, kernel: str = "rbf", bandwidth: float | None = None) -> None:
        super().__init__(distribution.mmd, kernel=kernel, bandwidth=bandwidth)


class PRDC(_FeatureRows):
    """Precision, recall, density and coverage (`distribution.prdc`) of the fake stream against the real."""

    def __init__(self, k: int = 5, ball: str = "open") -> None:
        super().__init__(distribution.prdc, k=k, ball=ball)


class _AgainstTraining:
    """A memorisation detector of the candidate rows seen so far against fixed training features."""

    metric = "memorisation"

    def __init__(self, train: torch.Tensor) -> None:
        self.train = check_features(train, "train", self.metric, min_samples=2)
        self.reset()

    def reset(self) -> None:
        self.rows: list[torch.Tensor] = []

    def update(self, candidate: torch.Tensor) -> None:
        self.rows.append(check_features(candidate, "candidate", self.metric))

    def candidates(self) -> torch.Tensor:
        if not self.rows:
            raise MetricInputError(f"{self.metric}: compute() before any update().")
        return torch.cat(self.rows)


class Authenticity(_AgainstTraining):
    """Authenticity (`memorisation.authenticity`) of every candidate seen; 1 = no copies."""

    metric = "authenticity"

    def compute(self) -> torch.Tensor:
        return _scalar(memorisation.authenticity(self.candidates(), self.train))


class CopyRate(_AgainstTraining):
    """Copy rate (`memorisation.copy_rate`) of every candidate seen; 0 = no near-copies."""

    metric = "copy_rate"

    def __init__(self, train: torch.Tensor, threshold: float = 0.2) -> None:
        super().__init__(train)
        self.threshold = threshold

    def compute(self) -> torch.Tensor:
        return _scalar(memorisation.copy_rate(self.candidates(), self.train, self.threshold))
