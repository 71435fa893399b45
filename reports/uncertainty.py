"""Subject-level uncertainty of the study: the noise floor per metric, intervals of every cell, of every
correlation with Dice and of the ranking, all from the subject (cluster) bootstrap the sweep stored.

Inputs written by the sweep (`benchmark.study.resampling`): floor.csv (real-vs-real values between
disjoint halves of the clean held-out + test subjects), resamples.parquet (every quantity of every cell,
recomputed on each resample of the test subjects) and resampling.json (sizes). A missing file makes
the corresponding table empty, and the scorecard says "inconclusive" where it needed it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.numerics import spread
from benchmark.study.schema import DICE_KINDS

CELL_KEYS = ["perturbation", "severity"]


@dataclass
class Resampling:
    """What the sweep stored about its floor and bootstrap; empty frames when absent."""

    floor: pd.DataFrame = field(default_factory=pd.DataFrame)
    resamples: pd.DataFrame = field(default_factory=pd.DataFrame)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    info: dict = field(default_factory=dict)

    @property
    def n_test_subjects(self) -> int:
        return int(self.info.get("n_test_subjects", 0))

    @property
    def n_boot(self) -> int:
        return int(self.resamples["resample"].nunique()) if not self.resamples.empty else 0


def read_resampling(output_dir: Path) -> Resampling:
    """floor.csv, resamples.parquet, curves.csv and resampling.json under `output_dir` (each optional)."""
    output_dir = Path(output_dir)
    out = Resampling()
    for name, attribute in (("floor.csv", "floor"), ("curves.csv", "curves")):
        path = output_dir / name
        if path.is_file() and path.stat().st_size > 1:
            setattr(out, attribute, pd.read_csv(path))
    if (output_dir / "resamples.parquet").is_file():
        out.resamples = pd.read_parquet(output_dir / "resamples.parquet")
    if (output_dir / "resampling.json").is_file():
        out.info = json.loads((output_dir / "resampling.json").read_text())
    return out


def floor_table(floor: pd.DataFrame) -> pd.DataFrame:
    """Per quantity: floor (mean real-vs-real value), floor_std (spread over splits), n_splits, n_subjects
    (subjects per half)."""
    columns = ["quantity", "floor", "floor_std", "n_splits", "n_subjects"]
    if floor.empty:
        return pd.DataFrame(columns=columns)
    finite = floor[np.isfinite(floor["value"]) & ~floor["quantity"].str.endswith("_std")]  # not kid_std
    table = finite.groupby("quantity").agg(floor=("value", "mean"), floor_std=("value", spread),
                                           n_splits=("split", "nunique"), n_subjects=("n_subjects", "min"))
    return table.reset_index()[columns]


def collapsed(frame: pd.DataFrame) -> pd.DataFrame:
    """Severity 0 as one cell "clean" (the identity is shared by every perturbation)."""
    frame = frame.copy()
    frame["perturbation"] = np.where(frame["severity"] == 0, "clean", frame["perturbation"])
    return frame


def cell_intervals(resamples: pd.DataFrame) -> pd.DataFrame:
    """Per (perturbation, severity, quantity): bootstrap std, 2.5 and 97.5 percentiles over resamples
    (means over seeds within a resample; severity 0 as the cell "clean")."""
    columns = ["perturbation", "severity", "quantity", "boot_std", "boot_lo", "boot_hi"]
    if resamples.empty:
        return pd.DataFrame(columns=columns)
    per = collapsed(resamples).groupby(["resample", *CELL_KEYS, "quantity"])["value"].mean().reset_index()
    per = per[np.isfinite(per["value"])]
    table = per.groupby([*CELL_KEYS, "quantity"])["value"].agg(
        boot_std=spread, boot_lo=lambda v: v.quantile(0.025), boot_hi=lambda v: v.quantile(0.975))
    return table.reset_index()[columns]


def resampled_cells(resamples: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """Per resample: wide cell table (cells × quantities), means over seeds, severity 0 as "clean"."""
    if resamples.empty:
        return {}
    per = collapsed(resamples).groupby(["resample", *CELL_KEYS, "quantity"])["value"].mean()
    wide = per.unstack("quantity")
    return {int(b): frame.droplevel("resample") for b, frame in wide.groupby(level="resample")}


def agreement_draws(resamples: pd.DataFrame, target: str, orientation: dict[str, bool],
                    family_of: dict[str, str] | None = None, families: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Oriented Spearman ρ of every metric with `target` over cells, one row per resample (columns: metrics).

    `orientation`: quantity -> higher_is_better. `families`: keep only cells of these families (and clean).
    """
    draws = {}
    for b, cells in resampled_cells(resamples).items():
        if families is not None and family_of is not None:
            keep = [p == "clean" or family_of.get(p) in families for p in cells.index.get_level_values(0)]
            cells = cells[keep]
        if target not in cells:
            continue
        y = cells[target].to_numpy(float)
        row = {}
        for metric, higher in orientation.items():
            if metric not in cells:
                continue
            x = cells[metric].to_numpy(float)
            both = np.isfinite(x) & np.isfinite(y)
            rho = _spearman(x[both], y[both]) if both.sum() >= 3 else np.nan
            row[metric] = rho if higher else -rho
        draws[b] = row
    return pd.DataFrame.from_dict(draws, orient="index")


