"""The agreement and sensitivity tables' contract where the synthetic study is silent: default bootstrap, which
quantities are metrics (not Dice, not HD95), which groups exist, the flat-Dice note per family, the kind column,
the memorisation table's columns and missing deltas, what `sensitivity` passes on to the effect sizes, and tables
with lonely quantities. Expected values come from scipy and hand-built tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.study.schema import normalise_results
from reports.agreement import cell_table, correlate, correlations
from reports.sensitivity import case_noise, effect_sizes, memorisation_table, sensitivity
from tests.synthetic_study import result_row


def _study(seeds: int = 1) -> pd.DataFrame:
    """Two families: under noise Dice falls with severity; under shift it stays flat (seed jitter only).
    Metrics: ssim (reference, higher better), fid (distribution, lower better); targets dice_WT and hd95_WT."""
    rng = np.random.default_rng(0)
    rows = []
    for perturbation, family, slope in (("noise", "noise", -0.1), ("shift", "shift", 0.0)):
        for severity in range(4):
            for seed in range(seeds):
                dice = 0.9 + slope * severity + rng.normal(0, 0.01)
                ssim = 1 - 0.05 * severity + rng.normal(0, 0.02)
                fid_value = 5 * severity + rng.normal(0, 1.0)
                cell = (perturbation, family, severity, seed)
                rows += [result_row(*cell, "robustness/dice_WT", dice, "dice", True),
                         result_row(*cell, "robustness/hd95_WT", 10 - 20 * dice, "hd95", False),
                         result_row(*cell, "ssim", ssim, "reference", True),
                         result_row(*cell, "fid", fid_value, "distribution", False)]
    return normalise_results(pd.DataFrame(rows))


def test_default_bootstrap_is_1000_draws_with_seed_0():
    results = _study()
    table = correlations(results)
    cells = cell_table(results)
    row = table[(table.group == "all") & (table.quantity == "ssim")].iloc[0]
    expected = correlate(cells["ssim"].to_numpy(), cells["robustness/dice_WT"].to_numpy(), n_boot=1000, seed=0)
    for key in ("spearman_lo", "spearman_hi", "pearson_lo", "kendall_hi"):
        assert row[key] == expected[key]
    assert correlate(cells["ssim"].to_numpy(), cells["robustness/dice_WT"].to_numpy(), n_boot=1001, seed=0) != \
        expected and correlate(cells["ssim"].to_numpy(), cells["robustness/dice_WT"].to_numpy(), seed=1) != expected


def test_metrics_exclude_dice_and_hd95_and_keep_their_kind():
    table = correlations(_study(), n_boot=50)
    assert sorted(set(table["quantity"])) == ["fid", "ssim"]
    assert set(table["target"]) == {"robustness/dice_WT"}
    kinds = table.drop_duplicates("quantity").set_index("quantity")["kind"].to_dict()
    assert kinds == {"fid": "distribution", "ssim": "reference"}
    assert table.set_index(["group", "quantity"]).loc[("all", "fid"), "higher_is_better"].item() is False


def test_groups_are_all_and_each_named_family_never_the_empty_family():
    results = _study()
    extra = pd.DataFrame([result_row("baseline", "", 0, 0, "ssim", 1.0, "reference", True)])
    table = correlations(pd.concat([results, normalise_results(extra)], ignore_index=True), n_boot=50)
    assert sorted(set(table["group"])) == ["all", "noise", "shift"]


def test_a_family_whose_dice_does_not_move_is_noted_with_the_anova_p():
    results = _study(seeds=3)
    table = correlations(results, n_boot=50).set_index(["group", "quantity"])
    rows = results[(results.quantity == "robustness/dice_WT") & (results.family == "shift")]
    p = stats.f_oneway(*[g.to_numpy(float) for _, g in rows.groupby(["perturbation", "severity"])["value"]]).pvalue
    assert p > 0.05
    note = f"robustness/dice_WT does not change detectably in this family (one-way ANOVA over cells, p = {p:.2g})"
    assert table.loc[("shift", "ssim"), "note"] == note and table.loc[("shift", "fid"), "note"] == note
    assert table.loc[("noise", "ssim"), "note"] == "" and table.loc[("all", "ssim"), "note"] == ""


def _memorisation_rows(**overrides: object) -> pd.DataFrame:
    base = {"quantity": "fid", "perturbation": "memorisation_copies", "family": "memorisation",
            "kind": "distribution", "higher_is_better": False, "n_levels": 5, "n_seeds": 1, "n_nonfinite": 0,
            "spearman_rho": -0.9, "spearman_p": 0.04, "direction": "better", "right_direction": False,
            "monotone": True, "delta_at_max": -3.0, "effect_at_max": np.nan, "noise_source": "unavailable",
            "first_detected": np.nan}
    rows = [dict(base, **overrides), dict(base, quantity="ssim", kind="reference", higher_is_better=True)]
    return pd.DataFrame(rows, index=[7, 9])  # an index that is not 0..n-1, as after filtering a larger table


def test_memorisation_table_has_exactly_its_columns_and_a_missing_delta_never_counts_as_moved():
    table = memorisation_table(_memorisation_rows())
    assert list(table.columns) == ["quantity", "kind", "perturbation", "higher_is_better", "delta_at_max",
                                   "effect_at_max", "spearman_rho", "spearman_p", "verdict", "evidence"]
    assert list(table.index) == [0, 1] and list(table["verdict"]) == ["rewards copies", "rewards copies"]
    missing = memorisation_table(_memorisation_rows(delta_at_max=np.nan))
    assert list(missing["verdict"]) == ["insensitive", "rewards copies"]


@pytest.mark.parametrize("delta", [0.0, -0.0])
def test_memorisation_table_zero_delta_is_insensitive_even_with_a_large_rho(delta):
    assert memorisation_table(_memorisation_rows(delta_at_max=delta))["verdict"].iloc[0] == "insensitive"


def _cells_study(ssim: list[float], dice: list[float]) -> pd.DataFrame:
    """One perturbation with len(values) - 1 severities, one seed: cell k has ssim[k], dice[k]."""
    rows = []
    for severity, (s, d) in enumerate(zip(ssim, dice, strict=True)):
        rows += [result_row("noise", "noise", severity, 0, "robustness/dice_WT", d, "dice", True),
                 result_row("noise", "noise", severity, 0, "ssim", s, "reference", True)]
    return normalise_results(pd.DataFrame([r for r in rows if np.isfinite(r["value"])]))


def test_three_cells_are_enough_and_only_cells_with_both_values_count():
    table = correlations(_cells_study([0.9, 0.7, 0.8], [0.8, 0.5, 0.7]), n_boot=50)
    row = table[table.group == "all"].iloc[0]
    assert row["n_cells"] == 3 and row["note"] == ""
    assert row["spearman"] == pytest.approx(stats.spearmanr([0.9, 0.7, 0.8], [0.8, 0.5, 0.7]).statistic, abs=1e-12)
    gaps = _cells_study([0.9, np.nan, 0.8, 0.6, 0.5], [0.8, 0.5, np.nan, 0.4, 0.45])
    row = correlations(gaps, n_boot=50).query("group == 'all'").iloc[0]
    assert row["n_cells"] == 3  # cells 0, 3, 4 have both
    assert row["pearson"] == pytest.approx(stats.pearsonr([0.9, 0.6, 0.5], [0.8, 0.4, 0.45]).statistic, abs=1e-12)


def test_a_constant_metric_or_target_is_named_and_two_values_are_not_constant():
    constant_metric = correlations(_cells_study([0.5] * 4, [0.9, 0.8, 0.6, 0.7]), n_boot=50).iloc[0]
    assert (constant_metric["n_cells"], constant_metric["note"]) == (4, "ssim is constant over these cells")
    constant_target = correlations(_cells_study([0.9, 0.8, 0.6, 0.7], [0.5] * 4), n_boot=50).iloc[0]
    assert constant_target["note"] == "robustness/dice_WT is constant over these cells"
    two_values = correlations(_cells_study([0.9, 0.9, 0.6, 0.6], [0.9, 0.8, 0.6, 0.7]), n_boot=50).iloc[0]
    assert two_values["note"] == "" and np.isfinite(two_values["spearman"])
    both = correlations(_cells_study([0.5] * 4, [0.5] * 4), n_boot=50).iloc[0]
    assert both["note"] == "ssim is constant over these cells"


def test_the_seed_reaches_every_interval_and_the_columns_are_fixed():
    results = _study()
    cells = cell_table(results)
    table = correlations(results, n_boot=200, seed=5)
    row = table[(table.group == "all") & (table.quantity == "fid")].iloc[0]
    expected = correlate(cells["fid"].to_numpy(), cells["robustness/dice_WT"].to_numpy(), n_boot=200, seed=5)
    assert (row["spearman_lo"], row["spearman_hi"]) == (expected["spearman_lo"], expected["spearman_hi"])
    assert list(table.columns) == [
        "target", "group", "quantity", "kind", "higher_is_better", "n_cells",
        *[f"{m}{s}" for m in ("pearson", "spearman", "kendall") for s in ("", "_p", "_lo", "_hi")],
        "agreement", "agreement_lo", "agreement_hi", "note"]


def test_correlate_defaults_to_1000_draws_from_seed_0():
    rng = np.random.default_rng(8)
    x = rng.normal(size=9)
    y = x + rng.normal(size=9)
    idx = np.random.default_rng(0).integers(0, 9, size=(1000, 9))
    values = np.array([stats.pearsonr(x[i], y[i]).statistic for i in idx])
    lo, hi = np.percentile(values[np.isfinite(values)], [2.5, 97.5])
    out = correlate(x, y)
    assert (out["pearson_lo"], out["pearson_hi"]) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))


def test_correlate_reads_flags_and_integers_as_numbers():
    flags = [True, False, True, True, False, False, True]
    counts = [3, 1, 4, 4, 0, 2, 5]
    as_float = correlate(np.array(flags, float), np.array(counts, float), n_boot=100)
    assert correlate(flags, counts, n_boot=100) == as_float
    assert correlate(counts, flags, n_boot=100) == correlate(np.array(counts, float), np.array(flags, float),
                                                             n_boot=100)


def test_correlate_of_a_constant_input_is_nan_with_no_interval():
    out = correlate(np.ones(6), np.arange(6.0), n_boot=50)
    assert all(np.isnan(out[f"{m}{s}"]) for m in ("pearson", "spearman", "kendall") for s in ("", "_lo", "_hi"))


# --- reports.sensitivity.sensitivity: what it passes on and the tables it must survive ---

def _levels(values: dict[str, dict[int, list[float]]], perturbation: str = "p") -> list[dict[str, object]]:
    return [result_row(perturbation, "noise", severity, seed, quantity, value, "reference", True)
            for quantity, levels in values.items() for severity, per_seed in levels.items()
            for seed, value in enumerate(per_seed)]


def _item_cases(results: pd.DataFrame) -> pd.DataFrame:
    """Four items per stored value (one seed), spread so that the bootstrap std depends on the seed."""
    rows = []
    for r in results.itertuples(index=False):
        for k, offset in enumerate((-0.3, -0.1, 0.05, 0.35)):
            rows.append({"stage": "metrics", "perturbation": r.perturbation, "severity": r.severity, "seed": r.seed,
                         "quantity": r.quantity, "case_id": str(k), "case_kind": "item", "value": r.value + offset,
                         "config_hash": "0" * 16})
    return pd.DataFrame(rows)


def test_sensitivity_uses_the_cases_seed_and_given_noise_it_is_passed():
    results = normalise_results(pd.DataFrame(_levels({"m": {0: [1.0], 1: [0.8], 2: [0.5], 3: [0.1]}})))
    cases = _item_cases(results)
    for seed in (0, 3):
        effects = effect_sizes(results, cases, seed=seed).set_index("severity")
        row = sensitivity(results, cases, seed=seed).iloc[0]
        assert row["effect_at_max"] == effects.loc[3, "effect"] and row["noise_source"] == "bootstrap"
    assert sensitivity(results, cases).iloc[0]["effect_at_max"] == \
        effect_sizes(results, cases, seed=0).set_index("severity").loc[3, "effect"]
    assert sensitivity(results, cases, seed=3).iloc[0]["effect_at_max"] != \
        sensitivity(results, cases, seed=0).iloc[0]["effect_at_max"]
    given = pd.DataFrame({"quantity": ["m"] * 3, "perturbation": ["p"] * 3, "severity": [1, 2, 3],
                          "noise": [0.1, 0.25, 0.45], "noise_source": ["floor"] * 3})
    row = sensitivity(results, cases, noise=given).iloc[0]
    assert (row["effect_at_max"], row["noise_source"], row["first_detected"]) == (pytest.approx(2.0), "floor", 2)


def test_an_effect_of_exactly_two_noise_units_is_detected():
    results = normalise_results(pd.DataFrame(_levels({"m": {0: [3.0], 1: [2.0]}})))
    given = pd.DataFrame({"quantity": ["m"], "perturbation": ["p"], "severity": [1], "noise": [0.5],
                          "noise_source": ["floor"]})
    row = sensitivity(results, noise=given).iloc[0]
    assert row["effect_at_max"] == 2.0 and row["first_detected"] == 1


def test_sensitivity_rows_are_sorted_and_survive_quantities_without_severities():
    rows = _levels({"z_metric": {0: [1.0], 1: [0.5], 2: [0.2]}}, "b_pert") + _levels({"a_metric": {0: [2.0]}}, "b_pert")
    rows += _levels({"z_metric": {0: [1.0], 1: [0.9], 2: [0.7]}}, "a_pert")
    table = sensitivity(normalise_results(pd.DataFrame(rows)))
    assert list(zip(table.quantity, table.perturbation, strict=True)) == [
        ("a_metric", "b_pert"), ("z_metric", "a_pert"), ("z_metric", "b_pert")]
    lonely = table.iloc[0]
    assert np.isnan(lonely["spearman_rho"]) and np.isnan(lonely["effect_at_max"])
    assert (lonely["noise_source"], lonely["n_levels"]) == ("unavailable", 1) and np.isnan(lonely["first_detected"])
    only_baselines = sensitivity(normalise_results(pd.DataFrame(_levels({"m": {0: [1.0, 1.1]}}))))
    assert len(only_baselines) == 1 and np.isnan(only_baselines.iloc[0]["delta_at_max"])


# --- effect sizes, pooled noise and the shared baseline ---

def test_effect_sizes_columns_values_and_case_noise_from_the_seed():
    results = normalise_results(pd.DataFrame(_levels({"m": {0: [1.0], 1: [1.0], 2: [0.5]}})))
    cases = _item_cases(results)
    effects = effect_sizes(results, cases, seed=3)
    assert list(effects.columns) == ["quantity", "perturbation", "family", "kind", "higher_is_better", "severity",
                                     "n_seeds", "mean", "baseline", "delta", "worse", "noise", "noise_source",
                                     "effect"]
    assert list(effects["severity"]) == [1, 2]  # never the baseline itself
    first, second = effects.iloc[0], effects.iloc[1]
    assert (first["family"], first["kind"], bool(first["higher_is_better"]), first["n_seeds"]) == \
        ("noise", "reference", True, 1)
    assert (first["delta"], bool(first["worse"]), first["effect"]) == (0.0, False, 0.0)  # no change is not worse
    noise = case_noise(cases, seed=3).set_index("severity")["case_std"]
    pooled = np.sqrt((noise[2] ** 2 + noise[0] ** 2) / 2)
    assert (second["mean"], second["baseline"]) == (0.5, 1.0)
    assert second["noise"] == pytest.approx(pooled, rel=1e-12) and second["effect"] == pytest.approx(0.5 / pooled)
    default = case_noise(cases, seed=0).set_index("severity")["case_std"]
    assert effect_sizes(results, cases).iloc[1]["noise"] == pytest.approx(
        np.sqrt((default[2] ** 2 + default[0] ** 2) / 2), rel=1e-12)


def test_noise_is_pooled_only_when_both_levels_have_it():
    seeds = normalise_results(pd.DataFrame(_levels({"m": {0: [1.0], 1: [0.5, 0.7]}})))
    assert effect_sizes(seeds).iloc[0]["noise_source"] == "unavailable"  # baseline has one seed
    results = normalise_results(pd.DataFrame(_levels({"m": {0: [1.0], 1: [0.5]}})))
    cases = _item_cases(results)
    only_level = cases[cases.severity == 1]
    assert effect_sizes(results, only_level).iloc[0]["noise_source"] == "unavailable"  # baseline has no cases


def test_quantities_without_any_baseline_do_not_stop_the_others():
    rows = _levels({"a_no_baseline": {1: [0.4], 2: [0.3]}, "m": {0: [1.0], 1: [0.5]}})
    effects = effect_sizes(normalise_results(pd.DataFrame(rows)))
    assert list(effects["quantity"]) == ["m"]


def test_every_perturbation_without_a_baseline_borrows_one_with_its_family():
    rows = _levels({"m": {0: [1.0], 1: [0.8]}}, "a_pert")
    rows += [dict(r, family="shift") for r in _levels({"m": {1: [0.6], 2: [0.2]}}, "b_pert")]
    effects = effect_sizes(normalise_results(pd.DataFrame(rows))).set_index(["perturbation", "severity"])
    assert effects.loc[("b_pert", 2), "baseline"] == 1.0 and effects.loc[("b_pert", 2), "family"] == "shift"
    assert effects.loc[("b_pert", 1), "delta"] == pytest.approx(-0.4)


def test_spearman_needs_three_points_and_any_spread_in_severity():
    three = sensitivity(normalise_results(pd.DataFrame(_levels({"m": {0: [1.0], 1: [0.8], 2: [0.9]}})))).iloc[0]
    assert three["spearman_rho"] == pytest.approx(stats.spearmanr([0, 1, 2], [1.0, 0.8, 0.9]).statistic, abs=1e-12)
    two = sensitivity(normalise_results(pd.DataFrame(_levels({"m": {0: [1.0], 1: [0.8]}})))).iloc[0]
    assert np.isnan(two["spearman_rho"]) and np.isnan(two["spearman_p"])
    unit = sensitivity(normalise_results(pd.DataFrame(_levels({"m": {0: [1.0, 1.1], 1: [0.8, 0.7]}})))).iloc[0]
    assert unit["spearman_rho"] == pytest.approx(stats.spearmanr([0, 0, 1, 1], [1.0, 1.1, 0.8, 0.7]).statistic)


def test_rowwise_correlations_are_silent_on_constant_rows_and_cover_every_chunk():
    import warnings

    from reports.agreement import _rowwise_kendall_b, _rowwise_pearson

    rng = np.random.default_rng(2)
    a = np.round(rng.normal(size=(450, 6)), 1)
    b = np.round(a + rng.normal(size=(450, 6)), 1)
    a[3], b[5] = 1.0, 2.0  # constant rows: no correlation, and no warning either
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tau, r = _rowwise_kendall_b(a, b), _rowwise_pearson(a, b)
    assert np.isnan(tau[3]) and np.isnan(tau[5]) and np.isnan(r[3]) and np.isnan(r[5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = [stats.kendalltau(a[i], b[i]).statistic for i in range(400, 450)]
    np.testing.assert_allclose(tau[400:], expected, atol=1e-12)
