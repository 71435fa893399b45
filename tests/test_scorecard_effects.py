"""The scorecard's evidence: effects in noise units from stored results and bootstrap resamples, and the verdict
rules of (a)-(d) on their edge cases (undefined cells, missing targets, the floor, the no-data reasons)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reports.scorecard import dice_harm, no_data_reason, scorecard, worse_effects
from reports.sensitivity import EFFECT_THRESHOLD

QUANTITY = ["ssim", "fid"]


def results() -> pd.DataFrame:
    """Two seeds of a clean cell (severity 0, any perturbation name) and two edited cells; ssim is better when
    higher, fid when lower. One failed row and one row of an unknown quantity must be ignored."""
    rows = [
        ("noise", 0, "ssim", 0.90, "ok"), ("noise", 0, "ssim", 0.80, "ok"),
        ("blur", 0, "fid", 10.0, "ok"), ("blur", 0, "fid", 14.0, "ok"),
        ("noise", 3, "ssim", 0.60, "ok"), ("noise", 3, "ssim", 0.50, "ok"), ("noise", 3, "ssim", -9.0, "failed"),
        ("noise", 3, "fid", 20.0, "ok"), ("noise", 3, "fid", 24.0, "ok"),
        ("blur", 2, "ssim", 0.85, "ok"), ("blur", 2, "dice", 0.1, "ok"),
    ]
    return pd.DataFrame(rows, columns=["perturbation", "severity", "quantity", "value", "status"])


def resamples() -> pd.DataFrame:
    """Bootstrap resamples 0-39 of ssim (clean and noise sev 3; two seeds each, averaged) and of fid (clean
    only, so fid's noise cell has no bootstrap)."""
    rows = []
    for r in range(40):
        for seed in (0, 1):
            rows += [(r, "clean", 0, "ssim", 0.85 + 0.001 * seed),
                     (r, "noise", 3, "ssim", 0.55 - 0.01 * r + seed * 0.002), (r, "blur", 0, "fid", 12.0)]
    return pd.DataFrame(rows, columns=["resample", "perturbation", "severity", "quantity", "value"])


def noise() -> pd.DataFrame:
    return pd.DataFrame({"quantity": ["dice", "ssim", "fid", "ssim", "fid", "ssim"],
                         "perturbation": ["noise", "noise", "noise", "blur", "blur", "blur"],
                         "severity": [3, 3, 3, 2, 2, 2], "noise": [1.0, 0.05, 2.0, 0.0, np.nan, -1.0]})


def test_effects_are_changes_from_clean_in_the_worse_direction_in_noise_units() -> None:
    found = worse_effects(resamples(), results(), noise(), {"ssim": True, "fid": False})
    assert list(found.columns) == ["quantity", "perturbation", "severity", "effect", "effect_lo", "effect_hi", "value"]
    assert found[["quantity", "perturbation"]].values.tolist() == [["ssim", "noise"], ["fid", "noise"]]  # noise > 0
    ssim, fid = found.iloc[0], found.iloc[1]
    assert ssim["value"] == pytest.approx(0.55) and ssim["severity"] == 3
    assert ssim["effect"] == pytest.approx((0.85 - 0.55) / 0.05)  # ssim fell: worse, positive
    assert fid["effect"] == pytest.approx((22.0 - 12.0) / 2.0)  # fid rose: worse, positive
    draws = np.array([(0.8505 - (0.551 - 0.01 * r)) / 0.05 for r in range(40)])
    assert ssim["effect_lo"] == pytest.approx(np.quantile(draws, 0.025))
    assert ssim["effect_hi"] == pytest.approx(np.quantile(draws, 0.975))
    assert np.isnan(fid["effect_lo"]) and np.isnan(fid["effect_hi"])  # no resample of that cell
    assert found.dtypes[["effect", "effect_lo", "effect_hi", "value"]].tolist() == [np.dtype(float)] * 4


def test_a_better_reading_is_a_negative_effect_and_infinite_draws_are_dropped() -> None:
    flipped = worse_effects(resamples(), results(), noise(), {"ssim": False})
    assert flipped["effect"].tolist() == pytest.approx([-(0.85 - 0.55) / 0.05])
    boot = resamples()
    boot.loc[(boot["perturbation"] == "noise") & (boot["resample"] < 39), "value"] = np.inf
    one = worse_effects(boot, results(), noise(), {"ssim": True}).iloc[0]
    assert one["effect_lo"] == one["effect_hi"] == pytest.approx((0.8505 - (0.551 - 0.39)) / 0.05)
    boot["value"] = np.where(boot["perturbation"] == "noise", np.inf, boot["value"])
    none_left = worse_effects(boot, results(), noise(), {"ssim": True}).iloc[0]
    assert np.isnan(none_left["effect_lo"]) and np.isnan(none_left["effect_hi"])


def test_no_resamples_no_noise_or_no_ok_rows_give_empty_or_pointwise_effects() -> None:
    pointwise = worse_effects(pd.DataFrame(), results(), noise(), {"ssim": True})
    assert pointwise["effect"].tolist() == pytest.approx([6.0]) and pointwise["effect_lo"].isna().all()
    for empty in (worse_effects(resamples(), results(), None, {"ssim": True}),
                  worse_effects(resamples(), results(), noise().iloc[:0], {"ssim": True}),
                  worse_effects(resamples(), results().assign(status="failed"), noise(), {"ssim": True}),
                  worse_effects(resamples(), results(), noise(), {"lpips": True})):
        assert empty.empty and list(empty.columns)[3:] == ["effect", "effect_lo", "effect_hi", "value"]
        assert empty["effect"].dtype == float and not pd.api.types.is_float_dtype(empty["quantity"])
        assert not pd.api.types.is_float_dtype(empty["perturbation"])


def test_a_cell_without_its_value_or_without_a_clean_value_has_no_effect() -> None:
    rows = results()
    rows = rows[~((rows["quantity"] == "fid") & (rows["severity"] == 0))]  # fid has no clean value
    noise = pd.DataFrame({"quantity": ["ssim", "fid"], "perturbation": ["shift", "noise"], "severity": [3, 3],
                          "noise": [0.1, 1.0]})
    found = worse_effects(resamples(), rows, noise, {"ssim": True, "fid": False})
    assert found["quantity"].tolist() == ["ssim", "fid"]
    assert found["effect"].isna().all() and np.isnan(found["value"].iloc[0]) and found["value"].iloc[1] == 22.0


def harm_table(harmed: list[bool], unharmed: list[bool], families: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"perturbation": [f"p{i}" for i in range(len(harmed))], "severity": 5,
                         "family": families, "harmed": harmed, "unharmed": unharmed})


