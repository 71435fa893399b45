"""Distribution metrics against scipy / brute-force numpy references on random features."""

import numpy as np
import pytest
import scipy.linalg
import torch

from benchmark.errors import BenchmarkError
from benchmark.metrics import (
    FeatureStatistics,
    StreamingFeatureMetric,
    StreamingFID,
    fid,
    inception_score,
    kid,
    mmd,
    prdc,
)
from benchmark.metrics.distribution import _trace_sqrt_product, feature_statistics, frechet_distance


def _features(n, d, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3 + shift)


def _scipy_fid(a, b):
    a, b = a.numpy(), b.numpy()
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def test_fid_matches_scipy_when_well_conditioned():
    a, b = _features(400, 16, 0), _features(300, 16, 1, shift=0.2)
    assert fid(a, b) == pytest.approx(_scipy_fid(a, b), rel=1e-6)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-8)


def test_fid_is_finite_and_real_for_singular_covariances():
    a, b = _features(10, 64, 2), _features(12, 64, 3)
    value = fid(a, b)
    assert np.isfinite(value) and value > 0
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)


def test_cholesky_and_eigh_paths_agree():
    s1 = feature_statistics(_features(200, 32, 14))[1]
    s2 = feature_statistics(_features(150, 32, 15))[1]
    fast = _trace_sqrt_product(s1, s2)
    slow = _trace_sqrt_product(s1, s2, allow_cholesky=False)
    assert float(fast) == pytest.approx(float(slow), rel=1e-10)


def test_streaming_statistics_match_one_shot_and_survive_a_large_offset():
    a = _features(500, 8, 4) + 1e6
    stats = FeatureStatistics()
    for chunk in torch.split(a, 37):
        stats.update(chunk)
    assert stats.count == 500
    np.testing.assert_allclose(stats.mean.numpy(), a.mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance().numpy(), np.cov(a.numpy(), rowvar=False), rtol=1e-7, atol=1e-9)
    b = _features(300, 8, 5)
    stream = StreamingFID()
    for chunk in torch.split(a - 1e6, 64):
        stream.update(chunk, real=True)
    for chunk in torch.split(b, 50):
        stream.update(chunk, real=False)
    assert stream.compute() == pytest.approx(fid(a - 1e6, b), rel=1e-9)


def _numpy_kid(a, b, subsets, size, seed):
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        d = a.shape[1]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        m = size
        value = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(value - 2 * kxy.mean())
    return np.mean(values), np.std(values)


def test_kid_matches_direct_numpy_formula():
    a, b = _features(120, 10, 6), _features(100, 10, 7, shift=0.5)
    mean, std = kid(b, a, subsets=20, subset_size=50, seed=3)
    ref_mean, ref_std = _numpy_kid(a.numpy(), b.numpy(), 20, 50, 3)
    assert mean == pytest.approx(ref_mean, rel=1e-9)
    assert std == pytest.approx(ref_std, rel=1e-9)
    assert kid(b, a, subsets=20, subset_size=50, seed=3) == (mean, std)
    stream = StreamingFeatureMetric(kid, subsets=20, subset_size=50, seed=3)
    for chunk in torch.split(a, 33):
        stream.update(chunk, real=True)
    stream.update(b, real=False)
    assert stream.compute() == (mean, std)


def _numpy_prdc(real, fake, k):
    def dist(x, y):
        return np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))

    r_real = np.sort(dist(real, real), axis=1)[:, k]
    r_fake = np.sort(dist(fake, fake), axis=1)[:, k]
    d = dist(real, fake)
    return {
        "precision": (d <= r_real[:, None]).any(0).mean(),
        "recall": (d <= r_fake[None, :]).any(1).mean(),
        "density": (d <= r_real[:, None]).sum(0).mean() / k,
        "coverage": (d.min(1) <= r_real).mean(),
    }


def test_prdc_closed_ball_matches_brute_force_and_identical_sets_score_one():
    real, fake = _features(60, 6, 8), _features(50, 6, 9, shift=0.3)
    ours = prdc(fake, real, k=5, ball="closed")
    reference = _numpy_prdc(real.numpy(), fake.numpy(), 5)
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key
    same = prdc(real, real, k=5, ball="closed")
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0


def _numpy_mmd2(a, b, kernel):
    m, n = len(a), len(b)
    kaa, kbb, kab = kernel(a, a), kernel(b, b), kernel(a, b)
    return (kaa.sum() - np.trace(kaa)) / (m * (m - 1)) + (kbb.sum() - np.trace(kbb)) / (n * (n - 1)) - 2 * kab.mean()


def test_mmd_matches_numpy_formula_and_inception_score():
    pooled = _features(150, 5, 10).numpy()
    a, b = pooled[:80], pooled[80:] + 1.0

    def rbf(x, y):
        return np.exp(-((x[:, None] - y[None]) ** 2).sum(-1) / (2 * 1.7**2))

    def cubic(x, y):
        return (x @ y.T / x.shape[1] + 1) ** 3

    assert mmd(torch.from_numpy(a), torch.from_numpy(b), bandwidth=1.7) == pytest.approx(_numpy_mmd2(a, b, rbf))
    assert mmd(torch.from_numpy(a), torch.from_numpy(b), kernel="polynomial") == pytest.approx(
        _numpy_mmd2(a, b, cubic)
    )
    same_distribution = mmd(torch.from_numpy(a), torch.from_numpy(pooled[80:]))
    assert mmd(torch.from_numpy(a), torch.from_numpy(b)) > 10 * abs(same_distribution)
    uniform = torch.zeros(50, 10, dtype=torch.float64)
    assert inception_score(uniform, splits=5)[0] == pytest.approx(1.0)
    confident = torch.eye(10, dtype=torch.float64).repeat(5, 1) * 50
    score, _ = inception_score(confident, splits=5)
    assert score == pytest.approx(10.0, rel=1e-6)
    probabilities = torch.softmax(torch.from_numpy(np.random.default_rng(0).normal(size=(40, 7))), 1).numpy()
    marginal = probabilities.mean(0)
    reference = np.exp((probabilities * (np.log(probabilities) - np.log(marginal))).sum(1).mean())
    assert inception_score(torch.from_numpy(np.log(probabilities)), splits=1)[0] == pytest.approx(reference)


