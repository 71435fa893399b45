"""Shared floating-point helpers (benchmark/numerics.py): the spread of repeated draws and the denormal switch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.numerics import ROUNDING_SPREAD, denormals_flushed, spread


def test_spread_is_the_sample_std_of_the_draws_ignoring_nan() -> None:
    assert spread([10.0, 12.0, 14.0, np.nan]) == pytest.approx(2.0)  # ddof 1
    assert spread(pd.Series([-3.0, -1.0])) == pytest.approx(np.sqrt(2.0))  # negative draws
    assert np.isnan(spread([5.0])) and np.isnan(spread([np.nan, 1.0])) and np.isnan(spread([]))
    assert spread(pd.Series([10.0, None, 14.0], dtype=object)) == pytest.approx(np.sqrt(8.0))  # None is missing


def test_a_spread_at_rounding_level_is_zero() -> None:
    """FID of the same two subjects split either way (float64: 5.7e-14 on 376.6), and a float32 mean summed in
    another order, are rounding; a spread just above the threshold is kept."""
    assert spread([376.57365313483683, 376.57365313483683 + 1.1e-13] * 25) == 0.0
    float32 = np.float32(0.5076)
    assert spread([float(float32), float(np.nextafter(float32, np.float32(1.0)))]) == 0.0
    assert spread([-2.0, -2.0 - 4e-16]) == 0.0  # judged on the magnitude
    assert spread([0.0, 0.0, 0.0]) == 0.0
    above = [100.0, 100.0 + 3 * ROUNDING_SPREAD * 100.0]
    assert spread(above) == pytest.approx(np.std(above, ddof=1))
    assert spread([0.0, 1e-12]) == pytest.approx(np.std([0.0, 1e-12], ddof=1))  # tiny values, relative spread


def test_a_spread_exactly_at_the_threshold_is_rounding(monkeypatch: pytest.MonkeyPatch) -> None:
    """'No larger than': at equality the spread is rounding. With draws 0 and 2 the threshold times the largest
    magnitude (2, a power of two) equals the std exactly."""
    std = float(np.std([0.0, 2.0], ddof=1))
    monkeypatch.setattr("benchmark.numerics.ROUNDING_SPREAD", std / 2.0)
    assert spread([0.0, 2.0]) == 0.0
    monkeypatch.setattr("benchmark.numerics.ROUNDING_SPREAD", np.nextafter(std / 2.0, 0.0))
    assert spread([0.0, 2.0]) == std


def test_denormals_are_flushed_inside_the_block_only() -> None:
    tiny = torch.tensor([1e-310], dtype=torch.float64)
    with denormals_flushed():
        assert (tiny * 1.0).item() == 0.0
    assert (tiny * 1.0).item() == pytest.approx(1e-310)
