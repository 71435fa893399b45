"""Unit tests of the fill's parts on small hand-built arrays: exemplar search, Poisson blend, texture matching, local
statistics, the minimum exemplar shift and the halo rules (`lesion_support`, `clearance`, `atypical_near`). Each
expected value is worked out from the rule the docstring states (closed forms, brute-force windows)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.ndimage import binary_dilation, distance_transform_cdt, distance_transform_edt, gaussian_filter1d

from perturbations.fill import (
    atypical_near,
    best_exemplar_shift,
    clearance,
    correlation,
    lesion_support,
    local_std,
    masked_local_std,
    match_texture,
    min_shift,
    poisson_blend,
    source_texture,
    spread_inward,
)


def window_stats(values: np.ndarray, mask: np.ndarray, index: tuple[int, ...], size: int = 5) -> tuple[float, float]:
    """(population std of the `mask` voxels in the size^ndim window centred at `index`, their share of it), by hand."""
    half = size // 2
    window = tuple(slice(i - half, i + half + 1) for i in index)
    chosen = values[window][mask[window]]
    return (float(chosen.std()) if chosen.size else 0.0), chosen.size / size ** values.ndim


@pytest.mark.parametrize("n", [1, 4, 12, 50])
def test_min_shift_in_2d_is_the_diameter_of_the_disc_of_equal_area(n):
    todo = np.zeros((12, 12), bool)
    todo.flat[:n] = True
    assert min_shift(todo) == pytest.approx(2 * np.sqrt(n / np.pi), rel=1e-12)


@pytest.mark.parametrize("n", [1, 8, 27, 30])
def test_min_shift_in_3d_is_twice_the_side_of_the_cube_of_equal_volume(n):
    todo = np.zeros((4, 4, 4), bool)
    todo.flat[:n] = True
    assert min_shift(todo) == pytest.approx(2 * n ** (1 / 3), rel=1e-12)


def test_min_shift_of_a_cube_and_of_a_square_by_hand():
    cube = np.zeros((5, 5, 5), bool)
    cube[1:3, 1:3, 1:3] = True  # 8 voxels: side 2
    assert min_shift(cube) == pytest.approx(4.0)
    disc = np.zeros((9, 9), bool)
    disc[0, :4] = True  # area 4 = pi r^2
    assert min_shift(disc) == pytest.approx(4 / np.sqrt(np.pi))


def test_correlation_sums_small_times_shifted_big_for_every_shift():
    rng = np.random.default_rng(0)
    big, small = rng.normal(size=(7, 6)), rng.normal(size=(3, 4))
    out = correlation(big, small)
    assert out.shape == (7 + 3 - 1, 6 + 4 - 1)
    offset = np.array(small.shape) - 1
    for k in np.ndindex(*out.shape):
        shift = np.array(k) - offset
        total = 0.0
        for p in np.ndindex(*small.shape):
            q = np.array(p) + shift
            if np.all(q >= 0) and np.all(q < big.shape):
                total += small[p] * big[tuple(q)]
        assert out[k] == pytest.approx(total, abs=1e-10)


def test_local_std_is_the_std_of_each_5x5_window():
    rng = np.random.default_rng(1)
    image = rng.uniform(0.2, 0.8, (11, 12))
    out = local_std(image)
    for i in range(2, 9):
        for j in range(2, 10):
            assert out[i, j] == pytest.approx(image[i - 2:i + 3, j - 2:j + 3].std(), abs=1e-12)


def test_local_std_of_a_constant_is_zero_not_nan():
    for value in (0.06, 0.11, 0.17):  # values where E[x^2] - E[x]^2 rounds below zero
        out = local_std(np.full((9, 9), value))
        assert np.isfinite(out).all()
        assert np.abs(out).max() < 1e-6


@pytest.mark.parametrize("ndim", [2, 3])
def test_masked_local_std_is_the_std_over_the_masked_voxels_of_each_window(ndim):
    rng = np.random.default_rng(2)
    shape = (10, 11) if ndim == 2 else (7, 8, 7)
    values = rng.normal(0.5, 0.2, shape)
    mask = rng.random(shape) < 0.45
    spread, share = masked_local_std(values, mask)
    for index in np.ndindex(*[n - 4 for n in shape]):
        index = tuple(i + 2 for i in index)
        want_std, want_share = window_stats(values, mask, index)
        assert share[index] == pytest.approx(want_share, abs=1e-12)
        assert spread[index] == pytest.approx(want_std, abs=1e-6)


def test_masked_local_std_ignores_the_values_outside_the_mask_and_is_zero_on_a_constant():
    rng = np.random.default_rng(3)
    mask = np.zeros((11, 11), bool)
    mask[:, :5] = True
    values = np.where(mask, 0.11, rng.normal(5.0, 3.0, mask.shape))  # a constant source beside a wild one
    spread, share = masked_local_std(values, mask)
    assert np.isfinite(spread).all()
    assert np.abs(spread).max() < 1e-6
    assert share[5, 4] == pytest.approx(3 / 5) and share[5, 7] == 0.0


def measured_texture(values, ids, inside):
    """By hand: (std over the window's voxels of the voxel's own source, measured where that share >= 0.4)."""
    have, measured = np.zeros(ids.shape), np.zeros(ids.shape, bool)
    for index in zip(*np.nonzero(inside), strict=True):
        spread, share = window_stats(values, ids == ids[index], index)
        if share >= 0.4:
            have[index], measured[index] = spread, True
    return have, measured


def test_source_texture_measures_each_source_on_its_own_and_smooths_over_the_measured_voxels():
    rng = np.random.default_rng(4)
    values = rng.normal(0.5, 0.05, (24, 24))
    values[:, 12:] = rng.normal(0.5, 0.2, (24, 12))  # a busier second source
    ids = np.where(np.arange(24)[None, :] < 12, 0, 3) * np.ones((24, 1), int)
    ids[:, :3] = -1
    inside = np.zeros(ids.shape, bool)
    inside[4:20, 4:20] = True
    inside[10:13, 10:14] = False
    have, measured = measured_texture(values, ids, inside)
    want = spread_inward(have, measured, 2.0)
    assert np.allclose(source_texture(values, ids, inside), want, atol=1e-9)


def test_source_texture_needs_twenty_voxels_with_enough_of_their_own_source():
    values = np.tile(np.array([0.4, 0.6]), (30, 15))  # columns alternate
    ids = np.full(values.shape, 1)
    ids[:, 10:12] = 0  # a two-column source: a voxel of it has 10 of 25 window voxels (share 0.4 exactly)
    inside = np.zeros(ids.shape, bool)
    inside[5:25, 11] = True
    have = source_texture(values, ids, inside)
    assert have is not None
    assert np.allclose(have, 0.1)  # two columns, one at 0.4, one at 0.6: std 0.1 everywhere
    inside[5, 11] = False
    assert source_texture(values, ids, inside) is None


def halo_scene(seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image (2, 24, 24), brain, lesion): uniform healthy tissue in [0.4, 0.6] (nothing beyond 2 robust standard
    deviations of its median), a bright 2x2 lesion at rows/columns 10..11, a one-voxel background frame."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.4, 0.6, (2, 24, 24))
    brain = np.zeros((24, 24), bool)
    brain[1:23, 1:23] = True
    image[:, ~brain] = 0.0
    lesion = np.zeros_like(brain)
    lesion[10:12, 10:12] = True
    image[:, lesion] = 0.95
    return image, brain, lesion


def robust(channel: np.ndarray, healthy: np.ndarray) -> tuple[float, float]:
    """Median and robust standard deviation (IQR / 1.349) of the healthy voxels, by hand."""
    q25, q50, q75 = np.percentile(channel[healthy], [25, 50, 75])
    return q50, (q75 - q25) / 1.349


def healthy_of(brain, lesion):
    """Brain two voxels (city block) or more from the lesion: the fill's definition of healthy tissue."""
    return brain & (distance_transform_cdt(~lesion, metric="taxicab") > 2)


