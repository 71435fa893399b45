"""Unit tests of the fill's sources and tissue tests (perturbations/fill.py) on small hand-built arrays: healthy
tissue, robust statistics, typical / lesion-like / wide-CSF voxels, (median, IQR) matching, the depth-matched
mirror, the mirror and exemplar sources, and fill_healthy's guarantees."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_dilation, distance_transform_edt

from perturbations.fill import (
    MAX_PIECES,
    brighter_than_typical,
    depth_matched,
    fill_healthy,
    fill_sources,
    healthy_tissue,
    lesion_bright_channels,
    match_intensity,
    median_and_iqr,
    mirror_source,
    typical_tissue,
    wide_csf,
)
from perturbations.symmetry import estimate_mirror_line, mirrored_points

ROBUST_SD = 1 / 1.349  # robust standard deviation per unit of interquartile range


def l1_distance_to(mask: np.ndarray) -> np.ndarray:
    """City-block distance of every voxel to the nearest voxel of `mask` (brute force)."""
    grid = np.indices(mask.shape).reshape(mask.ndim, -1).T
    targets = np.argwhere(mask)
    return np.abs(grid[:, None, :] - targets[None]).sum(-1).min(1).reshape(mask.shape)


# healthy_tissue


def test_healthy_tissue_is_brain_minus_the_lesion_grown_by_two_voxels_city_block():
    brain = np.zeros((15, 15), bool)
    brain[1:14, 1:14] = True
    lesion = np.zeros_like(brain)
    lesion[7, 7] = True
    healthy = healthy_tissue(brain, lesion)
    assert np.array_equal(healthy, brain & (l1_distance_to(lesion) > 2))
    assert not healthy[7, 9] and not healthy[8, 8] and healthy[7, 10] and healthy[8, 9]


def test_healthy_tissue_without_a_lesion_is_a_copy_of_the_brain():
    brain = np.zeros((6, 6), bool)
    brain[1:5, 1:5] = True
    healthy = healthy_tissue(brain, np.zeros_like(brain))
    assert np.array_equal(healthy, brain) and healthy is not brain


# median_and_iqr


def test_median_and_iqr_of_an_evenly_spaced_sample():
    q50, iqr = median_and_iqr(np.arange(101.0)[::-1])
    assert q50 == 50.0 and iqr == 50.0
    q50, iqr = median_and_iqr(np.array([0.1, 0.2, 0.3, 0.4, 0.5]) - 1.0)  # quartiles at sample points
    assert q50 == pytest.approx(-0.7) and iqr == pytest.approx(0.2)


def test_median_and_iqr_floors_the_range_of_constant_values():
    assert median_and_iqr(np.full(30, 0.4)) == (0.4, 1e-6)
    q50, iqr = median_and_iqr(np.array([0.0, 0.0, 0.0, 1e-3, 1e-3]))
    assert q50 == 0.0 and iqr == pytest.approx(1e-3)


# typical_tissue

def typical_layout(test_values: np.ndarray, centre: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Image (1, 2, 101): row 0 the healthy tissue (centre + -0.50 .. 0.50: median `centre`, IQR 0.5), row 1 the
    test values; and the healthy mask (row 0)."""
    image = np.zeros((1, 2, 101))
    image[0, 0] = centre + np.arange(-50, 51) / 100
    image[0, 1, :len(test_values)] = test_values
    healthy = np.zeros((2, 101), bool)
    healthy[0] = True
    return image, healthy


def test_typical_tissue_keeps_values_within_two_and_a_half_robust_sds_inclusive():
    width = 2.5 * 0.5 * ROBUST_SD
    values = np.array([0.0, 0.99 * width, -0.99 * width, 1.01 * width, -1.01 * width, 2.0])
    image, healthy = typical_layout(values, centre=0.3)
    image[0, 1, :len(values)] += 0.3
    candidates = np.zeros_like(healthy)
    candidates[1] = True
    keep = typical_tissue(image, candidates, healthy)
    assert keep[1, :6].tolist() == [True, True, True, False, False, False]
    assert not keep[0].any()  # only candidates are kept
    image, healthy = typical_layout(np.array([]))
    q25, q75 = np.percentile(image[0, 0], [25, 75])
    exact = 2.5 * (q75 - q25) / 1.349
    image[0, 1, :3] = [exact, -exact, np.nextafter(exact, 1.0)]
    keep = typical_tissue(image, ~healthy, healthy)
    assert keep[1, :3].tolist() == [True, True, False]  # at the limit kept, one ulp beyond dropped


