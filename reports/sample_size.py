"""Sample-size curves: how FID, KID, PRDC, FRD and authenticity move with the number of images, and the
smallest n at which a perturbed set separates from the real-vs-real floor (clean held-out subjects).

Input: curves.csv from the sweep (seed, set, n, repeat, quantity, value). Separation at n: the perturbed
set's mean differs from the floor's mean by at least SEPARATION standard deviations (pooled over the two
curves at that n; at n = all, where one draw exists, the spread of the largest smaller n is used).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmark.atomic import replace_atomically
from benchmark.numerics import spread

FLOOR_SET = "clean (held-out subjects)"
SEPARATION = 2.0


def curve_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof 1) and draws per (quantity, set, n), pooled over seeds."""
    columns = ["quantity", "set", "n", "mean", "std", "draws"]
    if curves.empty:
        return pd.DataFrame(columns=columns)
    finite = curves[np.isfinite(curves["value"]) & ~curves["quantity"].str.endswith("_std")]  # not kid_std
    table = finite.groupby(["quantity", "set", "n"])["value"].agg(mean="mean", std=spread,
                                                                  draws="count")
    return table.reset_index()[columns]


def separation(summary: pd.DataFrame) -> pd.DataFrame:
    """Per (quantity, perturbed set): the smallest n at which it separates from the floor (NaN: never)."""
    columns = ["quantity", "set", "separates_at_n", "largest_n", "difference_at_largest_n", "floor_std"]
    records = []
    for (quantity, label), group in summary[summary["set"] != FLOOR_SET].groupby(["quantity", "set"]):
        floor = summary[(summary["quantity"] == quantity) & (summary["set"] == FLOOR_SET)].set_index("n")
        group = group.set_index("n").sort_index()
        found, last_spread, difference, floor_std = np.nan, np.nan, np.nan, np.nan
        for n, row in group.iterrows():
            if n not in floor.index:
                continue
            spread = np.sqrt((np.nan_to_num(row["std"]) ** 2 + np.nan_to_num(floor.loc[n, "std"]) ** 2) / 2)
            if row["draws"] > 1 and spread > 0:
                last_spread = spread
            elif np.isfinite(last_spread):
                spread = last_spread
            difference, floor_std = row["mean"] - floor.loc[n, "mean"], floor.loc[n, "std"]
            if np.isnan(found) and spread > 0 and abs(difference) >= SEPARATION * spread:
                found = n
        records.append((quantity, label, found, int(group.index.max()), difference, floor_std))
    return pd.DataFrame.from_records(records, columns=columns)


def draw_curves(summary: pd.DataFrame, caption: str, path: Path) -> Path:
    """One panel per quantity: mean ± std against n (log scale), one line per set."""
    quantities = sorted(set(summary["quantity"]))
    columns = min(4, max(1, len(quantities)))
    rows = -(-len(quantities) // columns)
    fig = Figure(figsize=(4 * columns, 3.2 * rows + 1.2))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax, quantity in zip(axes.flat, quantities, strict=False):
        for label, group in summary[summary["quantity"] == quantity].groupby("set"):
            group = group.sort_values("n")
            style = {"color": "black", "linestyle": "--"} if label == FLOOR_SET else {}
            line = ax.plot(group["n"], group["mean"], marker="o", label=label, **style)[0]
            std = group["std"].fillna(0)
            ax.fill_between(group["n"], group["mean"] - std, group["mean"] + std, alpha=0.15,
                            color=line.get_color())
        ax.set_xscale("log", base=2)
        ax.set_title(quantity)
        ax.set_xlabel("images per set (n)")
    for ax in list(axes.flat)[len(quantities):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.09), ncol=min(4, len(labels)), fontsize=8)
    fig.text(0.01, 0.005, textwrap.fill(caption, 200), fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, 0.15, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    return path