@pytest.mark.parametrize(
    "call",
    [
        lambda a: kid(a, a, subset_size=len(a) + 1),
        lambda a: prdc(a, a[:5], k=5),
        lambda a: fid(a[:1], a),
        lambda a: fid(a, a[:, :3]),
        lambda a: fid(a.masked_fill(a > 1, float("inf")), a),
        lambda a: fid(a.long(), a),
        lambda a: inception_score(a[:3], splits=10),
    ],
    ids=["kid-subset", "prdc-k", "fid-n", "fid-dim", "fid-inf", "fid-dtype", "is-splits"],
)
def test_too_few_samples_and_bad_features_are_clear_errors(call):
    with pytest.raises(BenchmarkError):
        call(_features(20, 4, 13))


def test_fid_with_fewer_samples_than_dimensions_uses_the_exact_low_rank_form():
    """n < d: the SVD form must equal the eigendecomposition form, and known closed forms."""
    generator = torch.Generator().manual_seed(3)
    a = torch.randn(12, 64, generator=generator, dtype=torch.float64)
    b = 1.5 * torch.randn(30, 64, generator=generator, dtype=torch.float64) + 0.2
    full = frechet_distance(*feature_statistics(a, "a"), *feature_statistics(b, "b"))
    assert fid(a, b) == pytest.approx(full, rel=1e-7)
    shift = torch.linspace(-1, 1, 64, dtype=torch.float64)
    assert fid(a, a + shift) == pytest.approx(float(shift.dot(shift)), rel=1e-10)  # same covariance
    assert fid(a, a.clone()) == pytest.approx(0.0, abs=1e-9)


def _reference_prdc(real, fake, k):
    """The `prdc` package (Naeem et al.'s reference, 0.2) on the same features; it prints one line."""
    prdc_package = pytest.importorskip("prdc")
    return prdc_package.compute_prdc(real.numpy(), fake.numpy(), nearest_k=k)


def _integer_features(n, d, values, seed):
    """Small-integer features: every distance is exact, so ties are real ties in both implementations."""
    return torch.from_numpy(np.random.default_rng(seed).integers(0, values, size=(n, d)).astype(np.float64))


@pytest.mark.parametrize(
    "make_sets",
    [
        lambda: (_features(60, 6, 8), _features(50, 6, 9, shift=0.3)),  # continuous: no ties
        lambda: (_integer_features(40, 3, 3, 0),) * 2,  # identical sets with many ties
        lambda: (_integer_features(60, 1, 10, 0),) * 2,  # identical sets where "open" gives 0.32
        lambda: (_integer_features(50, 2, 4, 1), _integer_features(45, 2, 4, 2)),  # many tied distances
        lambda: (_features(30, 5, 3), torch.cat([_features(30, 5, 3)[:20]] * 2)),  # exact copies, duplicated
    ],
    ids=["continuous", "identical-ties", "identical-many-copies", "many-ties", "copies"],
)
def test_prdc_open_ball_equals_the_prdc_package(make_sets):
    real, fake = make_sets()
    reference = _reference_prdc(real, fake, 5)
    ours = prdc(fake, real, k=5)
    for key, value in reference.items():
        assert ours[key] == pytest.approx(float(value), abs=1e-12), key
    closed = prdc(fake, real, k=5, ball="closed")
    brute = _numpy_prdc(real.numpy(), fake.numpy(), 5)
    for key, value in brute.items():
        assert closed[key] == pytest.approx(value, abs=1e-12), key


def test_prdc_ball_parts_only_on_ties():
    real = _integer_features(60, 1, 10, 0)  # 60 values in 0..9: every point has 5+ exact copies
    open_ball, closed_ball = prdc(real, real, k=5), prdc(real, real, k=5, ball="closed")
    assert closed_ball["precision"] == closed_ball["recall"] == closed_ball["coverage"] == 1.0
    assert open_ball["precision"] == pytest.approx(19 / 60) and closed_ball["density"] > 2 > 0.3 > open_ball["density"]
    copies = torch.cat([_features(20, 5, 0)] * 3)  # each sample three times, continuous otherwise
    assert prdc(copies, copies)["density"] == pytest.approx(0.6)
    assert prdc(copies, copies, ball="closed")["density"] == pytest.approx(1.2)
    same = _features(40, 4, 1)  # identical continuous sets: the k-th neighbour itself is the only tie
    open_same, closed_same = prdc(same, same), prdc(same, same, ball="closed")
    assert open_same["precision"] == open_same["recall"] == open_same["coverage"] == 1.0
    assert (open_same["density"], closed_same["density"]) == (pytest.approx(1.0), pytest.approx(1.2))
    real, fake = _features(40, 4, 1), _features(35, 4, 2, shift=0.2)
    assert prdc(fake, real) == prdc(fake, real, ball="closed")
    with pytest.raises(BenchmarkError, match="ball"):
        prdc(real, real, ball="<=")
    from benchmark.metrics.entries import PRDCMetric

    with pytest.raises(BenchmarkError, match=r"metrics\.prdc\.ball"):
        PRDCMetric(ball="<=")
    assert "< radius, as prdc 0.2" in PRDCMetric().outputs()["PRDCMetric_precision"][1]