def test_typical_tissue_needs_every_channel_and_honours_spread():
    image, healthy = typical_layout(np.array([0.0, 1.0, 0.0, 1.0]))  # limit 2.5 x 0.5 / 1.349 = 0.93
    second = image[0].copy()
    second[1, :4] = [0.0, 0.0, -1.0, 1.0]
    image = np.stack([image[0], second])
    candidates = ~healthy
    assert typical_tissue(image, candidates, healthy)[1, :4].tolist() == [True, False, False, False]
    assert typical_tissue(image, candidates, healthy, spread=3.0)[1, :4].tolist() == [True] * 4  # 1.0 < 1.11


def test_typical_tissue_needs_twenty_healthy_voxels():
    image = np.zeros((1, 4, 10))
    image[0, 0] = np.linspace(0.4, 0.5, 10)
    image[0, 1, :10] = np.linspace(0.4, 0.5, 10)
    image[0, 3] = 5.0  # far from any healthy median
    candidates = np.zeros((4, 10), bool)
    candidates[3] = True
    healthy = np.zeros((4, 10), bool)
    healthy[0] = True
    healthy[1, :9] = True  # 19 voxels: too few to judge, every candidate kept
    assert np.array_equal(typical_tissue(image, candidates, healthy), candidates)
    healthy[1, 9] = True  # 20: judged
    assert not typical_tissue(image, candidates, healthy).any()


# lesion_bright_channels

def bright_channel_case():
    """Three channels on 8 x 8: healthy rows 0..4 (40 voxels), lesion rows 6..7; channel 0 brighter on the lesion,
    channel 1 darker, channel 2 equal to the healthy median there."""
    rng = np.random.default_rng(1)
    image = 0.4 + 0.1 * rng.uniform(size=(3, 8, 8))
    healthy = np.zeros((8, 8), bool)
    healthy[:5] = True
    lesion = np.zeros_like(healthy)
    lesion[6:] = True
    image[0][lesion] = 0.9
    image[1][lesion] = 0.1
    image[2][lesion] = np.median(image[2][healthy])
    return image, healthy, lesion


def test_lesion_bright_channels_are_those_where_the_lesion_median_is_above_healthy():
    image, healthy, lesion = bright_channel_case()
    found = lesion_bright_channels(image, healthy, lesion)
    assert len(found) == 1
    channel, q50, iqr = found[0]
    assert np.array_equal(channel, image[0])
    assert q50 == np.median(image[0][healthy])
    q25, q75 = np.percentile(image[0][healthy], [25, 75])
    assert iqr == pytest.approx(q75 - q25)


def test_lesion_bright_channels_none_without_lesion_or_twenty_healthy_voxels():
    image, healthy, lesion = bright_channel_case()
    assert lesion_bright_channels(image, healthy, np.zeros_like(lesion)) == []
    few = np.zeros_like(healthy)
    few[:2] = True
    few[2, :4] = True  # 20 voxels: enough
    assert len(lesion_bright_channels(image, few, lesion)) == 1
    few[2, 3] = False  # 19
    assert lesion_bright_channels(image, few, lesion) == []


# brighter_than_typical and wide_csf

def spot_case(centre: float = 0.5):
    """One channel, 21 x 21: healthy tissue centre + -0.05 .. 0.05 on rows 0..9 (210 voxels, median `centre`,
    IQR about 0.05), a bright lesion at rows 18..20, probes elsewhere."""
    image = np.full((1, 21, 21), centre)
    image[0, :10] = centre + np.linspace(-0.05, 0.05, 210).reshape(10, 21)
    healthy = np.zeros((21, 21), bool)
    healthy[:10] = True
    lesion = np.zeros_like(healthy)
    lesion[18:] = True
    image[0][lesion] = centre + 0.5
    q25, q75 = np.percentile(image[0][healthy], [25, 75])
    return image, healthy, lesion, 2.5 * (q75 - q25) / 1.349


def test_brighter_than_typical_is_strictly_beyond_the_limit_and_grown_by_one_voxel():
    image, healthy, lesion, limit = spot_case(centre=0.0)
    image[0, 13, 5] = limit  # at the limit: not lesion-like
    image[0, 13, 15] = np.nextafter(limit, 1.0)  # just beyond
    found = brighter_than_typical(image, healthy, lesion)
    spot = np.zeros_like(lesion)
    spot[13, 15] = True
    assert found.dtype == bool and np.array_equal(found, l1_distance_to(spot | lesion) <= 1)


