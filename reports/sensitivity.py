"""How each metric reacts to each perturbation: monotonicity, effect against noise, direction.

A metric is useful for a perturbation when it (1) changes monotonically with severity (Spearman ρ of
value against severity), (2) changes by more than its own sampling noise (effect = |value(level) −
value(0)| / noise), and (3) changes in the right direction: it must say "worse" as severity grows. For a
memorisation perturbation "worse" means the metric flags the copies; "better" means it rewards them.

Noise comes from, in order of preference: the spread over seeds (when the sweep repeated cells over
several seeds), a bootstrap of the per-item values stored in the cases table (mean of item values), the
spread of stored replicates (a distribution metric recomputed on resamples); otherwise it is marked
unavailable and no effect size is given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.numerics import spread
from benchmark.study.schema import DICE_KINDS, GENERATED_FAMILY

EFFECT_THRESHOLD = 2.0  # an effect of 2 noise standard deviations counts as detected
RHO_THRESHOLD = 0.8  # without a noise estimate, |ρ| ≥ 0.8 counts as a consistent change


def ok_rows(results: pd.DataFrame) -> pd.DataFrame:
    """Rows of finished quantities (status ok, quantity named)."""
    return results[(results["status"] == "ok") & (results["quantity"] != "")]


def with_shared_baseline(results: pd.DataFrame) -> pd.DataFrame:
    """Give every perturbation a severity-0 row: a perturbation the sweep stored without its own clean
    baseline borrows the mean baseline of the others (severity 0 is the identity for all of them)."""
    rows = ok_rows(results)
    baseline = rows[rows["severity"] == 0]
    if baseline.empty:
        return rows
    shared = baseline.groupby(["stage", "quantity", "seed"], as_index=False).agg(
        value=("value", "mean"), **{c: (c, "first") for c in ("kind", "higher_is_better", "feature_extractor")}
    )
    borrowed = []
    for (perturbation, family), group in rows.groupby(["perturbation", "family"]):
        if (group["severity"] == 0).any():
            continue
        borrowed.append(shared.assign(perturbation=perturbation, family=family, severity=0))
    return pd.concat([rows, *borrowed], ignore_index=True) if borrowed else rows


def level_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, std over seeds and seed count per (quantity, perturbation, severity)."""
    rows = with_shared_baseline(results)
    keys = ["quantity", "perturbation", "family", "severity"]
    return rows.groupby(keys, as_index=False).agg(
        kind=("kind", "first"),
        higher_is_better=("higher_is_better", "first"),
        mean=("value", "mean"),
        std=("value", _seed_std),
        n_seeds=("seed", "nunique"),
    )


