"""The report's cross-validation and site-shift sections, on constructed cv.json and site_shift.csv."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from reports.cohort import with_cohort_sections
from reports.document import Heading, Paragraph, Table


def test_sections_name_folds_pooling_and_the_metrics_beyond_the_site_floor(tmp_path: Path) -> None:
    (tmp_path / "cv.json").write_text(json.dumps({
        "folds": 2, "test_subjects": [["a1", "b1"], ["a2", "b2", "b3"]],
        "pooling": {"fid": ["union of all folds' test items"], "ssim": ["union of all folds' test items"],
                    "fid_train_gap": ["mean of the folds' values, weighted by test items"]}}))
    pd.DataFrame({"source_a": "A", "source_b": "B", "n_subjects": 2, "quantity": ["fid", "snr", "kid", "kid_std"],
                  "higher_is_better": [False, True, False, False], "shift": [180.0, 10.0, 0.02, 0.0],
                  "shift_std": 1.0, "floor": [140.0, 10.1, 0.019, 0.0], "floor_std": [5.0, 0.5, 0.004, 0.0],
                  "z": [8.0, 0.2, -2.5, None], "draws": 20}).to_csv(tmp_path / "site_shift.csv", index=False)
    blocks = with_cohort_sections([Heading("Scorecard"), Heading("Examples")], tmp_path)
    headings = [b.text for b in blocks if isinstance(b, Heading)]
    assert headings == ["Scorecard", "Cross-validation", "Site shift: one source against the other", "Examples"]
    text = " ".join(b.text for b in blocks if isinstance(b, Paragraph))
    assert "every one of the 5 subjects" in text
    assert "Beyond the floor (|z| ≥ 2): fid, kid. Within it: snr." in text  # |z| decides, largest first
    pooling = next(b for b in blocks if isinstance(b, Table) and "pooled" in b.caption).frame
    assert dict(zip(pooling["pooled as"], pooling["outputs"], strict=True))["union of all folds' test items"] == \
        "fid, ssim"
    site = next(b for b in blocks if isinstance(b, Table) and "Site shift" in b.caption).frame
    assert site["quantity"].tolist() == ["fid", "kid", "snr"]  # largest |z| first; no z, no row


def test_a_study_without_folds_or_sources_gets_no_section(tmp_path: Path) -> None:
    blocks = [Heading("Scorecard")]
    assert with_cohort_sections(blocks, tmp_path) == blocks
