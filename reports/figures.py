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
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap, TwoSlopeNorm
from matplotlib.figure import Figure

from benchmark.atomic import replace_atomically
from benchmark.study.files import StudyInfo
from benchmark.study.schema import DICE_KINDS, GENERATED_FAMILY
from reports.agreement import cell_table
from reports.sensitivity import ok_rows

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


EFFECT_BINS = (-20.0, -5.0, -2.0, 2.0, 5.0, 20.0)  # noise units; |effect| < 2 is within the noise
FAMILY_ORDER = ("noise", "artifact", "shift", "morphological", "memorisation")


def effect_grid(effects: pd.DataFrame) -> pd.DataFrame:
    """The heatmap's numbers: quantity rows (Dice first, then metrics, each alphabetical) × (perturbation,
    severity) columns (families from noise to memorisation, then name and severity); each cell the effect
    in noise units signed so that + means the quantity reports lower quality; NaN without a noise estimate.

    `effects` is `sensitivity.effect_sizes`; generated sets (no severity scale) are left out.
    """
    table = effects[effects["family"] != GENERATED_FAMILY]
    table = table.assign(signed=np.where(table["worse"].astype(bool), 1.0, -1.0) * table["effect"].astype(float))
    family = table.groupby("perturbation")["family"].first()
    rank = {name: FAMILY_ORDER.index(f) if f in FAMILY_ORDER else len(FAMILY_ORDER) for name, f in family.items()}
    pairs = {(p, int(s)) for p, s in table[["perturbation", "severity"]].itertuples(index=False)}
    columns = sorted(pairs, key=lambda c: (rank[c[0]], c[0], c[1]))
    dice = sorted(set(table.loc[table["kind"].isin(DICE_KINDS), "quantity"]))
    rows = dice + sorted(set(table["quantity"]) - set(dice))
    grid = table.set_index(["quantity", "perturbation", "severity"])["signed"].unstack(["perturbation", "severity"])
    return grid.reindex(index=rows, columns=pd.MultiIndex.from_tuples(columns, names=["perturbation", "severity"]))


