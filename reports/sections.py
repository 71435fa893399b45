"""The report's text: what was measured, the findings, the tables and figures, the caveats, the failures."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.study.files import StudyInfo
from benchmark.study.schema import DICE_KINDS, GENERATED_FAMILY
from reports.document import Block, Bullets, Heading, Image, Paragraph, Table, format_table
from reports.sensitivity import EFFECT_THRESHOLD, RHO_THRESHOLD, ok_rows
from reports.uncertainty import Resampling


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
    resampling: Resampling = field(default_factory=Resampling)
    floor: pd.DataFrame = field(default_factory=pd.DataFrame)  # noise floor per quantity
    intervals: pd.DataFrame = field(default_factory=pd.DataFrame)  # subject-bootstrap intervals per cell
    noise: pd.DataFrame | None = None  # the noise each effect is measured in
    scorecard: pd.DataFrame = field(default_factory=pd.DataFrame)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # sample-size curve summary
    separation: pd.DataFrame = field(default_factory=pd.DataFrame)
    left_out: str = ""  # stored cells of other data or another configuration, left out of the results


CAVEATS = [
    "Cells are not independent: every cell shares the clean data, and the robustness Dice of every cell comes "
    "from the same trained segmenter. p-values assume independent cells and are indicative only.",
    "Severity levels are not comparable across perturbations (level 3 of blur is not 'as bad' as level 3 of "
    "noise), so correlations over all cells mix different scales; rank correlations are less sensitive to this.",
    "The clean set (severity 0) enters once, not once per perturbation, so identical points do not inflate "
    "the agreement.",
    "A metric can track Dice well under one family and not at all under another: read the per-family "
    "heatmap before trusting the overall rank.",
    "Intervals come from the subject bootstrap (see 'How the verdicts are decided'): they honour that cells "
    "share test subjects; they do not cover the choice of perturbations, of the phantom or of the segmenter's "
    "training seed (repeat seeds for that).",
]

METHOD = [
    "Noise floor: the clean validation and test subjects (real, clean, never trained on) are pooled and split "
    "at random into two disjoint halves of as many subjects as the test set; every metric that needs no clean "
    "counterpart is computed between the halves. Its mean over the splits is the real-vs-real floor, its std "
    "the spread. Paired metrics (SSIM, PSNR, ...) compare an image with its own clean version, so their clean "
    "value is the identity; their spread is the subject-bootstrap std of the cell.",
    "Effect: the change from the clean value in the direction the metric calls worse, divided by that spread "
    f"(≥ {EFFECT_THRESHOLD:g} counts as detected). Its 95 % interval comes from the subject bootstrap.",
    "Subject (cluster) bootstrap: the test subjects are drawn with replacement; in each resample every metric "
    "of every cell is recomputed on the drawn subjects' items (per-item values averaged again; FID, KID, PRDC, "
    "authenticity, FRD recomputed from the stored features, clean reference items resampled too) and every Dice "
    "from the per-subject values. All cells of one resample share the drawn subjects, as they do in the study, "
    "so the intervals of cells, of correlations with Dice and of ranks carry that dependence. Percentile 95 % "
    "intervals. A subject drawn twice enters twice (nearest-neighbour metrics then see exact duplicates; the "
    "effect is shared by all cells of the resample). Copies of training subjects in a memorisation cell are not "
    "test subjects and are kept as they are; items of a generated set are resampled on their own.",
    "The older cell bootstrap (resampling perturbation cells) is kept in correlations.csv and as cells_lo / "
    "cells_hi in the ranking: it says how much ρ depends on which perturbation cells were chosen, a question "
    "of study design the subject bootstrap does not answer.",
    "Verdicts: yes when the whole 95 % interval is on the good side of the threshold, no when it is entirely "
    "on the other side, inconclusive when it spans it or the data cannot decide.",
]


def report_blocks(a: Analysis) -> list[Block]:
    """The whole report, top to bottom."""
    return [
        Heading(a.info.title, 1),
        Paragraph(_basis_line(a)),
        *_scorecard_section(a),
        *_study_section(a),
        *_findings_section(a),
        *_ranking_section(a),
        *_floor_section(a),
        *_sensitivity_section(a),
        *_sample_size_section(a),
        *_memorisation_section(a),
        *_generated_section(a),
        *_examples_section(a),
        *_failures_section(a),
        Heading("Files"),
        Bullets([
            "`results.csv` / `results.parquet`: one row per (stage, perturbation, severity, seed, quantity).",
            "`correlations.csv`: agreement of each metric with each Dice target, over all cells and per family.",
            "`sensitivity.csv`, `effect_sizes.csv`, `memorisation.csv`, `ranking.csv`: the tables above in full.",
            "`scorecard.csv`: every verdict with its evidence; `noise_floor.csv` / `floor.csv`: the floor and its "
            "splits; `resamples.parquet`: every quantity of every cell per subject resample; `cell_intervals.csv`; "
            "`sample_size.csv` / `sample_size_separation.csv`: the curves.",
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
    if a.left_out:
        items.append(a.left_out)
    return [Heading("Findings"), Bullets(items)]


def _ranking_section(a: Analysis) -> list[Block]:
    blocks: list[Block] = [Heading("Which metrics track downstream Dice")]
    if a.target is None:
        return [*blocks, Paragraph("No Dice quantity is stored (the segmentation stages did not run), so there is "
                                   "no agreement to measure.")]
    blocks += [
        Paragraph(f"Metrics ranked by agreement with `{a.target}` over all cells (perturbation × severity, means "
                  "over seeds). Agreement is Spearman's ρ signed so that + means the metric says 'better' where "
                  "Dice is higher; Pearson and Kendall are given alongside, with scipy p-values in "
                  "correlations.csv. family_min / family_max: the range of the agreement within "
                  "single perturbation families."),
        Paragraph("subject_lo / subject_hi: the subject-bootstrap 95 % interval of the agreement; rank_lo / rank_hi: "
                  "the 95 % interval of the metric's rank over the same resamples (1 = best tracker); p_top3: the "
                  "share of resamples in which it is among the three best trackers; cells_lo / cells_hi: the "
                  "cell bootstrap (see 'How the verdicts are decided')."),
        format_table(a.ranking.drop(columns="caveats").rename(columns={"agreement_lo": "cells_lo",
                                                                        "agreement_hi": "cells_hi"}), "Ranking"),
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
        blocks.append(Image(a.figures["severity"], "Change of each quantity from the clean set at each severity, "
                                                   "in units of its noise (floor spread or subject-bootstrap std), "
                                                   "signed so that + means it reports lower quality; segmentation "
                                                   "rows (Dice, HD95) on top. |effect| ≥ "
                                                   f"{EFFECT_THRESHOLD:g} counts as detected."))
    if table.empty:
        return blocks
    worsening = table.assign(worsening=np.where(table["higher_is_better"], -1, 1) * table["spearman_rho"])
    blocks += [
        Paragraph("Worsening ρ: Spearman's ρ of the metric against severity, signed so that +1 means it gets "
                  "monotonically worse as severity grows (the right direction), −1 that it reports better quality. "
                  f"Detected at: the lowest severity whose change from clean is at least {EFFECT_THRESHOLD:g} times "
                  "the metric's noise (its real-vs-real floor spread; for paired metrics and Dice the subject-"
                  "bootstrap std) in the worse direction; – when never (see effect_sizes.csv)."),
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


def _basis_line(a: Analysis) -> str:
    """The report's first line: what the verdicts rest on."""
    info = a.resampling.info
    ok = ok_rows(a.results)
    cells = ok.drop_duplicates(["stage", "perturbation", "severity", "seed"])
    n_cells = len(cells[cells["severity"] > 0].drop_duplicates(["stage", "perturbation", "severity", "seed"])) + \
        len(cells[cells["severity"] == 0].drop_duplicates(["stage", "seed"]))
    seeds = sorted(a.results["seed"].unique().tolist())
    if not info:
        return (f"These results rest on {len(seeds)} seed(s) and {n_cells} cells; no subject resampling was "
                "stored (floor.csv / resamples.parquet missing), so every verdict is inconclusive.")
    subjects = info.get("n_test_subjects", 0)
    floor_subjects = int(a.floor["n_subjects"].min()) if not a.floor.empty else 0
    return (f"These verdicts rest on {subjects} test subject{'s' if subjects != 1 else ''} "
            f"({info.get('n_test_items', '?')} test items), {len(seeds)} seed{'s' if len(seeds) != 1 else ''} and "
            f"{n_cells} cells (clean counted once); a noise floor from {info.get('floor_splits', 0)} random splits of "
            f"the {subjects + info.get('n_held_out_subjects', 0)} clean held-out and test subjects into halves of "
            f"{floor_subjects}; {a.resampling.n_boot} resamples of the test subjects.")


