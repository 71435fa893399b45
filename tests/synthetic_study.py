"""A synthetic results table with known behaviour, shared by the analysis and report tests.

Five perturbations (one per family), severities 0-5, several seeds. Built so that the answers are known:
`psnr` falls with noise, blur and morphological edits, a little with shift, and tracks Dice best;
`fid` rises with noise, blur and shift but falls (rewards copies) under memorisation; `copy_rate` rises
only under memorisation (flags copies);
`flat_metric` never moves; `robustness/dice_WT` falls with noise, blur and morphological edits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PERTURBATIONS = {
    "gaussian_noise": "noise",
    "blur": "artifact",
    "intensity_shift": "shift",
    "tumour_shrink": "morphological",
    "replace_with_train": "memorisation",
}
# (metric, kind, higher_is_better, feature extractor)
QUANTITIES = [
    ("psnr", "reference", True, ""),
    ("fid", "distribution", False, "inception"),
    ("copy_rate", "memorisation", False, "inception"),
    ("flat_metric", "no_reference", True, ""),
    ("robustness/dice_WT", "dice", True, ""),
]


def result_row(perturbation: str, family: str, severity: int, seed: int, quantity: str, value: float, kind: str,
               higher_is_better: bool) -> dict[str, object]:
    """One finished row of the results table (the columns of `benchmark.study.schema.RESULT_COLUMNS`), for tables
    built by hand in the tests."""
    return {"stage": "metrics", "perturbation": perturbation, "family": family, "severity": severity, "seed": seed,
            "quantity": quantity, "value": value, "kind": kind, "higher_is_better": higher_is_better,
            "feature_extractor": "", "n_reference": 4, "n_candidate": 4, "config_hash": "0" * 16,
            "elapsed_s": 0.1, "status": "ok", "error": ""}


def expected_value(quantity: str, perturbation: str, severity: int) -> float:
    """The noise-free value of a quantity for a perturbation at a severity."""
    family = PERTURBATIONS[perturbation]
    s = severity / 5
    if quantity == "psnr":
        return 40.0 - {"memorisation": 0.0, "shift": 3.0}.get(family, 15.0) * s
    if quantity == "fid":
        return 5.0 - 4.0 * s if family == "memorisation" else 5.0 + 20.0 * s
    if quantity == "copy_rate":
        return 0.02 + (0.5 * s if family == "memorisation" else 0.0)
    if quantity == "flat_metric":
        return 1.0
    return 0.85 - (0.0 if family in ("memorisation", "shift") else 0.4 * s)


def synthetic_results(seeds: tuple[int, ...] = (0, 1, 2), noise: float = 0.01, rng_seed: int = 0) -> pd.DataFrame:
    """The long results table, with a small seeded Gaussian jitter on every non-constant value."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for perturbation, family in PERTURBATIONS.items():
        for severity in range(6):
            for seed in seeds:
                for quantity, kind, hib, extractor in QUANTITIES:
                    value = expected_value(quantity, perturbation, severity)
                    if quantity != "flat_metric":
                        value += noise * abs(value) * rng.standard_normal()
                    stage = "dice_robustness" if kind == "dice" else "metrics"
                    rows.append({
                        "stage": stage, "perturbation": perturbation, "family": family, "severity": severity,
                        "seed": seed, "quantity": quantity, "value": value, "kind": kind, "higher_is_better": hib,
                        "feature_extractor": extractor, "n_reference": 40, "n_candidate": 40,
                        "config_hash": "0123456789abcdef", "elapsed_s": 0.5, "status": "ok", "error": "",
                    })
    return pd.DataFrame(rows)


def synthetic_cases(results: pd.DataFrame, n_items: int = 30, item_std: float = 0.5, rng_seed: int = 1) -> pd.DataFrame:
    """Per-item values behind each psnr row: n_items values with std item_std around the row's value."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for row in results[results["quantity"] == "psnr"].itertuples(index=False):
        for i, value in enumerate(row.value + item_std * rng.standard_normal(n_items)):
            rows.append({"stage": row.stage, "perturbation": row.perturbation, "severity": row.severity,
                         "seed": row.seed, "quantity": row.quantity, "case_id": str(i), "case_kind": "item",
                         "value": value, "config_hash": row.config_hash})
    return pd.DataFrame(rows)


def write_synthetic_resampling(output_dir, results: pd.DataFrame, n_test_subjects: int = 10, n_boot: int = 100,
                               rng_seed: int = 2) -> None:
    """floor.csv, resamples.parquet and resampling.json as the sweep writes them: every cell's value plus
    subject-bootstrap jitter (2 % of the value, shared by a resample's cells), a real-vs-real floor for the
    unpaired metrics (fid near 5, copy_rate near 0.02, flat_metric 1)."""
    import json
    from pathlib import Path

    rng = np.random.default_rng(rng_seed)
    output_dir = Path(output_dir)
    ok = results[results["status"] == "ok"]
    cells = ok.groupby(["stage", "perturbation", "severity", "seed", "quantity"], as_index=False)["value"].mean()
    frames = []
    for b in range(n_boot):
        shared = rng.standard_normal()
        jitter = 0.02 * (0.5 * shared + rng.standard_normal(len(cells)))
        frames.append(cells.assign(resample=b, value=cells["value"] * (1 + jitter)))
    pd.concat(frames, ignore_index=True).to_parquet(output_dir / "resamples.parquet", index=False)
    spreads = (("fid", 5.0, 0.5), ("copy_rate", 0.02, 0.005), ("flat_metric", 1, 0))
    floor = [{"seed": 0, "split": s, "n_subjects": n_test_subjects, "quantity": q,
              "value": v + sd * rng.standard_normal()} for s in range(30) for q, v, sd in spreads]
    pd.DataFrame(floor).to_csv(output_dir / "floor.csv", index=False)
    info = {"n_test_subjects": n_test_subjects, "n_held_out_subjects": n_test_subjects,
            "n_test_items": 6 * n_test_subjects, "n_boot": n_boot, "floor_splits": 30, "curve_repeats": 0, "seeds": [0]}
    (output_dir / "resampling.json").write_text(json.dumps(info))