def effects_of(metric: str, cells: dict[str, tuple[int, float, float, float]], value: float = 0.4) -> pd.DataFrame:
    return pd.DataFrame([(metric, p, s, e, lo, hi, value) for p, (s, e, lo, hi) in cells.items()],
                        columns=["quantity", "perturbation", "severity", "effect", "effect_lo", "effect_hi", "value"])


def card(effects: pd.DataFrame, harm: pd.DataFrame, families: dict[str, str], floor=None, agreement=None,
         n: int = 10) -> pd.Series:
    results = pd.DataFrame({"perturbation": list(families), "family": list(families.values())})
    return scorecard({"m": True}, {"m": "image"}, effects, harm, agreement or {}, results, n, True,
                     floor=floor).set_index("metric").loc["m"]


def test_a_takes_the_highest_severity_and_reports_the_floor() -> None:
    harm = harm_table([True, True, False], [False, False, True], ["morphological", "morphological", "noise"])
    effects = pd.concat([effects_of("m", {"p0": (1, 0.1, -1.0, 1.0)}), effects_of("m", {"p0": (4, 9.0, 5.0, 12.0)}),
                         effects_of("m", {"p1": (5, np.nan, np.nan, np.nan)})], ignore_index=True)
    floor = pd.DataFrame({"quantity": ["m", "other"], "floor": [0.5, 9.0], "floor_std": [0.02, 1.0]})
    row = card(effects, harm, {"p0": "morphological", "p1": "morphological", "p2": "noise"}, floor=floor)
    assert row["a"] == "inconclusive"  # p1 undefined
    assert row["a_evidence"] == ("p0 sev 4: 9.0 [5.0, 12.0] (value 0.4; real-vs-real floor 0.5 ± 0.02); "
                                 "p1: undefined")
    assert row["b"] == "inconclusive" and row["b_evidence"] == "undefined on the unharmed cells"
    without_floor = card(effects_of("m", {"p0": (4, 9.0, 5.0, 12.0)}, value=np.nan), harm.iloc[:1],
                         {"p0": "morphological"}, floor=floor)
    assert without_floor["a"] == "yes" and without_floor["a_evidence"] == "p0 sev 4: 9.0 [5.0, 12.0]"
    undefined_first = pd.concat([effects_of("m", {"p0": (5, np.nan, np.nan, np.nan)}),
                                 effects_of("m", {"p1": (5, 0.1, -1.0, 1.0)})], ignore_index=True)
    row = card(undefined_first, harm.iloc[:2], {"p0": "morphological", "p1": "morphological"})
    assert row["a"] == "no" and row["a_evidence"] == "p0: undefined; p1 sev 5: 0.1 [-1.0, 1.0]"
    other_floor = card(undefined_first, harm.iloc[:2], {"p0": "morphological", "p1": "morphological"},
                       floor=floor[floor["quantity"] == "other"])
    assert other_floor["a_evidence"] == "p0: undefined; p1 sev 5: 0.1 [-1.0, 1.0]"
    nothing = card(effects, harm_table([True], [False], ["noise"]), {"p0": "noise"})
    assert nothing["a"] == "inconclusive"
    assert nothing["a_evidence"] == "no morphological edit lowered Dice beyond its interval"


