"""The report's figures, drawn with matplotlib's object API (no pyplot state, Agg canvas, PNG out).

Every figure carries a footer stating the data, the sample sizes, the feature extractors and the
preprocessing it rests on (clean-fid's lesson: these change the numbers, so they travel with them).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from benchmark.atomic import replace_atomically
from benchmark.study.files import StudyInfo
from benchmark.study.schema import DICE_KINDS, GENERATED_FAMILY
from reports.agreement import cell_table
from reports.sensitivity import level_summary, ok_rows

DPI = 110
FAMILY_COLOURS = {"clean": "black", "noise": "tab:blue", "artifact": "tab:orange", "shift": "tab:green",
                  "morphological": "tab:red", "memorisation": "tab:purple", GENERATED_FAMILY: "tab:brown"}


def provenance(info: StudyInfo, rows: pd.DataFrame) -> str:
    """The footer: data, sample sizes, feature extractors, preprocessing and seeds behind `rows`."""
    metric_rows = rows[~rows["kind"].isin(DICE_KINDS)]
    sizes = _size_range(metric_rows, "n_reference") + " reference / " + _size_range(metric_rows, "n_candidate")
    extractors = sorted(set(metric_rows["feature_extractor"]) - {""})
    seeds = sorted(rows["seed"].unique().tolist())
    dice = " (Dice over the test split)" if rows["kind"].isin(DICE_KINDS).any() else ""
    return (
        f"Data: {info.data_line()}. Sample sizes per cell: {sizes} candidate items{dice}. "
        f"Feature extractors: {info.extractor_line(extractors)}. "
        f"Preprocessing: {info.preprocessing}. Seeds: {', '.join(map(str, seeds))}. Config {info.config_hash}."
    )


def severity_curves(results: pd.DataFrame, info: StudyInfo, path: Path) -> Path:
    """Small multiples, one panel per perturbation: each quantity's change from severity 0, normalised.

    y = (value − value at 0) / (largest |change| of that quantity over all perturbations), signed so
    that up means worse quality by the quantity's own reading (where the value at 0 is infinite or
    failed, as PSNR of identical images, the lowest finite level is the anchor). Dice curves are drawn
    black and dashed, so a metric is good when it follows them. Bars: std over seeds on the same scale.
    """
    levels = level_summary(results)
    levels = levels[np.isfinite(levels["mean"]) & (levels["family"] != GENERATED_FAMILY)]
    base = levels.sort_values("severity").groupby(["quantity", "perturbation"])["mean"].first()
    levels = levels.join(base.rename("base"), on=["quantity", "perturbation"])
    sign = np.where(levels["higher_is_better"].astype(bool), -1.0, 1.0)
    levels["change"] = sign * (levels["mean"] - levels["base"])
    scale = levels.groupby("quantity")["change"].apply(lambda c: c.abs().max()).replace(0, 1.0)
    levels["worse"] = levels["change"] / levels["quantity"].map(scale)
    levels["bar"] = levels["std"] / levels["quantity"].map(scale)
    perturbations = sorted(levels["perturbation"].unique())
    quantities = sorted(levels["quantity"].unique(), key=lambda q: (q in _dice_names(levels), q))
    colours = _quantity_colours([q for q in quantities if q not in _dice_names(levels)])
    ncols = min(3, len(perturbations))
    nrows = int(np.ceil(len(perturbations) / ncols))
    fig = Figure(figsize=(4.2 * ncols + 2.8, 3.2 * nrows + 1.0), dpi=DPI)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    family = levels.groupby("perturbation")["family"].first()
    for ax, perturbation in zip(axes.flat, perturbations, strict=False):
        for quantity in quantities:
            curve = levels[(levels.perturbation == perturbation) & (levels.quantity == quantity)]
            curve = curve.sort_values("severity")
            if curve.empty:  # e.g. utility Dice exists only for the families that train a model
                continue
            is_dice = quantity in _dice_names(levels)
            dice_colour = "black" if curve["kind"].iloc[0] == "dice" else "grey"
            ax.errorbar(curve["severity"], curve["worse"], yerr=curve["bar"].fillna(0), label=quantity,
                        color=dice_colour if is_dice else colours[quantity], ls="--" if is_dice else "-",
                        lw=2.0 if is_dice else 1.2, marker="o", ms=3, capsize=2)
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_title(f"{perturbation} ({family[perturbation]})", fontsize=10)
        ax.set_xlabel("severity")
    for ax in axes[:, 0]:
        ax.set_ylabel("change, normalised (up = worse)")
    for ax in list(axes.flat)[len(perturbations):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8, frameon=False)
    fig.suptitle("Metric change with perturbation severity (Dice dashed)", fontsize=12)
    return _save(fig, path, provenance(info, ok_rows(results)), right=1 - 2.6 / fig.get_figwidth())


def dice_scatter(results: pd.DataFrame, correlation_table: pd.DataFrame, target: str, info: StudyInfo,
                 path: Path) -> Path:
    """One panel per metric: its value against `target` over all cells, coloured by family, with the
    least-squares line and the Spearman ρ of the overall correlation row."""
    cells = cell_table(results).reset_index()
    rows = correlation_table[(correlation_table.target == target) & (correlation_table.group == "all")]
    metrics = rows["quantity"].tolist()
    ncols = min(4, max(1, len(metrics)))
    nrows = int(np.ceil(len(metrics) / ncols))
    fig = Figure(figsize=(3.4 * ncols, 3.0 * nrows + 1.6), dpi=DPI)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, row in zip(axes.flat, rows.itertuples(index=False), strict=False):
        pair = cells[["family", row.quantity, target]].dropna() if row.quantity in cells else cells.iloc[:0]
        for family, group in pair.groupby("family"):
            ax.scatter(group[row.quantity], group[target], s=14, label=family,
                       color=FAMILY_COLOURS.get(family, "grey"))
        if len(pair) >= 2 and pair[row.quantity].nunique() > 1:
            slope, intercept = np.polyfit(pair[row.quantity], pair[target], 1)
            xs = np.linspace(pair[row.quantity].min(), pair[row.quantity].max(), 50)
            ax.plot(xs, slope * xs + intercept, color="black", lw=1)
        rho = "n/a" if np.isnan(row.spearman) else f"{row.spearman:+.2f}"
        ax.set_title(f"{row.quantity}\nρ = {rho}, n = {row.n_cells}", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel(target, fontsize=8)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    handles, labels = _unique_legend(axes)
    height = fig.get_figheight()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.4 / height), fontsize=8,
               frameon=False, ncols=max(1, len(labels)))
    fig.suptitle(f"Metrics against {target}, one point per cell (mean over seeds), least-squares line", fontsize=11)
    return _save(fig, path, provenance(info, ok_rows(results)), top=1 - 1.15 / height)


def correlation_heatmap(correlation_table: pd.DataFrame, target: str, info: StudyInfo, results: pd.DataFrame,
                        path: Path) -> Path:
    """Metrics × perturbation families: agreement with `target` (Spearman ρ, + = the metric says better
    where Dice is higher), over each family's cells plus the clean cell, and over all cells."""
    table = correlation_table[correlation_table.target == target]
    grid = table.pivot(index="quantity", columns="group", values="agreement")
    columns = [c for c in grid.columns if c != "all"] + ["all"]
    grid = grid[columns]
    fig = Figure(figsize=(1.1 * len(columns) + 3.2, 0.42 * len(grid) + 2.6), dpi=DPI)
    ax = fig.subplots()
    cmap = colormaps["RdBu"].with_extremes(bad="#dddddd")
    image = ax.imshow(grid.to_numpy(float), cmap=cmap, norm=TwoSlopeNorm(0, -1, 1), aspect="auto")
    ax.axvline(len(columns) - 1.5, color="white", lw=4)
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(grid)), grid.index, fontsize=8)
    flat = table.pivot(index="quantity", columns="group", values="note").reindex_like(grid)
    flat = flat.fillna("").apply(lambda column: column.str.contains("does not change detectably")).to_numpy(bool)
    for (i, j), value in np.ndenumerate(grid.to_numpy(float)):
        text = "–" if np.isnan(value) else f"{value:+.2f}" + ("\n(Dice flat)" if flat[i, j] else "")
        ax.text(j, i, text, ha="center", va="center", fontsize=7,
                color="white" if abs(np.nan_to_num(value)) > 0.6 else "black")
    fig.colorbar(image, ax=ax, label="agreement with Dice (oriented Spearman ρ)")
    ax.set_title(f"Agreement with {target} per perturbation family\n(Dice flat: Dice does not change detectably "
                 "in that family, so the value reflects noise)", fontsize=10)
    return _save(fig, path, provenance(info, ok_rows(results)), bottom_inches=1.1)