def agreement_intervals(draws: pd.DataFrame) -> pd.DataFrame:
    """Per metric: subject-bootstrap 2.5 / 97.5 percentiles of the agreement, rank interval (rank 1 = best
    tracker; a metric without a value in a resample ranks last there) and P(top three)."""
    columns = ["quantity", "subject_lo", "subject_hi", "rank_lo", "rank_hi", "p_top3"]
    if draws.empty:
        return pd.DataFrame(columns=columns)
    ranks = draws.rank(axis=1, ascending=False, method="min", na_option="bottom")
    records = []
    for metric in draws.columns:
        finite = draws[metric].dropna()
        lo, hi = (finite.quantile(0.025), finite.quantile(0.975)) if len(finite) else (np.nan, np.nan)
        records.append({"quantity": metric, "subject_lo": lo, "subject_hi": hi,
                        "rank_lo": int(ranks[metric].quantile(0.025, interpolation="lower")),
                        "rank_hi": int(ranks[metric].quantile(0.975, interpolation="higher")),
                        "p_top3": float((ranks[metric] <= 3).mean())})
    return pd.DataFrame.from_records(records, columns=columns)


def metric_orientation(results: pd.DataFrame) -> dict[str, bool]:
    """quantity -> higher_is_better for every metric (not Dice / HD95, not *_std companions)."""
    rows = results[(results["status"] == "ok") & (results["quantity"] != "") & ~results["kind"].isin(DICE_KINDS)]
    info = rows.groupby("quantity")["higher_is_better"].first()
    return {q: bool(h) for q, h in info.items() if not q.endswith("_std")}


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman ρ as the Pearson r of average ranks (scipy's definition); NaN for a constant input."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / np.sqrt((rx * rx).sum() * (ry * ry).sum()))


def noise_table(results: pd.DataFrame, floor: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """Per (quantity, perturbation, severity ≥ 1): the noise an effect is measured in. Metrics with a
    real-vs-real floor: the floor's spread (source "floor"); paired metrics and Dice, which have none:
    the subject-bootstrap std of the cell (source "subject bootstrap")."""
    columns = ["quantity", "perturbation", "severity", "noise", "noise_source"]
    rows = results[(results["status"] == "ok") & (results["severity"] > 0) & (results["quantity"] != "")]
    cells = rows[["quantity", "perturbation", "severity"]].drop_duplicates()
    if cells.empty:
        return pd.DataFrame(columns=columns)
    spread = floor.set_index("quantity")["floor_std"] if not floor.empty else pd.Series(dtype=float)
    boot = intervals.set_index(["quantity", "perturbation", "severity"])["boot_std"] if not intervals.empty \
        else pd.Series(dtype=float)
    records = []
    for quantity, perturbation, severity in cells.itertuples(index=False):
        floor_std = spread.get(quantity, np.nan)
        if np.isfinite(floor_std) and floor_std > 0:
            records.append((quantity, perturbation, severity, float(floor_std), "floor"))
            continue
        std = boot.get((quantity, perturbation, severity), np.nan)
        if np.isfinite(std) and std > 0:
            records.append((quantity, perturbation, severity, float(std), "subject bootstrap"))
    return pd.DataFrame.from_records(records, columns=columns)