def test_b_counts_false_alarms_and_names_the_largest() -> None:
    harm = harm_table([False, False, False, False], [True, True, True, False],
                      ["noise", "intensity", "memorisation", "noise"])
    effects = effects_of("m", {"p0": (5, 0.5, -0.2, 1.2), "p1": (5, 1.5, 0.5, 2.5), "p2": (5, 40.0, 30.0, 50.0),
                               "p3": (5, 60.0, 50.0, 70.0)})
    row = card(effects, harm, {"p0": "noise", "p1": "intensity", "p2": "memorisation", "p3": "noise"})
    assert row["b"] == "inconclusive"  # p1 spans the threshold; memorisation and harmed cells do not count
    assert row["b_evidence"] == "false alarms on 0 of 2 unharmed cells; largest p1 sev 5: 1.5 [0.5, 2.5]"
    alarm = effects_of("m", {"p0": (5, 3.0, EFFECT_THRESHOLD, 4.0), "p1": (5, 0.1, -0.2, 1.0)})
    row = card(alarm, harm, {"p0": "noise", "p1": "intensity"})
    assert row["b"] == "no" and row["b_evidence"].startswith("false alarms on 1 of 2 unharmed cells; largest p0")
    calm = effects_of("m", {"p0": (5, 0.1, -0.2, 1.0), "p1": (5, 0.1, -0.2, 1.0)})
    assert card(calm, harm, {"p0": "noise", "p1": "intensity"})["b"] == "yes"
    generated = harm_table([False], [True], ["generated"])
    row = card(effects_of("m", {"p0": (5, 9.0, 8.0, 10.0)}), generated, {"p0": "generated"})
    assert (row["b"], row["b_evidence"]) == ("inconclusive", "no cell left Dice unharmed")


