"""The columns of the stored results, and loading them back for analysis.

The writer (`benchmark.study.store`) imports these names so that the table it writes and the table the
report reads are defined once. `results` holds one row per (stage, perturbation, severity, seed,
quantity); `cases` holds the per-item values behind a row (per-subject Dice, per-pair SSIM, bootstrap
replicates of a distribution metric), used to estimate a metric's own sampling noise.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.errors import DataError

RESULT_COLUMNS: tuple[str, ...] = (
    "stage",  # metrics | dice_robustness | dice_utility | ... (the unit of work that produced the row)
    "perturbation",  # perturbation name (config key)
    "family",  # noise | artifact | shift | morphological | memorisation
    "severity",  # 0 (clean baseline, identity) .. 5
    "seed",  # seed of the cell (perturbation draw, sampling, training)
    "quantity",  # metric name, or protocol/{dice,hd95,cldice,components}_REGION; empty for a failed cell
    "value",  # the number (NaN only when status is failed)
    "kind",  # reference | no_reference | distribution | memorisation | diversity | dice | hd95 | components
    "higher_is_better",  # bool: the direction in which the quantity says "better"
    "feature_extractor",  # feature network of a distribution metric, empty when none
    "n_reference",  # number of reference items the quantity was computed on
    "n_candidate",  # number of candidate (perturbed) items
    "config_hash",  # hash of everything that influences the cell
    "elapsed_s",  # wall time of the whole cell in seconds
    "status",  # ok | failed
    "error",  # error message of a failed cell, empty otherwise
)

CASE_COLUMNS: tuple[str, ...] = (
    "stage",
    "perturbation",
    "severity",
    "seed",
    "quantity",
    "case_id",  # subject id, item index or replicate number
    "case_kind",  # item (the row's value is the mean of these) | replicate (a recomputation on a resample)
    "value",
    "config_hash",
    "source",  # the dataset a subject's case comes from (data.sources name, or data.source); empty otherwise
)

DICE_KINDS: frozenset[str] = frozenset({"dice", "hd95", "components"})
GENERATED_FAMILY = "generated"  # a generative model's outputs scored like a perturbation at severity 1


def load_results(output_dir: Path) -> pd.DataFrame:
    """Read `results.parquet` (or `results.csv`) under `output_dir`, checking the columns."""
    parquet, csv = output_dir / "results.parquet", output_dir / "results.csv"
    if parquet.is_file():
        table = pd.read_parquet(parquet)
    elif csv.is_file():
        table = pd.read_csv(csv, keep_default_na=False, na_values=["", "NaN", "nan"])
    else:
        raise DataError(
            f"No stored results in {output_dir}: expected results.parquet or results.csv, written by the "
            f"sweep as each cell finishes. Run the study first (python -m benchmark output_dir={output_dir}) or "
            f"point output_dir at the folder of a finished or interrupted run."
        )
    return normalise_results(table, source=parquet if parquet.is_file() else csv)


def normalise_results(table: pd.DataFrame, source: Path | str = "results") -> pd.DataFrame:
    """Check the columns and fix the dtypes of a results table (missing text fields become '')."""
    missing = [c for c in RESULT_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{source} lacks the columns {missing}; expected {list(RESULT_COLUMNS)}.")
    table = table.copy()
    for column in ("stage", "perturbation", "family", "quantity", "kind", "feature_extractor", "status", "error"):
        table[column] = table[column].fillna("").astype(str)
    table["severity"] = table["severity"].astype(int)
    table["seed"] = table["seed"].astype(int)
    table["value"] = pd.to_numeric(table["value"], errors="coerce").astype(float)
    table["higher_is_better"] = table["higher_is_better"].map(_as_bool).astype("boolean")
    finished = table["status"] == "ok"
    unknown = finished & (table["higher_is_better"].isna() | (table["quantity"] == ""))
    if unknown.any():
        example = table.loc[unknown].iloc[0]
        raise DataError(
            f"{source}: {int(unknown.sum())} finished rows lack a quantity name or higher_is_better (e.g. "
            f"{example['stage']} {example['perturbation']} severity {example['severity']}); the analysis needs "
            f"both to orient every metric."
        )
    return table


def load_cases(output_dir: Path) -> pd.DataFrame | None:
    """Read `cases.parquet` under `output_dir` when the sweep stored per-item values, else None."""
    path = output_dir / "cases.parquet"
    if not path.is_file():
        return None
    cases = pd.read_parquet(path)
    if "source" not in cases.columns:  # a study written before cases named their source
        cases["source"] = ""
    missing = [c for c in CASE_COLUMNS if c not in cases.columns]
    if missing:
        raise DataError(f"{path} lacks the columns {missing}; expected {list(CASE_COLUMNS)}.")
    return cases


def _as_bool(value: object) -> bool | None:
    if isinstance(value, str):
        text = value.strip().lower()
        return {"true": True, "false": False, "1": True, "0": False}.get(text)
    if value is None or (isinstance(value, float) and value != value):
        return None
    return bool(value)