def test_atypical_near_takes_voxels_beyond_two_robust_deviations_in_any_channel_within_reach():
    image, brain, lesion = halo_scene()
    q50, rsd = robust(image[0], healthy_of(brain, lesion))
    image[0, 10, 13] = q50 + 2.2 * rsd  # atypical only at a spread of 2
    image[0, 12, 10] = q50 - 2.2 * rsd  # dark counts too
    image[0, 11, 13] = q50 + 1.8 * rsd  # typical
    q50_1, rsd_1 = robust(image[1], healthy_of(brain, lesion))
    image[1, 9, 11] = q50_1 + 2.3 * rsd_1  # atypical in the second channel only
    image[0, 10, 15] = image[0, 10, 16] = 0.95  # 4 and 5 voxels from the lesion
    out = atypical_near(image, brain, lesion, lesion, reach=4)
    want = lesion.copy()
    for index in [(10, 13), (12, 10), (9, 11), (10, 15)]:
        want[index] = True
    assert np.array_equal(out, want)


def test_clearance_within_two_voxels_is_the_lesion_dilated_by_two_inside_the_brain():
    image, brain, lesion = halo_scene()
    image[:, 10, 12:18] = 0.9  # a bright halo reaching 6 voxels out
    removed = np.zeros_like(lesion)
    removed[1:3, 5:7] = True  # a second lesion on the brain's edge
    two = (distance_transform_cdt(~(lesion | removed), metric="taxicab") <= 2) & brain
    for reach in (0, 1, 2):
        assert np.array_equal(clearance(image, brain, lesion | removed, lesion | removed, reach), two)