def example_grid(examples: dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]], info: StudyInfo,
                 results: pd.DataFrame, path: Path) -> Path:
    """Rows: perturbations; columns: severities; one example slice each, tumour labels as a contour."""
    perturbations = sorted({p for p, _ in examples})
    severities = sorted({s for _, s in examples})
    fig = Figure(figsize=(1.6 * len(severities) + 1.6, 1.6 * len(perturbations) + 1.4), dpi=DPI)
    axes = fig.subplots(len(perturbations), len(severities), squeeze=False)
    for (i, perturbation), (j, severity) in _pairs(perturbations, severities):
        ax = axes[i, j]
        ax.set_xticks([])
        ax.set_yticks([])
        if (perturbation, severity) in examples:
            image, label = examples[(perturbation, severity)]
            ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if label is not None and (label > 0).any():
                ax.contour(label > 0, levels=[0.5], colors="yellow", linewidths=0.6)
        else:
            ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
        if i == 0:
            ax.set_title(f"severity {severity}", fontsize=8)
        if j == 0:
            ax.set_ylabel(perturbation, fontsize=8)
    fig.suptitle("Example slices per perturbation and severity (tumour outline in yellow)", fontsize=11)
    return _save(fig, path, provenance(info, ok_rows(results)), bottom_inches=0.2, hspace=0.06, wspace=0.04)


