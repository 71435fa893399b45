"""Streaming feature statistics merged across accumulators (as per-worker partial sums would be), against numpy's
mean and `np.cov` over all rows at once. Features with a large common offset and exact ties, where a naive
sum(x x^T) - n mu mu^T loses digits. Tolerance: relative 1e-10 (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.metrics.checks import MetricInputError
from benchmark.metrics.distribution import FeatureStatistics


def test_merged_accumulators_equal_numpy_over_all_rows() -> None:
    rng = np.random.default_rng(0)
    rows = 1e4 + rng.normal(size=(23, 5))
    rows[5:9] = rows[4]  # exact copies
    first = FeatureStatistics().update(torch.from_numpy(rows[:7])).update(torch.from_numpy(rows[7:10]))
    second = FeatureStatistics().update(torch.from_numpy(rows[10:]))
    merged = first.merge(second)
    assert merged is first and merged.count == 23
    np.testing.assert_allclose(merged.mean.numpy(), rows.mean(0), rtol=1e-12)
    np.testing.assert_allclose(merged.covariance().numpy(), np.cov(rows, rowvar=False), rtol=1e-10, atol=1e-12)
    empty = FeatureStatistics()
    assert empty.merge(FeatureStatistics()).count == 0
    copied = empty.merge(second)
    np.testing.assert_allclose(copied.covariance().numpy(), np.cov(rows[10:], rowvar=False), rtol=1e-10)
    assert copied.mean is not second.mean  # a copy: later updates of one leave the other alone


def test_feature_statistics_errors_name_the_input() -> None:
    with pytest.raises(MetricInputError, match=r"^FeatureStatistics.update: features must be an \(N, d\) feature"):
        FeatureStatistics().update(torch.zeros(4))
    stats = FeatureStatistics().update(torch.zeros(3, 2))
    with pytest.raises(MetricInputError, match="batch has 3 features, earlier batches 2"):
        stats.update(torch.zeros(2, 3))
    with pytest.raises(MetricInputError, match="1 sample"):
        FeatureStatistics().update(torch.zeros(1, 2)).covariance()