def test_clearance_within_two_voxels_in_3d_ignores_atypical_tissue_diagonally_beyond_the_dilation():
    rng = np.random.default_rng(13)
    image = rng.uniform(0.4, 0.6, (1, 11, 11, 11))
    brain = np.ones((11, 11, 11), bool)
    lesion = np.zeros_like(brain)
    lesion[5, 5, 5] = True
    image[0, 5, 5, 5] = image[0, 6, 6, 6] = 0.95  # (1, 1, 1) away: sqrt(3) < 2 voxels, but 3 steps
    two = distance_transform_cdt(~lesion, metric="taxicab") <= 2
    assert np.array_equal(clearance(image, brain, lesion, lesion, 2), two)
    assert clearance(image, brain, lesion, lesion, 3)[6, 6, 6]


def test_clearance_grows_through_connected_atypical_tissue_within_reach():
    image, brain, lesion = halo_scene()
    image[:, 10, 12:20] = 0.9  # a bright halo from the lesion, 1..8 voxels out
    image[:, 15, 11] = 0.9  # an isolated bright voxel 4 voxels out, not touching the halo or the seed
    seed = (distance_transform_cdt(~lesion, metric="taxicab") <= 2) & brain
    out3 = clearance(image, brain, lesion, lesion, 3)
    want3 = seed.copy()
    want3[10, 14] = True  # 3 voxels out: the first beyond the seed
    assert np.array_equal(out3, want3)
    out5 = clearance(image, brain, lesion, lesion, 5)
    want5 = seed.copy()
    want5[10, 14:17] = True
    assert np.array_equal(out5, want5)


def support_by_hand(halo: np.ndarray, brain: np.ndarray, soft: float) -> np.ndarray:
    """1 on the halo, 1 - d / soft at Euclidean distance d from it, 0 beyond and outside the brain."""
    if not halo.any():
        return np.zeros(halo.shape)
    return np.clip(1.0 - distance_transform_edt(~halo) / soft, 0.0, 1.0) * brain


