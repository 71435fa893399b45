"""Suite entries that read masks and labels: they agree with the functions they wrap and move the right
way on controlled changes."""

from __future__ import annotations

import pytest
import torch

from benchmark.data.imageset import ImageSet
from benchmark.metrics import blur_effect, frd, radiomics_features, snr
from benchmark.metrics.entries import SuiteContext
from benchmark.metrics.image_statistics import (
    FrechetRadiomicsDistance,
    ImageStatistic,
    ReferenceCalibrated,
    TumourContrast,
)
from perturbations.synthetic import synthetic_imageset


def context(reference: ImageSet, candidate: ImageSet) -> SuiteContext:
    sets = {"reference": reference, "candidate": candidate, "train": None}
    return SuiteContext(candidate.images, candidate.images, reference.images, features=None, logits=None,
                        device=torch.device("cpu"), sets=sets)


def run(metric, reference: ImageSet, candidate: ImageSet) -> float:
    metric.name = "value"
    return metric.compute(context(reference, candidate))["value"]


@pytest.fixture(scope="module")
def clean() -> ImageSet:
    return synthetic_imageset(n=12, size=64, seed=0)


def noisy(images: ImageSet, std: float) -> ImageSet:
    generator = torch.Generator().manual_seed(1)
    noise = std * torch.randn(images.images.shape, generator=generator)
    return images.with_images(((images.images + noise).clamp(0, 1)) * images.brain_masks)


def test_image_statistics_are_the_means_of_the_functions(clean: ImageSet) -> None:
    assert run(ImageStatistic("blur_effect"), clean, clean) == pytest.approx(
        float(blur_effect(clean.images, clean.brain_masks).mean()), rel=1e-12)
    assert run(ImageStatistic("snr"), clean, clean) == pytest.approx(
        float(snr(clean.images, clean.brain_masks).mean()), rel=1e-12)


def test_tumour_contrast_drops_when_the_tumour_is_painted_over(clean: ImageSet) -> None:
    images = clean.images.clone()
    tumour = clean.labels > 0
    brain_mean = images[clean.brain_masks & ~tumour].mean()
    images[tumour] = brain_mean  # tumour removed from the image, label kept
    assert run(TumourContrast(), clean, clean.with_images(images)) < 0.2 * run(TumourContrast(), clean, clean)


def test_reference_calibrated_models_score_noise_worse(clean: ImageSet) -> None:
    for model in ("niqe", "brisque"):
        metric = ReferenceCalibrated(model=model, patch_size=16)
        assert run(metric, clean, noisy(clean, 0.2)) > run(metric, clean, clean)


def test_frd_matches_the_direct_computation_and_grows_with_noise(clean: ImageSet) -> None:
    metric = FrechetRadiomicsDistance(image_types=["original"])
    candidate = noisy(clean, 0.1)
    value = run(metric, clean, candidate)
    features = [radiomics_features(s.images, s.brain_masks, image_types=("original",), spacing=s.spacing)[0]
                for s in (candidate, clean)]
    assert value == pytest.approx(frd(*features), rel=1e-9)
    assert value > run(FrechetRadiomicsDistance(image_types=["original"]), clean, noisy(clean, 0.02))
