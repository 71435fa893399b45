"""NIQE and the BRISQUE-feature distance, against a numpy re-derivation from the 36 NSS features.

The features themselves are checked against scipy in test_no_reference.py and test_no_reference_natural_scene.py;
here the model around them is re-derived independently: which patches are usable (brain fraction from a numpy
block sum), which enter the pristine model (sharpness per item), the weighted Gaussian of a test item, the
fallbacks and their counts, the limits of every size check, and the names in every error message.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from benchmark.errors import BenchmarkError, DataError
from benchmark.metrics.no_reference.natural_scene import nss_features
from benchmark.metrics.no_reference.niqe import (
    NIQE,
    BRISQUEDistance,
    _weighted_gaussian,
    brisque_features,
    brisque_slices,
    patch_features,
)
from tests.mri_like import blob_per_patch_masks
from tests.test_no_reference import _images

PATCH = 16


def _reference_fit(images: torch.Tensor, masks: torch.Tensor, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Pristine mean and covariance from the features, in numpy: usable = valid fit and >= half brain pixels,
    selected = sharpness >= threshold x the item's sharpest usable patch."""
    features, valid, sharpness = (t.numpy() for t in nss_features(images[:, 0].double(), masks[:, 0], (PATCH,) * 2))
    n, h, w = masks.shape[0], masks.shape[2] // PATCH, masks.shape[3] // PATCH
    brain = masks[:, 0, : h * PATCH, : w * PATCH].numpy().reshape(n, h, PATCH, w, PATCH).mean((2, 4)).reshape(n, -1)
    usable = valid & (brain >= 0.5)
    rows = []
    for item in range(n):
        best = sharpness[item][usable[item]].max()
        rows.append(features[item][usable[item] & (sharpness[item] >= threshold * best)])
    rows = np.concatenate(rows)
    return rows.mean(0), np.cov(rows, rowvar=False)