def support_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(image (2, 30, 30), brain, lesion, halo): a lesion bright in both channels with a halo bright in the first
    channel only, running 1..4 voxels to the right, and dark CSF on its left."""
    rng = np.random.default_rng(6)
    image = rng.uniform(0.4, 0.6, (2, 30, 30))
    brain = np.zeros((30, 30), bool)
    brain[2:28, 2:28] = True
    image[:, ~brain] = 0.0
    lesion = np.zeros_like(brain)
    lesion[12:16, 12:16] = True
    image[:, lesion] = 0.95
    image[0, 13, 16:20] = 0.8  # halo, 1..4 voxels out
    image[:, 13, 9:12] = 0.05  # CSF beside the lesion
    halo = lesion.copy()
    halo[13, 16:19] = True  # within reach 3
    return image, brain, lesion, halo


@pytest.mark.parametrize("soft", [2.0, 4.0])
def test_lesion_support_is_one_on_the_lesion_and_its_bright_halo_within_reach_and_falls_off_linearly(soft):
    image, brain, lesion, halo = support_scene()
    out = lesion_support(image, brain, lesion, reach=3, soft=soft)
    assert np.allclose(out, support_by_hand(halo, brain, soft))


def test_lesion_support_halo_of_a_dark_lesion_is_dark_tissue_not_bright():
    image, brain, lesion, _ = support_scene()
    image = image[1:].copy()
    image[0, lesion] = 0.1  # hypointense lesion (T1)
    image[0, 11, 12:15] = 0.2  # dark halo above it
    image[0, 16, 12:15] = 0.9  # bright tissue below it
    image[0, 13, 9:12] = 0.5  # no CSF here
    halo = lesion.copy()
    halo[11, 12:15] = True
    assert np.allclose(lesion_support(image, brain, lesion, reach=3), support_by_hand(halo, brain, 2.0))


def test_lesion_support_ignores_a_channel_where_the_lesion_is_at_the_healthy_median():
    image, brain, lesion, _ = support_scene()
    image[0, 13, 16:20] = 0.5  # no halo in the first channel
    pattern = np.array([0.45, 0.5, 0.5, 0.55])
    image[1] = np.where(brain, pattern[np.arange(30 * 30).reshape(30, 30) % 4], 0.0)  # median exactly 0.5
    image[1, lesion] = 0.5
    image[1, 16, 12:15] = 0.9  # bright in that channel only: not the lesion's side of anything
    assert np.allclose(lesion_support(image, brain, lesion, reach=3), support_by_hand(lesion, brain, 2.0))


def test_lesion_support_excludes_bright_tissue_outside_the_brain():
    image, brain, lesion, _ = support_scene()
    image[0, 13, 16:20] = 0.5
    lesion[:] = False
    lesion[3:6, 10:14] = True  # on the brain's upper edge (row 2 is its first row)
    image[:, lesion] = 0.95
    image[:, 0:2, 8:16] = 0.9  # bright scalp just outside the brain
    out = lesion_support(image, brain, lesion, reach=3)
    assert np.allclose(out, support_by_hand(lesion, brain, 2.0))


def test_lesion_support_halo_is_judged_against_the_healthy_median_and_robust_deviation_strictly():
    image, brain, lesion, _ = support_scene()
    image = image[:1].copy()
    image[0, 13, 16:20] = 0.5
    healthy = healthy_of(brain, lesion)
    image[0][brain & ~lesion] = 0.0
    levels = np.array([-0.1, -0.05, 0.0, 0.05, 0.1])
    image[0][healthy] = levels[np.arange(healthy.sum()) % 5]  # median exactly 0 (negative intensities)
    q25, q50, q75 = np.percentile(image[0][healthy], [25, 50, 75])
    assert q50 == 0.0
    threshold = 2.0 * (q75 - q25) / 1.349
    image[0, 11, 13] = threshold  # exactly two robust deviations: not more
    image[0, 16, 13] = 1.1 * threshold
    halo = lesion.copy()
    halo[16, 13] = True
    assert np.allclose(lesion_support(image, brain, lesion, reach=3), support_by_hand(halo, brain, 2.0))


@pytest.mark.parametrize("count", [19, 20])
def test_lesion_support_needs_twenty_healthy_voxels_to_judge_the_halo(count):
    """With fewer, the healthy reference is a unit scale (median 0, IQR 1), so a halo at 0.8 is typical."""
    brain = np.zeros((20, 40), bool)
    lesion = np.zeros_like(brain)
    lesion[8, 8] = True
    brain |= distance_transform_cdt(~lesion, metric="taxicab") <= 2  # all of it within the halo exclusion
    brain[2, 20:20 + count] = True  # the only healthy voxels
    image = np.where(brain, 0.5 + 0.01 * np.arange(40) % 0.05, 0.0)[None]
    image[0, 8, 8] = 0.95
    image[0, 8, 9] = 0.8
    halo = lesion.copy()
    halo[8, 9] = count >= 20
    assert np.allclose(lesion_support(image, brain, lesion, reach=2), support_by_hand(halo, brain, 2.0))


def test_lesion_support_without_a_healthy_reference_uses_median_zero_and_iqr_one():
    brain = np.zeros((12, 12), bool)
    lesion = np.zeros_like(brain)
    lesion[6, 6] = True
    brain |= distance_transform_cdt(~lesion, metric="taxicab") <= 2  # no healthy voxel at all
    image = np.where(brain, 0.5, 0.0)[None]
    image[0, 6, 6] = 5.0
    image[0, 6, 7] = 2.0  # above 2 / 1.349 = 1.48 on the unit scale
    image[0, 5, 6] = 1.4  # below it
    halo = lesion.copy()
    halo[6, 7] = True
    assert np.allclose(lesion_support(image, brain, lesion, reach=2), support_by_hand(halo, brain, 2.0))


def test_lesion_support_without_a_lesion_is_zero_and_silent():
    image, brain, lesion, _ = support_scene()
    brain[:] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no statistics of an empty lesion
        out = lesion_support(image, brain, np.zeros_like(lesion), reach=3)
    assert np.array_equal(out, np.zeros(brain.shape))


def blend_by_hand(image, source, ids, region, anchor, eps=1e-3):
    """The blend's problem solved directly: f on `region` minimising, over neighbour pairs, (f_p - f_q - g_pq)^2
    with g_pq = source_p - source_q for two voxels of one source (ids >= 0) and 0 otherwise, f_q = image_q at
    `anchor` voxels outside the region, no term for other neighbours, plus eps (f_p - source_p)^2."""
    points = [tuple(p) for p in np.argwhere(region)]
    number = {p: k for k, p in enumerate(points)}
    out = image.astype(np.float64).copy()
    for c in range(image.shape[0]):
        rows, rhs = [], []
        for p in points:
            for axis in range(region.ndim):
                for step in (-1, 1):
                    q = list(p)
                    q[axis] += step
                    q = tuple(q)
                    if not all(0 <= q[a] < region.shape[a] for a in range(region.ndim)):
                        continue
                    g = source[c][p] - source[c][q] if ids[p] == ids[q] and ids[p] >= 0 else 0.0
                    row = np.zeros(len(points))
                    row[number[p]] = 1.0
                    if q in number:
                        if q < p:
                            continue  # each pair once
                        row[number[q]] = -1.0
                        rows.append(row), rhs.append(g)
                    elif anchor[q]:
                        rows.append(row), rhs.append(g + image[c][q])
            row = np.zeros(len(points))
            row[number[p]] = np.sqrt(eps)
            rows.append(row), rhs.append(np.sqrt(eps) * source[c][p])
        solution = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
        out[c][region] = solution
    return out


def strip(width: int = 8, rows: int = 1):
    """A one-voxel-high region between two columns of a (1, rows, width) image: the middle row, columns 1..width-2."""
    region = np.zeros((rows, width), bool)
    region[rows // 2, 1:-1] = True
    return region


def test_poisson_blend_without_a_guide_is_the_linear_ramp_between_its_anchors():
    region = strip()
    anchor = ~region
    image = np.full((1, 1, 8), 9.0)
    image[0, 0, 0], image[0, 0, 7] = 0.2, 0.9
    ramp = 0.2 + 0.7 * np.arange(1, 7) / 7
    source = np.tile(ramp, (1, 1, 1))
    source = np.pad(source, ((0, 0), (0, 0), (1, 1)))
    ids = np.full(region.shape, -1)  # no source: no gradient to keep (source equals the ramp, so eps is moot)
    out = poisson_blend(image, source, ids, region, anchor)
    assert np.allclose(out[0, 0, 1:7], ramp, atol=1e-12)
    assert out[0, 0, 0] == 0.2 and out[0, 0, 7] == 0.9


def test_poisson_blend_keeps_the_source_gradient_and_meets_consistent_anchors():
    rng = np.random.default_rng(7)
    source = rng.uniform(0.2, 0.8, (1, 9, 9))
    region = np.zeros((9, 9), bool)
    region[2:7, 3:7] = True
    ids = np.zeros(region.shape, int)
    image = np.where(region, 0.0, source + 0.25)  # the healthy tissue is the source plus 0.25
    out = poisson_blend(image, source, ids, region, ~region)
    assert np.allclose(out[0][region], source[0][region] + 0.25, atol=2e-3)  # eps pulls 0.25 only a little
    assert np.array_equal(out[0][~region], image[0][~region])
    same = poisson_blend(source, source, ids, region, ~region)
    assert np.allclose(same, source, atol=1e-12)


def test_poisson_blend_of_a_piece_without_anchors_is_its_source():
    rng = np.random.default_rng(8)
    source = rng.uniform(0.2, 0.8, (2, 8, 8))
    region = np.zeros((8, 8), bool)
    region[2:5, 2:6] = True
    out = poisson_blend(np.full_like(source, 3.0), source, np.ones(region.shape, int), region,
                        np.zeros_like(region))
    assert np.allclose(out[:, region], source[:, region], atol=1e-9)


@pytest.mark.parametrize("case", ["strip", "free sides", "two sources", "blob", "volume"])
def test_poisson_blend_solves_the_documented_least_squares_problem(case):
    rng = np.random.default_rng(9)
    if case == "strip":  # anchors on the array's first and last columns
        region, anchor = strip(), ~strip()
        ids = np.zeros(region.shape, int)
    elif case == "free sides":  # one anchor; the rest of the border is tumour or outside the brain
        region = strip(rows=3)
        anchor = np.zeros_like(region)
        anchor[1, 0] = True
        ids = np.zeros(region.shape, int)
    elif case == "two sources":  # ids 1 and 2 side by side, one voxel without a source
        region, anchor = strip(10, 3), np.zeros((3, 10), bool)
        anchor[1, [0, 9]] = True
        ids = np.where(np.arange(10) < 5, 1, 2)[None].repeat(3, 0)
        ids[1, 7] = -1
    elif case == "blob":
        region = np.zeros((9, 9), bool)
        region[2:7, 2:6] = True
        region[4, 6] = True
        anchor = ~region
        anchor[2:5, 0:4] = False
        ids = rng.integers(-1, 3, region.shape)
    else:
        region = np.zeros((5, 5, 5), bool)
        region[1:4, 1:4, 1:3] = True
        anchor = ~region
        anchor[0] = False
        ids = rng.integers(0, 2, region.shape)
    shape = (2, *region.shape)
    image, source = rng.uniform(0, 1, shape), rng.uniform(0, 1, shape)
    image[:, ~region & ~anchor] = 5.0  # tumour or background: must not pull
    source[:, :, 5:] += 0.5 * (case == "two sources")  # a step where source 1 meets source 2
    out = poisson_blend(image, source, ids, region, anchor)
    assert np.allclose(out, blend_by_hand(image, source, ids, region, anchor), atol=1e-9)
    assert np.allclose(poisson_blend(image, source, ids, region, anchor | region), out, atol=1e-12)


def exemplar_scene(seed: int = 10, channels: int = 1):
    """(image (C, 32, 32) of uniform noise, todo: a 2x2 hole at rows/columns 14..15, ring: the 12 voxels around it)."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.3, 0.7, (channels, 32, 32))
    todo = np.zeros((32, 32), bool)
    todo[14:16, 14:16] = True
    ring = np.zeros_like(todo)
    ring[13:17, 13:17] = True
    return image, todo, ring & ~todo


