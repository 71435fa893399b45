"""The report's Generators section: the generators trained inside the study (benchmark.generators), their
samples beside the real slices of the same masks, their training cost, and how well each metric agrees
with the utility Dice across them (Deo et al.'s generator analysis: which metric ranks generators the
way a segmenter trained on their outputs does).

Reads `generators/generators.json` and `generators/samples.npz` (written by the study) and the stored
results; recomputes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import kendalltau, spearmanr

from benchmark.study.files import StudyInfo
from benchmark.study.schema import DICE_KINDS, GENERATED_FAMILY
from reports.document import Block, Heading, Image, Paragraph, format_table, insert_before_examples
from reports.figures import DPI, _save, provenance
from reports.sensitivity import ok_rows

UTILITY = "utility/dice_WT"
ROBUSTNESS = "robustness/dice_WT"


def read_generators(output_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """generators.json and samples.npz under output_dir/generators, or empty when the study trained none."""
    folder = Path(output_dir) / "generators"
    if not (folder / "generators.json").is_file():
        return {}, {}
    summary = json.loads((folder / "generators.json").read_text())
    samples = {}
    if (folder / "samples.npz").is_file():
        with np.load(folder / "samples.npz") as stored:
            samples = {name: stored[name] for name in stored.files}
    return summary, samples


def generator_table(summary: dict, results: pd.DataFrame) -> pd.DataFrame:
    """One row per generated set: architecture, budget, training and sampling time, Dice (means over seeds)."""
    rows = ok_rows(results)
    means = rows[rows["family"] == GENERATED_FAMILY].groupby(["perturbation", "quantity"])["value"].mean()
    table = []
    for name, entry in summary.items():
        for set_name in entry.get("sets", []):
            budget = int(set_name.rsplit("_", 1)[1])
            seconds = [run["training_seconds"].get(str(budget)) for run in entry["runs"].values()]
            seconds = [s for s in seconds if s is not None]
            table.append({"set": set_name, "generator": name, "architecture": entry["architecture"],
                          "budget_steps": budget, "training_s": float(np.mean(seconds)) if seconds else np.nan,
                          "sampling_s_per_item": entry.get("sampling_seconds_per_item", {}).get(set_name),
                          "utility Dice WT": means.get((set_name, UTILITY), np.nan),
                          "robustness Dice WT": means.get((set_name, ROBUSTNESS), np.nan)})
    return pd.DataFrame(table)


def agreement_with_utility(results: pd.DataFrame) -> pd.DataFrame:
    """Per metric, across generated sets (means over seeds): Spearman ρ and Kendall τ with utility Dice WT,
    oriented so that + means the metric calls 'better' the generators whose outputs train better segmenters."""
    rows = ok_rows(results)
    rows = rows[(rows["family"] == GENERATED_FAMILY) & np.isfinite(rows["value"])]
    wide = rows.groupby(["perturbation", "quantity"])["value"].mean().unstack("quantity")
    if UTILITY not in wide or wide[UTILITY].notna().sum() < 3:
        return pd.DataFrame(columns=["quantity", "agreement_spearman", "agreement_kendall", "n_generators"])
    direction = rows.groupby("quantity")["higher_is_better"].first()
    kinds = rows.groupby("quantity")["kind"].first()
    out = []
    for quantity in [q for q in wide.columns if kinds[q] not in DICE_KINDS]:
        pair = wide[[quantity, UTILITY]].dropna()
        if len(pair) < 3 or pair[quantity].nunique() < 2 or pair[UTILITY].nunique() < 2:
            continue
        sign = 1.0 if direction[quantity] else -1.0
        out.append({"quantity": quantity, "agreement_spearman": sign * spearmanr(pair[quantity], pair[UTILITY])[0],
                    "agreement_kendall": sign * kendalltau(pair[quantity], pair[UTILITY])[0],
                    "n_generators": len(pair)})
    if not out:
        return pd.DataFrame(columns=["quantity", "agreement_spearman", "agreement_kendall", "n_generators"])
    return pd.DataFrame(out).sort_values("agreement_spearman", ascending=False, ignore_index=True)


def unranked_metrics(results: pd.DataFrame) -> dict[str, str]:
    """Metrics of the generated sets that `agreement_with_utility` cannot rank, with the reason: the same value
    for every set (e.g. copy rate 0 when nothing is copied) or a value on fewer than three sets."""
    rows = results[(results["family"] == GENERATED_FAMILY) & (results["quantity"] != "")
                   & ~results["kind"].isin(DICE_KINDS)]
    rows = rows.assign(value=rows["value"].where(rows["status"] == "ok"))  # a failed row counts as undefined
    out = {}
    for quantity, group in rows.groupby("quantity"):
        values = group.groupby("perturbation")["value"].mean()
        finite = values[np.isfinite(values)]
        if len(finite) < 3:
            out[str(quantity)] = f"defined on {len(finite)} of {len(values)} sets"
        elif finite.nunique() < 2:
            out[str(quantity)] = f"{finite.iloc[0]:.3g} for every set"
    return out


def sample_grid(samples: dict[str, np.ndarray], table: pd.DataFrame, info: StudyInfo, results: pd.DataFrame,
                path: Path) -> Path:
    """Rows: the real test slices, then each generated set on the same masks; tumour outline in yellow."""
    sets = [s for s in table["set"] if s in samples] if not table.empty else []
    names = ["real", *sets]
    labels, n = samples["labels"], samples["real"].shape[0]
    fig = Figure(figsize=(1.5 * n + 1.8, 1.5 * len(names) + 1.4), dpi=DPI)
    axes = fig.subplots(len(names), n, squeeze=False)
    utility = dict(zip(table["set"], table["utility Dice WT"], strict=True)) if sets else {}
    for i, name in enumerate(names):
        for j in range(n):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.imshow(samples[name][j], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if (labels[j] > 0).any():
                ax.contour(labels[j] > 0, levels=[0.5], colors="yellow", linewidths=0.6)
        dice = utility.get(name)
        caption = name if dice is None or not np.isfinite(dice) else f"{name}\nutility WT {dice:.2f}"
        axes[i, 0].set_ylabel(caption, fontsize=8)
    fig.suptitle("Generated slices beside the real test slices of the same masks (tumour outline in yellow)",
                 fontsize=10)
    return _save(fig, path, provenance(info, ok_rows(results)), bottom_inches=0.2, hspace=0.06, wspace=0.04)


def generators_section(output_dir: Path, results: pd.DataFrame, info: StudyInfo) -> list[Block]:
    """The Generators section, or nothing when the study trained no generator."""
    summary, samples = read_generators(output_dir)
    if not summary:
        return []
    table = generator_table(summary, results)
    blocks: list[Block] = [
        Heading("Generators"),
        Paragraph("Mask-conditioned generators trained inside the study on the training split (MONAI networks; "
                  "conf/generator/*.yaml), each kept at several training budgets. Conditioned on the test masks, "
                  "their outputs are scored by every metric against the real test set (reference metrics pair each "
                  "synthetic slice with the real slice of the same masks) and by the clean segmenter (robustness "
                  "Dice); conditioned on the training masks they form the synthetic training set of the utility "
                  "Dice (train on synthetic, test on real). Training time is wall time on the study's device."),
        format_table(table, "Generated sets"),
    ]
    if samples and not table.empty:
        path = sample_grid(samples, table, info, results, Path(output_dir) / "figures" / "generator_samples.png")
        blocks.append(Image(path.relative_to(output_dir).as_posix(),
                            "Each generator on the masks of the real slices in the top row."))
    agreement = agreement_with_utility(results)
    if agreement.empty:
        blocks.append(Paragraph("Fewer than three generated sets have a utility Dice: no agreement is computed."))
    else:
        n_sets = int(agreement["n_generators"].max())
        blocks += [Paragraph(f"Agreement of each metric with {UTILITY} across the {n_sets} "
                             "generated sets (means over seeds), signed so that + means the metric ranks "
                             "generators as the downstream segmenter does. With this few generators one swapped "
                             "pair moves ρ a lot: read it as a ranking check, not a precise estimate."),
                   format_table(agreement, "Agreement with utility Dice across generators")]
        unranked = unranked_metrics(results)
        if unranked:
            blocks.append(Paragraph("Not ranked (no spread across the generated sets): "
                                    + "; ".join(f"{q} ({why})" for q, why in unranked.items()) + "."))
    failures = [f"{name} seed {seed}, budget {budget}: {reason}" for name, entry in summary.items()
                for seed, run in entry["runs"].items() for budget, reason in run.get("failures", {}).items()]
    if failures:
        blocks.append(Paragraph("Training that diverged (recorded as failed cells): " + "; ".join(failures)))
    return blocks


def with_generators_section(blocks: list[Block], output_dir: Path, results: pd.DataFrame,
                            info: StudyInfo) -> list[Block]:
    """`blocks` with the Generators section inserted before the Examples / Failed cells headings."""
    section = generators_section(output_dir, results, info)
    return insert_before_examples(blocks, section)
