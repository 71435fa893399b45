"""The report's text: what was measured, the findings, the tables and figures, the caveats, the failures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.document import Block, Bullets, Heading, Image, Paragraph, Table, format_table
from reports.schema import DICE_KINDS, GENERATED_FAMILY
from reports.sensitivity import EFFECT_THRESHOLD, RHO_THRESHOLD, ok_rows
from reports.study_files import StudyInfo


@dataclass
class Analysis:
    """Everything the report shows, computed from the stored tables."""

    results: pd.DataFrame
    info: StudyInfo
    sensitivity: pd.DataFrame
    correlations: pd.DataFrame
    memorisation: pd.DataFrame
    ranking: pd.DataFrame
    target: str | None
    figures: dict[str, str]  # name -> path relative to the output folder
    n_boot: int
    seed: int


CAVEATS = [
    "Cells are not independent: every cell shares the clean data, and the robustness Dice of every cell comes "
    "from the same trained segmenter. p-values assume independent cells and are indicative only.",
    "Severity levels are not comparable across perturbations (level 3 of blur is not 'as bad' as level 3 of "
    "noise), so correlations over all cells mix different scales; rank correlations are less sensitive to this.",
    "The clean set (severity 0) enters once, not once per perturbation, so identical points do not inflate "
    "the agreement.",
    "A metric can track Dice well under one family and not at all under another: read the per-family "
    "heatmap before trusting the overall rank.",
    "Bootstrap intervals resample cells; with few cells they are wide and their coverage is approximate.",
]


def report_blocks(a: Analysis) -> list[Block]:
    """The whole report, top to bottom."""
    return [
        Heading(a.info.title, 1),
        *_study_section(a),
        *_findings_section(a),
        *_ranking_section(a),
        *_sensitivity_section(a),
        *_memorisation_section(a),
        *_generated_section(a),
        *_examples_section(a),
        *_failures_section(a),
        Heading("Files"),
        Bullets([
            "`results.csv` / `results.parquet`: one row per (stage, perturbation, severity, seed, quantity).",
            "`correlations.csv`: agreement of each metric with each Dice target, over all cells and per family.",
            "`sensitivity.csv`, `effect_sizes.csv`, `memorisation.csv`, `ranking.csv`: the tables above in full.",
            "`figures/*.png`: the figures. Rebuild this report from the stored results without recomputing: "
            "`python -m reports output_dir=<this folder>`.",
        ]),
    ]


def _study_section(a: Analysis) -> list[Block]:
    rows = ok_rows(a.results)
    metrics = sorted(set(rows.loc[~rows["kind"].isin(DICE_KINDS), "quantity"]))
    dice = sorted(set(rows.loc[rows["kind"].isin(DICE_KINDS), "quantity"]))
    perturbations = rows.groupby("perturbation")["family"].first()
    extractors = sorted(set(rows["feature_extractor"]) - {""})
    elapsed = a.results.drop_duplicates(["stage", "perturbation", "severity", "seed"])["elapsed_s"].sum()
    items = [
        f"Data: {a.info.data_line()}.",
        f"Preprocessing: {a.info.preprocessing}.",
        f"Feature extractors: {a.info.extractor_line(extractors)}.",
        f"Perturbations ({len(perturbations)}): "
        + ", ".join(f"{p} ({f})" for p, f in perturbations.items()) + "; severities "
        + ", ".join(map(str, sorted(rows["severity"].unique()))) + " (0 = clean).",
        f"Metrics ({len(metrics)}): {', '.join(metrics)}.",
        f"Downstream quantities: {', '.join(dice) or 'none stored'}.",
        f"Seeds: {', '.join(map(str, sorted(a.results['seed'].unique())))}; sample sizes per cell: "
        f"{_range(rows, 'n_reference')} reference, {_range(rows, 'n_candidate')} candidate items.",
        f"Config hash {a.info.config_hash}; cells computed in {elapsed:.0f} s in total; study started "
        f"{a.info.created}.",
        f"Analysis: bootstrap with {a.n_boot} resamples, seed {a.seed}.",
    ]
    if not a.info.recorded:
        items.append("study.json was not found: data, preprocessing and extractor descriptions are not recorded.")
    return [Heading("What was measured"), Bullets(items)]


def _findings_section(a: Analysis) -> list[Block]:
    items = []
    if a.target and not a.ranking.empty and np.isfinite(a.ranking["agreement"].iloc[0]):
        best = a.ranking.iloc[0]
        items.append(f"Best tracker of {a.target}: {best['quantity']} (oriented Spearman ρ {best['agreement']:+.2f}, "
                     f"95 % CI {best['agreement_lo']:+.2f} to {best['agreement_hi']:+.2f}, {best['n_cells']} cells).")
        wrong = a.ranking.loc[a.ranking["agreement"] < 0, "quantity"].tolist()
        if wrong:
            items.append(f"Metrics that say 'better' where Dice is lower: {', '.join(wrong)}.")
    if not a.sensitivity.empty:
        metric_rows = a.sensitivity[~a.sensitivity["kind"].isin(DICE_KINDS)]
        relevant = (metric_rows["family"] != "memorisation") & (metric_rows["kind"] != "memorisation")
        blind = metric_rows[relevant & ~metric_rows["right_direction"]]  # copies: see the memorisation table
        for quantity, group in blind.groupby("quantity"):
            parts = [f"{direction} under {', '.join(g['perturbation'])}" for direction, g in group.groupby("direction")]
            items.append(f"{quantity} does not get worse where it should: {'; '.join(parts)}.")
    for verdict in ("rewards copies", "flags copies"):
        names = sorted(set(a.memorisation.loc[a.memorisation["verdict"] == verdict, "quantity"])) \
            if not a.memorisation.empty else []
        if names:
            items.append(f"{verdict.capitalize()}: {', '.join(names)}.")
    ok = ok_rows(a.results)
    n_nonfinite = int((~np.isfinite(ok["value"])).sum())
    if n_nonfinite:
        names = ", ".join(sorted(set(ok.loc[~np.isfinite(ok["value"]), "quantity"])))
        items.append(f"{n_nonfinite} infinite values ({names}; e.g. PSNR of identical images) are left out of the "
                     "correlations, the curves and the effect sizes.")
    n_failed = int((a.results["status"] != "ok").sum())
    items.append(f"{n_failed} failed rows (listed at the end)." if n_failed else "No cell failed.")
    return [Heading("Findings"), Bullets(items)]


def _ranking_section(a: Analysis) -> list[Block]:
    blocks: list[Block] = [Heading("Which metrics track downstream Dice")]
    if a.target is None:
        return [*blocks, Paragraph("No Dice quantity is stored (the segmentation stages did not run), so there is "
                                   "no agreement to measure.")]
    blocks += [
        Paragraph(f"Metrics ranked by agreement with `{a.target}` over all cells (perturbation × severity, means "
                  "over seeds). Agreement is Spearman's ρ signed so that + means the metric says 'better' where "
                  "Dice is higher; Pearson and Kendall are given alongside, with scipy p-values and bootstrap "
                  "95 % intervals in correlations.csv; agreement_lo / agreement_hi: the bootstrap 95 % interval "
                  "of the agreement. family_min / family_max: the range of the agreement within "
                  "single perturbation families."),
        format_table(a.ranking.drop(columns="caveats"), "Ranking"),
        Paragraph("Caveats of each number:"),
        Bullets([f"{row.quantity}: {row.caveats}" for row in a.ranking.itertuples() if row.caveats]
                or ["none flagged"]),
        Paragraph("Caveats of the whole comparison:"),
        Bullets(CAVEATS),
    ]
    if "scatter" in a.figures:
        blocks.append(Image(a.figures["scatter"], f"Each metric against {a.target}, one point per cell, "
                                                  "least-squares line; colours are perturbation families."))
    if "heatmap" in a.figures:
        blocks.append(Image(a.figures["heatmap"], "Agreement with Dice within each perturbation family "
                                                  "(each family's cells plus the clean cell) and over all cells."))
    return blocks


def _sensitivity_section(a: Analysis) -> list[Block]:
    table = a.sensitivity[~a.sensitivity["kind"].isin(DICE_KINDS)] if not a.sensitivity.empty else a.sensitivity
    blocks: list[Block] = [Heading("Sensitivity to each perturbation")]
    if "severity" in a.figures:
        blocks.append(Image(a.figures["severity"], "Change of each quantity with severity, normalised by its "
                                                   "largest change; up = worse; Dice dashed. Where the clean value is "
                                                   "infinite or failed (PSNR of identical images) the curve starts "
                                                   "at the lowest finite level."))
    if table.empty:
        return blocks
    worsening = table.assign(worsening=np.where(table["higher_is_better"], -1, 1) * table["spearman_rho"])
    blocks += [
        Paragraph("Worsening ρ: Spearman's ρ of the metric against severity, signed so that +1 means it gets "
                  "monotonically worse as severity grows (the right direction), −1 that it reports better quality. "
                  f"Detected at: the lowest severity whose change is at least {EFFECT_THRESHOLD:g} times the "
                  "metric's own noise (std over seeds, or a bootstrap of its per-item values) in the worse "
                  "direction; – when never, or when no noise estimate exists (see effect_sizes.csv)."),
        format_table(worsening.pivot(index="quantity", columns="perturbation", values="worsening"),
                     "Worsening ρ (metric × perturbation)", index=True),
        format_table(table.pivot(index="quantity", columns="perturbation", values="first_detected"),
                     "Detected at severity", index=True),
    ]
    return blocks


def _memorisation_section(a: Analysis) -> list[Block]:
    if a.memorisation.empty:
        return []
    return [
        Heading("Memorisation: which metrics reward copies and which detect them"),
        Paragraph("A metric flags copies when it reports lower quality (or a higher copy rate) as more of the "
                  "candidate set is copied from the training data, and rewards them when it reports better "
                  f"quality. It counts as moving when its effect at the highest severity is ≥ {EFFECT_THRESHOLD:g} "
                  f"noise units or, without a noise estimate, when |ρ| ≥ {RHO_THRESHOLD:g}."),
        format_table(a.memorisation, "Memorisation verdicts"),
    ]


def _generated_section(a: Analysis) -> list[Block]:
    """Generative models' outputs side by side with the clean set: every quantity, mean over seeds."""
    rows = ok_rows(a.results)
    generated = rows[rows["family"] == GENERATED_FAMILY]
    if generated.empty:
        return []
    clean = rows[rows["severity"] == 0].groupby("quantity")["value"].mean().rename("clean")
    table = generated.groupby(["quantity", "perturbation"])["value"].mean().unstack("perturbation")
    table = table.join(clean, how="left")
    return [
        Heading("Generated sets"),
        Paragraph("Each generative model's outputs scored like a perturbed set (metrics against the real test "
                  "set; Dice where the outputs come with masks), next to the clean test set. They enter the "
                  "agreement with Dice above as cells of the family 'generated'."),
        format_table(table, "Quantities per generated set (mean over seeds)", index=True),
    ]


def _examples_section(a: Analysis) -> list[Block]:
    if "examples" not in a.figures:
        return []
    return [Heading("Examples"), Image(a.figures["examples"], "One example slice per perturbation and severity.")]


def _failures_section(a: Analysis) -> list[Block]:
    failed = a.results[a.results["status"] != "ok"]
    columns = ["stage", "perturbation", "severity", "seed", "quantity", "error"]
    failed = failed[columns].astype(str).replace({"quantity": {"": "(whole cell)"}}).reset_index(drop=True)
    return [Heading("Failed cells"), Paragraph("Cells or quantities that raised; the sweep went on without them "
                                               "and a resumed run tries them again."), Table(failed, "Failed cells")]


def _range(rows: pd.DataFrame, column: str) -> str:
    values = rows[column].dropna()
    if values.empty:
        return "?"
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}-{high}"