def plant(image, ring, shift, noise=0.0, channels=None, seed=11):
    """Copy the ring's values (of `channels`) to the ring moved by `shift`, plus uniform noise of that size."""
    rng = np.random.default_rng(seed)
    channels = range(image.shape[0]) if channels is None else channels
    for p in np.argwhere(ring):
        for c in channels:
            image[(c, *(p + np.array(shift)))] = image[(c, *p)] + noise * rng.uniform(-1, 1)


def ring_ssd(image, ring, shift):
    """Sum over channels and ring voxels of the squared difference between the ring and its copy at `shift`."""
    p = np.argwhere(ring)
    return float(((image[(slice(None), *(p + np.array(shift)).T)] - image[(slice(None), *p.T)]) ** 2).sum())


def test_best_exemplar_shift_finds_the_one_exact_copy_of_the_ring():
    image, todo, ring = exemplar_scene()
    plant(image, ring, (6, 9))
    assert ring_ssd(image, ring, (6, 9)) == 0.0
    shift, count = best_exemplar_shift(image, np.ones_like(todo), todo, ring, min_shift(todo))
    assert tuple(shift) == (6, 9) and count == 4


def test_best_exemplar_shift_sums_the_squared_differences_over_channels():
    image, todo, ring = exemplar_scene(channels=2)
    image[1] = 0.5 + 0.05 * (image[1] - 0.5)  # a low-contrast second channel
    plant(image, ring, (6, 9), channels=[0])  # exact in the first channel
    plant(image, ring, (-7, 5), channels=[1])  # exact in the second
    assert ring_ssd(image, ring, (6, 9)) < ring_ssd(image, ring, (-7, 5))
    shift, count = best_exemplar_shift(image, np.ones_like(todo), todo, ring, min_shift(todo))
    assert tuple(shift) == (6, 9) and count == 4


