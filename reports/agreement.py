"""Does a metric track downstream Dice? Correlations across cells, bootstrap intervals, a ranking.

A *cell* is one perturbed set: (perturbation, severity), its values averaged over seeds. Severity 0 is
the same clean set for every perturbation, so it enters once (as the cell "clean") instead of once per
perturbation, which would add identical points and inflate the agreement. Correlations are computed
over all cells and within each perturbation family (plus the clean cell). p-values are scipy's, which
assume independent cells; cells share the clean data and the segmenter, so read them as indicative.
Intervals are percentile bootstraps over cells with a seeded generator.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.study.schema import DICE_KINDS
from reports.sensitivity import ok_rows

MIN_CELLS = 3
METHODS = ("pearson", "spearman", "kendall")


def cell_table(results: pd.DataFrame, family: str | None = None) -> pd.DataFrame:
    """Wide table: one row per cell (perturbation, family, severity), one column per quantity.

    `family` restricts the cells to one perturbation family (the clean cell is always kept).
    """
    rows = ok_rows(results)
    rows = rows[np.isfinite(rows["value"])]
    if family is not None:
        rows = rows[(rows["family"] == family) | (rows["severity"] == 0)]
    rows = rows.assign(
        perturbation=np.where(rows["severity"] == 0, "clean", rows["perturbation"]),
        family=np.where(rows["severity"] == 0, "clean", rows["family"]),
    )
    means = rows.groupby(["perturbation", "family", "severity", "quantity"])["value"].mean()
    return means.unstack("quantity")


def correlate(x: np.ndarray, y: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Pearson r, Spearman ρ, Kendall τ-b with scipy p-values and percentile-bootstrap 95 % intervals.

    Keys: pearson, pearson_p, pearson_lo, pearson_hi and the same for spearman and kendall. Resamples
    in which one variable is constant give no correlation and are left out of the interval.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tests = {
            "pearson": stats.pearsonr(x, y),
            "spearman": stats.spearmanr(x, y),
            "kendall": stats.kendalltau(x, y),
        }
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    xb, yb = x[idx], y[idx]
    boot = {
        "pearson": _rowwise_pearson(xb, yb),
        "spearman": _rowwise_pearson(stats.rankdata(xb, axis=1), stats.rankdata(yb, axis=1)),
        "kendall": _rowwise_kendall_b(xb, yb),
    }
    out: dict[str, float] = {}
    for method in METHODS:
        out[method] = float(tests[method].statistic)
        out[f"{method}_p"] = float(tests[method].pvalue)
        finite = boot[method][np.isfinite(boot[method])]
        lo, hi = np.percentile(finite, [2.5, 97.5]) if len(finite) else (np.nan, np.nan)
        out[f"{method}_lo"], out[f"{method}_hi"] = float(lo), float(hi)
    return out


def correlations(
    results: pd.DataFrame, n_boot: int = 1000, seed: int = 0, target_kinds: tuple[str, ...] = ("dice",)
) -> pd.DataFrame:
    """Agreement of every metric with every Dice target, over all cells and within each family.

    Columns: target, group (all or a family), quantity, kind, higher_is_better, n_cells, the
    correlate() keys, agreement (Spearman ρ oriented so that positive = the metric says better where
    Dice is higher) and note (why a correlation is missing).
    """
    rows = ok_rows(results)
    info = rows.groupby("quantity")[["kind", "higher_is_better"]].first()
    targets = sorted(info.index[info["kind"].isin(target_kinds)])
    metrics = sorted(info.index[~info["kind"].isin(DICE_KINDS)])
    families = sorted(set(rows["family"]) - {""})
    records = []
    for group in ["all", *families]:
        table = cell_table(results, None if group == "all" else group)
        cells = {column: table[column].to_numpy(float) for column in table.columns}
        for target in targets:
            flat_note = _flat_target_note(rows, group, target)
            for metric in metrics:
                record = {"target": target, "group": group, "quantity": metric, "kind": info.loc[metric, "kind"],
                          "higher_is_better": bool(info.loc[metric, "higher_is_better"])}
                record.update(_pair(cells, metric, target, n_boot, seed))
                record.update(_oriented(record))
                record["note"] = record["note"] or flat_note
                records.append(record)
    columns = ["target", "group", "quantity", "kind", "higher_is_better", "n_cells",
               *[f"{m}{s}" for m in METHODS for s in ("", "_p", "_lo", "_hi")], "agreement", "agreement_lo",
               "agreement_hi", "note"]
    return pd.DataFrame.from_records(records, columns=columns)


def rank_metrics(correlation_table: pd.DataFrame, target: str) -> pd.DataFrame:
    """Metrics ranked by how well they track `target` over all cells, with the caveats of each number.

    Ranked by agreement (Spearman ρ oriented by higher_is_better, so a metric that says "better" where
    Dice drops ranks low even if |ρ| is large). Caveats: few cells, an interval that spans 0, the wrong
    sign, and agreement that differs across families (family_min / family_max: the lowest and highest
    per-family agreement; a metric can track Dice under noise and not at all under morphological edits).
    """
    table = correlation_table[correlation_table["target"] == target]
    overall = table[table["group"] == "all"].copy()
    per_family = table[(table["group"] != "all") & (table["note"] == "")]  # families where Dice moves
    spread = per_family.groupby("quantity")["agreement"].agg(["min", "max", "count"])
    overall = overall.sort_values("agreement", ascending=False, na_position="last").reset_index(drop=True)
    overall.insert(0, "rank", np.arange(1, len(overall) + 1))
    overall["family_min"] = overall["quantity"].map(spread["min"])
    overall["family_max"] = overall["quantity"].map(spread["max"])
    overall["caveats"] = [_caveats(row) for row in overall.itertuples(index=False)]
    columns = ["rank", "quantity", "kind", "agreement", "agreement_lo", "agreement_hi", "spearman_p",
               "pearson", "kendall", "n_cells", "family_min", "family_max", "caveats"]
    return overall[columns]


def _pair(cells: dict[str, np.ndarray], metric: str, target: str, n_boot: int, seed: int) -> dict[str, object]:
    """Correlation of one metric with one target over the cells where both are known (columns of the cell
    table as arrays: selecting from a DataFrame per pair cost most of the report's time)."""
    if metric not in cells or target not in cells:
        return {"n_cells": 0, "note": "metric or target not computed on these cells"}
    known = ~np.isnan(cells[metric]) & ~np.isnan(cells[target])
    x, y = cells[metric][known], cells[target][known]
    n = len(x)
    if n < MIN_CELLS:
        return {"n_cells": n, "note": f"fewer than {MIN_CELLS} cells"}
    if np.unique(x).size == 1 or np.unique(y).size == 1:
        which = metric if np.unique(x).size == 1 else target
        return {"n_cells": n, "note": f"{which} is constant over these cells"}
    return {"n_cells": n, "note": "", **correlate(x, y, n_boot, seed)}


def _oriented(record: dict[str, object]) -> dict[str, float]:
    """Spearman ρ and its interval signed by higher_is_better: + = the metric says better where Dice is higher."""
    rho, lo, hi = (record.get(k, np.nan) for k in ("spearman", "spearman_lo", "spearman_hi"))
    if record["higher_is_better"]:
        return {"agreement": rho, "agreement_lo": lo, "agreement_hi": hi}
    return {"agreement": -rho, "agreement_lo": -hi, "agreement_hi": -lo}


def _flat_target_note(rows: pd.DataFrame, group: str, target: str, alpha: float = 0.05) -> str:
    """A note when the target does not change detectably within a family, so that any correlation there
    reflects noise: one-way ANOVA of the target over the family's cells, seeds as replicates (scipy's
    f_oneway), p > alpha. Empty when it changes, for the 'all' group, or with a single seed (no test).
    `rows`: the finished result rows (ok_rows)."""
    if group == "all":
        return ""
    rows = rows[(rows["quantity"] == target) & (rows["family"] == group) & np.isfinite(rows["value"])]
    groups = [g.to_numpy(float) for _, g in rows.groupby(["perturbation", "severity"])["value"]]
    if len(groups) < 2 or min(len(g) for g in groups) < 2:
        return ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = float(stats.f_oneway(*groups).pvalue)
    if not p > alpha:  # also when the ANOVA is undefined because all values are equal
        return ""
    return f"{target} does not change detectably in this family (one-way ANOVA over cells, p = {p:.2g})"


def _caveats(row: object) -> str:
    if row.n_cells == 0 or np.isnan(row.agreement):
        return row.note
    notes = [row.note] if row.note else []
    if row.n_cells < 10:
        notes.append(f"only {row.n_cells} cells")
    if row.agreement_lo <= 0 <= row.agreement_hi:
        notes.append("95 % CI spans 0")
    if row.agreement < 0:
        notes.append("wrong sign: says better where Dice is lower")
    if pd.notna(row.family_min) and pd.notna(row.family_max) and row.family_max - row.family_min > 1.0:
        notes.append(f"differs across families (ρ {row.family_min:+.2f} to {row.family_max:+.2f})")
    return "; ".join(notes)


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair; NaN where a row is constant."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (a * b).sum(axis=1) / denominator, np.nan)


def _rowwise_kendall_b(a: np.ndarray, b: np.ndarray, chunk: int = 200) -> np.ndarray:
    """Kendall τ-b of each row pair from the signs of all pairwise differences (scipy's default)."""
    out = np.empty(len(a))
    for start in range(0, len(a), chunk):
        sa = np.sign(a[start:start + chunk, :, None] - a[start:start + chunk, None, :])
        sb = np.sign(b[start:start + chunk, :, None] - b[start:start + chunk, None, :])
        concordance = (sa * sb).sum(axis=(1, 2))
        denominator = np.sqrt((sa * sa).sum(axis=(1, 2)) * (sb * sb).sum(axis=(1, 2)))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + chunk] = np.where(denominator > 0, concordance / denominator, np.nan)
    return out
