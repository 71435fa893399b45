"""The scorecard: per metric, yes / no / inconclusive to the study's four questions, with the numbers.

Every verdict compares a subject-bootstrap 95 % interval with a threshold: "yes" when the whole interval
is on the good side, "no" when it is entirely on the other, "inconclusive" when it spans the threshold, the
data cannot decide (fewer than MIN_TEST_SUBJECTS test subjects, no bootstrap stored, no such cell).

- (a) detects harmful localised edits: for every morphological perturbation whose robustness Dice at its
  highest severity falls below the clean Dice (intervals apart), the change from clean in the worse
  direction, in units of the metric's noise (floor spread; subject-bootstrap spread for paired metrics),
  must be ≥ EFFECT_THRESHOLD. yes = every such edit detected, no = at least one clearly missed.
- (b) stays calm under changes that do not hurt Dice: for every non-memorisation cell whose robustness
  Dice interval overlaps the clean one, the same effect must stay below EFFECT_THRESHOLD. yes = calm on
  all, no = a clear false alarm on at least one.
- (c) tracks Dice: the oriented Spearman ρ over cells with robustness (and utility) Dice, its subject-
  bootstrap interval against RHO_TRACKS. Generated sets, when present, are cells like any other.
- (d) flags memorisation: under each memorisation perturbation at the highest severity where the metric is
  defined, the effect in the flagging direction must be ≥ EFFECT_THRESHOLD; a metric that reports better
  quality (rewards copies) or is undefined gets "no"; one without a real-vs-real noise floor (e.g. the FID
  train gap of a cross-validated study, whose training set differs by fold) stays inconclusive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.sensitivity import EFFECT_THRESHOLD
from reports.uncertainty import collapsed

MIN_TEST_SUBJECTS = 5  # with fewer, a subject bootstrap has too few distinct resamples to carry an interval
RHO_TRACKS = 0.5  # oriented Spearman ρ with Dice above which a metric "tracks" it
QUESTIONS = {
    "a": "detects harmful localised edits",
    "b": "stays calm when Dice is unharmed",
    "c_robustness": "tracks robustness Dice",
    "c_robustness_cldice": "tracks robustness clDice",
    "c_utility": "tracks utility Dice",
    "c_utility_cldice": "tracks utility clDice",
    "d": "flags memorisation",
}
TARGETS = {"c_robustness": "robustness/dice_WT", "c_utility": "utility/dice_WT"}
VESSEL_TARGETS = {"c_robustness": "robustness/dice_vessel", "c_robustness_cldice": "robustness/cldice_vessel",
                  "c_utility": "utility/dice_vessel", "c_utility_cldice": "utility/cldice_vessel"}


def targets_for(quantities) -> dict[str, str]:
    """The (c) targets of a study: vessel Dice and clDice when it scored vessels, whole-tumour Dice otherwise."""
    return VESSEL_TARGETS if "robustness/dice_vessel" in set(quantities) else TARGETS


def harm_targets(quantities) -> tuple[str, ...]:
    """The Dice quantities whose drop makes an edit harmful for (a) and (b): either of vessel Dice and clDice
    (a gap costs clDice, a bulge costs Dice), whole-tumour Dice otherwise."""
    if "robustness/dice_vessel" in set(quantities):
        return ("robustness/dice_vessel", "robustness/cldice_vessel")
    return ("robustness/dice_WT",)


def question_keys(card: pd.DataFrame) -> list[str]:
    """The questions this scorecard answers, in QUESTIONS order."""
    return [key for key in QUESTIONS if key in card.columns]


def decide(lo: float, hi: float, threshold: float) -> str:
    """yes when the interval lies at or above the threshold, no when below, inconclusive otherwise."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "inconclusive"
    if lo >= threshold:
        return "yes"
    if hi < threshold:
        return "no"
    return "inconclusive"


