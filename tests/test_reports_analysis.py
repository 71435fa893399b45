"""Analysis of stored results: numbers checked against scipy.stats and direct numpy formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.study.schema import normalise_results
from reports.agreement import _rowwise_kendall_b, cell_table, correlate, correlations, rank_metrics
from reports.sensitivity import effect_sizes, memorisation_table, sensitivity, with_shared_baseline
from tests.synthetic_study import PERTURBATIONS, synthetic_cases, synthetic_results


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return normalise_results(synthetic_results())


def test_correlate_matches_scipy_and_is_seeded() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=25)
    y = 0.6 * x + rng.normal(size=25)
    out = correlate(x, y, n_boot=500, seed=7)
    for method, test in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr), ("kendall", stats.kendalltau)):
        expected = test(x, y)
        assert out[method] == pytest.approx(expected.statistic, abs=1e-12)
        assert out[f"{method}_p"] == pytest.approx(expected.pvalue, rel=1e-9)
        assert out[f"{method}_lo"] < out[method] < out[f"{method}_hi"]
    assert correlate(x, y, n_boot=500, seed=7) == out
    assert correlate(x, y, n_boot=500, seed=8)["pearson_lo"] != out["pearson_lo"]


def test_bootstrap_interval_matches_a_loop_over_scipy() -> None:
    """The vectorised bootstrap equals resampling the same indices and calling scipy each time."""
    rng = np.random.default_rng(4)
    x = np.round(rng.normal(size=12), 1)  # rounding makes ties, which tau-b must handle
    y = np.round(x + rng.normal(size=12), 1)
    n_boot, seed = 300, 11
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    with np.errstate(all="ignore"):
        loop = {
            "spearman": [stats.spearmanr(x[i], y[i]).statistic for i in idx],
            "kendall": [stats.kendalltau(x[i], y[i]).statistic for i in idx],
            "pearson": [stats.pearsonr(x[i], y[i]).statistic for i in idx],
        }
    out = correlate(x, y, n_boot=n_boot, seed=seed)
    for method, values in loop.items():
        values = np.asarray(values)
        lo, hi = np.percentile(values[np.isfinite(values)], [2.5, 97.5])
        assert out[f"{method}_lo"] == pytest.approx(lo, abs=1e-9)
        assert out[f"{method}_hi"] == pytest.approx(hi, abs=1e-9)
    tau = _rowwise_kendall_b(x[idx[:20]], y[idx[:20]])
    np.testing.assert_allclose(tau, loop["kendall"][:20], atol=1e-12)


def test_cell_table_counts_the_clean_set_once(results: pd.DataFrame) -> None:
    cells = cell_table(results)
    assert len(cells) == 5 * 5 + 1
    clean = cells.loc[("clean", "clean", 0)]
    baseline = results[(results.severity == 0) & (results.quantity == "psnr")]["value"].mean()
    assert clean["psnr"] == pytest.approx(baseline, abs=1e-12)
    assert len(cell_table(results, "noise")) == 5 + 1


def test_correlations_over_all_cells_equal_scipy_on_cell_means(results: pd.DataFrame) -> None:
    table = correlations(results, n_boot=200, seed=0)
    row = table[(table.group == "all") & (table.quantity == "psnr") & (table.target == "robustness/dice_WT")]
    cells = cell_table(results)
    expected = stats.spearmanr(cells["psnr"], cells["robustness/dice_WT"])
    assert row["spearman"].item() == pytest.approx(expected.statistic, abs=1e-12)
    assert row["spearman_p"].item() == pytest.approx(expected.pvalue, rel=1e-9)
    assert row["agreement"].item() == pytest.approx(expected.statistic)  # higher is better: same sign
    fid = table[(table.group == "all") & (table.quantity == "fid")]
    assert fid["agreement"].item() == pytest.approx(-fid["spearman"].item())  # lower is better: flipped
    flat = table[(table.group == "all") & (table.quantity == "flat_metric")]
    assert np.isnan(flat["spearman"].item()) and "constant" in flat["note"].item()
    assert set(table["group"]) == {"all", *PERTURBATIONS.values()}


def test_ranking_puts_the_dice_tracking_metric_first(results: pd.DataFrame) -> None:
    ranking = rank_metrics(correlations(results, n_boot=200, seed=0), "robustness/dice_WT")
    assert ranking["quantity"].tolist()[0] == "psnr"
    assert ranking["quantity"].tolist()[-1] == "flat_metric"
    assert "constant" in ranking.set_index("quantity").loc["flat_metric", "caveats"]
    assert ranking["rank"].tolist() == list(range(1, len(ranking) + 1))


def test_sensitivity_direction_and_monotonicity(results: pd.DataFrame) -> None:
    table = sensitivity(results).set_index(["quantity", "perturbation"])
    psnr = table.loc[("psnr", "gaussian_noise")]
    assert psnr["direction"] == "worse" and psnr["right_direction"] and psnr["monotone"]
    rows = results[(results.quantity == "psnr") & (results.perturbation == "gaussian_noise")]
    expected = stats.spearmanr(rows["severity"], rows["value"])
    assert psnr["spearman_rho"] == pytest.approx(expected.statistic, abs=1e-12)
    assert psnr["spearman_p"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert table.loc[("fid", "replace_with_train"), "direction"] == "better"
    assert table.loc[("copy_rate", "replace_with_train"), "direction"] == "worse"
    flat = table.loc[("flat_metric", "blur")]
    assert flat["direction"] == "flat" and np.isnan(flat["spearman_rho"]) and flat["effect_at_max"] == 0
    assert psnr["first_detected"] == 1 and psnr["noise_source"] == "seeds"


def test_effect_size_over_seeds_is_delta_over_pooled_std(results: pd.DataFrame) -> None:
    effects = effect_sizes(results).set_index(["quantity", "perturbation", "severity"])
    row = effects.loc[("psnr", "blur", 3)]
    values = results[(results.quantity == "psnr") & (results.perturbation == "blur")]
    level, base = values[values.severity == 3]["value"], values[values.severity == 0]["value"]
    noise = np.sqrt((level.var(ddof=1) + base.var(ddof=1)) / 2)
    assert row["noise"] == pytest.approx(noise, rel=1e-12)
    assert row["effect"] == pytest.approx(abs(level.mean() - base.mean()) / noise, rel=1e-12)
    assert bool(row["worse"])


def test_effect_size_from_bootstrapped_cases_with_one_seed() -> None:
    """One seed: the noise is the bootstrap std of the item mean, close to std / sqrt(n)."""
    results = normalise_results(synthetic_results(seeds=(0,)))
    cases = synthetic_cases(results, n_items=30, item_std=0.5)
    effects = effect_sizes(results, cases, seed=0).set_index(["quantity", "perturbation", "severity"])
    row = effects.loc[("psnr", "blur", 2)]
    assert row["noise_source"] == "bootstrap"
    assert row["noise"] == pytest.approx(0.5 / np.sqrt(30), rel=0.3)
    assert effects.loc[("fid", "blur", 2), "noise_source"] == "unavailable"
    assert np.isnan(effects.loc[("fid", "blur", 2), "effect"])


def test_memorisation_table_separates_rewarding_and_flagging(results: pd.DataFrame) -> None:
    table = memorisation_table(sensitivity(results)).set_index("quantity")
    assert table.loc["fid", "verdict"] == "rewards copies"
    assert table.loc["copy_rate", "verdict"] == "flags copies"
    assert table.loc["flat_metric", "verdict"] == "insensitive"
    assert "robustness/dice_WT" not in table.index


def test_missing_baseline_is_borrowed_from_the_other_perturbations(results: pd.DataFrame) -> None:
    trimmed = results[~((results.perturbation == "blur") & (results.severity == 0))]
    rows = with_shared_baseline(trimmed)
    borrowed = rows[(rows.perturbation == "blur") & (rows.severity == 0) & (rows.quantity == "psnr")]
    others = trimmed[(trimmed.severity == 0) & (trimmed.quantity == "psnr")]
    assert len(borrowed) == 3
    assert borrowed["value"].mean() == pytest.approx(others["value"].mean(), rel=1e-12)
    assert sensitivity(trimmed).set_index(["quantity", "perturbation"]).loc[("psnr", "blur"), "n_levels"] == 6


def test_failed_rows_are_left_out_of_the_analysis(results: pd.DataFrame) -> None:
    broken = results.copy()
    mask = (broken.quantity == "fid") & (broken.perturbation == "blur") & (broken.severity == 4)
    broken.loc[mask, ["value", "status", "error"]] = [np.nan, "failed", "boom"]
    table = sensitivity(broken).set_index(["quantity", "perturbation"])
    assert table.loc[("fid", "blur"), "n_levels"] == 5
    assert np.isfinite(table.loc[("fid", "blur"), "spearman_rho"])


def test_rows_without_direction_are_a_clear_error(results: pd.DataFrame) -> None:
    from benchmark.errors import DataError

    broken = results.astype({"higher_is_better": object})
    broken.loc[0, "higher_is_better"] = None
    with pytest.raises(DataError, match="higher_is_better"):
        normalise_results(broken)
