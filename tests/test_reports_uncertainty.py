"""The real-vs-real floor and the noise every effect is measured in (reports/uncertainty.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports.uncertainty import cell_intervals, floor_table, noise_table


def floor_draws(quantity: str, values: list[float], n_subjects: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"seed": 0, "split": range(len(values)), "n_subjects": n_subjects,
                         "quantity": quantity, "value": values})


def test_floor_is_the_mean_and_spread_over_splits_without_kid_std_or_infinite_draws() -> None:
    draws = pd.concat([floor_draws("fid", [10.0, 12.0, 14.0, np.inf], n_subjects=3),
                       floor_draws("kid_std", [0.1, 0.2]), floor_draws("ssim_free", [0.0, 0.0])])
    table = floor_table(draws).set_index("quantity")
    assert list(table.index) == ["fid", "ssim_free"]
    assert table.loc["fid", "floor"] == pytest.approx(12.0)
    assert table.loc["fid", "floor_std"] == pytest.approx(2.0)  # sample std (ddof 1) of 10, 12, 14
    assert table.loc["fid", "n_splits"] == 3 and table.loc["fid", "n_subjects"] == 3  # inf not counted
    assert table.loc["ssim_free", "floor_std"] == 0.0


def test_a_floor_spread_at_rounding_level_is_no_spread() -> None:
    """Two subjects: every split is the same pair in either order; FID(A, B) and FID(B, A) differ in the last
    bits (a measured spread of 5.7e-14 on 376.6), which as a noise unit made a change 3e15 noise units."""
    rounding = [376.57365313483683, 376.57365313483683 + 1.1e-13] * 25
    real = [376.5, 376.6] * 25
    table = floor_table(pd.concat([floor_draws("fid", rounding), floor_draws("frd", real)])).set_index("quantity")
    assert table.loc["fid", "floor_std"] == 0.0
    assert table.loc["frd", "floor_std"] == pytest.approx(np.std(real, ddof=1))


def test_one_test_subject_gives_no_bootstrap_noise() -> None:
    """Every resample of one subject is the same set: its draws differ by rounding only, so no noise unit."""
    resamples = pd.DataFrame({"resample": np.repeat(range(4), 2), "seed": 0, "perturbation": "noise",
                              "severity": 3, "quantity": ["fid", "ssim"] * 4,
                              "value": [120.0, 0.5, 120.0 + 2e-14, 0.5, 120.0, 0.52, 120.0 - 2e-14, 0.49]})
    table = cell_intervals(resamples).set_index("quantity")
    assert table.loc["fid", "boot_std"] == 0.0 and table.loc["fid", "boot_lo"] == pytest.approx(120.0)
    assert table.loc["ssim", "boot_std"] == pytest.approx(np.std([0.5, 0.5, 0.52, 0.49], ddof=1))


def test_noise_is_the_floor_spread_else_the_cell_bootstrap_else_none() -> None:
    results = pd.DataFrame({
        "quantity": ["fid", "fid", "dice", "ssim", "fid"], "perturbation": ["noise"] * 5,
        "severity": [3, 0, 3, 3, 5], "status": ["ok", "ok", "ok", "ok", "failed"]})
    floor = pd.DataFrame({"quantity": ["fid", "ssim"], "floor_std": [2.0, 0.0]})
    intervals = pd.DataFrame({"quantity": ["fid", "dice", "ssim"], "perturbation": ["noise"] * 3,
                              "severity": [3, 3, 3], "boot_std": [9.0, 0.05, 0.0]})
    table = noise_table(results, floor, intervals).set_index("quantity")
    assert list(table.index) == ["fid", "dice"]  # severity 0 and failed rows have no noise; ssim has none
    assert table.loc["fid", "noise"] == 2.0 and table.loc["fid", "noise_source"] == "floor"
    assert table.loc["dice", "noise"] == 0.05 and table.loc["dice", "noise_source"] == "subject bootstrap"