def test_brighter_than_typical_thresholds_and_growth():
    image, healthy, lesion, limit = spot_case(centre=0.5)
    image[0, 12, 4] = 0.5 + 0.98 * limit
    image[0, 14, 10] = 0.5 + 1.02 * limit
    image[0, 12, 16] = 0.5 - 3 * limit  # dark: not lesion-like
    assert np.array_equal(np.argwhere(brighter_than_typical(image, healthy, lesion, grow=0) & ~lesion), [[14, 10]])
    grown = brighter_than_typical(image, healthy, lesion, grow=2)
    spot = np.zeros_like(lesion)
    spot[14, 10] = True
    assert np.array_equal(grown, l1_distance_to(spot | lesion) <= 2)
    wider = brighter_than_typical(image, healthy, lesion, spread=2.4, grow=0)
    assert wider[12, 4] and wider[14, 10]


def test_brighter_than_typical_needs_every_lesion_bright_channel():
    image, healthy, lesion, limit = spot_case()
    image = np.concatenate([image, image])
    image[0, 12, 5] = 0.5 + 2 * limit  # bright in channel 0 only
    image[1, 12, 15] = 0.5 + 2 * limit  # bright in channel 1 only
    image[:, 14, 10] = 0.5 + 2 * limit  # in both
    found = brighter_than_typical(image, healthy, lesion, grow=0)
    assert np.array_equal(np.argwhere(found & ~lesion), [[14, 10]])
    image[1][lesion] = 0.2  # channel 1 no longer lesion-bright: channel 0 alone decides
    found = brighter_than_typical(image, healthy, lesion, grow=0)
    assert np.array_equal(np.argwhere(found & ~lesion), [[12, 5], [14, 10]])


def test_brighter_than_typical_is_empty_without_a_lesion_bright_channel():
    image, healthy, lesion, limit = spot_case()
    image[0, 14, 10] = 0.5 + 2 * limit
    for found in (brighter_than_typical(image, healthy, np.zeros_like(lesion)),
                  brighter_than_typical(-image, healthy, lesion)):  # lesion darker than tissue
        assert found.dtype == bool and not found.any()
    image[0, 14, 10] = 0.5
    assert np.array_equal(brighter_than_typical(image, healthy, lesion), l1_distance_to(lesion) <= 1)


def test_wide_csf_keeps_fluid_that_survives_a_one_voxel_opening_grown_by_one():
    image, healthy, lesion, limit = spot_case(centre=0.0)
    dark = -1.2 * limit  # beyond the limit, within 3.5 robust SDs
    image[0, 11:14, 2:5] = dark  # 3 x 3 ventricle: the opening keeps its cross
    image[0, 11:13, 8:10] = dark  # 2 x 2: too thin
    image[0, 11:16, 13] = dark  # a 1-voxel sulcus
    image[0, 12, 17] = -limit  # at the limit: not dark
    found = wide_csf(image, healthy, lesion)
    centre = np.zeros_like(lesion)
    centre[12, 3] = True  # the cross kept by the opening, grown by one: all within two voxels of its centre
    assert found.dtype == bool and np.array_equal(found, l1_distance_to(centre) <= 2)


def test_wide_csf_needs_every_lesion_bright_channel_and_strictly_beyond_the_limit():
    image, healthy, lesion, limit = spot_case(centre=0.0)
    image = np.concatenate([image, image])
    image[0, 11:16, 2:7] = -2 * limit  # dark in channel 0 only
    image[1, 11:15, 8:11] = -2 * limit  # dark in channel 1 only
    image[:, 11:16, 12:17] = -2 * limit  # dark in both
    image[:, 11:16, 18:21] = -limit  # at the limit
    found = wide_csf(image, healthy, lesion)
    assert not found[:, :11].any() and found[14, 14] and not found[12:15, 19].any()
    assert found[11:16, 12:17].all() and not found[:, 18:].any()
    spread = wide_csf(image, healthy, lesion, spread=7.5)  # twice the 2.5-SD limit is within 7.5 SDs
    assert not spread.any()
    for none in (wide_csf(image, healthy, np.zeros_like(lesion)), wide_csf(-image, healthy, lesion)):
        assert none.dtype == bool and not none.any()


# match_intensity

