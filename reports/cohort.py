"""The report's cross-validation and site-shift sections, shown for a cross-validated (cohort) study.

- Cross-validation (`cv.json`): the folds, their test subjects, and how each output was pooled over them.
- Site shift (`site_shift.csv`, two sources or more): clean images of one source against the other, each
  metric's shift in units of its within-source floor (z); positive z = the other source "looks worse".
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from reports.document import Block, Bullets, Heading, Paragraph, format_table, insert_before_examples

SITE_Z = 2.0  # |z| at which a metric separates the two sources beyond its within-source floor


def cross_validation_section(output_dir: Path) -> list[Block]:
    """Folds, test subjects per fold and the pooling of each output; none without cv.json."""
    path = Path(output_dir) / "cv.json"
    if not path.is_file():
        return []
    cv = json.loads(path.read_text())
    subjects = cv.get("test_subjects", [])
    pooling = pd.DataFrame([{"pooled as": "; ".join(methods), "outputs": name}
                            for name, methods in cv.get("pooling", {}).items()])
    table = (pooling.groupby("pooled as")["outputs"].apply(lambda names: ", ".join(sorted(names))).reset_index()
             if not pooling.empty else pooling)
    every = [s for fold in subjects for s in fold]
    return [
        Heading("Cross-validation"),
        Paragraph(f"{cv.get('folds', len(subjects))} folds, stratified by source: every one of the {len(set(every))} "
                  "subjects is a test subject exactly once, scored by segmenters that never saw it. Dice comes "
                  "from each subject's own fold; metrics are pooled over the folds as the table says, and the "
                  "noise floor and subject bootstrap draw from all subjects."),
        Bullets([f"fold {f}: {len(fold)} test subjects ({', '.join(fold)})" for f, fold in enumerate(subjects)]),
        format_table(table, "How each output is pooled over the folds (cv.json)"),
    ]


def site_shift_section(output_dir: Path) -> list[Block]:
    """The site-shift table, largest |z| first, and which metrics separate the sources; none without it."""
    path = Path(output_dir) / "site_shift.csv"
    if not path.is_file():
        return []
    frame = pd.read_csv(path)
    frame = frame[frame["z"].notna()]  # an output without spread between draws (e.g. kid_std) has no z
    if frame.empty:
        return []
    frame = frame.assign(order=frame["z"].abs()).sort_values("order", ascending=False, na_position="last")
    blocks: list[Block] = [Heading("Site shift: one source against the other")]
    for (a, b), rows in frame.groupby(["source_a", "source_b"], sort=False):
        beyond = rows[rows["z"].abs() >= SITE_Z]["quantity"].tolist()
        within = rows[rows["z"].abs() < SITE_Z]["quantity"].tolist()
        n = int(rows["n_subjects"].iloc[0])
        blocks.append(Paragraph(
            f"Clean images of {a} against clean images of {b} ({n} subjects each, {int(rows['draws'].iloc[0])} "
            f"draws): a shift nobody simulated (other scanners, other preprocessing), measured in each metric's "
            f"within-{b} floor at the same sample size. Beyond the floor (|z| ≥ {SITE_Z:g}): "
            f"{', '.join(beyond) or 'none'}. Within it: {', '.join(within) or 'none'}."))
        shown = rows[["quantity", "shift", "floor", "floor_std", "z"]].rename(
            columns={"floor_std": "floor sd", "z": "z (worse > 0)"})
        blocks.append(format_table(shown, f"Site shift {a} vs {b}: the metric between the sources, its "
                                          "within-source floor, and z"))
    return blocks


def with_cohort_sections(blocks: list[Block], output_dir: Path) -> list[Block]:
    """`blocks` with the cross-validation and site-shift sections before the Examples / Failed cells headings."""
    section = [*cross_validation_section(output_dir), *site_shift_section(output_dir)]
    return insert_before_examples(blocks, section)