def worse_effects(resamples: pd.DataFrame, results: pd.DataFrame, noise: pd.DataFrame,
                  orientation: dict[str, bool]) -> pd.DataFrame:
    """Per (quantity, perturbation, severity ≥ 1): the change from clean in the worse direction in noise
    units: `effect` from the study's values, `effect_lo` / `effect_hi` from the subject bootstrap (each
    resample's cell minus the same resample's clean value). Negative = the metric reports better quality."""
    columns = ["quantity", "perturbation", "severity", "effect", "effect_lo", "effect_hi", "value"]
    ok = results[(results["status"] == "ok") & results["quantity"].isin(orientation)]
    if ok.empty or noise is None or noise.empty:
        return pd.DataFrame({c: pd.Series(dtype=str if c in ("quantity", "perturbation") else float)
                             for c in columns})
    point = collapsed(ok).groupby(["perturbation", "severity", "quantity"])["value"].mean()
    boot = (collapsed(resamples).groupby(["resample", "perturbation", "severity", "quantity"])["value"].mean()
            if not resamples.empty else pd.Series(dtype=float))
    records = []
    for row in noise.itertuples(index=False):
        if row.quantity not in orientation or not np.isfinite(row.noise) or row.noise <= 0:
            continue
        sign = -1.0 if orientation[row.quantity] else 1.0
        clean = point.get(("clean", 0, row.quantity), np.nan)
        value = point.get((row.perturbation, row.severity, row.quantity), np.nan)
        effect = sign * (value - clean) / row.noise
        lo = hi = np.nan
        if not boot.empty:
            try:
                cell = boot.xs((row.perturbation, row.severity, row.quantity),
                               level=["perturbation", "severity", "quantity"])
                base = boot.xs(("clean", 0, row.quantity), level=["perturbation", "severity", "quantity"])
                draws = (sign * (cell - base.reindex(cell.index)) / row.noise).replace([np.inf, -np.inf], np.nan)
                draws = draws.dropna()
                if len(draws):
                    lo, hi = float(draws.quantile(0.025)), float(draws.quantile(0.975))
            except KeyError:
                pass
        records.append((row.quantity, row.perturbation, row.severity, effect, lo, hi, value))
    return pd.DataFrame.from_records(records, columns=columns).astype({"effect": float, "effect_lo": float,
                                                                          "effect_hi": float, "value": float})


def dice_harm(intervals: pd.DataFrame, results: pd.DataFrame,
              target: str | tuple[str, ...] = "robustness/dice_WT") -> pd.DataFrame:
    """Per (perturbation, severity ≥ 1) with the target: family, harmed (Dice interval entirely below the clean
    interval) and unharmed (the intervals overlap). Several targets: harmed by any, unharmed by all."""
    if not isinstance(target, str):
        tables = [dice_harm(intervals, results, t) for t in target]
        tables = [t for t in tables if not t.empty]
        if len(tables) < 2:
            return tables[0] if tables else dice_harm(intervals, results, "")
        merged = tables[0]
        for other in tables[1:]:
            merged = merged.merge(other, on=["perturbation", "severity", "family"], suffixes=("", "_other"))
            merged["harmed"] = merged["harmed"] | merged.pop("harmed_other")
            merged["unharmed"] = merged["unharmed"] & merged.pop("unharmed_other")
        return merged
    columns = ["perturbation", "severity", "family", "harmed", "unharmed"]
    rows = intervals[intervals["quantity"] == target]
    clean = rows[rows["perturbation"] == "clean"]
    if rows.empty or clean.empty:
        return pd.DataFrame(columns=columns)
    clean_lo, clean_hi = float(clean["boot_lo"].iloc[0]), float(clean["boot_hi"].iloc[0])
    family = results.groupby("perturbation")["family"].first()
    cells = rows[rows["perturbation"] != "clean"]
    return pd.DataFrame({
        "perturbation": cells["perturbation"], "severity": cells["severity"],
        "family": cells["perturbation"].map(family).fillna(""),
        "harmed": cells["boot_hi"] < clean_lo,
        "unharmed": (cells["boot_hi"] >= clean_lo) & (cells["boot_lo"] <= clean_hi),
    }).reset_index(drop=True)[columns]