@pytest.mark.parametrize(("near", "far", "limit"), [((0, 4), (-9, 2), 5.0), ((3, 4), (-9, 2), 5.1)])
def test_best_exemplar_shift_never_takes_a_copy_nearer_than_min_shift(near, far, limit):
    image, todo, ring = exemplar_scene()
    plant(image, ring, near)  # exact, but too close
    plant(image, ring, far, noise=0.01)
    shift, count = best_exemplar_shift(image, np.ones_like(todo), todo, ring, limit)
    assert tuple(shift) == far and count == 4


def test_best_exemplar_shift_accepts_a_copy_exactly_min_shift_away():
    image, todo, ring = exemplar_scene()
    plant(image, ring, (3, 4))  # 5 voxels away
    plant(image, ring, (-9, 2), noise=0.01)
    shift, count = best_exemplar_shift(image, np.ones_like(todo), todo, ring, 5.0)
    assert tuple(shift) == (3, 4) and count == 4


def test_best_exemplar_shift_prefers_a_copy_covering_the_whole_hole_to_a_better_match():
    image, todo, ring = exemplar_scene()
    plant(image, ring, (7, 8))  # exact, but one of the hole's voxels would come from unhealthy tissue
    plant(image, ring, (-8, 7), noise=0.01)
    healthy = np.ones_like(todo)
    healthy[14 + 7, 15 + 8] = False
    shift, count = best_exemplar_shift(image, healthy, todo, ring, min_shift(todo))
    assert tuple(shift) == (-8, 7) and count == 4


@pytest.mark.parametrize(("unhealthy", "want"), [(1, (7, 8)), (2, (-8, 7))])
def test_best_exemplar_shift_needs_nine_tenths_of_the_copied_ring_on_healthy_tissue(unhealthy, want):
    image, todo, ring = exemplar_scene()
    ring[13, 13] = ring[16, 16] = False  # 10 ring voxels
    plant(image, ring, (7, 8))  # exact
    plant(image, ring, (-8, 7), noise=0.01)
    healthy = np.ones_like(todo)
    for p in np.argwhere(ring)[:unhealthy]:
        healthy[tuple(p + np.array([7, 8]))] = False  # 9 or 8 of the 10 copied ring voxels healthy
    shift, count = best_exemplar_shift(image, healthy, todo, ring, min_shift(todo))
    assert tuple(shift) == want and count == 4


def test_best_exemplar_shift_without_a_full_cover_returns_the_largest_partial_one():
    image, todo, ring = exemplar_scene()
    todo[13:16, 13:16] = True  # 3x3
    healthy = np.zeros_like(todo)
    healthy[2:4, 20:23] = True  # 2x3: covers 6 of the 9 at most
    shift, count = best_exemplar_shift(image, healthy, todo, ring & ~todo, min_shift(todo))
    assert count == 6
    assert healthy[tuple((np.argwhere(todo) + shift).T)].sum() == 6
    healthy[:] = False
    healthy[3, 25] = True
    shift, count = best_exemplar_shift(image, healthy, todo, ring & ~todo, min_shift(todo))
    assert count == 1 and healthy[tuple((np.argwhere(todo) + shift).T)].sum() == 1


def test_best_exemplar_shift_is_none_when_no_far_enough_translation_covers_anything():
    image, todo, ring = exemplar_scene()
    assert best_exemplar_shift(image, np.zeros_like(todo), todo, ring, min_shift(todo)) is None
    assert best_exemplar_shift(image, ring, todo, ring, 3.5) is None  # only tissue beside the hole is healthy