def test_c_reads_the_agreement_interval_and_its_note() -> None:
    table = pd.DataFrame({"quantity": ["m"], "agreement": [0.7], "subject_lo": [0.5], "subject_hi": [0.8],
                          "n_cells": [12.0], "note": [""]})
    row = card(effects_of("m", {}), harm_table([], [], []), {}, agreement={"robustness/dice_WT": table})
    assert row["c_robustness"] == "yes" and row["c_robustness_evidence"] == "ρ +0.70 [+0.50, +0.80], 12 cells"
    assert row["kind"] == "image"
    assert (row["c_utility"], row["c_utility_evidence"]) == ("inconclusive", "no Dice target")
    undefined = table.assign(agreement=np.nan, note="constant metric")
    row = card(effects_of("m", {}), harm_table([], [], []), {}, agreement={"robustness/dice_WT": undefined})
    assert (row["c_robustness"], row["c_robustness_evidence"]) == ("inconclusive", "constant metric")
    row = card(effects_of("m", {}), harm_table([], [], []), {},
               agreement={"robustness/dice_WT": undefined.drop(columns="note")})
    assert row["c_robustness_evidence"] == "no correlation"
    other = table.assign(quantity="fid")
    row = card(effects_of("m", {}), harm_table([], [], []), {}, agreement={"robustness/dice_WT": other})
    assert row["c_robustness_evidence"] == "no Dice target"


def test_d_needs_every_memorisation_edit_flagged() -> None:
    families = {"copies": "memorisation", "mixup": "memorisation", "noise": "noise"}
    flagged = effects_of("m", {"copies": (5, 6.0, 4.0, 9.0), "mixup": (3, 5.0, EFFECT_THRESHOLD, 6.0)})
    row = card(flagged, harm_table([], [], []), families)
    assert row["d"] == "yes" and row["d_evidence"] == "copies sev 5: 6.0 [4.0, 9.0]; mixup sev 3: 5.0 [2.0, 6.0]"
    undefined = effects_of("m", {"copies": (5, 6.0, 4.0, 9.0)})
    row = card(undefined, harm_table([], [], []), families)
    assert row["d"] == "no" and row["d_evidence"].endswith("mixup: undefined on copies")
    edge = effects_of("m", {"copies": (5, -3.0, -4.0, -EFFECT_THRESHOLD), "mixup": (3, 5.0, 3.0, 6.0)})
    row = card(edge, harm_table([], [], []), families)
    assert row["d"] == "no"
    assert row["d_evidence"] == "copies sev 5: -3.0 [-4.0, -2.0] (rewards copies); mixup sev 3: 5.0 [3.0, 6.0]"
    missed = effects_of("m", {"copies": (5, 0.5, -1.0, 1.5), "mixup": (3, 5.0, 3.0, 6.0)})
    row = card(missed, harm_table([], [], []), families)
    assert row["d"] == "no" and row["d_evidence"] == "copies sev 5: 0.5 [-1.0, 1.5]; mixup sev 3: 5.0 [3.0, 6.0]"
    no_low_end = effects_of("m", {"copies": (5, -3.0, np.nan, -3.0), "mixup": (3, 5.0, 3.0, 6.0)})
    assert card(no_low_end, harm_table([], [], []), families)["d"] == "no"  # rewards copies, lower end unknown
    first_undefined = effects_of("m", {"mixup": (3, 5.0, 3.0, 6.0)})
    row = card(first_undefined, harm_table([], [], []), families)
    assert row["d_evidence"] == "copies: undefined on copies; mixup sev 3: 5.0 [3.0, 6.0]"
    spans = effects_of("m", {"copies": (5, 1.0, -1.0, 3.0), "mixup": (3, 5.0, 3.0, 6.0)})
    assert card(spans, harm_table([], [], []), families)["d"] == "inconclusive"
    nan_hi = effects_of("m", {"copies": (5, -3.0, -4.0, np.nan), "mixup": (3, 5.0, 3.0, 6.0)})
    row = card(nan_hi, harm_table([], [], []), families)
    assert row["d"] == "inconclusive" and "rewards" not in row["d_evidence"]
    row = card(flagged, harm_table([], [], []), {"noise": "noise"})
    assert (row["d"], row["d_evidence"]) == ("inconclusive", "no memorisation perturbation in the study")


