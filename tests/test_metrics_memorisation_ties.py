"""Memorisation and diversity metrics with exact copies, duplicated training samples and tied distances: the
inputs of the memorisation family. Expected values are worked out by hand on integer points (exact in
float64), following the authors' definitions: authenticity (Alaa et al. 2022, their code
`real_to_real[nearest] < real_to_synth`: a tie is a copy), copy rate against the median nearest-neighbour
distance of the training set (the mid-point of the two middle values for an even count, as numpy.median).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.metrics import authenticity, copy_rate, fid, fid_train_gap, ms_ssim, ms_ssim_diversity
from tests.mri_like import pair


def points(*values: float) -> torch.Tensor:
    """1D points as an (N, 1) float64 feature matrix."""
    return torch.tensor(values, dtype=torch.float64)[:, None]


def test_authenticity_counts_a_tie_with_the_training_radius_as_a_copy():
    """Train {0, 1, 3}: nearest-neighbour radii 1, 1, 2. Fakes: -1 (distance 1 to 0, radius 1: tie, copy),
    5 (distance 2 to 3, radius 2: tie, copy), 6 (distance 3 > 2: authentic), 4 (distance 1 < 2: copy)."""
    train = points(0, 1, 3)
    assert authenticity(points(-1, 5, 6, 4), train) == pytest.approx(1 / 4, abs=1e-15)
    assert authenticity(points(6), train) == 1.0
    assert authenticity(points(5), train) == 0.0


def test_exact_copies_of_a_duplicated_training_sample_are_copies():
    """A training set holding the same image twice has radius 0 there; its exact copy is at distance 0."""
    rng = np.random.default_rng(0)
    train = torch.from_numpy(rng.normal(size=(20, 16)))
    train[7] = train[3]
    assert authenticity(train[[3, 7]], train) == 0.0
    assert authenticity(train, train) == 0.0
    assert copy_rate(train, train) == 1.0
    fresh = torch.from_numpy(rng.normal(size=(30, 16)))
    mixed = torch.cat([train[:10], fresh])
    assert authenticity(mixed, train) == pytest.approx(authenticity(fresh, train) * 30 / 40, abs=1e-15)
    assert copy_rate(mixed, train) == pytest.approx(copy_rate(fresh, train) * 30 / 40 + 10 / 40, abs=1e-15)


def test_exact_copies_are_at_distance_zero_in_large_sets_of_large_features():
    """40 training samples, each present twice, with Inception-like magnitudes (around 100): every training
    radius is 0, so only exact distances (no |x|^2 + |y|^2 - 2 x.y cancellation, which leaves ~1e-5) count
    the exact copies."""
    rng = np.random.default_rng(2)
    distinct = torch.from_numpy(100 + rng.normal(size=(20, 16)))
    train = torch.cat([distinct, distinct])
    assert copy_rate(distinct[:10], train) == 1.0
    assert copy_rate(distinct[:10] + 1e-3, train) == 0.0
    assert authenticity(distinct[:10], train) == 0.0
    assert authenticity(distinct[:10] + 1e-3, train) == 1.0  # farther than the radius 0: authentic


def test_copy_rate_uses_the_median_of_an_even_count_and_an_inclusive_radius():
    """Train {0, 1, 3, 7}: radii 1, 1, 2, 4, median 1.5. Threshold 1: 8.5 (distance 1.5) counts, 8.6 does not,
    1.25 (0.25) counts. Threshold 0.2: radius 0.3; 1.25 is 0.25 away (counts), 3.5 is 0.5 away (does not)."""
    train = points(0, 1, 3, 7)
    assert copy_rate(points(8.5, 8.6, 1.25), train, threshold=1.0) == pytest.approx(2 / 3, abs=1e-15)
    assert copy_rate(points(1.25, 3.5), train) == 0.5
    assert copy_rate(points(1.5), points(0, 1, 3), threshold=1.0) == 1.0  # odd count: median radius 1
    assert copy_rate(points(4.5), points(0, 1, 3), threshold=1.0) == 0.0


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.0001])
def test_copy_rate_refuses_a_threshold_outside_zero_one(threshold):
    with pytest.raises(BenchmarkError, match=rf"^copy_rate: threshold must lie in \(0, 1\], got {threshold}"):
        copy_rate(points(1), points(0, 1, 3), threshold=threshold)


def test_feature_checks_name_the_metric_and_the_set():
    train, fake = points(0, 1, 3), points(2)
    cases = [
        (lambda: authenticity(fake, points(0)), r"^authenticity: train has 1 samples"),
        (lambda: authenticity(torch.zeros(0, 1, dtype=torch.float64), train), r"^authenticity: candidate has 0"),
        (lambda: copy_rate(torch.zeros(1, 2, dtype=torch.float64), train), r"^copy_rate: feature dimensions differ"),
        (lambda: copy_rate(fake, train.long()), r"^copy_rate: train has dtype torch.int64"),
        (lambda: authenticity(points(float("nan")), train), r"^authenticity: candidate contains 1 NaN"),
    ]
    for call, message in cases:
        with pytest.raises(BenchmarkError, match=message):
            call()


def test_fid_train_gap_of_exact_training_copies():
    rng = np.random.default_rng(1)
    train, heldout = (torch.from_numpy(rng.normal(size=(200, 6))) for _ in range(2))
    gap = fid_train_gap(train.clone(), train, heldout)
    assert fid(train.clone(), train) == pytest.approx(0.0, abs=1e-9)
    assert gap == pytest.approx(-fid(train, heldout), abs=1e-9)


def mri_like_set(n: int, shape=(48, 48)) -> torch.Tensor:
    _, references, _ = pair(shape, n=n, seed=3)
    return torch.from_numpy(references)


def test_diversity_with_duplicated_items():
    """Set {a, a, b}: pairs (a, a) = 1 and twice (a, b): mean (1 + 2 MS-SSIM(a, b)) / 3."""
    a, b = mri_like_set(2)
    value = ms_ssim_diversity(torch.stack([a, a, b]))
    expected = (1 + 2 * ms_ssim(a[None], b[None]).item()) / 3
    assert value == pytest.approx(expected, abs=1e-12)
    assert ms_ssim(a[None], b[None]).item() < 0.9  # the pair differs: the test can tell the pairs apart


def test_diversity_scores_every_pair_up_to_max_pairs_and_honours_data_range_and_batches():
    images = mri_like_set(5)  # 10 pairs
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    everything = np.mean([ms_ssim(images[[i]], images[[j]]).item() for i, j in pairs])
    assert ms_ssim_diversity(images, max_pairs=10, seed=4) == pytest.approx(everything, abs=1e-12)
    assert ms_ssim_diversity(images, max_pairs=10, batch_size=3) == pytest.approx(everything, abs=1e-12)
    subset = ms_ssim_diversity(images, max_pairs=9, seed=4)
    assert subset != pytest.approx(everything, abs=1e-9)
    singles = [ms_ssim(images[[i]], images[[j]]).item() for i, j in pairs]
    assert any(subset == pytest.approx((sum(singles) - s) / 9, abs=1e-12) for s in singles)  # 9 distinct pairs
    scaled = ms_ssim_diversity(4095 * images, data_range=4095.0)
    assert scaled == pytest.approx(everything, abs=1e-9)


def test_diversity_input_errors_name_the_metric():
    images = mri_like_set(2)
    with pytest.raises(BenchmarkError, match=r"^ms_ssim_diversity: needs an \(N, C, \.\.\.\) batch with N >= 2"):
        ms_ssim_diversity(images[:, 0])
    with pytest.raises(BenchmarkError, match=r"^ms_ssim_diversity: images contains 1 NaN"):
        ms_ssim_diversity(images.index_put((torch.tensor([0]), torch.tensor([0]), torch.tensor([5]),
                                            torch.tensor([5])), torch.tensor(float("nan"), dtype=torch.float64)))
    with pytest.raises(BenchmarkError, match=r"^ms_ssim_diversity: images has dtype torch.int64"):
        ms_ssim_diversity(images.long())


def test_diversity_default_budget_and_small_and_volume_sets():
    """2016 pairs of 64 items: the default budget of 2000 pairs samples them; two items and 3D volumes work."""
    rng = np.random.default_rng(5)
    small = torch.from_numpy(rng.random((64, 1, 24, 24)))
    assert ms_ssim_diversity(small) == ms_ssim_diversity(small, max_pairs=2000, seed=0)
    assert ms_ssim_diversity(small) != pytest.approx(ms_ssim_diversity(small, max_pairs=2001, seed=0), abs=1e-12)
    a, b = mri_like_set(2)
    assert ms_ssim_diversity(torch.stack([a, b])) == pytest.approx(ms_ssim(a[None], b[None]).item(), abs=1e-12)
    _, volumes, _ = pair((24, 24, 24), n=3, seed=6)
    volumes = torch.from_numpy(volumes)
    expected = np.mean([ms_ssim(volumes[[i]], volumes[[j]]).item() for i, j in ((0, 1), (0, 2), (1, 2))])
    assert ms_ssim_diversity(volumes) == pytest.approx(expected, abs=1e-12)


@pytest.mark.gpu
def test_diversity_on_cuda_equals_cpu():
    images = mri_like_set(4)
    assert ms_ssim_diversity(images.cuda()) == pytest.approx(ms_ssim_diversity(images), abs=1e-10)
