"""The contract of the mask-reading suite entries, against the functions they wrap called directly.

Each entry must pass the candidate's masks (and spacing) on, pick the model its configuration names, keep the
per-item values the subject bootstrap resamples (with the positions of the items they belong to), and describe
its configuration in its notes. References: the wrapped NIQE / BRISQUE / tumour CNR / FRD / frd_v1 functions.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from benchmark.errors import BenchmarkError, ConfigError
from benchmark.metrics import frd, radiomics_features, tumour_cnr
from benchmark.metrics.image_statistics import (
    FrechetRadiomicsDistance,
    ImageStatistic,
    ReferenceCalibrated,
    TumourContrast,
)
from benchmark.metrics.no_reference import NIQE, BRISQUEDistance, total_variation
from benchmark.metrics.radiomics.frd_v1 import frd_v1_features
from perturbations.synthetic import synthetic_imageset
from tests.test_metrics_image_statistics_entries import run


@pytest.fixture(scope="module")
def sets():
    reference = synthetic_imageset(n=6, size=64, seed=1, tumour_free=(1, 4))
    candidate = synthetic_imageset(n=5, size=64, seed=2, tumour_free=(0, 3))
    return reference, candidate


def test_missing_candidate_is_named():
    with pytest.raises(BenchmarkError, match=r"^this metric needs the candidate ImageSet \(with brain masks\)\.$"):
        run(TumourContrast(), {})


def test_image_statistic_keeps_each_items_value_in_the_brain(sets):
    _, candidate = sets
    metric = ImageStatistic("total_variation")
    run(metric, {"candidate": candidate})
    expected = total_variation(candidate.images, candidate.brain_masks).double()
    torch.testing.assert_close(metric.items["value"].values, expected, rtol=0, atol=0)
    assert metric.items["value"].positions is None


def test_tumour_contrast_keeps_values_with_the_positions_of_tumour_items(sets):
    _, candidate = sets
    metric = TumourContrast()
    run(metric, {"candidate": candidate})
    subset = candidate.subset([1, 2, 4])
    expected = tumour_cnr(subset.images, subset.labels, subset.brain_masks).double()
    torch.testing.assert_close(metric.items["value"].values, expected, rtol=0, atol=0)
    assert metric.items["value"].positions.tolist() == [1, 2, 4]


@pytest.mark.parametrize("model", ["niqe", "brisque"])
def test_reference_calibrated_is_the_named_model_fitted_in_the_masks(sets, model):
    reference, candidate = sets
    metric = ReferenceCalibrated(model, patch_size=16)
    value = run(metric, {"candidate": candidate, "reference": reference})
    direct = NIQE(patch_size=16) if model == "niqe" else BRISQUEDistance()
    expected = direct.fit(reference.images, reference.brain_masks)(candidate.images, candidate.brain_masks).double()
    torch.testing.assert_close(metric.items["value"].values, expected, rtol=1e-12, atol=0)
    assert value == pytest.approx(float(expected.mean()), rel=1e-12)


def test_reference_calibrated_defaults_to_niqe_with_32_pixel_patches():
    reference, candidate = synthetic_imageset(n=3, size=128, seed=5), synthetic_imageset(n=2, size=128, seed=6)
    metric = ReferenceCalibrated()
    assert metric.notes == "data-calibrated NIQE, 32 px patches, fitted on the clean reference set"
    assert ReferenceCalibrated("brisque").notes == (
        "Mahalanobis distance of BRISQUE's 36 features to the clean reference set")
    value = run(metric, {"candidate": candidate, "reference": reference})
    expected = NIQE(patch_size=32).fit(reference.images, reference.brain_masks)(candidate.images, candidate.brain_masks)
    assert value == pytest.approx(float(expected.double().mean()), rel=1e-12)


def test_frd_configuration_reaches_the_extractor_and_the_notes():
    metric = FrechetRadiomicsDistance(image_types=("original", "log"), sigmas=(2.5,), bin_width=0.05)
    assert metric.extractor.image_types == ("original", "log") and metric.extractor.sigmas == (2.5,)
    assert metric.extractor.bin_width == 0.05
    assert metric.notes == ("radiomics (original/log, bin width 0.05) in the brain mask, z-scored with the reference "
                            "statistics; log(d^2), frd-score default; all items per set")
    assert FrechetRadiomicsDistance(convention="frd_v1", paper_log=True, max_images=7).notes == (
        "frd-score 1.0.1 FRDv1 radiomics in the brain mask, z-scored with the reference statistics; log(d), paper "
        "Eq. 3; at most 7 items per set")
    with pytest.raises(ConfigError, match=r"^metrics\.frd\.convention: 'frd_v1' \(frd-score 1\.0\.1\) or 'native', "
                                          r"not 'FRDv1'\.$"):
        FrechetRadiomicsDistance(convention="FRDv1")


def test_frd_native_is_frd_of_the_features_in_the_masks_and_paper_log_halves_it(sets):
    reference, candidate = sets
    kwargs = {"image_types": ("original",), "bin_width": 1 / 16}
    value = run(FrechetRadiomicsDistance(**kwargs), {"candidate": candidate, "reference": reference})
    features = [radiomics_features(s.images, s.brain_masks, image_types=("original",), bin_width=1 / 16,
                                   spacing=s.spacing)[0] for s in (candidate, reference)]
    assert value == pytest.approx(frd(*features), rel=1e-9)
    halved = run(FrechetRadiomicsDistance(**kwargs, paper_log=True), {"candidate": candidate, "reference": reference})
    assert halved == pytest.approx(value / 2, rel=1e-9) and math.isfinite(value)


def test_frd_v1_convention_is_frd_score_features_with_constant_columns_dropped(sets):
    reference, candidate = sets
    assert tuple(reference.spacing) != (1.0, 1.0)  # the spacing must reach the features
    masks = candidate.brain_masks.clone()
    masks[::2, ..., :20, :] = False  # brain sizes vary in the candidate set only: a column constant in the reference
    candidate = dataclasses.replace(candidate, brain_masks=masks)
    value = run(FrechetRadiomicsDistance(convention="frd_v1"), {"candidate": candidate, "reference": reference})
    features = [frd_v1_features(s.images, s.brain_masks, tuple(s.spacing))[0] for s in (candidate, reference)]
    assert value == pytest.approx(frd(*features, drop_constant=True), rel=1e-9)
    assert frd(*features, drop_constant=False) > value + 0.03  # centring the constant columns adds their spread


def test_frd_default_subset_seed_is_zero(sets):
    reference, _ = sets
    default = FrechetRadiomicsDistance(image_types=("original",), max_images=3)._features(reference)
    torch.testing.assert_close(
        default, FrechetRadiomicsDistance(image_types=("original",), max_images=3, seed=0)._features(reference))
    other = FrechetRadiomicsDistance(image_types=("original",), max_images=3, seed=1)._features(reference)
    assert not torch.equal(default, other)
