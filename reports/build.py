"""Build the report from what a sweep stored under output_dir; nothing is recomputed but the analysis.

Re-exports the results store under output_dir/store when there is one (so cells written by concurrent
multirun jobs are all included), then reads results.parquet (or results.csv), cases.parquet, study.json
and examples.npz; writes the analysis tables (correlations.csv, sensitivity.csv, effect_sizes.csv,
memorisation.csv, ranking.csv), the figures under figures/, report.md and report.html. Every file is
replaced atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from benchmark.atomic import write_text_atomically
from reports import figures
from reports.agreement import correlations, rank_metrics
from reports.generators import with_generators_section
from reports.html import render_html
from reports.markdown import render_markdown
from reports.schema import load_cases, load_results
from reports.sections import Analysis, report_blocks
from reports.sensitivity import effect_sizes, memorisation_table, ok_rows, sensitivity
from reports.store import ResultsStore
from reports.study_files import read_examples, read_study_info

log = logging.getLogger("reports")
PREFERRED_TARGETS = ("robustness/dice_WT", "utility/dice_WT")


def build_report(output_dir: Path, n_boot: int = 1000, seed: int = 0) -> Path:
    """Analyse the stored results under `output_dir` and write the report; returns report.html's path.

    `n_boot`: bootstrap resamples for the correlation intervals (≥ 100); `seed`: their generator's seed.
    """
    output_dir = Path(output_dir)
    if any((output_dir / "store" / "cells").glob("*.json")):
        ResultsStore(output_dir / "store").export(output_dir)  # include every cell of concurrent writers
    results = load_results(output_dir)
    cases = load_cases(output_dir)
    info = read_study_info(output_dir)
    analysis = analyse(results, cases, info, n_boot, seed)
    tables = {"sensitivity": analysis.sensitivity, "effect_sizes": effect_sizes(results, cases, seed),
              "correlations": analysis.correlations, "memorisation": analysis.memorisation,
              "ranking": analysis.ranking}
    for name, table in tables.items():
        write_text_atomically(output_dir / f"{name}.csv", table.to_csv(index=False))
    analysis.figures = draw_figures(analysis, output_dir)
    blocks = with_generators_section(report_blocks(analysis), output_dir, results, info)
    write_text_atomically(output_dir / "report.md", render_markdown(blocks))
    write_text_atomically(output_dir / "report.html", render_html(blocks, output_dir, info.title))
    log.info("report written to %s", output_dir / "report.html")
    return output_dir / "report.html"


def analyse(results: pd.DataFrame, cases: pd.DataFrame | None, info, n_boot: int, seed: int) -> Analysis:
    """Sensitivity, memorisation verdicts, correlations with Dice and the ranking."""
    if n_boot < 100:
        raise ValueError(f"n_boot={n_boot}: use at least 100 bootstrap resamples for a 95 % interval")
    has_rows = not ok_rows(results).empty
    sens = sensitivity(results, cases, seed) if has_rows else pd.DataFrame()
    corr = correlations(results, n_boot, seed) if has_rows else pd.DataFrame(columns=["target"])
    target = primary_target(corr)
    return Analysis(
        results=results, info=info, sensitivity=sens, correlations=corr,
        memorisation=memorisation_table(sens) if has_rows else pd.DataFrame(),
        ranking=rank_metrics(corr, target) if target else pd.DataFrame(),
        target=target, figures={}, n_boot=n_boot, seed=seed,
    )


def primary_target(correlation_table: pd.DataFrame) -> str | None:
    """The Dice quantity the ranking uses: robustness whole-tumour Dice when stored, else the first."""
    targets = sorted(set(correlation_table["target"]))
    for preferred in PREFERRED_TARGETS:
        if preferred in targets:
            return preferred
    return targets[0] if targets else None


def draw_figures(a: Analysis, output_dir: Path) -> dict[str, str]:
    """Draw every figure the stored data allow; returns name -> path relative to output_dir."""
    folder = output_dir / "figures"
    drawn: dict[str, Path] = {}
    if not ok_rows(a.results).empty:
        drawn["severity"] = figures.severity_curves(a.results, a.info, folder / "severity_curves.png")
    if a.target is not None:
        safe = a.target.replace("/", "_")
        drawn["scatter"] = figures.dice_scatter(a.results, a.correlations, a.target, a.info,
                                                folder / f"metric_vs_{safe}.png")
        drawn["heatmap"] = figures.correlation_heatmap(a.correlations, a.target, a.info, a.results,
                                                       folder / f"correlation_heatmap_{safe}.png")
    examples_path = output_dir / "examples.npz"
    if examples_path.is_file():
        drawn["examples"] = figures.example_grid(read_examples(examples_path), a.info, a.results,
                                                 folder / "examples.png")
    return {name: path.relative_to(output_dir).as_posix() for name, path in drawn.items()}