def _scorecard_section(a: Analysis) -> list[Block]:
    if a.scorecard.empty:
        return [Heading("Scorecard"), Paragraph("No metric rows: nothing to judge.")]
    from reports.scorecard import QUESTIONS, RHO_TRACKS, no_data_reason, question_keys

    card = a.scorecard
    keys = question_keys(card)
    verdicts = card[["metric", "kind", *keys]].rename(columns={k: f"({k[0]}) {QUESTIONS[k]}" for k in keys})
    evidence = card[["metric", *[f"{k}_evidence" for k in keys]]].rename(
        columns={f"{k}_evidence": f"({k[0]}) {QUESTIONS[k]}" for k in keys})
    return [
        Heading("Scorecard"),
        Paragraph("One row per metric: green yes, red no, amber inconclusive. (a) detects every morphological edit "
                  "that lowered Dice, by ≥ " f"{EFFECT_THRESHOLD:g}× its noise; (b) stays below that on every "
                  "cell whose Dice interval overlaps the clean one; (c) oriented Spearman ρ with Dice ≥ "
                  f"{RHO_TRACKS:g} over cells; (d) reports copies of training images as worse by ≥ "
                  f"{EFFECT_THRESHOLD:g}× its noise. Each verdict needs its whole 95 % subject-bootstrap interval "
                  "on one side of the threshold."),
        Table(verdicts.astype(str).reset_index(drop=True), "Scorecard", verdicts=True),
        Bullets(verdict_findings(card, no_data_reason(a.resampling.n_test_subjects, a.resampling.n_boot > 0))),
        Table(evidence.astype(str).reset_index(drop=True), "Numbers behind the scorecard: effects in noise units "
              "(point [95 % interval]) at the highest severity, ρ [95 % interval]"),
        Heading("How the verdicts are decided", 3),
        Bullets(METHOD),
    ]