def _contrasts(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MRI-like items of very different contrast: the sharpest patch of a faint item is far below the others'."""
    images, masks = _images(n, (64, 64), seed=seed)
    scale = torch.tensor([1.0, 0.002, 0.3, 0.6][:n]).view(-1, 1, 1, 1)
    return images * scale, masks


def _blobs(n: int) -> torch.Tensor:
    """(n, 1, 64, 64) masks of one 4x4 blob per 16 px patch: no patch has a fit, the whole brain has."""
    return torch.from_numpy(blob_per_patch_masks(n))[:, None]


@pytest.mark.parametrize("threshold", [0.75, 0.3])
def test_pristine_model_is_the_sharp_usable_patches_of_each_item(threshold):
    images, masks = _contrasts(4, seed=21)
    masks = masks.clone()
    masks[1, 0, :, 40:] = False  # brain fraction 0.5 in the patches cut at column 40 (kept: >= half)
    model = NIQE(patch_size=PATCH, sharpness_threshold=threshold).fit(images, masks)
    mean, covariance = _reference_fit(images, masks, threshold)
    np.testing.assert_allclose(model.mean.numpy(), mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.covariance.numpy(), covariance, rtol=1e-10, atol=1e-12)
    assert not torch.equal(NIQE(patch_size=PATCH, sharpness_threshold=threshold).fit(images).mean, model.mean)


def test_threshold_one_keeps_exactly_the_sharpest_patch_of_each_item():
    images, masks = _contrasts(2, seed=22)
    model = NIQE(patch_size=PATCH, sharpness_threshold=1.0).fit(images, masks)  # 2 rows: the minimum allowed
    mean, _ = _reference_fit(images, masks, 1.0)
    np.testing.assert_allclose(model.mean.numpy(), mean, rtol=1e-10)
    with pytest.raises(DataError, match=r"^niqe: only 1 usable sharp patches in the reference set; need >= 2$"):
        NIQE(patch_size=PATCH, sharpness_threshold=1.0).fit(images[:1], masks[:1])


def test_patch_at_exactly_the_minimum_brain_fraction_is_usable():
    images, masks = _images(1, (32, 32), seed=23)
    half = torch.zeros_like(masks)
    half[..., : PATCH // 2] = True  # the left patches are exactly half brain, the right ones have none
    features, usable, _ = patch_features(images, half, PATCH, 0.5, "niqe")
    _, valid, _ = nss_features(images[:, 0].double(), half[:, 0], (PATCH, PATCH))
    assert valid[0, [0, 2]].all() and usable[0].tolist() == [True, False, True, False]
    assert patch_features(images, half, PATCH, 0.51, "niqe")[1].sum() == 0
    assert features.shape == (1, 4, 36)


def test_patch_and_image_size_limits():
    images, masks = _images(1, (32, 64), seed=24)
    for size in (8, 10, 32):  # even and >= 8; an image exactly one patch high is fine
        assert patch_features(images, masks, size, 0.5, "niqe")[0].shape[1] == (32 // size) * (64 // size)
    for size in (6, 9, 7):
        with pytest.raises(BenchmarkError, match=rf"^niqe: patch_size must be an even number >= 8, got {size}$"):
            patch_features(images, masks, size, 0.5, "niqe")
    with pytest.raises(DataError, match=r"^probe: images \(32, 64\) are smaller than patch_size 34$"):
        patch_features(images, masks, 34, 0.5, "probe")  # only the height is too small


@pytest.mark.parametrize("call", ["fit", "score", "patch_features", "brisque_features", "brisque_slices"])
def test_errors_name_the_function_and_the_mask(call):
    images, masks = _images(3, (32, 32), seed=25)
    model = NIQE(patch_size=PATCH).fit(images, masks)
    name = {"patch_features": "probe", "brisque_features": "brisque_features"}.get(call, "niqe")
    run = {"fit": lambda x, m: NIQE(patch_size=PATCH).fit(x, m), "score": model,
           "patch_features": lambda x, m: patch_features(x, m, PATCH, 0.5, "probe"),
           "brisque_features": brisque_features, "brisque_slices": brisque_slices}[call]
    with pytest.raises(DataError, match=rf"^{name}: brain mask shape \(3, 1, 32, 16\) does not match"):
        run(images, masks[..., :16])
    nan = images.clone()
    nan[1, 0, 5, 5] = float("nan")
    with pytest.raises(DataError, match=rf"^{name}: images contain NaN or Inf$"):
        run(nan, masks)


def test_weighted_gaussian_matches_numpy_weighted_moments():
    rows = torch.randn(3, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(26))
    weights = torch.tensor([[1, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.float64)
    mean, covariance = _weighted_gaussian(rows, weights)
    kept = rows[0][weights[0].bool()].numpy()
    np.testing.assert_allclose(mean[0].numpy(), kept.mean(0), rtol=1e-12)
    np.testing.assert_allclose(covariance[0].numpy(), np.cov(kept, rowvar=False), rtol=1e-12)
    np.testing.assert_allclose(mean[1].numpy(), rows[1, 2].numpy(), rtol=1e-12)  # one row: itself, no spread
    assert covariance[1].abs().max() == 0 and mean[2].abs().max() == 0 and covariance[2].abs().max() == 0


def test_an_image_with_the_pristine_statistics_scores_zero():
    images, masks = _images(1, (64, 64), seed=27)
    model = NIQE(patch_size=PATCH, sharpness_threshold=0.0).fit(images, masks)  # every usable patch
    assert model(images, masks).item() == pytest.approx(0.0, abs=1e-6)


def test_whole_brain_fallback_scores_the_brain_as_one_patch_and_is_counted(caplog):
    images, masks = _images(6, (64, 64), seed=28)
    model = NIQE(patch_size=PATCH, min_mask_fraction=0.6).fit(images[:4], masks[:4])
    blobs = _blobs(1)  # no patch has a valid fit, the whole brain has
    test_masks = torch.cat([masks[4:5], blobs])
    with caplog.at_level(logging.WARNING, logger="benchmark.metrics.no_reference.niqe"):
        scores = model(images[4:], test_masks)
    assert model.fallback == {"partial_brain_patches": [], "whole_brain": [1], "unscorable": []}
    assert caplog.messages == ["niqe: 1 of 2 items have no 16px patch with >= 60% brain pixels; scored on fallbacks "
                               "(partial-brain patches: []; whole brain: [1]; unscorable: [])"]
    features, valid, _ = nss_features(images[5:6, 0].double(), blobs[:, 0], None)
    assert valid.all()
    d = model.mean.numpy() - features[0, 0].numpy()
    expected = math.sqrt(d @ np.linalg.pinv(model.covariance.numpy() / 2) @ d)  # one row: no spread of its own
    assert scores[1].item() == pytest.approx(expected, rel=1e-6) and math.isfinite(scores[0].item())


def test_fallback_lists_are_complete_and_the_warning_shows_the_first_ten(caplog):
    images, masks = _images(4, (32, 32), seed=29)
    model = NIQE(patch_size=PATCH).fit(images, masks)
    assert NIQE().fallback == {"partial_brain_patches": [], "whole_brain": [], "unscorable": []}
    flat = torch.zeros(12, 1, 32, 32)  # no mask given: every patch is brain, but a flat image has no fit
    with caplog.at_level(logging.WARNING, logger="benchmark.metrics.no_reference.niqe"):
        scores = model(torch.cat([images[:1], flat]), None)
    assert math.isfinite(scores[0].item()) and torch.isnan(scores[1:]).all()
    assert model.fallback == {"partial_brain_patches": [], "whole_brain": [], "unscorable": list(range(1, 13))}
    assert caplog.messages[-1].endswith("(partial-brain patches: []; whole brain: []; unscorable: "
                                        "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])")
    rim = torch.zeros(12, 1, 32, 32, dtype=torch.bool)
    rim[..., :3, :] = True  # a sliver of brain: partial patches only
    model(images[:1].expand(12, -1, -1, -1), rim)
    assert model.fallback["partial_brain_patches"] == list(range(12))
    assert caplog.messages[-1] == ("niqe: 12 of 12 items have no 16px patch with >= 50% brain pixels; scored on "
                                   "fallbacks (partial-brain patches: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]; whole brain: "
                                   "[]; unscorable: [])")


def test_whole_brain_list_in_the_warning_is_cut_at_ten(caplog):
    images, _ = _images(1, (64, 64), seed=30)
    blobs = _blobs(11)
    model = NIQE(patch_size=PATCH).fit(*_images(3, (64, 64), seed=31))
    with caplog.at_level(logging.WARNING, logger="benchmark.metrics.no_reference.niqe"):
        model(images.expand(11, -1, -1, -1), blobs)
    assert model.fallback["whole_brain"] == list(range(11))
    assert "whole brain: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];" in caplog.messages[-1]


def test_brisque_features_are_the_mean_over_slices_with_a_valid_fit():
    volumes, masks = _images(2, (5, 48, 48), seed=32)  # the end slices of the ellipsoid have no brain
    masks = masks.clone()
    masks[0, 0, 2] = False  # nor has the middle slice of item 0: all are left out of the mean
    features, valid, _ = nss_features(volumes[:, 0].reshape(10, 48, 48).double(), masks[:, 0].reshape(10, 48, 48),
                                      None)
    features, valid = features[:, 0].numpy().reshape(2, 5, 36), valid[:, 0].numpy().reshape(2, 5)
    assert valid.tolist() == [[False, True, False, True, False], [False, True, True, True, False]]
    expected = np.stack([features[i][valid[i]].mean(0) for i in range(2)])
    np.testing.assert_allclose(brisque_features(volumes, masks).numpy(), expected, rtol=1e-12)
    slices = brisque_slices(volumes, masks)
    np.testing.assert_allclose(torch.stack(slices).numpy(), expected, rtol=1e-12)
    assert not np.allclose(brisque_features(volumes).numpy(), expected)  # the mask is used


def test_brisque_features_name_every_item_without_a_fit_up_to_ten():
    images, masks = _images(12, (32, 32), seed=33)
    speck = torch.zeros_like(masks)
    speck[..., 10, 10] = True
    speck[0] = masks[0]  # items 1-11 have no fit: the first ten are named
    with pytest.raises(DataError, match=r"^brisque_features: items \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\] have no slice"):
        brisque_features(images, speck)


def test_brisque_distance_of_either_of_two_reference_images_is_one_over_root_two():
    """Two references a, b: covariance v v^T / 2 with v = a - b, pseudo-inverse 2 v v^T / |v|^4, d = v / 2."""
    images, masks = _images(2, (48, 48), seed=34)
    model = BRISQUEDistance().fit(images, masks)  # the minimum: two images
    np.testing.assert_allclose(model(images, masks).numpy(), [0.5**0.5] * 2, rtol=1e-6)
    with pytest.raises(DataError, match=r"^brisque_distance: need >= 2 reference images, got 1$"):
        BRISQUEDistance().fit(images[:1], masks[:1])
    with pytest.raises(BenchmarkError, match=r"^brisque_distance: call fit\(reference_images, masks\) before scoring"):
        BRISQUEDistance()(images, masks)
    with pytest.raises(BenchmarkError, match=r"^niqe: call fit\(reference_images, masks\) before scoring images$"):
        NIQE()(images, masks)


def test_defaults_are_the_papers_threshold_and_32_pixel_half_brain_patches():
    images, masks = _images(6, (96, 96), seed=35)
    default = NIQE().fit(images[:4], masks[:4])
    explicit = NIQE(patch_size=32, sharpness_threshold=0.75, min_mask_fraction=0.5).fit(images[:4], masks[:4])
    torch.testing.assert_close(default(images[4:], masks[4:]), explicit(images[4:], masks[4:]), rtol=0, atol=0)