def test_match_intensity_maps_median_and_iqr_per_channel():
    source_ring = np.array([[0.1, 0.2, 0.3, 0.4, 0.5], [1.0, 1.1, 1.2, 1.3, 1.4]])
    target_ring = np.array([[0.4, 0.52, 0.6, 0.76, 0.9], [2.0, 2.05, 2.1, 2.15, 2.2]])
    source = np.array([[0.0, 0.3, 1.0], [1.2, 1.0, 1.6]])
    out = match_intensity(source, source_ring, target_ring)
    # channel 0: quartiles 0.2 / 0.3 / 0.4 -> 0.52 / 0.6 / 0.76, range ratio 1.2; channel 1: ratio 0.5, limited to 0.67
    assert out[0] == pytest.approx((source[0] - 0.3) * 1.2 + 0.6)
    assert out[1] == pytest.approx((source[1] - 1.2) * 0.67 + 2.1)


def test_match_intensity_limits_the_range_ratio_to_one_and_a_half():
    source_ring = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]])
    out = match_intensity(np.array([[0.4, 0.6]]), source_ring, 3 * source_ring)
    assert out[0] == pytest.approx([1.2, 1.5])  # (x - 0.4) * 1.5 + 1.2, not the ratio 3
    flat = match_intensity(np.array([[0.4, 0.5]]), np.full((1, 6), 0.4), source_ring)
    assert flat[0] == pytest.approx([0.4, 0.55])  # no spread to match: the ratio is the largest allowed


def test_match_intensity_needs_five_ring_voxels_on_either_side():
    source = np.array([[0.1, 0.9]])
    five, four = np.linspace(0.0, 1.0, 5)[None], np.linspace(0.0, 1.0, 4)[None]
    assert match_intensity(source, four, five + 1) is source
    assert match_intensity(source, five, four + 1) is source
    assert match_intensity(source, five, five + 1)[0] == pytest.approx([1.1, 1.9])


# depth_matched

def half_plane(shape=(12, 64)) -> np.ndarray:
    """Brain: every column from 5 on, so the depth (distance to the brain's edge) of column c is c - 4, and the
    smoothed depth's gradient is exactly (0, 1) from column 9 up to 5 columns before the array's edge."""
    brain = np.zeros(shape, bool)
    brain[..., 5:] = True
    return brain


def expected_depth(wanted: float, have: float, reach: float = 10.0, steps: int = 2) -> float:
    """Depth after the documented steps along a unit depth gradient: each moves by weight x (wanted - have),
    weight fading linearly from 1 at the edge to 0 at `reach` (of the shallower of the two), at most `reach`."""
    for _ in range(steps):
        weight = min(max(1 - min(wanted, have) / reach, 0.0), 1.0)
        have += min(max(weight * (wanted - have), -reach), reach)
    return have


@pytest.mark.parametrize(("wanted", "have"), [(8, 5.0), (5, 9.0), (7, 6.5), (40, 5.0), (5, 40.0), (15, 12.0),
                                              (9, 30.25)])
def test_depth_matched_moves_along_the_depth_gradient_by_the_faded_depth_difference(wanted, have):
    brain = half_plane()
    points = np.array([[2, wanted + 4], [9, wanted + 4], [5, wanted + 4]])
    mirrored = np.array([[3.3, have + 4], [7.0, have + 4], [0.0, have + 4]])
    out = depth_matched(points, mirrored, brain)
    assert out.dtype == float and np.array_equal(out[:, 0], mirrored[:, 0])  # in-plane, along the gradient only
    assert out[:, 1] - 4 == pytest.approx(np.full(3, expected_depth(wanted, have)), abs=1e-9)


def test_depth_matched_steps_and_reach_are_parameters():
    brain = half_plane()
    points, mirrored = np.array([[2, 12], [3, 12]]), np.array([[2.0, 9.0], [3.0, 9.0]])
    for steps, reach in ((1, 10.0), (3, 10.0), (2, 20.0), (5, 2.0)):
        out = depth_matched(points, mirrored, brain, reach=reach, steps=steps)
        assert out[:, 1] - 4 == pytest.approx(np.full(2, expected_depth(8, 5.0, reach, steps)), abs=1e-9)