def scorecard(orientation: dict[str, bool], kinds: dict[str, str], effects: pd.DataFrame, harm: pd.DataFrame,
              agreement: dict[str, pd.DataFrame], results: pd.DataFrame, n_test_subjects: int,
              has_bootstrap: bool, floor: pd.DataFrame | None = None,
              targets: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per metric: kind, then for each question its verdict and its evidence (see the module
    docstring). `agreement`: target -> table with quantity, agreement, subject_lo, subject_hi. `floor`:
    the real-vs-real floor per quantity; (a) then also says whether the edited set's value lies within it.
    `targets`: question key -> Dice quantity of (c) (default TARGETS; `targets_for` picks the study's)."""
    reason = no_data_reason(n_test_subjects, has_bootstrap)
    family = results.groupby("perturbation")["family"].first()
    records = []
    for metric in orientation:
        record = {"metric": metric, "kind": kinds.get(metric, "")}
        own = effects[effects["quantity"] == metric]
        answers = {
            "a": _localised(own, harm, family, _floor_of(floor, metric)),
            "b": _calm(own, harm),
            **{key: _tracks(agreement.get(target), metric) for key, target in (targets or TARGETS).items()},
            "d": _memorisation(own, family, unmeasured=_unmeasured(results, metric, kinds.get(metric, ""), family)),
        }
        for key, (verdict, evidence) in answers.items():
            if reason:  # stated once, in the report's first line and the findings
                verdict = "inconclusive"
            record[key], record[f"{key}_evidence"] = verdict, evidence
        records.append(record)
    return pd.DataFrame.from_records(records)


def no_data_reason(n_test_subjects: int, has_bootstrap: bool) -> str:
    if not has_bootstrap:
        return "no subject bootstrap stored"
    if n_test_subjects < MIN_TEST_SUBJECTS:
        return (f"only {n_test_subjects} test subject{'s' if n_test_subjects != 1 else ''} "
                f"(needs ≥ {MIN_TEST_SUBJECTS} for between-subject intervals)")
    return ""


def _at_max(effects: pd.DataFrame, perturbation: str) -> pd.Series | None:
    rows = effects[(effects["perturbation"] == perturbation) & np.isfinite(effects["effect"])]
    return None if rows.empty else rows.loc[rows["severity"].idxmax()]


def _combine(verdicts: list[str], bad: str = "no") -> str:
    if bad in verdicts:
        return bad
    return "yes" if verdicts and all(v == "yes" for v in verdicts) else "inconclusive"


def _fmt(row: pd.Series) -> str:
    return f"{row['effect']:.1f} [{row['effect_lo']:.1f}, {row['effect_hi']:.1f}]"


def _floor_of(floor: pd.DataFrame | None, metric: str) -> tuple[float, float] | None:
    if floor is None or floor.empty or metric not in set(floor["quantity"]):
        return None
    row = floor[floor["quantity"] == metric].iloc[0]
    return float(row["floor"]), float(row["floor_std"])


def _localised(effects: pd.DataFrame, harm: pd.DataFrame, family: pd.Series,
               floor: tuple[float, float] | None = None) -> tuple[str, str]:
    harmful = harm[harm["harmed"] & (harm["family"] == "morphological")]
    names = sorted(set(harmful["perturbation"]))
    if not names:
        return "inconclusive", "no morphological edit lowered Dice beyond its interval"
    verdicts, parts = [], []
    for name in names:
        row = _at_max(effects, name)
        if row is None:
            verdicts.append("inconclusive")
            parts.append(f"{name}: undefined")
            continue
        verdicts.append(decide(row["effect_lo"], row["effect_hi"], EFFECT_THRESHOLD))
        within = ""
        if floor is not None and np.isfinite(row["value"]):
            within = f" (value {row['value']:.3g}; real-vs-real floor {floor[0]:.3g} ± {floor[1]:.2g})"
        parts.append(f"{name} sev {int(row['severity'])}: {_fmt(row)}{within}")
    return _combine(verdicts), "; ".join(parts)


def _calm(effects: pd.DataFrame, harm: pd.DataFrame) -> tuple[str, str]:
    calm_cells = harm[harm["unharmed"] & ~harm["family"].isin(("memorisation", "generated"))]
    if calm_cells.empty:
        return "inconclusive", "no cell left Dice unharmed"
    merged = calm_cells.merge(effects, on=["perturbation", "severity"])
    merged = merged[np.isfinite(merged["effect"])]
    if merged.empty:
        return "inconclusive", "undefined on the unharmed cells"
    alarms = [decide(r.effect_lo, r.effect_hi, EFFECT_THRESHOLD) for r in merged.itertuples()]
    verdict = "no" if "yes" in alarms else ("yes" if all(a == "no" for a in alarms) else "inconclusive")
    worst = merged.loc[merged["effect"].idxmax()]
    return verdict, (f"false alarms on {alarms.count('yes')} of {len(alarms)} unharmed cells; largest "
                     f"{worst['perturbation']} sev {int(worst['severity'])}: {_fmt(worst)}")


def _tracks(table: pd.DataFrame | None, metric: str) -> tuple[str, str]:
    if table is None or table.empty or metric not in set(table["quantity"]):
        return "inconclusive", "no Dice target"
    row = table[table["quantity"] == metric].iloc[0]
    if not np.isfinite(row["agreement"]):
        return "inconclusive", str(row.get("note", "") or "no correlation")
    interval = (f"[{row['subject_lo']:+.2f}, {row['subject_hi']:+.2f}]"
                if np.isfinite(row["subject_lo"]) and np.isfinite(row["subject_hi"]) else "(no bootstrap interval)")
    evidence = f"ρ {row['agreement']:+.2f} {interval}, {int(row['n_cells'])} cells"
    return decide(row["subject_lo"], row["subject_hi"], RHO_TRACKS), evidence


def _unmeasured(results: pd.DataFrame, metric: str, kind: str, family: pd.Series) -> set[str]:
    """Memorisation perturbations where an unpaired metric has a value but no noise to measure it in (no
    real-vs-real floor, e.g. the FID train gap of a cross-validated study): undecidable, not undefined. A paired
    metric without an effect is undefined on copies (no clean counterpart) or unmoved by them."""
    if kind == "reference" or "value" not in results:
        return set()
    names = {p for p, f in family.items() if f == "memorisation"}
    rows = results[(results["quantity"] == metric) & results["perturbation"].isin(names) & (results["severity"] > 0)]
    rows = rows[(rows["status"] == "ok") & np.isfinite(rows["value"].astype(float))] if "status" in rows else rows
    return set(rows["perturbation"])


def _memorisation(effects: pd.DataFrame, family: pd.Series, unmeasured: set[str] = frozenset()) -> tuple[str, str]:
    names = sorted(p for p, f in family.items() if f == "memorisation")
    if not names:
        return "inconclusive", "no memorisation perturbation in the study"
    verdicts, parts = [], []
    for name in names:
        if name in unmeasured and effects[effects["perturbation"] == name].empty:
            verdicts.append("inconclusive")
            parts.append(f"{name}: no real-vs-real noise floor to measure the change against")
            continue
        row = _at_max(effects, name)
        if row is None:
            verdicts.append("no")
            parts.append(f"{name}: undefined on copies")
            continue
        verdict = decide(row["effect_lo"], row["effect_hi"], EFFECT_THRESHOLD)
        rewards = np.isfinite(row["effect_hi"]) and row["effect_hi"] <= -EFFECT_THRESHOLD
        verdicts.append("no" if rewards else verdict)
        parts.append(f"{name} sev {int(row['severity'])}: {_fmt(row)}{' (rewards copies)' if rewards else ''}")
    return _combine(verdicts), "; ".join(parts)