def test_a_metric_without_a_stated_kind_gets_an_empty_kind() -> None:
    table = scorecard({"m": True, "n": False}, {"m": "image"}, effects_of("m", {}), harm_table([], [], []), {},
                      pd.DataFrame({"perturbation": [], "family": []}), 10, True)
    assert table["kind"].tolist() == ["image", ""]


def test_decide_at_the_threshold_and_with_one_end_unknown() -> None:
    from reports.scorecard import decide
    assert decide(2.0, 3.0, 2.0) == "yes"
    assert decide(1.0, 2.0, 2.0) == "inconclusive"
    assert decide(np.nan, 1.0, 2.0) == "inconclusive" and decide(3.0, np.inf, 2.0) == "inconclusive"


def test_no_data_reasons() -> None:
    assert no_data_reason(10, False) == "no subject bootstrap stored"
    assert no_data_reason(1, True) == "only 1 test subject (needs ≥ 5 for between-subject intervals)"
    assert no_data_reason(4, True) == "only 4 test subjects (needs ≥ 5 for between-subject intervals)"
    assert no_data_reason(5, True) == ""
    flagged = effects_of("m", {"copies": (5, 6.0, 4.0, 9.0)})
    row = card(flagged, harm_table([], [], []), {"copies": "memorisation"}, n=4)
    assert row["d"] == "inconclusive" and row["d_evidence"] == "copies sev 5: 6.0 [4.0, 9.0]"


def test_dice_harm_against_the_clean_interval() -> None:
    intervals = pd.DataFrame({
        "quantity": ["robustness/dice_WT"] * 4 + ["ssim"],
        "perturbation": ["clean", "cut", "touch", "shift", "cut"], "severity": [0, 5, 5, 5, 5],
        "boot_lo": [0.80, 0.50, 0.60, 0.90, 0.0], "boot_hi": [0.90, 0.79, 0.80, 0.95, 1.0]})
    results = pd.DataFrame({"perturbation": ["cut", "touch", "cut"], "family": ["morphological", "noise", "x"]})
    harm = dice_harm(intervals, results).set_index("perturbation")
    assert list(harm.columns) == ["severity", "family", "harmed", "unharmed"]
    assert harm["harmed"].tolist() == [True, False, False]  # hi 0.79 < clean lo 0.80; 0.80 touches it
    assert harm["unharmed"].tolist() == [False, True, True]  # shift's lo 0.90 touches clean hi 0.90
    shifted = intervals.assign(boot_lo=intervals["boot_lo"].where(intervals["perturbation"] != "shift", 0.91))
    assert not dice_harm(shifted, results).set_index("perturbation").loc["shift", "unharmed"]
    assert harm["family"].tolist() == ["morphological", "noise", ""]
    assert dice_harm(intervals, results, "robustness/dice_TC").empty
    assert dice_harm(intervals[intervals["perturbation"] != "clean"], results).empty
    assert list(dice_harm(intervals, results, ("robustness/dice_TC",)).columns) == list(harm.reset_index().columns)
    alone = dice_harm(intervals, results, ("robustness/dice_WT", "robustness/dice_TC"))
    assert alone.equals(dice_harm(intervals, results))
    assert dice_harm(intervals, results, ("a", "b")).empty
    assert list(dice_harm(intervals, results, ("a", "b")).columns) == [
        "perturbation", "severity", "family", "harmed", "unharmed"]
