"""Suite entries of the mask- and label-reading metrics: configuration errors, orientation (which way is
better, from what each quantity measures), the tumour-item subset, the reference model cache and the FRD
subset. Values against the functions they wrap at 1e-12 (the same float64 means)."""

from __future__ import annotations

import pytest
import torch

from benchmark.errors import BenchmarkError, ConfigError
from benchmark.metrics import radiomics_features, tumour_cnr
from benchmark.metrics.entries import SuiteContext
from benchmark.metrics.image_statistics import (
    FrechetRadiomicsDistance,
    ImageStatistic,
    ReferenceCalibrated,
    TumourContrast,
)
from benchmark.metrics.no_reference import total_variation, variance_of_laplacian
from perturbations.synthetic import synthetic_imageset


def run(metric, sets: dict) -> float:
    metric.name = "value"
    candidate = sets.get("candidate")
    images = None if candidate is None else candidate.images
    context = SuiteContext(images, images, None, features=None, logits=None, device=torch.device("cpu"), sets=sets)
    return metric.compute(context)["value"]


@pytest.fixture(scope="module")
def clean():
    return synthetic_imageset(n=6, size=48, seed=1, tumour_free=(1, 4))


def test_orientation_follows_what_each_statistic_measures():
    """Blur effect (1 = blurred) and total variation (noise raises it) are lower-is-better; variance of the
    Laplacian (sharpness) and SNR higher-is-better; NIQE / BRISQUE distances lower-is-better."""
    expected = {"blur_effect": False, "total_variation": False, "variance_of_laplacian": True, "snr": True}
    for function, higher in expected.items():
        metric = ImageStatistic(function)
        assert metric.higher_is_better is higher and metric.kind == "no_reference" and metric.notes
    for model in ("niqe", "brisque"):
        assert ReferenceCalibrated(model).higher_is_better is False
    assert "NIQE" in ReferenceCalibrated("niqe").notes and "BRISQUE" in ReferenceCalibrated("brisque").notes
    assert TumourContrast.higher_is_better is True and FrechetRadiomicsDistance.higher_is_better is False


def test_configuration_errors_name_the_choices():
    with pytest.raises(ConfigError, match=r"^ImageStatistic: function must be one of \['blur_effect', 'snr', "
                                          r"'total_variation', 'variance_of_laplacian'\], got 'sharpness'\.$"):
        ImageStatistic("sharpness")
    with pytest.raises(ConfigError, match=r"^ReferenceCalibrated: model must be niqe or brisque, got 'piqe'\.$"):
        ReferenceCalibrated("piqe")


def test_statistics_are_means_over_the_candidate_items_in_their_masks(clean):
    for function, reference in (("total_variation", total_variation), ("variance_of_laplacian", variance_of_laplacian)):
        value = run(ImageStatistic(function), {"candidate": clean})
        assert value == pytest.approx(float(reference(clean.images, clean.brain_masks).double().mean()), abs=1e-12)
    with pytest.raises(BenchmarkError, match="needs the candidate ImageSet"):
        run(ImageStatistic("snr"), {})


def test_tumour_contrast_uses_only_items_with_a_tumour_label(clean):
    with_tumour = [0, 2, 3, 5]
    subset = clean.subset(with_tumour)
    expected = float(tumour_cnr(subset.images, subset.labels, subset.brain_masks).double().mean())
    assert run(TumourContrast(), {"candidate": clean}) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(BenchmarkError, match=r"^tumour_cnr: no candidate item has a tumour label\.$"):
        run(TumourContrast(), {"candidate": clean.subset([1, 4])})


def test_reference_models_are_fitted_once_per_reference_set(clean):
    metric = ReferenceCalibrated("brisque")
    run(metric, {"candidate": clean, "reference": clean})
    model = next(iter(metric._fitted.values()))
    run(metric, {"candidate": clean.subset([0, 1, 2]), "reference": clean})
    assert next(iter(metric._fitted.values())) is model  # same reference: no refit
    other = synthetic_imageset(n=6, size=48, seed=2)
    run(metric, {"candidate": clean, "reference": other})
    assert len(metric._fitted) == 1 and next(iter(metric._fitted.values())) is not model
    with pytest.raises(BenchmarkError, match="needs the clean reference set"):
        run(ReferenceCalibrated("niqe"), {"candidate": clean})


def test_frd_subsets_each_set_with_its_seed(clean):
    metric = FrechetRadiomicsDistance(image_types=["original"], max_images=4, seed=3)
    assert "at most 4" in metric.notes and "original" in metric.notes
    reference = synthetic_imageset(n=8, size=48, seed=4)
    value = run(metric, {"candidate": clean, "reference": reference})
    assert value == run(FrechetRadiomicsDistance(image_types=["original"], max_images=4, seed=3),
                        {"candidate": clean, "reference": reference})
    features = metric._features(reference)
    everything = radiomics_features(reference.images, reference.brain_masks, image_types=("original",),
                                    spacing=reference.spacing)[0].to(features.dtype)
    rows = [int((everything - row).abs().amax(1).argmin()) for row in features]
    assert len(rows) == 4 and rows == sorted(set(rows))  # four distinct items, in their original order
    torch.testing.assert_close(features, everything[rows], rtol=1e-12, atol=1e-12)
    other = FrechetRadiomicsDistance(image_types=["original"], max_images=4, seed=4)._features(reference)
    assert not torch.equal(other, features)  # the seed picks the subset
    with pytest.raises(BenchmarkError, match="needs the clean reference set"):
        run(metric, {"candidate": clean})
