"""Radiomics on the inputs where conventions bite, against pyradiomics 3.0.1 item by item: one batch of tiny and
irregular regions (2 voxels, a level held by one voxel, an 11-voxel region where the 90th percentile sits next
to the last value), z-scored intensities whose variance is exactly 1, and the input checks' exact messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.errors import DataError
from benchmark.metrics.radiomics import radiomics_features
from benchmark.metrics.radiomics.discretise import DEFAULT_BIN_WIDTH, check_images_and_masks
from tests._pyradiomics import assert_features_match, pyradiomics_features

pytest.importorskip("radiomics")

RTOL, ATOL = 1e-6, 1e-9


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Three 12x12 items in one batch with different level counts: a 2x2 block (runs of two along the diagonal),
    six voxels where two levels are held by a single voxel and one voxel has one neighbour, and an 11-voxel blob."""
    rng = np.random.default_rng(40)
    images = rng.random((3, 12, 12))
    masks = np.zeros((3, 12, 12), dtype=bool)
    masks[0, 5:7, 5:7] = True
    images[0, 5, 5] = images[0, 6, 6] = 0.40
    masks[1, 4, 4:7] = masks[1, 5, 4:6] = masks[1, 6, 6] = True  # (6, 6): a tail voxel with one neighbour
    images[1, 4, 4:7], images[1, 5, 4:6], images[1, 6, 6] = [0.10, 0.10, 0.90], [0.12, 0.50], 0.3
    masks[2, 3:6, 3:7] = True
    masks[2, 3, 3] = False  # 11 voxels
    return torch.from_numpy(images)[:, None], torch.from_numpy(masks)[:, None]


def test_tiny_regions_in_one_batch_match_pyradiomics_item_by_item():
    images, masks = _batch()
    ours, names = radiomics_features(images, masks, image_types=("original",), spacing=(1.0, 1.0))
    for k in range(3):
        reference = pyradiomics_features(images[k, 0].numpy(), masks[k, 0].numpy(), DEFAULT_BIN_WIDTH, {"Original": {}})
        assert_features_match(ours[k].numpy(), names, reference, RTOL, ATOL)


def test_whole_images_of_different_level_counts_in_one_batch_match_pyradiomics():
    """No mask: no voxel outside, and the last item holds fewer grey levels than the batch's highest."""
    rng = np.random.default_rng(42)
    images = torch.from_numpy(np.stack([rng.random((10, 10)), 0.4 * rng.random((10, 10))]))[:, None]
    ours, names = radiomics_features(images, None, image_types=("original",))
    for k in range(2):  # pyradiomics needs a background: one zero row outside the mask
        image = np.pad(images[k, 0].numpy(), [(0, 1), (0, 0)])
        mask = np.pad(np.ones((10, 10), dtype=bool), [(0, 1), (0, 0)])
        reference = pyradiomics_features(image, mask, DEFAULT_BIN_WIDTH, {"Original": {}})
        assert_features_match(ours[k].numpy(), names, reference, RTOL, ATOL)


def test_z_scored_region_with_unit_variance_keeps_its_skewness_and_kurtosis():
    """Intensities -0.5 (x4) and 2.0: mean 0, population variance exactly 1, skewness 1.5, kurtosis 3.25."""
    image = np.zeros((8, 8))
    mask = np.zeros((8, 8), dtype=bool)
    mask[3, 2:5] = mask[4, 2:4] = True  # pyradiomics needs a region that spans two axes
    image[3, 2:5], image[4, 2:4] = [-0.5, 2.0, -0.5], [-0.5, -0.5]
    ours, names = radiomics_features(torch.from_numpy(image)[None, None], torch.from_numpy(mask)[None, None],
                                     image_types=("original",))  # fmt: skip
    values = dict(zip(names, ours[0].tolist(), strict=True))
    assert values["original_firstorder_Variance"] == 1.0
    assert values["original_firstorder_Skewness"] == pytest.approx(1.5, rel=1e-12)
    assert values["original_firstorder_Kurtosis"] == pytest.approx(3.25, rel=1e-12)
    assert_features_match(ours[0].numpy(), names, pyradiomics_features(image, mask, DEFAULT_BIN_WIDTH,
                                                                       {"Original": {}}), RTOL, ATOL)


def test_input_checks_name_the_problem_exactly():
    images = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(41))
    with pytest.raises(DataError, match=r"^radiomics: images must be a tensor \(N, 1, H, W\) or \(N, 1, D, H, W\), "
                                        r"got list$"):
        check_images_and_masks([[0.0]], None)
    with pytest.raises(DataError, match=r"got \(12, 2, 4, 8\)$"):
        check_images_and_masks(images.view(12, 2, 4, 8), None)
    with pytest.raises(DataError, match=r"got \(12, 8, 8\)$"):
        check_images_and_masks(images[:, 0], None)
    nan = images.clone()
    nan[3, 0, 2, 2] = float("nan")
    with pytest.raises(DataError, match=r"^radiomics: images contain NaN or Inf; radiomics features are undefined "
                                        r"there$"):
        check_images_and_masks(nan, None)
    with pytest.raises(DataError, match=r"^radiomics: mask shape \(12, 1, 8, 4\) does not match images "
                                        r"\(12, 1, 8, 8\)$"):
        check_images_and_masks(images, torch.ones(12, 1, 8, 4, dtype=torch.bool))
    pairs = torch.zeros_like(images, dtype=torch.bool)
    pairs[..., 0, :2] = True  # two voxels each: the smallest region allowed
    checked, masks = check_images_and_masks(images, pairs)
    assert masks.dtype == torch.bool and masks.shape == (12, 8, 8) and int(masks.sum()) == 24
    assert checked.dtype == torch.float64 and torch.equal(checked, images[:, 0].double())
    single = pairs.clone()
    single[1:, ..., 0, 1] = False  # items 1-11 hold one voxel: the first ten are named
    with pytest.raises(DataError, match=r"^radiomics: the masks of items \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\] hold fewer "
                                        r"than 2 voxels; give a larger mask$"):
        check_images_and_masks(images, single)
    _, masks = check_images_and_masks(images, None)
    assert masks.dtype == torch.bool and bool(masks.all()) and masks.shape == (12, 8, 8)


