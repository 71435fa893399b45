"""Sensitivity, effect sizes and the memorisation verdicts on small tables whose answers are worked out here.

Levels, seeds and values are chosen so that every number is a hand computation (means, pooled standard
deviations, effect = |delta| / noise) or scipy's Spearman, with each threshold (effect 2, |ρ| 0.8) hit exactly.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.study.schema import normalise_results
from reports.sensitivity import case_noise, effect_sizes, memorisation_table, sensitivity
from tests.synthetic_study import result_row


def table(values: dict[str, tuple[bool, dict[int, list[float]]]], family: str = "noise") -> pd.DataFrame:
    """Results rows: quantity -> (higher_is_better, severity -> one value per seed)."""
    rows = [result_row("p", family, severity, seed, quantity, value, "reference", hib)
            for quantity, (hib, levels) in values.items()
            for severity, per_seed in levels.items() for seed, value in enumerate(per_seed)]
    return normalise_results(pd.DataFrame(rows))


FALLING = {0: [10.0, 10.2], 1: [9.9, 10.1], 2: [8.0, 8.2], 3: [5.0, 5.2]}  # std 0.1414 at every level


def test_sensitivity_of_a_falling_metric_by_hand() -> None:
    results = table({"m": (True, FALLING), "lower_better": (False, FALLING)})
    out = sensitivity(results).set_index("quantity")
    m = out.loc["m"]
    noise = math.sqrt(0.02)  # pooled std of two levels whose seed pairs differ by 0.2
    severities = [s for s, v in FALLING.items() for _ in v]
    expected = stats.spearmanr(severities, [x for v in FALLING.values() for x in v])
    assert m["spearman_rho"] == pytest.approx(expected.statistic, abs=1e-12)
    assert m["spearman_p"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert (m["direction"], m["right_direction"], m["monotone"]) == ("worse", True, True)
    assert m["delta_at_max"] == pytest.approx(5.1 - 10.1, abs=1e-12)
    assert m["effect_at_max"] == pytest.approx(5.0 / noise, rel=1e-12)
    assert m["first_detected"] == 2  # severity 1: effect 0.1 / 0.1414 = 0.71 < 2; severity 2: 14.1
    assert (m["n_levels"], m["n_seeds"], m["n_nonfinite"], m["noise_source"]) == (4, 2, 0, "seeds")
    flipped = out.loc["lower_better"]  # the same numbers read as "lower is better" improve with severity
    assert (flipped["direction"], flipped["right_direction"]) == ("better", False)
    assert np.isnan(flipped["first_detected"])
    effects = effect_sizes(results).set_index(["quantity", "severity"])
    assert effects.loc[("m", 1), "effect"] == pytest.approx(0.1 / noise, rel=1e-12)
    assert effects.loc[("m", 1), "worse"] and not effects.loc[("lower_better", 1), "worse"]
    assert effects.loc[("m", 2), "baseline"] == pytest.approx(10.1, abs=1e-12)


def test_non_monotone_gaps_and_noiseless_metrics() -> None:
    results = table({
        "bumpy": (True, {0: [1.0, 1.2], 1: [2.0, 2.2], 2: [1.5, 1.7], 3: [3.0, 3.2]}),
        "gap": (True, {0: [1.0, 1.0], 1: [0.5, 0.7], 2: [0.2, np.nan]}),
        "exact": (False, {0: [1.0, 1.0], 1: [1.0, 1.0], 2: [2.0, 2.0]}),
        "flat": (True, {0: [1.0, 1.0], 1: [1.0, 1.0], 2: [1.0, 1.0]}),
    })
    out = sensitivity(results).set_index("quantity")
    assert not out.loc["bumpy", "monotone"] and out.loc["bumpy", "direction"] == "better"
    assert (out.loc["gap", "n_nonfinite"], out.loc["gap", "n_levels"]) == (1, 3)
    effects = effect_sizes(results).set_index(["quantity", "severity"])
    assert effects.loc[("exact", 1), "effect"] == 0.0  # no noise and no change
    assert effects.loc[("exact", 2), "effect"] == math.inf  # no noise, a change
    assert out.loc["exact", "first_detected"] == 2 and out.loc["exact", "direction"] == "worse"
    assert out.loc["flat", "direction"] == "flat" and np.isnan(out.loc["flat", "spearman_rho"])
    assert not out.loc["flat", "monotone"]


def test_given_noise_replaces_the_seed_spread() -> None:
    results = table({"m": (True, FALLING)})
    given = pd.DataFrame({"quantity": ["m"], "perturbation": ["p"], "severity": [3], "noise": [0.5],
                          "noise_source": ["floor"]})
    effects = effect_sizes(results, noise=given).set_index("severity")
    assert effects.loc[3, "effect"] == pytest.approx(5.0 / 0.5, rel=1e-12) and effects.loc[3, "noise_source"] == "floor"
    assert effects.loc[2, "noise_source"] == "seeds"


def test_case_noise_of_replicates_and_items() -> None:
    cases = pd.DataFrame({
        "quantity": ["fid"] * 6 + ["psnr"] * 4, "perturbation": "p", "severity": 1,
        "seed": [0, 0, 0, 1, 1, 2, 0, 0, 0, 0],
        "case_kind": ["replicate"] * 6 + ["item"] * 4,
        "value": [1.0, 2.0, 3.0, 2.0, 4.0, 7.0, 1.0, 2.0, 4.0, np.nan],
    })
    noise = case_noise(cases, n_boot=50, seed=3).set_index("quantity")
    assert noise.loc["fid", "case_std"] == pytest.approx((1.0 + math.sqrt(2.0)) / 2, rel=1e-12)  # seed 2: 1 value
    assert noise.loc["fid", "case_source"] == "replicates"
    items = np.array([1.0, 2.0, 4.0])
    means = items[np.random.default_rng(3).integers(0, 3, size=(50, 3))].mean(axis=1)
    assert noise.loc["psnr", "case_std"] == pytest.approx(means.std(ddof=1), rel=1e-12)
    assert noise.loc["psnr", "case_source"] == "bootstrap"


def _verdict_rows() -> pd.DataFrame:
    base = {"kind": "distribution", "perturbation": "replace_with_train", "family": "memorisation",
            "higher_is_better": False, "spearman_p": 0.01}
    rows = [
        ("at_threshold", "seeds", 2.0, 0.1, 1.0, "worse"),
        ("below", "seeds", 1.99, 0.9, 1.0, "worse"),
        ("rho_at_threshold", "unavailable", np.nan, -0.8, -1.0, "better"),
        ("rho_below", "unavailable", np.nan, -0.79, -1.0, "better"),
        ("no_change", "seeds", 5.0, 0.9, 0.0, "worse"),
    ]
    records = [{**base, "quantity": q, "noise_source": s, "effect_at_max": e, "spearman_rho": r,
                "delta_at_max": d, "direction": direction} for q, s, e, r, d, direction in rows]
    records.append({**records[0], "quantity": "other_family", "family": "noise"})
    records.append({**records[0], "quantity": "robustness/dice_WT", "kind": "dice"})
    return pd.DataFrame(records)


def test_memorisation_verdicts_at_their_thresholds() -> None:
    table = memorisation_table(_verdict_rows()).set_index("quantity")
    assert table["verdict"].to_dict() == {"at_threshold": "flags copies", "below": "insensitive",
                                          "rho_at_threshold": "rewards copies", "rho_below": "insensitive",
                                          "no_change": "insensitive"}
    assert table.loc["at_threshold", "evidence"] == "effect vs seeds"
    assert table.loc["rho_at_threshold", "evidence"] == "Spearman ρ (no noise estimate)"
    empty = memorisation_table(_verdict_rows().assign(family="noise"))
    assert empty.empty and {"verdict", "evidence"} <= set(empty.columns)


def test_infinite_levels_give_defined_answers_without_runtime_warnings() -> None:
    """PSNR of identical images is +inf: at every level of a copy perturbation, or only at the clean level."""
    results = table({
        "psnr_copies": (True, {0: [np.inf, np.inf], 1: [np.inf, np.inf], 3: [np.inf, np.inf]}),
        "psnr_noise": (True, {0: [np.inf, np.inf], 1: [30.0, 30.4], 3: [25.0, 25.4]}),
        "half_inf": (True, {0: [1.0, 1.2], 1: [np.inf, 0.9], 3: [0.5, 0.7]}),
    })
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning here would leak into every study's output
        out = sensitivity(results).set_index("quantity")
        effects = effect_sizes(results).set_index(["quantity", "severity"])
    copies = effects.loc["psnr_copies"]
    assert copies["delta"].isna().all() and not copies["worse"].any()  # inf to inf: no change to measure
    assert copies["noise"].isna().all() and copies["effect"].isna().all()
    assert np.isnan(out.loc["psnr_copies", "delta_at_max"]) and not out.loc["psnr_copies", "monotone"]
    noise = effects.loc["psnr_noise"]
    assert (noise["delta"] == -np.inf).all() and noise["worse"].all()  # from identical to 30 dB: worse
    assert out.loc["psnr_noise", "monotone"] and out.loc["psnr_noise", "direction"] == "worse"
    assert np.isnan(effects.loc[("half_inf", 1), "noise"])  # one infinite seed: no finite spread
    assert effects.loc[("half_inf", 3), "noise"] == pytest.approx(math.sqrt(0.02), rel=1e-12)