def case_noise(cases: pd.DataFrame | None, n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """Sampling std of each stored (quantity, perturbation, severity) value from its cases.

    `item` cases: std of the mean over `n_boot` seeded bootstrap resamples of the items; `replicate`
    cases: std (ddof 1) of the replicates. Averaged over seeds. Columns quantity, perturbation,
    severity, case_std, case_source.
    """
    columns = ["quantity", "perturbation", "severity", "case_std", "case_source"]
    if cases is None or cases.empty:
        return pd.DataFrame(columns=columns)
    rng = np.random.default_rng(seed)
    records = []
    keys = ["quantity", "perturbation", "severity", "seed", "case_kind"]
    for (quantity, perturbation, severity, _, case_kind), group in cases.groupby(keys, sort=True):
        values = group["value"].to_numpy(float)
        values = values[np.isfinite(values)]
        if len(values) < 2:
            continue
        if case_kind == "replicate":
            std, source = spread(values), "replicates"
        else:
            means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
            std, source = spread(means), "bootstrap"
        records.append((quantity, perturbation, severity, std, source))
    noise = pd.DataFrame(records, columns=columns)
    return noise.groupby(["quantity", "perturbation", "severity"], as_index=False).agg(
        case_std=("case_std", "mean"), case_source=("case_source", "first")
    )


def effect_sizes(results: pd.DataFrame, cases: pd.DataFrame | None = None, seed: int = 0,
                 noise: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (quantity, perturbation, severity ≥ 1): change from severity 0 and its size in noise units.

    Columns: mean, baseline, delta (mean − baseline), worse (the change says lower quality), noise
    (the real-vs-real floor spread or the subject-bootstrap std from `noise` when given, else the pooled
    std of the two levels), noise_source (floor | subject bootstrap | seeds | bootstrap | replicates |
    unavailable), effect (|delta| / noise; 0 when nothing changed, inf when a noiseless quantity changed).
    """
    keys = ["quantity", "perturbation", "severity"]
    levels = level_summary(results)
    levels = levels.merge(case_noise(cases, seed=seed), on=keys, how="left")
    given = noise if noise is not None and not noise.empty else pd.DataFrame(columns=[*keys, "noise", "noise_source"])
    levels = levels.merge(given.rename(columns={"noise": "given_noise", "noise_source": "given_source"}),
                          on=keys, how="left")
    base = levels[levels["severity"] == 0].set_index(["quantity", "perturbation"])
    records = []
    for row in levels[levels["severity"] > 0].itertuples(index=False):
        key = (row.quantity, row.perturbation)
        if key not in base.index:
            continue
        b = base.loc[key]
        delta = _change(row.mean, b["mean"])
        noise, source = (row.given_noise, row.given_source) if pd.notna(row.given_noise) else _pooled_noise(row, b)
        records.append({
            "quantity": row.quantity, "perturbation": row.perturbation, "family": row.family,
            "kind": row.kind, "higher_is_better": row.higher_is_better, "severity": row.severity,
            "n_seeds": row.n_seeds, "mean": row.mean, "baseline": b["mean"], "delta": delta,
            "worse": bool(_oriented(delta, row.higher_is_better) < 0),
            "noise": noise, "noise_source": source, "effect": _effect(delta, noise),
        })
    return pd.DataFrame.from_records(records)


def sensitivity(results: pd.DataFrame, cases: pd.DataFrame | None = None, seed: int = 0,
                noise: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (quantity, perturbation): Spearman ρ with severity, direction, monotonicity, effects.

    `spearman_rho` / `spearman_p`: scipy's Spearman of value against severity over all seeds' values;
    `direction`: worse | better | flat, the sign of the change the metric reports as severity grows
    (by ρ, oriented by higher_is_better); `right_direction`: direction is worse; `monotone`: the means
    per level move strictly one way; `effect_at_max`: effect size at the highest severity;
    `first_detected`: the lowest severity whose effect ≥ EFFECT_THRESHOLD in the worse direction.
    Generated sets (family "generated") have no severity scale and are left out.
    """
    rows = with_shared_baseline(results)
    effects = effect_sizes(results, cases, seed=seed, noise=noise)
    levels = level_summary(results)
    records = []
    rows = rows[rows["family"] != GENERATED_FAMILY]  # a generated set has no severity scale
    for (quantity, perturbation), group in rows.groupby(["quantity", "perturbation"], sort=True):
        finite = group[np.isfinite(group["value"])]
        rho, p = _spearman(finite["severity"].to_numpy(float), finite["value"].to_numpy(float))
        hib = bool(group["higher_is_better"].iloc[0])
        oriented = _oriented(rho, hib) if np.isfinite(rho) else 0.0
        means = levels[(levels.quantity == quantity) & (levels.perturbation == perturbation)].sort_values("severity")
        level_means = means["mean"].to_numpy(float)
        eff = effects[(effects.quantity == quantity) & (effects.perturbation == perturbation)] if len(effects) else None
        at_max = eff.loc[eff["severity"].idxmax()] if eff is not None and len(eff) else None
        detected = eff[(eff["effect"] >= EFFECT_THRESHOLD) & eff["worse"]] if eff is not None else None
        records.append({
            "quantity": quantity, "perturbation": perturbation, "family": group["family"].iloc[0],
            "kind": group["kind"].iloc[0], "higher_is_better": hib,
            "n_levels": int(finite["severity"].nunique()), "n_seeds": int(group["seed"].nunique()),
            "n_nonfinite": int(len(group) - len(finite)),
            "spearman_rho": rho, "spearman_p": p,
            "direction": "flat" if oriented == 0 else ("worse" if oriented < 0 else "better"),
            "right_direction": bool(oriented < 0),
            "monotone": _strictly_monotone(level_means),
            "delta_at_max": np.nan if at_max is None else at_max["delta"],
            "effect_at_max": np.nan if at_max is None else at_max["effect"],
            "noise_source": "unavailable" if at_max is None else at_max["noise_source"],
            "first_detected": (
                int(detected["severity"].min()) if detected is not None and len(detected) else np.nan
            ),
        })
    return pd.DataFrame.from_records(records)


def memorisation_table(sensitivity_table: pd.DataFrame) -> pd.DataFrame:
    """For memorisation perturbations: does each metric flag the copies, reward them, or not move?

    A metric *flags* copies when it reports lower quality (or a higher copy rate) as more of the set is
    copied, and *rewards* them when it reports better quality. It moved when its effect at the highest
    severity is ≥ EFFECT_THRESHOLD noise units, or, without a noise estimate, when |ρ| ≥ RHO_THRESHOLD.
    """
    table = sensitivity_table[
        (sensitivity_table["family"] == "memorisation") & ~sensitivity_table["kind"].isin(DICE_KINDS)
    ].copy()
    if table.empty:
        return table.assign(verdict=pd.Series(dtype=str), evidence=pd.Series(dtype=str))
    has_noise = table["noise_source"] != "unavailable"
    moved_by_effect = table["effect_at_max"] >= EFFECT_THRESHOLD
    moved_by_rho = table["spearman_rho"].abs() >= RHO_THRESHOLD
    moved = np.where(has_noise, moved_by_effect, moved_by_rho) & (table["delta_at_max"].fillna(0) != 0)
    table["verdict"] = np.select(
        [moved & (table["direction"] == "worse"), moved & (table["direction"] == "better")],
        ["flags copies", "rewards copies"],
        default="insensitive",
    )
    table["evidence"] = np.where(has_noise, "effect vs " + table["noise_source"], "Spearman ρ (no noise estimate)")
    columns = ["quantity", "kind", "perturbation", "higher_is_better", "delta_at_max", "effect_at_max",
               "spearman_rho", "spearman_p", "verdict", "evidence"]
    return table[columns].reset_index(drop=True)


def _spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """scipy's Spearman ρ and p; NaN for fewer than 3 points or a constant input (nothing to rank)."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan, np.nan
    result = stats.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def _seed_std(values: pd.Series) -> float:
    """Std (ddof 1) over seeds; NaN for one seed, or when a seed's value is infinite (no finite spread)."""
    if len(values) < 2 or np.isinf(values).any():
        return np.nan
    return spread(values)


def _change(level: float, baseline: float) -> float:
    """level − baseline; NaN when both are the same infinity (PSNR of identical images at both levels: the
    mean cannot move, so there is no change to measure)."""
    if np.isinf(level) and level == baseline:
        return np.nan
    return level - baseline


def _strictly_monotone(means: np.ndarray) -> bool:
    """The level means move strictly one way; equal neighbours (two infinite levels included) or a NaN do not."""
    if len(means) < 2:
        return False
    rising, falling = means[1:] > means[:-1], means[1:] < means[:-1]
    return bool(rising.all() or falling.all())


def _oriented(change: float, higher_is_better: bool) -> float:
    """A change as the metric means it: positive = better quality, negative = worse."""
    return change if bool(higher_is_better) else -change


def _pooled_noise(level: object, base: pd.Series) -> tuple[float, str]:
    if level.n_seeds >= 2 and base["n_seeds"] >= 2:
        return float(np.sqrt((level.std**2 + base["std"] ** 2) / 2)), "seeds"
    if pd.notna(level.case_std) and pd.notna(base["case_std"]):
        return float(np.sqrt((level.case_std**2 + base["case_std"] ** 2) / 2)), str(level.case_source)
    return np.nan, "unavailable"


def _effect(delta: float, noise: float) -> float:
    if not np.isfinite(noise):
        return np.nan
    if noise == 0:
        return 0.0 if delta == 0 else np.inf
    return float(abs(delta) / noise)