def test_depth_matched_leaves_deep_pairs_and_keeps_the_leading_axis_of_a_volume():
    brain = half_plane((3, 8, 64))
    points = np.array([[0, 2, 14], [1, 3, 11], [2, 5, 30]])
    mirrored = np.array([[2.0, 2.5, 22.0], [1.0, 6.0, 9.0], [0.0, 4.0, 25.0]])
    out = depth_matched(points, mirrored, brain)
    assert np.array_equal(out[:, :2], mirrored[:, :2])
    assert out[:, 2] - 4 == pytest.approx([expected_depth(10, 18.0), expected_depth(7, 5.0), 21.0], abs=1e-9)
    deep = depth_matched(points[[0, 2]], mirrored[[0, 2]], brain)
    assert np.array_equal(deep, mirrored[[0, 2]])


def test_depth_matched_fade_ends_exactly_at_reach_with_linear_depth():
    brain = half_plane()
    points = np.array([[4, 34]])  # depth 30
    between = np.array([[4.0, 5.5]])  # between depths 1 and 2: linearly 1.5
    assert np.array_equal(depth_matched(points, between, brain, reach=1.5), between)  # at reach: no move
    moved = depth_matched(points, between, brain, reach=1.505)  # just inside: a small move inward
    assert moved[0, 0] == 4.0 and 5.55 < moved[0, 1] < 6.5


def test_depth_matched_near_the_edge_takes_newton_steps_along_the_shallow_slope():
    """Near the edge the smoothed depth rises by less than one per voxel: the step is divided by the squared slope,
    so the depth change, not the distance moved, follows the faded difference."""
    brain = half_plane()
    points = np.array([[6, 10]])  # depth 6
    out = depth_matched(points, np.array([[6.0, 5.5]]), brain)  # mirror at depth 1.5
    assert abs(out[0, 1] - 4 - 6) < 0.3


def test_depth_matched_beyond_the_array_edge_uses_the_edge_voxel():
    brain = half_plane()
    points = np.array([[3, 7]])  # depth 3
    out = depth_matched(points, np.array([[3.0, 64.5]]), brain)  # beyond the last column (depth 59 there)
    assert out[0, 0] == 3.0 and out[0, 1] < 64.5 - 15


# mirror_source

