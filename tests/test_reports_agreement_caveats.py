"""Orientation, caveats and notes of the agreement table, against hand-computed values and scipy.

The ranking's caveats are what a reader acts on ("95 % CI spans 0", "wrong sign"), so each one is checked
at its boundary on a correlation table written out by hand, and the interval of a lower-is-better metric
is checked to be the negated interval with its bounds swapped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.study.schema import normalise_results
from reports.agreement import _oriented, correlate, correlations, rank_metrics
from tests.synthetic_study import synthetic_results

TARGET = "robustness/dice_WT"


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return normalise_results(synthetic_results())


@pytest.fixture(scope="module")
def table(results: pd.DataFrame) -> pd.DataFrame:
    return correlations(results, n_boot=50, seed=0)


def _row(quantity: str, group: str, agreement: float, lo: float, hi: float, n_cells: int = 12,
         note: str = "") -> dict[str, object]:
    return {"target": TARGET, "group": group, "quantity": quantity, "kind": "reference", "agreement": agreement,
            "agreement_lo": lo, "agreement_hi": hi, "spearman_p": 0.01, "pearson": agreement,
            "kendall": agreement, "n_cells": n_cells, "note": note}


def test_lower_is_better_interval_is_negated_with_bounds_swapped() -> None:
    record = {"higher_is_better": False, "spearman": 0.3, "spearman_lo": -0.1, "spearman_hi": 0.6}
    assert _oriented(record) == {"agreement": -0.3, "agreement_lo": -0.6, "agreement_hi": 0.1}
    record["higher_is_better"] = True
    assert _oriented(record) == {"agreement": 0.3, "agreement_lo": -0.1, "agreement_hi": 0.6}


def test_correlations_orient_the_interval_of_a_lower_is_better_metric(table: pd.DataFrame) -> None:
    rows = table[table.group == "all"].set_index("quantity")
    fid, psnr = rows.loc["fid"], rows.loc["psnr"]
    assert (fid["agreement_lo"], fid["agreement_hi"]) == (-fid["spearman_hi"], -fid["spearman_lo"])
    assert fid["agreement_lo"] <= fid["agreement"] <= fid["agreement_hi"]
    assert (psnr["agreement_lo"], psnr["agreement_hi"]) == (psnr["spearman_lo"], psnr["spearman_hi"])


@pytest.mark.parametrize(("lo", "hi", "spans"), [(-0.1, 0.8, True), (0.0, 0.8, True), (-0.8, 0.0, True),
                                                 (1e-9, 0.8, False), (-0.8, -1e-9, False)])
def test_interval_that_touches_zero_is_a_caveat(lo: float, hi: float, spans: bool) -> None:
    agreement = (lo + hi) / 2
    ranking = rank_metrics(pd.DataFrame([_row("m", "all", agreement, lo, hi)]), TARGET)
    assert ("95 % CI spans 0" in ranking["caveats"].item()) == spans


def test_caveats_at_their_boundaries() -> None:
    table = pd.DataFrame([
        _row("few", "all", 0.5, 0.2, 0.7, n_cells=9),
        _row("ten", "all", 0.4, 0.2, 0.7, n_cells=10),
        _row("wrong", "all", -0.4, -0.7, -0.1),
        _row("zero", "all", 0.0, -0.0, 0.0),
        _row("spread", "all", 0.3, 0.1, 0.5),
        _row("spread", "noise", 0.6, 0.2, 0.9),
        _row("spread", "shift", -0.6, -0.9, -0.2),
        _row("spread", "blur", 0.99, 0.9, 1.0, note="dice_WT does not change detectably"),  # not counted
        _row("edge", "all", 0.29, 0.1, 0.5),
        _row("edge", "noise", 0.5, 0.2, 0.9),
        _row("edge", "shift", -0.5, -0.9, -0.2),  # spread exactly 1.0: not a caveat
        _row("noted", "all", -0.05, -0.3, -0.01, n_cells=5, note="from a resumed run"),  # a note comes first
    ])
    ranking = rank_metrics(table, TARGET).set_index("quantity")
    assert ranking["rank"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert ranking.index.tolist() == ["few", "ten", "spread", "edge", "zero", "noted", "wrong"]
    assert ranking.loc["few", "caveats"] == "only 9 cells"
    assert ranking.loc["ten", "caveats"] == ""
    assert ranking.loc["wrong", "caveats"] == "wrong sign: says better where Dice is lower"
    assert ranking.loc["zero", "caveats"] == "95 % CI spans 0"
    assert ranking.loc["spread", "caveats"] == "differs across families (ρ -0.60 to +0.60)"
    assert (ranking.loc["spread", "family_min"], ranking.loc["spread", "family_max"]) == (-0.6, 0.6)
    assert ranking.loc["edge", "caveats"] == ""
    assert ranking.loc["noted", "caveats"] == ("from a resumed run; only 5 cells; "
                                               "wrong sign: says better where Dice is lower")
    assert np.isnan(ranking.loc["few", "family_min"])


def test_missing_agreement_keeps_its_note_as_the_only_caveat() -> None:
    table = pd.DataFrame([_row("ok", "all", 0.5, 0.2, 0.7),
                          _row("flat", "all", np.nan, np.nan, np.nan, n_cells=5, note="flat is constant"),
                          _row("none", "all", np.nan, np.nan, np.nan, n_cells=0, note="not computed")])
    ranking = rank_metrics(table, TARGET).set_index("quantity")
    assert ranking.index.tolist() == ["ok", "flat", "none"]  # NaN agreements last
    assert ranking.loc["flat", "caveats"] == "flat is constant"
    assert ranking.loc["none", "caveats"] == "not computed"
    assert rank_metrics(table.assign(target="other"), TARGET).empty


def test_flat_target_note_is_scipy_one_way_anova_per_family(results: pd.DataFrame, table: pd.DataFrame) -> None:
    table = table.set_index(["group", "quantity"])
    ok = results[(results.quantity == TARGET) & (results.status == "ok")]
    for family in ("memorisation", "shift", "noise"):
        rows = ok[ok.family == family]
        p = stats.f_oneway(*[g.to_numpy() for _, g in rows.groupby(["perturbation", "severity"])["value"]]).pvalue
        note = table.loc[(family, "fid"), "note"]
        if p > 0.05:  # Dice does not move under memorisation or intensity shift in the synthetic study
            assert note == f"{TARGET} does not change detectably in this family (one-way ANOVA over cells, p = {p:.2g})"
        else:
            assert note == ""
    assert table.loc[("memorisation", "fid"), "note"] != ""
    assert table.loc[("noise", "fid"), "note"] == ""
    assert (table.loc["all", "note"].drop("flat_metric") == "").all()


def test_flat_target_note_needs_two_seeds() -> None:
    one_seed = normalise_results(synthetic_results(seeds=(0,)))
    table = correlations(one_seed[one_seed.severity <= 3], n_boot=20, seed=0)
    assert (table[table.quantity != "flat_metric"]["note"] == "").all()


def test_pair_notes_for_too_few_cells_and_missing_quantities(results: pd.DataFrame) -> None:
    few = results[results.severity <= 1]  # clean cell + one cell per family: 2 cells within a family
    table = correlations(few, n_boot=20, seed=0).set_index(["group", "quantity"])
    assert table.loc[("noise", "psnr"), "n_cells"] == 2
    assert table.loc[("noise", "psnr"), "note"] == "fewer than 3 cells"
    assert np.isnan(table.loc[("noise", "psnr"), "spearman"])
    assert table.loc[("all", "psnr"), "n_cells"] == 6 and table.loc[("all", "psnr"), "note"] == ""
    partial = few[~((few.quantity == "psnr") & ((few.family != "noise") | (few.severity == 0)))]
    table = correlations(partial, n_boot=20, seed=0).set_index(["group", "quantity"])
    assert table.loc[("shift", "psnr"), "note"] == "metric or target not computed on these cells"
    assert table.loc[("shift", "psnr"), "n_cells"] == 0


def test_bootstrap_interval_leaves_out_constant_resamples() -> None:
    """Three points: a third of the resamples draw one point three times; their NaN must not count."""
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])
    n_boot, seed = 400, 5
    idx = np.random.default_rng(seed).integers(0, 3, size=(n_boot, 3))
    with np.errstate(all="ignore"):
        values = np.array([stats.pearsonr(x[i], y[i]).statistic if np.ptp(x[i]) > 0 else np.nan for i in idx])
    out = correlate(x, y, n_boot=n_boot, seed=seed)
    lo, hi = np.percentile(values[np.isfinite(values)], [2.5, 97.5])
    assert (out["pearson_lo"], out["pearson_hi"]) == pytest.approx((lo, hi), abs=1e-12)
    assert np.isnan(values).sum() > 0
