"""Build the report from what a sweep stored under output_dir; nothing is recomputed but the analysis.

Re-exports the results store under output_dir/store when there is one (so cells written by concurrent
multirun jobs are all included, and cells of other data or another configuration left there by earlier runs
are not), then reads results.parquet (or results.csv), cases.parquet, study.json
and examples.npz; writes the analysis tables (correlations.csv, sensitivity.csv, effect_sizes.csv,
memorisation.csv, ranking.csv), the figures under figures/, report.md and report.html. Every file is
replaced atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from benchmark.atomic import write_text_atomically
from benchmark.study.files import read_examples, read_study_info
from benchmark.study.schema import GENERATED_FAMILY, load_cases, load_results
from benchmark.study.store import ResultsStore
from reports import figures
from reports.agreement import correlations, rank_metrics
from reports.cohort import with_cohort_sections
from reports.copy_detection import with_copy_detection_section
from reports.generators import with_generators_section
from reports.html import render_html
from reports.markdown import render_markdown
from reports.sample_size import curve_summary, draw_curves, separation
from reports.scorecard import dice_harm, harm_targets, scorecard, targets_for, worse_effects
from reports.sections import Analysis, report_blocks
from reports.sensitivity import effect_sizes, memorisation_table, ok_rows, sensitivity
from reports.uncertainty import (
    Resampling,
    agreement_draws,
    agreement_intervals,
    cell_intervals,
    floor_table,
    metric_orientation,
    noise_table,
    read_resampling,
)

log = logging.getLogger("reports")
PREFERRED_TARGETS = ("robustness/dice_WT", "robustness/dice_vessel", "utility/dice_WT", "utility/dice_vessel")


def build_report(output_dir: Path, n_boot: int = 1000, seed: int = 0) -> Path:
    """Analyse the stored results under `output_dir` and write the report; returns report.html's path.

    `n_boot`: bootstrap resamples for the correlation intervals (≥ 100); `seed`: their generator's seed.
    """
    output_dir = Path(output_dir)
    left_out = ""
    if any((output_dir / "store" / "cells").glob("*.json")):
        store = ResultsStore(output_dir / "store")
        store.export(output_dir)  # every cell of concurrent writers, none of another study
        left_out = store.left_out_line()
        if left_out:
            log.warning("report: %s", left_out)
    results = load_results(output_dir)
    cases = load_cases(output_dir)
    info = read_study_info(output_dir)
    analysis = analyse(results, cases, info, n_boot, seed, read_resampling(output_dir))
    analysis.left_out = left_out
    tables = {"sensitivity": analysis.sensitivity,
              "effect_sizes": effect_sizes(results, cases, seed, noise=analysis.noise),
              "correlations": analysis.correlations, "memorisation": analysis.memorisation,
              "ranking": analysis.ranking, "scorecard": analysis.scorecard, "noise_floor": analysis.floor,
              "cell_intervals": analysis.intervals, "sample_size": analysis.curves,
              "sample_size_separation": analysis.separation}
    for name, table in tables.items():
        write_text_atomically(output_dir / f"{name}.csv", table.to_csv(index=False))
    analysis.figures = draw_figures(analysis, output_dir, tables["effect_sizes"])
    blocks = with_generators_section(report_blocks(analysis), output_dir, results, info)
    blocks = with_cohort_sections(with_copy_detection_section(blocks, output_dir), output_dir)
    write_text_atomically(output_dir / "report.md", render_markdown(blocks))
    write_text_atomically(output_dir / "report.html", render_html(blocks, output_dir, info.title))
    log.info("report written to %s", output_dir / "report.html")
    return output_dir / "report.html"


def analyse(results: pd.DataFrame, cases: pd.DataFrame | None, info, n_boot: int, seed: int,
            resampling: Resampling | None = None) -> Analysis:
    """Sensitivity against the noise floor, memorisation verdicts, correlations with Dice with subject-
    bootstrap intervals, the ranking with its stability, the scorecard and the sample-size curves."""
    if n_boot < 100:
        raise ValueError(f"n_boot={n_boot}: use at least 100 bootstrap resamples for a 95 % interval")
    resampling = resampling or Resampling()
    has_rows = not ok_rows(results).empty
    floor = floor_table(resampling.floor)
    intervals = cell_intervals(resampling.resamples)
    noise = noise_table(results, floor, intervals) if has_rows else None
    sens = sensitivity(results, cases, seed, noise=noise) if has_rows else pd.DataFrame()
    corr = correlations(results, n_boot, seed) if has_rows else pd.DataFrame(columns=["target"])
    target = primary_target(corr)
    orientation = metric_orientation(results) if has_rows else {}
    card_targets = targets_for(results["quantity"]) if has_rows else {}
    targets = sorted(set(corr["target"]) & ({target} | set(card_targets.values())))  # the scorecard's and ranking's
    agreement = {t: _with_subject_intervals(corr, t, resampling, orientation) for t in targets}
    ranking = rank_metrics(corr, target) if target else pd.DataFrame()
    if target:
        stability = agreement[target][["quantity", "subject_lo", "subject_hi", "rank_lo", "rank_hi", "p_top3"]]
        ranking = ranking.merge(stability, on="quantity", how="left")
        first = ["rank", "quantity", "kind", "agreement", "subject_lo", "subject_hi", "rank_lo", "rank_hi", "p_top3"]
        ranking = ranking[first + [c for c in ranking.columns if c not in first]]
    card = pd.DataFrame()
    if has_rows:
        effects = worse_effects(resampling.resamples, results, noise, orientation)
        kinds = ok_rows(results).groupby("quantity")["kind"].first().to_dict()
        harm = dice_harm(intervals, results, harm_targets(results["quantity"]))
        card = scorecard(orientation, kinds, effects, harm, agreement, results,
                         resampling.n_test_subjects, not resampling.resamples.empty, floor, card_targets)
    curves = curve_summary(resampling.curves)
    return Analysis(
        results=results, info=info, sensitivity=sens, correlations=corr,
        memorisation=memorisation_table(sens) if has_rows else pd.DataFrame(),
        ranking=ranking, target=target, figures={}, n_boot=n_boot, seed=seed, resampling=resampling,
        floor=floor, intervals=intervals, noise=noise, scorecard=card, curves=curves, separation=separation(curves),
    )


def _with_subject_intervals(corr: pd.DataFrame, target: str, resampling: Resampling,
                            orientation: dict[str, bool]) -> pd.DataFrame:
    """The overall agreement with `target` per metric, with its subject-bootstrap interval, rank interval
    and P(top three) from the stored resamples."""
    overall = corr[(corr["target"] == target) & (corr["group"] == "all")]
    overall = overall[["quantity", "agreement", "n_cells", "note"]]
    draws = agreement_draws(resampling.resamples, target,
                            {q: h for q, h in orientation.items() if q in set(overall["quantity"])})
    return overall.merge(agreement_intervals(draws), on="quantity", how="left")


def primary_target(correlation_table: pd.DataFrame) -> str | None:
    """The Dice quantity the ranking uses: robustness whole-tumour Dice when stored, else the first."""
    targets = sorted(set(correlation_table["target"]))
    for preferred in PREFERRED_TARGETS:
        if preferred in targets:
            return preferred
    return targets[0] if targets else None


def draw_figures(a: Analysis, output_dir: Path, effects: pd.DataFrame) -> dict[str, str]:
    """Draw every figure the stored data allow; `effects` is the effect_sizes table. Returns name -> path
    relative to output_dir."""
    folder = output_dir / "figures"
    drawn: dict[str, Path] = {}
    if not effects.empty and (effects["family"] != GENERATED_FAMILY).any():
        drawn["severity"] = figures.severity_effects(effects, a.info, a.results, folder / "severity_effects.png")
    if a.target is not None:
        safe = a.target.replace("/", "_")
        drawn["scatter"] = figures.dice_scatter(a.results, a.correlations, a.target, a.info,
                                                folder / f"metric_vs_{safe}.png")
        drawn["heatmap"] = figures.correlation_heatmap(a.correlations, a.target, a.info, a.results,
                                                       folder / f"correlation_heatmap_{safe}.png")
    if not a.curves.empty:
        caption = ("Sample-size curves: each metric between n random clean test images and n images of each set "
                   "(mean ± std over draws); dashed: clean held-out subjects, the real-vs-real floor. "
                   + figures.provenance(a.info, ok_rows(a.results)))
        drawn["sample_size"] = draw_curves(a.curves, caption, folder / "sample_size.png")
    examples_path = output_dir / "examples.npz"
    if examples_path.is_file():
        drawn["examples"] = figures.example_grid(read_examples(examples_path), a.info, a.results,
                                                 folder / "examples.png")
    return {name: path.relative_to(output_dir).as_posix() for name, path in drawn.items()}