def verdict_findings(card: pd.DataFrame, reason: str = "") -> list[str]:
    """Findings sentences generated from the scorecard's verdicts (so they cannot contradict it); `reason`:
    why the data cannot decide, when they cannot."""
    from reports.scorecard import question_keys

    keys = question_keys(card)

    def names(key: str, verdict: str) -> str:
        chosen = card.loc[card[key] == verdict, "metric"].tolist()
        return ", ".join(chosen) if chosen else "none"

    if all((card[key] == "inconclusive").all() for key in keys):
        because = f" ({reason})" if reason else ""
        return [f"Every verdict is inconclusive{because}: this study cannot tell which metrics to trust."]
    items = [
        f"Detect harmful localised edits beyond their noise floor: {names('a', 'yes')}; miss at least one: "
        f"{names('a', 'no')}.",
        f"Stay calm when Dice is unharmed: {names('b', 'yes')}; raise false alarms: {names('b', 'no')}.",
        f"Track robustness Dice (ρ interval above the threshold): {names('c_robustness', 'yes')}; do not: "
        f"{names('c_robustness', 'no')}.",
        f"Track utility Dice: {names('c_utility', 'yes')}; do not: {names('c_utility', 'no')}.",
        *[f"Track {key.split('_')[1]} clDice: {names(key, 'yes')}; do not: {names(key, 'no')}."
          for key in keys if key.endswith("_cldice")],
        f"Flag memorisation: {names('d', 'yes')}; ignore, reward or are undefined on copies: {names('d', 'no')}.",
    ]
    trusted = card.loc[(card[keys] == "yes").all(axis=1), "metric"].tolist()
    items.append(f"Yes to all four questions: {', '.join(trusted) if trusted else 'no metric'}.")
    return items


def _floor_section(a: Analysis) -> list[Block]:
    if a.floor.empty:
        return []
    return [
        Heading("Noise floor: clean real data against clean real data"),
        Paragraph("Each metric between two disjoint halves of the clean held-out and test subjects, at the test "
                  "set's size; floor = mean over the random splits, floor_std = their spread (the unit of every "
                  "effect size). A distribution metric far above zero here (FID is biased upwards at small n) is "
                  "what real data already score against real data."),
        format_table(a.floor, "Real-vs-real floor"),
    ]


def _sample_size_section(a: Analysis) -> list[Block]:
    if a.curves.empty:
        return []
    blocks: list[Block] = [Heading("Sample-size curves")]
    if "sample_size" in a.figures:
        blocks.append(Image(a.figures["sample_size"], "Value against the number of images per set: clean held-out "
                                                      "subjects (the floor, dashed) and one perturbation per family "
                                                      "at severity 3; mean ± std over random draws."))
    blocks += [
        Paragraph("Separates at n: the smallest n at which the set's mean differs from the floor's by at least "
                  "2 pooled standard deviations; – when never up to all test images. A perturbed test set shares "
                  "its subjects with the reference, the floor does not: a set below the floor (FID of a tumour "
                  "edit under the real-vs-real FID) looks more like the reference than other real subjects do."),
        format_table(a.separation, "Smallest n at which each set separates from the real-vs-real floor"),
    ]
    return blocks
