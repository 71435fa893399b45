"""Distribution metrics at their smallest legal inputs and their input errors: two samples are enough for an
unbiased MMD and a covariance, one is not, and every error names the metric, the argument and the fix.
Expected values come from numpy (np.cov) and a direct formula for the unbiased MMD with two samples each."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.metrics.checks import MetricInputError
from benchmark.metrics.distribution import (
    FeatureStatistics,
    StreamingFeatureMetric,
    euclidean,
    feature_statistics,
    fid,
    frechet_distance,
    inception_score,
    kid,
    mmd,
    prdc,
    prdc_from_distances,
)


def test_mmd_with_two_samples_each_equals_the_direct_formula():
    a = torch.tensor([[0.0, 1.0], [2.0, -1.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 1.0], [-3.0, 0.5]], dtype=torch.float64)

    def k(x: torch.Tensor, y: torch.Tensor) -> float:
        return float(torch.exp(-((x - y) ** 2).sum() / (2 * 1.5**2)))

    expected = (2 * k(a[0], a[1]) / 2 + 2 * k(b[0], b[1]) / 2
                - 2 * sum(k(x, y) for x in a for y in b) / 4)
    assert mmd(a, b, bandwidth=1.5) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("which", ["candidate", "reference"])
def test_mmd_refuses_a_single_sample_naming_the_argument(which):
    two, one = torch.randn(2, 3, dtype=torch.float64), torch.randn(1, 3, dtype=torch.float64)
    args = (one, two) if which == "candidate" else (two, one)
    with pytest.raises(MetricInputError, match=rf"^mmd: {which} has 1 samples; at least 2 are needed\.$"):
        mmd(*args)
    with pytest.raises(MetricInputError, match=rf"^mmd: {which} contains 1 NaN or Inf value\(s\) out of 6\.$"):
        bad = two.clone()
        bad[0, 0] = float("nan")
        mmd(*((bad, two) if which == "candidate" else (two, bad)))


def test_mmd_refuses_different_feature_dimensions():
    with pytest.raises(MetricInputError, match=r"^mmd: feature dimensions differ \(3 vs 4\)\.$"):
        mmd(torch.randn(4, 3), torch.randn(4, 4))


def test_covariance_of_exactly_two_samples_and_refusal_of_one():
    x = np.array([[1.0, -2.0, 0.5], [3.0, 1.0, -0.5]])
    stats = FeatureStatistics().update(torch.from_numpy(x))
    np.testing.assert_allclose(stats.covariance().numpy(), np.cov(x, rowvar=False), rtol=1e-12)
    one = r"^FeatureStatistics: 1 sample\(s\) seen; a covariance needs at least 2\.$"
    with pytest.raises(MetricInputError, match=one):
        FeatureStatistics().update(torch.from_numpy(x[:1])).covariance()


def test_inception_score_splits_default_to_ten_and_one_sample_is_a_legal_split():
    logits = torch.from_numpy(np.random.default_rng(1).normal(size=(10, 5)))
    assert inception_score(logits) == inception_score(logits, splits=10)  # ten samples, ten splits: legal
    assert inception_score(logits[:1], splits=1) == (pytest.approx(1.0, abs=1e-12), 0.0)  # KL of p with itself
    with pytest.raises(MetricInputError, match=r"^inception_score: logits has 3 samples; at least 10 are needed\.$"):
        inception_score(logits[:3])
    with pytest.raises(MetricInputError, match=r"^inception_score: splits must be >= 1, got 0\.$"):
        inception_score(logits, splits=0)


# --- every distribution metric's inputs, boundaries and messages ---

def _feats(n: int, d: int = 4, seed: int = 0, shift: float = 0.0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(shift, 1.0, size=(n, d)))


@pytest.mark.parametrize(("metric", "call"), [
    ("fid", fid), ("kid", lambda a, b: kid(a, b, subset_size=2)), ("mmd", mmd)])
@pytest.mark.parametrize("which", ["candidate", "reference"])
def test_pairwise_metrics_name_the_argument_and_accept_two_samples(metric, call, which):
    two, one = _feats(2), _feats(1, seed=1)
    assert np.isfinite(call(two, _feats(2, seed=2)) if metric != "kid" else call(two, _feats(2, seed=2))[0])
    args = (one, two) if which == "candidate" else (two, one)
    with pytest.raises(MetricInputError, match=rf"^{metric}: {which} has 1 samples; at least 2 are needed\.$"):
        call(*args)
    bad = _feats(3).clone()
    bad[1, 2] = float("inf")
    args = (bad, _feats(3, seed=3)) if which == "candidate" else (_feats(3, seed=3), bad)
    with pytest.raises(MetricInputError, match=rf"^{metric}: {which} contains 1 NaN or Inf value\(s\) out of 12\.$"):
        call(*args)
    with pytest.raises(MetricInputError, match=rf"^{metric}: feature dimensions differ \(4 vs 3\)\.$"):
        call(_feats(5), _feats(5, d=3))


def test_feature_statistics_names_its_input():
    with pytest.raises(MetricInputError, match=r"^fid: features has 1 samples; at least 2 are needed\.$"):
        feature_statistics(_feats(1))


def test_kid_defaults_boundaries_and_the_whole_set_value():
    a, b = _feats(1001, seed=1), _feats(1001, seed=2, shift=0.3)
    assert kid(a, b) == kid(a, b, subsets=100, subset_size=1000, seed=0)
    assert kid(a, b)[1] > 0  # 1000 of 1001: real subsets, a spread
    x, y = _feats(5, seed=3).numpy(), _feats(5, seed=4, shift=1.0).numpy()

    def k(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        return (p @ q.T / 4 + 1) ** 3

    kxx, kyy = k(x, x), k(y, y)
    expected = ((kxx.sum() - np.trace(kxx)) / 20 + (kyy.sum() - np.trace(kyy)) / 20 - 2 * k(x, y).mean())
    value, spread = kid(torch.from_numpy(x), torch.from_numpy(y), subset_size=5)
    assert value == pytest.approx(expected, rel=1e-12) and spread == 0.0
    four_of_five = kid(torch.from_numpy(x), torch.from_numpy(y), subset_size=4, subsets=5)
    assert four_of_five[1] > 0
    assert np.isfinite(kid(_feats(4), _feats(6, seed=5), subset_size=4, subsets=1)[0])  # the smaller set's size
    assert np.isfinite(kid(_feats(4), _feats(6, seed=5), subset_size=2)[0])
    with pytest.raises(MetricInputError, match=r"^kid: subset_size=6 but the sets have 3 and 5 samples; "
                                               r"choose 2 <= subset_size <= 3\.$"):
        kid(_feats(3), _feats(5, seed=1), subset_size=6)
    with pytest.raises(MetricInputError, match=r"^kid: subsets must be >= 1, got 0\.$"):
        kid(_feats(3), _feats(5, seed=1), subset_size=2, subsets=0)


def test_prdc_names_its_sets_and_accepts_k_one_with_two_samples():
    from prdc import compute_prdc

    real, fake = _feats(3, seed=6), _feats(4, seed=7)
    expected = compute_prdc(real.numpy(), fake.numpy(), nearest_k=1)  # the package needs k + 2 samples
    ours = prdc(fake, real, k=1)
    assert ours == {key: pytest.approx(float(value), abs=1e-12) for key, value in expected.items()}
    assert 0 <= prdc(fake[:2], real[:2], k=1)["precision"] <= 1  # k + 1 samples are enough here
    with pytest.raises(MetricInputError, match=r"^prdc: reference has 0 samples; at least 1 are needed\.$"):
        prdc(fake, _feats(0))
    with pytest.raises(MetricInputError, match=r"^prdc: candidate contains 4 NaN or Inf value\(s\) out of 12\.$"):
        prdc(torch.cat([_feats(2), torch.full((1, 4), float("nan"), dtype=torch.float64)]), _feats(3))
    with pytest.raises(MetricInputError, match=r"^prdc: feature dimensions differ \(3 vs 4\)\.$"):
        prdc(_feats(7, d=3), _feats(7))
    with pytest.raises(MetricInputError, match=r"^prdc: k=5 needs more than k samples per set, got 6 real and 5 "
                                               r"fake\.$"):
        prdc(_feats(5, seed=1), _feats(6))
    with pytest.raises(MetricInputError, match=r"^prdc: k=5 needs more than k samples per set, got 1 real"):
        prdc(_feats(9, seed=1), _feats(1))


def test_prdc_from_distances_defaults_to_the_reference_open_ball_and_k_five():
    real, fake = _feats(12, seed=8), _feats(11, seed=9)
    distances = (euclidean(real, real), euclidean(fake, fake), euclidean(real, fake))
    assert prdc_from_distances(*distances) == prdc(fake, real, k=5, ball="open")


def test_streaming_metric_names_itself_and_needs_both_streams():
    stream = StreamingFeatureMetric(mmd)
    stream.update(_feats(3), real=True)
    with pytest.raises(MetricInputError, match=r"^mmd \(streaming\): update\(\) both the real and the fake stream\.$"):
        stream.compute()
    with pytest.raises(MetricInputError, match=r"^mmd \(streaming\): features contains 12 NaN or Inf"):
        stream.update(torch.full((3, 4), float("nan"), dtype=torch.float64), real=False)


def test_frechet_distance_checks_each_shape_and_input_and_computes_in_float64():
    eye = torch.eye(3, dtype=torch.float64)
    with pytest.raises(MetricInputError, match=r"^frechet_distance: shapes do not match: mu \(3,\) / \(4,\), "
                                               r"sigma \(3, 3\) / \(3, 3\)$"):
        frechet_distance(torch.zeros(3), eye, torch.zeros(4), eye)
    with pytest.raises(MetricInputError, match=r"^frechet_distance: shapes do not match: mu \(3,\) / \(3,\), "
                                               r"sigma \(3, 3\) / \(4, 4\)$"):
        frechet_distance(torch.zeros(3), eye, torch.zeros(3), torch.eye(4))
    for position, name in enumerate(("mu1", "sigma1", "mu2", "sigma2")):
        args = [torch.zeros(3), eye.clone(), torch.zeros(3), eye.clone()]
        args[position] = args[position] * float("nan")
        with pytest.raises(MetricInputError, match=rf"^frechet_distance: {name} contains NaN or Inf$"):
            frechet_distance(*args)
    a, b = _feats(40, seed=10), _feats(40, seed=11, shift=0.5)
    (mu_a, s_a), (mu_b, s_b) = feature_statistics(a), feature_statistics(b)
    single = [t.float() for t in (mu_a, s_a, mu_b, s_b)]
    assert frechet_distance(*single) == pytest.approx(frechet_distance(*[t.double() for t in single]), rel=1e-13)


def test_frechet_distance_of_covariances_singular_in_their_first_axis():
    """Cholesky fails on the first minor of both (info 1): the eigen path gives the closed form."""
    s1, s2 = torch.diag(torch.tensor([0.0, 1.0, 2.0])), torch.diag(torch.tensor([0.0, 3.0, 1.0]))
    expected = (1 - 3**0.5) ** 2 + (2**0.5 - 1) ** 2
    assert frechet_distance(torch.zeros(3), s1, torch.zeros(3), s2) == pytest.approx(expected, rel=1e-12)
