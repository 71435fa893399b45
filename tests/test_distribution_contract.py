"""Distribution metrics at their smallest legal inputs and their input errors: two samples are enough for an
unbiased MMD and a covariance, one is not, and every error names the metric, the argument and the fix.
Expected values come from numpy (np.cov) and a direct formula for the unbiased MMD with two samples each."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.checks import MetricInputError
from benchmark.metrics.distribution import FeatureStatistics, inception_score, mmd


def test_mmd_with_two_samples_each_equals_the_direct_formula():
    a = torch.tensor([[0.0, 1.0], [2.0, -1.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 1.0], [-3.0, 0.5]], dtype=torch.float64)

    def k(x: torch.Tensor, y: torch.Tensor) -> float:
        return float(torch.exp(-((x - y) ** 2).sum() / (2 * 1.5**2)))

    expected = (2 * k(a[0], a[1]) / 2 + 2 * k(b[0], b[1]) / 2
                - 2 * sum(k(x, y) for x in a for y in b) / 4)
    assert mmd(a, b, bandwidth=1.5) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("which", ["feats_a", "feats_b"])
def test_mmd_refuses_a_single_sample_naming_the_argument(which):
    two, one = torch.randn(2, 3, dtype=torch.float64), torch.randn(1, 3, dtype=torch.float64)
    args = (one, two) if which == "feats_a" else (two, one)
    with pytest.raises(MetricInputError, match=rf"^mmd: {which} has 1 samples; at least 2 are needed\.$"):
        mmd(*args)
    with pytest.raises(MetricInputError, match=rf"^mmd: {which} contains 1 NaN or Inf value\(s\) out of 6\.$"):
        bad = two.clone()
        bad[0, 0] = float("nan")
        mmd(*((bad, two) if which == "feats_a" else (two, bad)))


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