def test_best_exemplar_shift_in_3d():
    rng = np.random.default_rng(12)
    image = rng.uniform(0.3, 0.7, (1, 12, 12, 12))
    todo = np.zeros((12, 12, 12), bool)
    todo[5:7, 5:7, 5] = True
    ring = binary_dilation(todo) & ~todo
    plant(image, ring, (3, -4, 4))
    shift, count = best_exemplar_shift(image, np.ones_like(todo), todo, ring, min_shift(todo))
    assert tuple(shift) == (3, -4, 4) and count == 4


# A separable scene: the brain is every column but the first, intensities vary along rows only (alternating rows:
# the finest texture), the region is a band of whole rows with one source. The unsharp detail is then the row
# profile minus its Gaussian blur (sigma 2), in every brain column, and the gain is a function of the row.


def alternating(amplitude) -> np.ndarray:
    """0.5 + amplitude * (-1)^row over 70 rows (amplitude: a number or one per row)."""
    return 0.5 + np.broadcast_to(amplitude, (70,)) * (-1.0) ** np.arange(70)


def texture_scene(tissue=0.1, fill=0.05, rows=(15, 55)):
    """(image (1, 70, 32), source, ids, region, brain, lesion): rows `rows` filled by source 0 of amplitude
    `fill`, the rest healthy tissue of amplitude `tissue`; column 0 is outside the brain."""
    brain = np.zeros((70, 32), bool)
    brain[:, 1:] = True
    region = np.zeros_like(brain)
    region[rows[0]:rows[1], 1:] = True
    image = np.where(brain, alternating(tissue)[:, None], 0.0)[None]
    source = np.where(region, alternating(fill)[:, None], 0.0)[None]
    ids = np.where(region, 0, -1)
    return image, source, ids, region, brain, np.zeros_like(brain)


def detail_by_hand(profile: np.ndarray) -> np.ndarray:
    """The row profile minus its Gaussian blur (sigma 2 voxels)."""
    return profile - gaussian_filter1d(profile, 2.0)


def test_match_texture_scales_the_detail_by_the_gain_tapered_over_three_voxels_from_the_brains_edge():
    image, source, ids, region, brain, lesion = texture_scene()
    out = match_texture(image, source, ids, region, brain, lesion, gain_range=(2.0, 2.0))  # the gain is 2
    assembled = np.where(region[:, 1], alternating(0.05), alternating(0.1))  # the fill inside, tissue outside
    taper = np.clip((np.arange(32) - 1.0) / 3.0, 0.0, 1.0)  # depth below the brain's edge is the column
    want = np.where(region, source[0] + (2.0 - 1.0) * detail_by_hand(assembled)[:, None] * taper[None, :], source[0])
    assert np.allclose(out[0], want, atol=1e-9)
    assert np.array_equal(out[0, :, :2], source[0, :, :2])  # at the edge: no change


def test_match_texture_leaves_a_source_voxel_outside_the_brain_as_it_is():
    image, source, ids, region, brain, lesion = texture_scene()
    ids[15:55, 0] = 0
    source[0, 15:55, 0] = alternating(0.05)[15:55]
    out = match_texture(image, source, ids, region, brain, lesion, gain_range=(2.0, 2.0))
    assert np.array_equal(out[0, :, 0], source[0, :, 0])


@pytest.mark.parametrize(("tissue", "fill"), [(0.1, 0.05), (0.1, 0.02)])
def test_match_texture_two_passes_bring_the_fill_texture_to_the_tissue_texture(tissue, fill):
    """Far from the region's ends and the brain's edge everything is uniform: the local spread of an alternating
    profile is proportional to its amplitude, so pass one's gain is tissue / fill (clipped to 0.5..2.5); the
    detail is (1 - lam) of the profile, lam the blur's response to alternation; pass two rescales by the ratio
    left over."""
    image, source, ids, region, brain, lesion = texture_scene(tissue, fill)
    lam = -gaussian_filter1d(alternating(1.0), 2.0)[35] + 0.5  # row 35 is odd: the profile there is 0.5 - 1
    gain1 = np.clip(tissue / fill, 0.5, 2.5)
    reached = fill * (1 + (gain1 - 1) * (1 - lam))
    gain2 = np.clip(gain1 * tissue / reached, 0.5, 2.5)
    want = alternating(fill * (1 + (gain2 - 1) * (1 - lam)))
    out = match_texture(image, source, ids, region, brain, lesion)
    assert np.allclose(out[0, 25:45, 14:29], want[25:45, None], atol=1e-9)