def symmetric_brain(seed: int = 0, size: int = 32):
    """(image (2, size, size), brain): a rectangle brain symmetric about column (size - 1) / 2; channel 0 a
    mirror-symmetric texture (it alone sets the mirror line), channel 1 an asymmetric one."""
    rng = np.random.default_rng(seed)
    brain = np.zeros((size, size), bool)
    brain[3:size - 3, 4:size - 4] = True
    texture = rng.uniform(0.35, 0.55, (size, size))
    texture[:, size // 2:] = texture[:, size // 2 - 1::-1]
    image = np.stack([texture, rng.uniform(0.35, 0.55, (size, size))]) * brain
    return image, brain


def test_mirror_source_samples_the_contralateral_voxel_and_marks_it_valid_on_healthy_tissue():
    image, brain = symmetric_brain()
    lesion = np.zeros_like(brain)
    lesion[12:15, 6:9] = True  # left
    image[:, lesion] = 0.95
    points = np.argwhere(brain & (np.indices(brain.shape)[1] >= 16))  # the right half
    values, valid = mirror_source(image, brain, lesion, points)
    mirror = points.copy()
    mirror[:, 1] = 31 - points[:, 1]
    assert np.array_equal(values, image[:, mirror[:, 0], mirror[:, 1]])
    assert np.array_equal(valid, l1_distance_to(lesion)[tuple(mirror.T)] > 2)
    assert valid.sum() < len(valid) - 20


def test_mirror_source_takes_the_nearest_voxel_at_depth_matched_positions():
    """A brain wider on the left: the mirror of the right edge is moved to matched depth, between voxels; values
    and validity come from the nearest voxel, not interpolated."""
    image, _ = symmetric_brain(seed=2)
    y, x = np.indices((32, 32)) - 15.5
    brain = (y / 13.5) ** 2 + (x / np.where(x > 0, 10.5, 13.5)) ** 2 < 1
    lesion = np.zeros_like(brain)
    lesion[15:17, 6:8] = True  # its halo's corners meet mirrors between voxels
    image = np.where(brain, image, 0.0)
    image[:, lesion] = 0.95
    points = np.argwhere(brain & (np.indices(brain.shape)[1] >= 18))
    values, valid = mirror_source(image, brain, lesion, points)
    line = estimate_mirror_line(image[0], brain, lesion)
    coords = depth_matched(points, mirrored_points(points, line), brain)
    assert (np.abs(coords - np.round(coords)) > 0.1).sum() > 20  # many mirrors between voxels
    nearest = np.clip(np.round(coords).astype(int), 0, 31)
    assert np.array_equal(values, image[:, nearest[:, 0], nearest[:, 1]])
    assert np.array_equal(valid, healthy_tissue(brain, lesion)[nearest[:, 0], nearest[:, 1]])


def test_mirror_source_marks_a_mirror_outside_the_image_invalid():
    image, _ = symmetric_brain()
    brain = np.zeros((32, 32), bool)
    brain[3:29, 2:18] = True  # mirror line at column 9.5
    image = np.where(brain, image, 0.0)
    lesion = np.zeros_like(brain)
    lesion[5, 5] = True
    points = np.array([[10, 30], [10, 12]])  # mirrors: column -11 (outside the image), column 7
    _, valid = mirror_source(image, brain, lesion, points)
    assert valid.tolist() == [False, True]


# fill_sources

def hemisphere_case(seed: int = 0):
    """Symmetric brain with a 4 x 4 lesion on the right; channel 1's right side is an affine (gain 1.2, +0.05)
    image of its left, so (median, IQR) matching of the mirror restores the hidden tissue exactly."""
    image, brain = symmetric_brain(seed)
    image[1] = image[0]
    right = np.indices(brain.shape)[1] >= 16
    image[1] = np.where(right & brain, 0.5 + 1.2 * (image[1] - 0.5) + 0.05, image[1])
    lesion = np.zeros_like(brain)
    lesion[10:14, 21:25] = True
    return image, brain, lesion


def test_fill_sources_mirror_restores_the_hidden_tissue_on_region_and_shell():
    clean, brain, lesion = hemisphere_case()
    image = np.where(lesion, 0.95, clean)
    source, ids = fill_sources(image, brain, lesion, lesion)
    shell = binary_dilation(lesion)
    assert np.array_equal(ids, np.where(shell, 0, -1))
    assert source[:, shell] == pytest.approx(clean[:, shell], abs=1e-12)
    assert not source[:, ~shell].any() and source.dtype == np.float64


def test_fill_sources_matches_the_mirror_to_the_typical_ring_within_five_voxels():
    clean, brain, lesion = hemisphere_case(seed=3)
    rng = np.random.default_rng(7)
    right = brain & (np.indices(brain.shape)[1] >= 16)
    clean[1] = np.where(right, rng.uniform(0.4, 0.7, brain.shape), clean[1])  # no longer an image of the left
    image = np.where(lesion, 0.95, clean)
    halo = np.zeros_like(brain)
    halo[7, 20:26] = True  # unlabelled halo in the ring (channel 0 stays symmetric: it sets the mirror line)
    image[1][halo] = 0.97
    source, ids = fill_sources(image, brain, lesion, lesion)
    shell = binary_dilation(lesion)
    healthy = brain & (l1_distance_to(lesion) > 2)
    typical = np.ones_like(brain)
    for channel in image:  # within 2.5 robust SDs of the healthy median: all but the halo
        q25, q50, q75 = np.percentile(channel[healthy], [25, 50, 75])
        typical &= np.abs(channel - q50) <= 2.5 * (q75 - q25) / 1.349
    ring = healthy & (distance_transform_edt(~lesion) <= 5) & typical
    assert np.array_equal(ring, healthy & (distance_transform_edt(~lesion) <= 5) & ~halo)
    assert np.array_equal(ids, np.where(shell, 0, -1))
    mirror = lambda mask: image[1][:, ::-1][mask]  # noqa: E731  (column c <-> 31 - c)
    m25, m50, m75 = np.percentile(mirror(ring), [25, 50, 75])
    t25, t50, t75 = np.percentile(image[1][ring], [25, 50, 75])
    ratio = np.clip((t75 - t25) / (m75 - m25), 0.67, 1.5)
    assert source[1][shell] == pytest.approx((mirror(shell) - m50) * ratio + t50, abs=1e-12)
    assert source[0][shell] == pytest.approx(clean[0][shell], abs=1e-12)


def share_case(blocked: int):
    """Region: a row of 10 voxels on the right; a lesion on the left two rows below the mirror of the first
    `blocked` of them (the two-voxel halo reaches exactly their mirrors)."""
    image, brain = symmetric_brain(seed=4)
    region = np.zeros_like(brain)
    region[12, 17:27] = True
    lesion = np.zeros_like(brain)
    lesion[14, 31 - 17 - blocked + 1:31 - 17 + 1] = True
    image[:, lesion] = 0.95
    return image, brain, lesion, region


def test_fill_sources_uses_the_mirror_when_it_covers_at_least_sixty_percent():
    image, brain, lesion, region = share_case(blocked=4)
    _, ids = fill_sources(image, brain, lesion, region)
    assert np.array_equal(ids[12, 17:27], [-1] * 0 + [ids[12, 17]] * 4 + [0] * 6)
    assert (ids[12, 17:21] > 0).all() and (ids[region] <= 1).all()
    image, brain, lesion, region = share_case(blocked=5)
    _, ids = fill_sources(image, brain, lesion, region)
    assert (ids[region] > 0).all()  # half the mirror missing: one coherent exemplar instead


def test_fill_sources_covers_what_the_mirror_leaves_with_one_exemplar():
    """A column of 10 voxels whose upper 4 mirror into a lesion's halo; the brain, 15 voxels tall, has no exemplar
    for all 10 (its interior is 9 tall) but one for the 4 left: a single piece fills them."""
    rng = np.random.default_rng(4)
    brain = np.zeros((21, 32), bool)
    brain[3:18, 4:28] = True
    texture = rng.uniform(0.35, 0.55, (21, 32))
    texture[:, 16:] = texture[:, 15::-1]
    image = (texture * brain)[None]
    region = np.zeros_like(brain)
    region[5:15, 20] = True
    lesion = np.zeros_like(brain)
    lesion[5:9, 9] = True  # two columns from the mirror of the upper 4
    image[:, lesion] = 0.95
    _, ids = fill_sources(image, brain, lesion, region)
    assert ids[5:15, 20].tolist() == [1] * 4 + [0] * 6


def pocket_case():
    """A brain almost all lesion but for a 6 x 6 pocket of healthy tissue in its corner, whose only voxel three
    voxels inside the brain and two from the lesion is (5, 5): every exemplar copy is of that one voxel."""
    rng = np.random.default_rng(5)
    brain = np.zeros((32, 32), bool)
    brain[2:30, 2:30] = True
    lesion = brain.copy()
    lesion[2:8, 2:8] = False
    image = np.where(lesion, 0.9, rng.uniform(0.3, 0.5, brain.shape))[None] * brain
    region = np.zeros_like(brain)
    region[20, 8:20] = True  # 12 voxels, all inside the lesion
    return image, brain, lesion, region


@pytest.mark.parametrize("corner", ["top left", "bottom right"])
def test_fill_sources_copies_only_interior_healthy_tissue_and_at_most_max_pieces(corner):
    image, brain, lesion, region = pocket_case()
    if corner == "bottom right":  # shifts towards the far end: shell voxels' origins fall beyond the image
        image, brain, lesion, region = image[:, ::-1, ::-1], brain[::-1, ::-1], lesion[::-1, ::-1], region[::-1, ::-1]
    source, ids = fill_sources(image, brain, lesion, region)
    filled = ids[region]
    assert sorted(filled[filled > 0].tolist()) == list(range(1, MAX_PIECES + 1))
    assert (filled[filled <= 0] == -1).all()
    pocket = (5, 5) if corner == "top left" else (26, 26)
    assert (source[0][ids > 0] == image[(0, *pocket)]).all()
    assert np.array_equal(ids > 0, region & (ids > 0)) and not source[0][ids < 0].any()


# fill_healthy

def test_fill_healthy_changes_only_the_region_inside_the_brain_and_keeps_the_dtype():
    clean, brain, lesion = hemisphere_case()
    image = np.where(lesion, 0.95, clean).astype(np.float32)
    region = binary_dilation(lesion) | ~brain  # outside the brain is never changed
    out = fill_healthy(image, brain, lesion, region)
    inside = lesion | binary_dilation(lesion) & brain
    assert out.dtype == np.float32 and np.array_equal(out[:, ~inside], image[:, ~inside])
    assert np.abs(out[:, inside] - clean[:, inside]).max() < 0.05  # the mirror, exact here, barely blended
    empty = fill_healthy(image, brain, lesion, ~brain)
    assert np.array_equal(empty, image) and empty is not image
    assert fill_healthy(image.astype(np.float64), brain, lesion, lesion).dtype == np.float64


def test_fill_healthy_clips_the_fill_to_zero_one():
    clean, brain, lesion = hemisphere_case()
    image = np.stack([clean[0] + 0.8, clean[1] - 0.9]) * brain  # tissue above 1 in channel 0, below 0 in 1
    image[:, lesion] = [[1.9], [0.5]]
    out = fill_healthy(image, brain, lesion, lesion)
    assert (out[0][lesion] == 1.0).all() and (out[1][lesion] == 0.0).all()
    assert np.array_equal(out[:, ~lesion], image[:, ~lesion])


def test_fill_healthy_gives_voxels_no_source_reaches_the_nearest_healthy_value():
    """Deep in a lesion, with no mirror and no exemplar, the region takes the healthy tissue's value, not the
    lesion's and not zero."""
    _, brain, _, _ = pocket_case()
    lesion = brain.copy()
    lesion[2:7, 2:7] = False  # a 5 x 5 pocket: healthy but no voxel three inside the brain, so no exemplar
    image = np.where(lesion, 0.9, 0.4)[None] * brain
    region = np.zeros_like(brain)
    region[19:22, 14:17] = True
    assert (fill_sources(image, brain, lesion, region)[1] < 0).all()
    out = fill_healthy(image.astype(np.float32), brain, lesion, region)
    assert out[0][region] == pytest.approx(0.4, abs=1e-6)


def test_fill_healthy_gives_an_unsourced_voxel_its_nearest_sourced_voxels_value():
    """A strip too thin for exemplars (no voxel three inside the brain): the region's block is mirrored, its lone
    voxel at (4, 24) mirrors into the left lesion. Surrounded by lesion it has nothing to blend with, so it keeps the
    value of the nearest sourced voxel, (5, 22) on the block's shell (background and lesion are nearer or as near)."""
    rng = np.random.default_rng(6)
    brain = np.zeros((12, 32), bool)
    brain[3:9, 4:28] = True
    texture = rng.uniform(0.35, 0.55, (12, 32))
    texture[:, 16:] = texture[:, 15::-1]
    image = np.stack([texture, rng.uniform(0.35, 0.55, (12, 32))]) * brain
    lesion = np.zeros_like(brain)
    lesion[3:9, 18:28] = True
    lesion[3:9, 4:7] = True
    image[:, lesion] = 0.95
    region = np.zeros_like(brain)
    region[5:7, 20:22] = True
    region[4, 24] = True
    source, ids = fill_sources(image, brain, lesion, region)
    assert ids[4, 24] == -1 and (ids[5:7, 20:23] == 0).all()
    out = fill_healthy(image, brain, lesion, region)
    assert out[:, 4, 24] == pytest.approx(source[:, 5, 22], abs=1e-9)
    assert np.abs(out[:, 4, 24] - image[:, 5, 22]).min() > 0.3


def test_fill_healthy_leaves_free_borders_at_remaining_tumour_and_the_brains_edge():
    """An exact mirror survives the blend unchanged where the region meets remaining tumour of typical intensity and
    the brain's edge next to a typical (dark-tissue) background: neither is an anchor."""
    clean, brain, lesion = hemisphere_case()
    clean = (clean - 0.35) * brain  # tissue 0 .. 0.3: the background (0) lies within its typical range
    lesion = np.zeros_like(brain)
    lesion[10:16, 22:28] = True  # reaches the brain's right edge (column 27)
    region = lesion.copy()
    region[13:16] = False  # the lesion's lower half stays
    image = clean.copy()
    image[:, lesion & ~region] = clean[:, brain].mean() + 0.12  # typical intensity, unlike the tissue it hides
    image[:, region] = 0.9
    out = fill_healthy(image, brain, lesion, region)
    assert out[:, region] == pytest.approx(clean[:, region], abs=1e-9)


def test_fill_healthy_meets_the_healthy_tissue_bordering_the_region():
    """No ring to match intensities (the lesion spreads three voxels around the region), channel 1 brighter by 0.1 on
    the region's side: only the anchors, the one-voxel gap in the lesion beside the region, lift the mirror by 0.1."""
    image, brain = symmetric_brain(seed=8)
    image[1] = image[0] + 0.1 * (np.indices(brain.shape)[1] >= 16) * brain
    clean = image.copy()
    region = np.zeros_like(brain)
    region[10:14, 21:25] = True
    lesion = np.zeros_like(brain)
    lesion[7:17, 18:28] = True
    lesion[10:14, 20] = False  # the gap: healthy tissue touching the region
    image[:, lesion] = 0.9
    out = fill_healthy(image, brain, lesion, region)
    assert out[:, region] == pytest.approx(clean[:, region], abs=0.01)
    assert np.abs(out[1][region] - image[1][:, ::-1][region]).min() > 0.09  # not the raw mirror
