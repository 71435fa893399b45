"""Suite entries for the metrics that read masks and labels: no-reference image statistics, the
reference-calibrated NIQE / BRISQUE distances, tumour CNR and the Fréchet radiomics distance (FRD).

They complement `benchmark.metrics.entries` (which works on images and network features only) and are
configured the same way, by `_target_` in `conf/metrics/*.yaml`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from benchmark.data.imageset import ImageSet
from benchmark.errors import BenchmarkError, ConfigError
from benchmark.metrics.entries import ItemValues, SuiteContext, SuiteMetric
from benchmark.metrics.no_reference import (
    NIQE,
    BRISQUEDistance,
    blur_effect,
    snr,
    total_variation,
    tumour_cnr,
    variance_of_laplacian,
    vessel_cnr,
)
from benchmark.metrics.no_reference.checks import in_item_chunks
from benchmark.metrics.radiomics import RadiomicsExtractor, frd
from benchmark.metrics.radiomics.frd_v1 import frd_v1_features
from benchmark.metrics.suite import FeatureCache

PER_IMAGE: dict[str, tuple[Callable[..., torch.Tensor], bool, str]] = {
    "blur_effect": (blur_effect, False, "Crete et al. 2007 as scikit-image, 0 sharp .. 1 blurred, in the brain"),
    "variance_of_laplacian": (variance_of_laplacian, True, "sharpness in the brain; noise raises it too"),
    "total_variation": (total_variation, False, "mean gradient in the brain; noise raises it, blur lowers it"),
    "snr": (snr, True, "mean brain intensity / noise std (Immerkaer estimator)"),
}


def _candidate(context: SuiteContext) -> ImageSet:
    candidate = context.sets.get("candidate")
    if candidate is None:
        raise BenchmarkError("this metric needs the candidate ImageSet (with brain masks).")
    return candidate


class ImageStatistic(SuiteMetric):
    """A per-image no-reference statistic of the candidate set inside its brain masks, averaged.

    function: blur_effect, variance_of_laplacian, total_variation or snr.
    """

    kind = "no_reference"

    def __init__(self, function: str) -> None:
        super().__init__()
        if function not in PER_IMAGE:
            raise ConfigError(f"ImageStatistic: function must be one of {sorted(PER_IMAGE)}, got {function!r}.")
        self.function = function
        _, self.higher_is_better, self.notes = PER_IMAGE[function]

    def compute(self, context: SuiteContext) -> dict[str, float]:
        candidate = _candidate(context)
        values = in_item_chunks(PER_IMAGE[self.function][0], candidate.images.cpu(), candidate.brain_masks.cpu())
        self.items = {self.name: ItemValues(values.double())}
        return {self.name: float(values.double().mean())}


class TumourContrast(SuiteMetric):
    """CNR between the labelled tumour and the rest of the brain, over candidate items with tumour labels.

    Label-aware: with a perturbation that keeps the label (a mask-conditioned generator that erred), a
    removed or shrunk tumour lowers it, unlike every label-blind metric.
    """

    kind = "no_reference"
    notes = "|mean(tumour) - mean(brain)| / sqrt(var sum), items with a tumour label"

    def compute(self, context: SuiteContext) -> dict[str, float]:
        return _labelled_contrast(self, context, "tumour_cnr", "tumour", tumour_cnr)


class VesselContrast(SuiteMetric):
    """CNR between the labelled vessels and the tissue around them, over candidate items with vessel labels.

    Label-aware, the analogue of `TumourContrast` for TOF-MRA: with `label: keep`, an occluded, narrowed or
    dropped artery leaves tissue under its label and lowers it. outer: outer radius of the tissue ring, voxels.
    """

    kind = "no_reference"

    def __init__(self, outer: int = 6) -> None:
        super().__init__()
        if isinstance(outer, bool) or not isinstance(outer, int) or outer < 4:
            raise ConfigError(f"VesselContrast: outer must be a whole number of voxels >= 4, got {outer!r}.")
        self.outer = outer
        self.notes = f"|mean(vessel) - mean(tissue 3-{outer} voxels away)| / sqrt(var sum), items with vessels"

    def compute(self, context: SuiteContext) -> dict[str, float]:
        return _labelled_contrast(self, context, "vessel_cnr", "vessel",
                                  lambda images, labels, brains: vessel_cnr(images, labels, brains, self.outer))


class ReferenceCalibrated(SuiteMetric):
    """NIQE or the BRISQUE-feature distance, its Gaussian model fitted on the clean reference set
    (data-calibrated: values are not comparable to published NIQE / BRISQUE). model: niqe | brisque."""

    kind = "no_reference"
    higher_is_better = False

    def __init__(self, model: str = "niqe", patch_size: int = 32) -> None:
        super().__init__()
        if model not in ("niqe", "brisque"):
            raise ConfigError(f"ReferenceCalibrated: model must be niqe or brisque, got {model!r}.")
        self.model, self.patch_size = model, patch_size
        self.notes = ("data-calibrated NIQE, 32 px patches, fitted on the clean reference set" if model == "niqe"
                      else "Mahalanobis distance of BRISQUE's 36 features to the clean reference set")
        self._fitted: dict[str, NIQE | BRISQUEDistance] = {}

    def _fit(self, reference: ImageSet) -> NIQE | BRISQUEDistance:
        key = FeatureCache.fingerprint(reference.images)
        if key not in self._fitted:
            model = NIQE(patch_size=self.patch_size) if self.model == "niqe" else BRISQUEDistance()
            self._fitted = {key: model.fit(reference.images.cpu(), reference.brain_masks.cpu())}
        return self._fitted[key]

    def compute(self, context: SuiteContext) -> dict[str, float]:
        reference, candidate = context.sets.get("reference"), _candidate(context)
        if reference is None:
            raise BenchmarkError(f"{self.name}: needs the clean reference set to fit its model.")
        values = self._fit(reference)(candidate.images.cpu(), candidate.brain_masks.cpu())
        self.items = {self.name: ItemValues(values.double())}
        return {self.name: float(values.double().mean())}


class FrechetRadiomicsDistance(SuiteMetric):
    """FRD (Konz et al. 2024): log Fréchet distance of z-scored radiomics features in the brain masks,
    reference set against candidate set (at most `max_images` items each, seeded subset).

    convention: "frd_v1" reproduces frd-score 1.0.1 (FRDv1: its pyradiomics settings, feature set, float32
    features, constant reference columns dropped; `image_types`, `sigmas`, `bin_width` are ignored);
    "native" takes pyradiomics features on the suite's [0, 1] images as they are (bin width 1/32, no
    resampling, the chosen image types). paper_log: log(d) (the paper's Eq. 3) instead of log(d^2).
    """

    kind = "distribution"
    higher_is_better = False
    feature_extractor = None  # its own extractor: radiomics needs the masks, not only the images

    def __init__(self, image_types: Sequence[str] = ("original", "log", "wavelet"),
                 sigmas: Sequence[float] = (2.0, 3.0, 4.0, 5.0), bin_width: float = 1 / 32,
                 max_images: int | None = None, seed: int = 0, convention: str = "native",
                 paper_log: bool = False) -> None:
        super().__init__()
        if convention not in ("frd_v1", "native"):
            raise ConfigError(f"metrics.frd.convention: 'frd_v1' (frd-score 1.0.1) or 'native', not {convention!r}.")
        self.convention, self.paper_log = convention, bool(paper_log)
        self.extractor = RadiomicsExtractor(image_types=image_types, sigmas=sigmas, bin_width=bin_width)
        self.max_images, self.seed = max_images, seed
        self.cache = FeatureCache(max_entries=2)
        features = ("frd-score 1.0.1 FRDv1 radiomics" if convention == "frd_v1"
                    else f"radiomics ({'/'.join(image_types)}, bin width {bin_width:g})")
        self.notes = (f"{features} in the brain mask, z-scored with the reference statistics; "
                      f"{'log(d), paper Eq. 3' if paper_log else 'log(d^2), frd-score default'}; "
                      f"{f'at most {max_images}' if max_images else 'all'} items per set")

    def _features(self, images: ImageSet) -> torch.Tensor:
        if self.max_images is not None and len(images) > self.max_images:
            generator = torch.Generator().manual_seed(self.seed)
            images = images.subset(torch.randperm(len(images), generator=generator)[: self.max_images].sort().values)
        if self.convention == "frd_v1":
            return self.cache.get("radiomics_frd_v1", images.images, lambda: frd_v1_features(
                images.images.cpu(), images.brain_masks.cpu(), tuple(images.spacing))[0])
        self.extractor.spacing = tuple(images.spacing)
        return self.cache.get("radiomics", images.images,
                              lambda: self.extractor(images.images.cpu(), images.brain_masks.cpu()))

    def compute(self, context: SuiteContext) -> dict[str, float]:
        reference, candidate = context.sets.get("reference"), _candidate(context)
        if reference is None:
            raise BenchmarkError(f"{self.name}: needs the clean reference set.")
        value = frd(self._features(candidate), self._features(reference), paper_log=self.paper_log,
                    drop_constant=self.convention == "frd_v1")
        return {self.name: value}


def _labelled_contrast(entry: SuiteMetric, context: SuiteContext, metric: str, structure: str,
                       contrast: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
                       ) -> dict[str, float]:
    """A label-aware contrast (`contrast(images, labels, brains)`, one value per item) over the candidate items
    that carry a label; the per-item values are kept on `entry` for the bootstrap."""
    candidate = _candidate(context)
    labelled = candidate.tumour_present
    if not labelled.any():
        raise BenchmarkError(f"{metric}: no candidate item has a {structure} label.")
    positions = torch.nonzero(labelled).flatten()
    subset = candidate.subset(positions)
    values = in_item_chunks(contrast, subset.images.cpu(), subset.labels.cpu(), subset.brain_masks.cpu())
    entry.items = {entry.name: ItemValues(values.double(), positions.cpu())}
    return {entry.name: float(values.double().mean())}