def severity_effects(effects: pd.DataFrame, info: StudyInfo, results: pd.DataFrame, path: Path) -> Path:
    """The effect grid (`effect_grid`) as a heatmap: bins of EFFECT_BINS noise units, white within ±2, reds
    for worse, blues for better, grey where no noise estimate exists. Segmentation rows sit on top, so a
    metric reads well when its row is red where the Dice rows are and white where they are white.
    """
    grid = effect_grid(effects)
    table = effects[effects["family"] != GENERATED_FAMILY]
    columns, rows = list(grid.columns), list(grid.index)
    dice = set(table.loc[table["kind"].isin(DICE_KINDS), "quantity"])
    values = grid.to_numpy(float)
    fig = Figure(figsize=(max(8.0, 0.45 * len(columns) + 3.2), 0.26 * len(rows) + 3.0), dpi=DPI)
    ax = fig.subplots()
    colours = colormaps["RdBu_r"](np.linspace(0.05, 0.95, len(EFFECT_BINS) + 1))
    colours[len(EFFECT_BINS) // 2] = (0.97, 0.97, 0.97, 1.0)
    cmap = ListedColormap(colours).with_extremes(bad="#bdbdbd")
    outer = 2.5 * EFFECT_BINS[-1]  # the outermost bins are open-ended: values beyond are drawn at their edge
    norm = BoundaryNorm([-outer, *EFFECT_BINS, outer], cmap.N)
    image = ax.imshow(np.clip(values, -outer, outer), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, _effect_label(value), ha="center", va="center", fontsize=6,
                color="white" if abs(value) >= EFFECT_BINS[-2] else "black")  # NaN compares False: black
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xticks(range(len(columns)), [str(severity) for _, severity in columns], fontsize=7)
    ax.set_xlabel("severity", fontsize=8)
    if dice and len(dice) < len(rows):
        ax.axhline(len(dice) - 0.5, color="black", lw=1.5)
    column_inches = (fig.get_figwidth() - 3.2) / len(columns)
    _label_perturbations(ax, columns, table.groupby("perturbation")["family"].first(), column_inches)
    bar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.015, ticks=EFFECT_BINS)
    bar.set_label("change from clean in noise units (+ = reports worse)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    sources = ", ".join(sorted(set(table["noise_source"].dropna()) - {"unavailable"})) or "none"
    fig.suptitle("Change from the clean set in noise units (red: reports worse; segmentation rows on top)",
                 fontsize=11)
    footer = (f"Cell: (value - clean value) / noise, signed by the quantity's reading; |effect| < "
              f"{EFFECT_BINS[3]:g} is within the noise; ∞: an infinite clean value (PSNR of identical images) became "
              "finite, or a noiseless quantity changed; grey: no noise estimate or no change to measure. "
              f"Noise sources: {sources}. " + provenance(info, ok_rows(results)))
    return _save(fig, path, footer, top=1 - 1.1 / fig.get_figheight(), bottom_inches=0.6,
                 left_inches=1.9, right=1 - 0.75 / fig.get_figwidth())


def _label_perturbations(ax: Axes, columns: list[tuple[str, int]], family: pd.Series, column_inches: float
                         ) -> None:
    """Perturbation and family names above their severity columns, coloured by family, wrapped after `_`
    to the block's width; white separators between the blocks."""
    starts = [j for j, (name, _) in enumerate(columns) if j == 0 or columns[j - 1][0] != name]
    for start, end in zip(starts, [*starts[1:], len(columns)], strict=True):
        name = columns[start][0]
        width = max(6, int((end - start) * column_inches / 0.06))  # characters of 7 pt text across the block
        lines = textwrap.wrap(name.replace("_", "_ "), width=width, break_long_words=True)
        label = "\n".join(line.replace(" ", "") for line in lines)
        ax.text((start + end - 1) / 2, -0.65, label + f"\n({family.get(name, '?')})", ha="center", va="bottom",
                fontsize=7, color=FAMILY_COLOURS.get(family.get(name, ""), "black"))
        if start:
            ax.axvline(start - 0.5, color="white", lw=2.5)


def _effect_label(value: float) -> str:
    if np.isnan(value):
        return "–"
    if np.isinf(value):
        return "∞" if value > 0 else "−∞"
    if abs(value) < 0.05:
        return "0"
    if abs(value) >= 999.5:
        return ">999" if value > 0 else "<−999"
    return f"{value:.1f}" if abs(value) < 9.95 else f"{value:.0f}"


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
    fig.suptitle("Example slices per perturbation and severity (label outline in yellow)", fontsize=11)
    return _save(fig, path, provenance(info, ok_rows(results)), bottom_inches=0.2, hspace=0.06, wspace=0.04)


def _pairs(rows: list[str], columns: list[int]) -> list[tuple[tuple[int, str], tuple[int, int]]]:
    return [((i, r), (j, c)) for i, r in enumerate(rows) for j, c in enumerate(columns)]


def _save(fig: Figure, path: Path, footer: str, right: float = 0.98, top: float | None = None,
          bottom_inches: float = 1.0, hspace: float = 0.55, wspace: float = 0.3,
          left_inches: float | None = None) -> Path:
    """Add the provenance footer below the axes and write a PNG."""
    width = fig.get_figwidth()
    wrapped = textwrap.fill(footer, width=int(width * 17))
    lines = wrapped.count("\n") + 1
    bottom = (bottom_inches + 0.14 * lines) / fig.get_figheight()
    left = left_inches / width if left_inches is not None else (0.12 if width < 6 else 0.08)
    fig.subplots_adjust(left=left, right=right, bottom=bottom,
                        top=top or 1 - 0.7 / fig.get_figheight(), hspace=hspace, wspace=wspace)
    fig.text(0.01, 0.01, wrapped, fontsize=7, va="bottom", ha="left", color="#333333")
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    return path


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