def test_match_texture_follows_the_texture_of_the_nearer_side_spread_by_a_gaussian_of_sigma_four():
    """Busier tissue above the region than below: the wanted spread at a row is the Gaussian-weighted (sigma 4)
    mean of the ring's spread (healthy tissue 3..12 voxels from the hole), drawn to its median by weight 0.05."""
    amplitude = np.where(np.arange(70) < 35, 0.1, 0.04)
    image, source, ids, region, brain, lesion = texture_scene(amplitude)
    ring_rows = np.zeros(70)
    ring_rows[3:13] = ring_rows[57:67] = 1.0  # 3..12 voxels from rows 15..54
    spread = amplitude * np.sqrt(1 - 1 / 25)  # std of five alternating values
    median = np.median(np.repeat(spread[ring_rows > 0], 29))
    wanted = (gaussian_filter1d(ring_rows * spread, 4.0) + 0.05 * median) / (gaussian_filter1d(ring_rows, 4.0) + 0.05)
    have = 0.05 * np.sqrt(1 - 1 / 25)
    gain = np.clip(wanted / have, 0.5, 2.5)
    assembled = np.where(region[:, 1], alternating(0.05), alternating(amplitude))
    want = alternating(0.05) + (gain - 1) * detail_by_hand(assembled)
    out = match_texture(image, source, ids, region, brain, lesion, passes=1)
    assert np.allclose(out[0, 25:45, 19:29], want[25:45, None], atol=1e-9)
    assert not np.allclose(gain[25:45], gain[25])  # the rows differ


def test_match_texture_leaves_a_fill_without_measurable_texture_of_its_own_as_it_is():
    image, source, ids, region, brain, lesion = texture_scene()
    rows, cols = np.indices(ids.shape)
    ids = np.where(region, (rows + cols) % 3, -1)  # three interleaved sources: none fills 40 % of a window
    out = match_texture(image, source, ids, region, brain, lesion)
    assert np.array_equal(out, source)


def count_scene(brain_top: int = 3):
    """(image, source, ids, region, brain): a 60x60 brain from row `brain_top`, a 4x24 region at rows 20..23,
    columns 10..33, with source 0 on it and two voxels around it; tissue of amplitude 0.1, fill of 0.03."""
    brain = np.zeros((60, 60), bool)
    brain[brain_top:57, 3:57] = True
    region = np.zeros_like(brain)
    region[20:24, 10:34] = True
    ids = np.where(binary_dilation(region, iterations=2) & brain, 0, -1)
    image = np.where(brain, alternating(0.1)[:60, None], 0.0)[None]
    source = np.where(ids >= 0, alternating(0.03)[:60, None], 0.0)[None]
    return image, source, ids, region, brain


def ring_by_hand(brain, lesion, region):
    """Healthy tissue 3..12 voxels from the region and 3 or more from the brain's edge."""
    away = distance_transform_edt(~region)
    return healthy_of(brain, lesion) & (away >= 3) & (away <= 12) & (distance_transform_edt(brain) >= 3)


@pytest.mark.parametrize(("case", "count", "changed"), [
    ("3 voxels from the hole", 20, True),
    ("12 voxels from the hole", 20, True),
    ("3 voxels below the brain's edge", 20, True),
    ("one short, more beyond 12 voxels", 19, False),
])
def test_match_texture_needs_twenty_voxels_of_ring(case, count, changed):
    """The healthy tissue is made exactly a row of voxels (lesion everywhere else) at the distance the case names."""
    image, source, ids, region, brain = count_scene(12 if "edge" in case else 3)
    row = {"3 voxels from the hole": 26, "12 voxels from the hole": 35, "3 voxels below the brain's edge": 14,
           "one short, more beyond 12 voxels": 26}[case]
    keep = np.zeros_like(brain)
    keep[row, 12:12 + count] = True
    if "beyond" in case:
        keep[36, 12:32] = True  # 13 voxels from the hole
    lesion = brain & ~binary_dilation(keep, iterations=2)
    assert ring_by_hand(brain, lesion, region).sum() == count
    out = match_texture(image, source, ids, region, brain, lesion)
    assert (not np.array_equal(out, source)) == changed


@pytest.mark.parametrize(("case", "changed"), [
    ("20 deep", True), ("19 deep", False), ("20 at the edge", True), ("16 at the edge", False)])
def test_match_texture_needs_twenty_sourced_voxels_two_inside_the_brain(case, changed):
    """The region's voxels that count: sourced (ids >= 0) and not within two voxels (city block) of the edge."""
    image, source, ids, region, brain = count_scene()
    region[:] = False
    column = {"20 deep": 30, "19 deep": 30, "20 at the edge": 5, "16 at the edge": 4}[case]
    region[30:34, column:column + 5] = True
    ids = np.where(binary_dilation(region, iterations=2) & brain, 0, -1)
    if case == "19 deep":
        ids[30, 30] = -1
    source = np.where(ids >= 0, alternating(0.03)[:60, None], 0.0)[None]
    lesion = np.zeros_like(brain)
    out = match_texture(image, source, ids, region, brain, lesion)
    assert (not np.array_equal(out, source)) == changed