def _pairs(rows: list[str], columns: list[int]) -> list[tuple[tuple[int, str], tuple[int, int]]]:
    return [((i, r), (j, c)) for i, r in enumerate(rows) for j, c in enumerate(columns)]


def _save(fig: Figure, path: Path, footer: str, right: float = 0.98, top: float | None = None,
          bottom_inches: float = 1.0, hspace: float = 0.55, wspace: float = 0.3) -> Path:
    """Add the provenance footer below the axes and write a PNG."""
    width = fig.get_figwidth()
    wrapped = textwrap.fill(footer, width=int(width * 17))
    lines = wrapped.count("\n") + 1
    bottom = (bottom_inches + 0.14 * lines) / fig.get_figheight()
    fig.subplots_adjust(left=0.12 if width < 6 else 0.08, right=right, bottom=bottom,
                        top=top or 1 - 0.7 / fig.get_figheight(), hspace=hspace, wspace=wspace)
    fig.text(0.01, 0.01, wrapped, fontsize=7, va="bottom", ha="left", color="#333333")
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    return path


def _dice_names(levels: pd.DataFrame) -> set[str]:
    return set(levels.loc[levels["kind"].isin(DICE_KINDS), "quantity"])


def _quantity_colours(quantities: list[str]) -> dict[str, tuple]:
    cmap = colormaps["tab20" if len(quantities) > 10 else "tab10"]
    return {q: cmap(i % cmap.N) for i, q in enumerate(quantities)}


def _unique_legend(axes: np.ndarray) -> tuple[list, list]:
    seen: dict[str, object] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    return list(seen.values()), list(seen)


def _size_range(rows: pd.DataFrame, column: str) -> str:
    values = rows[column].dropna().astype(int)
    if values.empty:
        return "?"
    low, high = values.min(), values.max()
    return str(low) if low == high else f"{low}-{high}"