def test_a_direction_whose_lines_cross_the_region_once_counts_its_single_voxel_runs():
    """A diagonal pair of one level: one run of 2 along the diagonal, two runs of 1 in each other direction, so
    LongRunEmphasis = mean(4, 1, 1, 1) = 1.75 and RunPercentage = mean(1/2, 1, 1, 1). pyradiomics 3.0.1 leaves a
    direction out when none of its lines holds two region voxels and gives 4.0 and 0.5 (see README, Metrics)."""
    image, mask = np.zeros((8, 8)), np.zeros((8, 8), dtype=bool)
    mask[3, 3] = mask[4, 4] = True
    image[mask] = 0.4
    ours, names = radiomics_features(torch.from_numpy(image)[None, None], torch.from_numpy(mask)[None, None],
                                     image_types=("original",))  # fmt: skip
    values = dict(zip(names, ours[0].tolist(), strict=True))
    assert values["original_glrlm_LongRunEmphasis"] == pytest.approx(1.75, rel=1e-12)
    assert values["original_glrlm_RunPercentage"] == pytest.approx(0.875, rel=1e-12)
    reference = pyradiomics_features(image, mask, DEFAULT_BIN_WIDTH, {"Original": {}})
    assert reference["original_glrlm_LongRunEmphasis"] == pytest.approx(4.0)


def test_glcm_without_mcc_leaves_only_mcc_out():
    """frd_v1 skips MCC (an eigendecomposition per matrix): every other GLCM feature is the same."""
    from benchmark.metrics.radiomics.discretise import discretise
    from benchmark.metrics.radiomics.glcm import glcm_features

    images, masks = _batch()
    levels = discretise(images[:, 0].double(), masks[:, 0])
    full, fast = glcm_features(levels), glcm_features(levels, with_mcc=False)
    assert full.shape == fast.shape and torch.isnan(fast).any()
    torch.testing.assert_close(fast[~torch.isnan(fast)], full[~torch.isnan(fast)], rtol=0, atol=0)
    assert int(torch.isnan(fast).sum()) == 3 and torch.isfinite(full).all()  # one MCC per item


def test_flat_region_coarseness_is_pyradiomics_cap_exactly():
    image, mask = np.full((8, 8), 0.5), np.zeros((8, 8), dtype=bool)
    mask[2:6, 2:6] = True
    ours, names = radiomics_features(torch.from_numpy(image)[None, None], torch.from_numpy(mask)[None, None],
                                     image_types=("original",))  # fmt: skip
    assert dict(zip(names, ours[0].tolist(), strict=True))["original_ngtdm_Coarseness"] == 1e6


def test_a_flat_item_beside_textured_ones_and_a_two_level_batch_match_pyradiomics():
    """MCC's special cases: an item with one grey level in a batch that has many (MCC 1), and a batch whose
    items together hold only two levels (the eigen-decomposition still runs)."""
    rng = np.random.default_rng(43)
    flat = np.full((10, 10), 0.5)
    textured = rng.random((10, 10))
    two_levels = np.where(rng.random((2, 10, 10)) < [[[0.4]], [[0.05]]], 0.2, 0.7)  # item 1: one level dominates
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:8, 1:9] = True
    for batch in (np.stack([flat, textured]), two_levels):
        images = torch.from_numpy(batch)[:, None]
        masks = torch.from_numpy(np.broadcast_to(mask, batch.shape).copy())[:, None]
        ours, names = radiomics_features(images, masks, image_types=("original",))
        for k in range(len(batch)):
            reference = pyradiomics_features(batch[k], mask, DEFAULT_BIN_WIDTH, {"Original": {}})
            assert_features_match(ours[k].numpy(), names, reference, RTOL, ATOL)


def test_bin_width_and_level_limits():
    from benchmark.metrics.radiomics.discretise import MAX_LEVELS, discretise

    ramp = torch.arange(MAX_LEVELS, dtype=torch.float64).view(1, 32, 32)  # exactly MAX_LEVELS bins of width 1
    inside = torch.ones_like(ramp, dtype=torch.bool)
    assert int(discretise(ramp, inside, 1.0).max()) == MAX_LEVELS
    with pytest.raises(DataError, match=rf"^radiomics: the images span {MAX_LEVELS + 1} bins of width 1 \(more than "
                                        rf"{MAX_LEVELS}\); scale the images to \[0, 1\] or choose a larger bin_width$"):
        discretise(torch.cat([ramp.flatten(), torch.tensor([float(MAX_LEVELS)])]).view(1, 25, 41), inside.new_ones(
            1, 25, 41), 1.0)
    for width in (0.0, -0.5):
        with pytest.raises(ValueError, match=rf"^discretise: bin_width must be > 0, got {width}$"):
            discretise(ramp, inside, width)
