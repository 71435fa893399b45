"""The results store: one small file per finished cell, so a sweep can stop anywhere and resume.

A *cell* is one unit of work, named by a `CellKey` (stage, perturbation, severity, seed), together with
the hash of everything that influences it. `write_cell` writes the cell's rows to its own JSON file
through a temporary file and `os.replace`, which is atomic on POSIX and Windows: a reader sees the old
file or the new one, never half of one, and a writer killed mid-way leaves only a `.part` file that no
reader counts. Several processes (Hydra multirun jobs, SLURM array tasks) can therefore write into the
same store at once without a lock, as long as two of them never compute the same cell at the same time
(and if they do, the last complete file wins).

Each cell carries a SHA-256 checksum of its content: a cell whose checksum does not match (edited by hand,
damaged) counts as absent, with a warning, so it is recomputed and never enters the results. Each cell also
records the scope of the study that wrote it (`benchmark.study.scope`); once a study declares its scope
(`declare`), cells of other data or another configuration stay on disk but are left out of `cells()`,
`table()`, `cases()` and the exported tables, and `left_out` counts them by reason.

`done(key, config_hash)` says whether a cell is finished under that configuration: a changed hash means
the cell is recomputed, other cells are kept. `table()` and `cases()` consolidate the study's cells;
`export(output_dir)` writes `results.csv`, `results.parquet` and `cases.parquet` atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.atomic import replace_atomically, write_bytes_atomically, write_text_atomically
from benchmark.errors import DataError
from benchmark.study.schema import CASE_COLUMNS, RESULT_COLUMNS
from benchmark.study.scope import StudyScope

CELL_FORMAT = 2  # format 2 adds the checksum and the study scope
READABLE_FORMATS = (1, 2)  # a format-1 cell has no checksum: it counts as absent and is recomputed
SCOPE_FILE = "scope.json"
log = logging.getLogger("benchmark.study")
ROW_FIELDS_FROM_CALLER = ("quantity", "value", "kind", "higher_is_better")
ROW_DEFAULTS: dict[str, Any] = {"family": "", "feature_extractor": "", "n_reference": 0, "n_candidate": 0}


@dataclass(frozen=True, order=True)
class CellKey:
    """Names one unit of work: a stage (metrics, dice_robustness, ...) on one perturbed set."""

    stage: str
    perturbation: str
    severity: int
    seed: int

    def file_name(self) -> str:
        """A readable, collision-free file name (the digest covers characters the sanitising drops)."""
        readable = f"{self.stage}-{self.perturbation}-sev{self.severity}-seed{self.seed}"
        readable = re.sub(r"[^A-Za-z0-9_.=-]+", "_", readable)[:120]
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        return f"{readable}-{digest}.json"


class ResultsStore:
    """Finished cells under `root/cells/`, each its own JSON file; see the module docstring."""

    def __init__(self, root: Path, export_dir: Path | None = None, scope: StudyScope | None = None) -> None:
        """`root`: folder of the store (created); `export_dir`: when given, every `write_cell` re-exports
        `results.csv`, `results.parquet` and `cases.parquet` there, so the tables on disk always hold
        every cell finished so far; `scope`: the study's scope, stamped on written cells and used to keep
        only its cells (default: the scope last declared in this store, if any)."""
        self.root = Path(root)
        self.cells_dir = self.root / "cells"
        try:
            self.cells_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataError(f"cannot create the results store {self.cells_dir} ({error.strerror or error}); "
                            "choose a writable output_dir.") from error
        self.export_dir = None if export_dir is None else Path(export_dir)
        self.scope = scope if scope is not None else self._declared_scope()
        self.left_out: dict[str, int] = {}  # reason -> number of cells on disk left out by the last cells()
        self._parsed: dict[str, tuple[tuple[int, int, int], dict[str, Any] | None]] = {}  # name -> (stamp, cell)
        self._warned: set[str] = set()

    def declare(self, scope: StudyScope) -> None:
        """Record `scope` as the current study's: later readers of this store (the report) keep its cells."""
        self.scope = scope
        path = self.root / SCOPE_FILE
        try:
            write_text_atomically(path, json.dumps(scope.as_json(), sort_keys=True))
        except OSError as error:
            raise DataError(f"cannot write {path} ({error.strerror or error}); make {self.root} writable and run "
                            "again.") from error

    def _declared_scope(self) -> StudyScope | None:
        path = self.root / SCOPE_FILE
        if not path.is_file():
            return None
        try:
            return StudyScope.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f"{path} is unreadable ({error}); delete it and rerun the study (python -m benchmark "
                            "with the same settings), which writes it again without recomputing finished cells."
                            ) from error

    def path(self, key: CellKey) -> Path:
        return self.cells_dir / key.file_name()

    def read_cell(self, key: CellKey) -> dict[str, Any] | None:
        """The stored cell (key, config_hash, status, error, rows, cases), or None if absent or if its
        checksum does not match its content (a warning says so)."""
        path = self.path(key)
        return self._verified(path.name, _read_json(path))

    def done(self, key: CellKey, config_hash: str, retry_failed: bool = True) -> bool:
        """Whether `key` is finished under `config_hash`; a failed cell counts as done only when
        `retry_failed` is False (by default a resumed sweep gives failed cells another try)."""
        cell = self.read_cell(key)
        if cell is None or cell.get("config_hash") != config_hash:
            return False
        return cell.get("status") == "ok" or not retry_failed

    def write_cell(
        self,
        key: CellKey,
        config_hash: str,
        rows: Iterable[Mapping[str, Any]],
        status: str = "ok",
        error: str | None = None,
        elapsed_s: float = 0.0,
        cases: Iterable[Mapping[str, Any]] = (),
        family: str = "",
    ) -> Path:
        """Write a finished cell atomically and return its path.

        `rows`: dicts with at least quantity, value, kind, higher_is_better, and optionally family,
        feature_extractor, n_reference, n_candidate, status, error (a row may fail on its own). The key,
        config hash and elapsed time are filled in here. A failed cell with no rows gets one row with an
        empty quantity carrying the error. `cases`: dicts with quantity, case_id, value and optionally
        case_kind ("item" by default, or "replicate"). `family`: the perturbation's family, used for rows
        that do not name one (and for the placeholder row of a failed cell).
        """
        if status not in ("ok", "failed"):
            raise ValueError(f"status must be 'ok' or 'failed', got {status!r}")
        if status == "failed" and not error:
            raise ValueError(f"cell {key} is marked failed without an error message")
        rows = [{"family": family, **row} for row in rows]
        full_rows = [self._complete_row(key, config_hash, row, status, error, elapsed_s) for row in rows]
        if status == "failed" and not full_rows:
            placeholder = {"quantity": "", "value": math.nan, "kind": "", "higher_is_better": None, "family": family}
            full_rows.append(self._complete_row(key, config_hash, placeholder, status, error, elapsed_s))
        full_cases = [self._complete_case(key, config_hash, case) for case in cases]
        cell = {
            "format": CELL_FORMAT,
            "key": asdict(key),
            "config_hash": config_hash,
            "status": status,
            "error": error or "",
            "elapsed_s": float(elapsed_s),
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "rows": full_rows,
            "cases": full_cases,
            "scope": self.scope.stamp(key.stage) if self.scope is not None else None,
        }
        cell = json.loads(json.dumps(cell, allow_nan=True, default=_json_default))  # as a reader will see it
        cell["checksum"] = cell_checksum(cell)
        path = self.path(key)
        try:
            write_bytes_atomically(path, json.dumps(cell, allow_nan=True).encode(), fsync=True)
        except OSError as error:
            raise DataError(
                f"cannot write the results store file {path} ({error.strerror or error}); make {self.cells_dir} "
                "writable (or free disk space) and run again: finished cells are kept and the study resumes."
            ) from error
        if self.export_dir is not None:
            self.export(self.export_dir)
        return path

    def cells(self) -> list[dict[str, Any]]:
        """Every complete cell of the current study (temporary `.part` files of unfinished writes, cells whose
        checksum does not match and cells outside the declared scope are left out; see `left_out`).

        Files are parsed again only when their modification time or size changed since the last call,
        so re-exporting after every cell stays cheap in a long sweep.
        """
        cells, seen, left_out = [], {}, {}
        for entry in sorted(os.scandir(self.cells_dir), key=lambda e: e.name):
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            stat = entry.stat()
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            cached = self._parsed.get(entry.name)
            if cached is not None and cached[0] == stamp:
                cell = cached[1]
            else:
                cell = self._verified(entry.name, _read_json(Path(entry.path)))
            seen[entry.name] = (stamp, cell)
            reason = "checksum mismatch" if cell is None else (
                None if self.scope is None else self.scope.reason_left_out(entry.name, cell))
            if reason is None and cell is not None:
                cells.append(cell)
            elif reason is not None:
                left_out[reason] = left_out.get(reason, 0) + 1
        self._parsed, self.left_out = seen, left_out
        return cells

    def left_out_line(self) -> str:
        """One sentence on the stored cells left out of the results, empty when none."""
        if not self.left_out:
            return ""
        parts = ", ".join(f"{count} of {reason}" if reason != "checksum mismatch" else f"{count} with a {reason}"
                          for reason, count in sorted(self.left_out.items()))
        total = sum(self.left_out.values())
        return (f"{total} stored cell(s) in {self.cells_dir} are left out of the results ({parts}); they stay on "
                "disk, and a cell of this study among them is recomputed by the next run.")

    def _verified(self, name: str, cell: dict[str, Any] | None) -> dict[str, Any] | None:
        """`cell` when its checksum matches its content, else None with a warning (once per file)."""
        if cell is None:
            return None
        stored = cell.get("checksum")
        if stored is not None and stored == cell_checksum(cell):
            return cell
        if name not in self._warned:
            self._warned.add(name)
            why = "carries no checksum" if stored is None else "does not match its checksum (edited or damaged)"
            log.warning("results store file %s %s: it is not used and the cell is recomputed by the next run",
                        self.cells_dir / name, why)
        return None

    def table(self) -> pd.DataFrame:
        """All rows of all cells, in RESULT_COLUMNS order, sorted by stage, perturbation, severity, seed."""
        rows = [row for cell in self.cells() for row in cell["rows"]]
        table = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
        table["value"] = table["value"].astype(float)
        return table.sort_values(["stage", "perturbation", "severity", "seed", "quantity"], ignore_index=True)

    def cases(self) -> pd.DataFrame:
        """All per-item values of all cells, in CASE_COLUMNS order."""
        rows = [case for cell in self.cells() for case in cell.get("cases", [])]
        cases = pd.DataFrame(rows, columns=list(CASE_COLUMNS))
        cases["case_id"] = cases["case_id"].astype(str)
        cases["value"] = cases["value"].astype(float)
        cases["source"] = cases["source"].fillna("").astype(str)  # cells written before sources were recorded
        return cases

    def failed(self) -> pd.DataFrame:
        """One row per failed cell or failed row: key, quantity and error."""
        table = self.table()
        failed = table[table["status"] != "ok"]
        return failed[["stage", "perturbation", "severity", "seed", "quantity", "error"]].reset_index(drop=True)

    def export(self, output_dir: Path) -> None:
        """Write results.csv, results.parquet and cases.parquet under `output_dir`, each atomically."""
        output_dir = Path(output_dir)
        table, cases = self.table(), self.cases()
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
            _atomic_write_frame(table, output_dir / "results.csv")
            _atomic_write_frame(table, output_dir / "results.parquet")
            _atomic_write_frame(cases, output_dir / "cases.parquet")
        except OSError as error:
            raise DataError(f"cannot write the result tables in {output_dir} ({error.strerror or error}); make it "
                            "writable and run again: finished cells are kept in the store.") from error

    @staticmethod
    def _complete_row(
        key: CellKey, config_hash: str, row: Mapping[str, Any], status: str, error: str | None, elapsed_s: float
    ) -> dict[str, Any]:
        missing = [name for name in ROW_FIELDS_FROM_CALLER if name not in row]
        if missing:
            raise ValueError(f"row {dict(row)} of cell {key} lacks {missing}")
        unknown = set(row) - set(RESULT_COLUMNS)
        if unknown:
            raise ValueError(f"row of cell {key} has unknown columns {sorted(unknown)}; known: {RESULT_COLUMNS}")
        full = {**ROW_DEFAULTS, "status": status, "error": error or "", **row, **asdict(key)}
        full.update(config_hash=config_hash, elapsed_s=float(elapsed_s))
        full["value"] = float(full["value"]) if full["value"] is not None else math.nan
        if full["status"] == "ok" and math.isnan(full["value"]):
            raise ValueError(f"{full['quantity']} of cell {key} is NaN but marked ok; mark it failed with an error")
        return {name: full[name] for name in RESULT_COLUMNS}

    @staticmethod
    def _complete_case(key: CellKey, config_hash: str, case: Mapping[str, Any]) -> dict[str, Any]:
        missing = [name for name in ("quantity", "case_id", "value") if name not in case]
        if missing:
            raise ValueError(f"case {dict(case)} of cell {key} lacks {missing}")
        full = {"case_kind": "item", "source": "", **case, **asdict(key), "config_hash": config_hash}
        if full["case_kind"] not in ("item", "replicate"):
            raise ValueError(f"case_kind must be 'item' or 'replicate', got {full['case_kind']!r}")
        full["case_id"], full["value"] = str(full["case_id"]), float(full["value"])
        return {name: full[name] for name in CASE_COLUMNS}


def _json_default(value: Any) -> Any:
    """Numpy scalars and other number-likes as plain Python values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


CELL_FIELDS = ("format", "key", "config_hash", "status", "rows")


def cell_checksum(cell: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a cell's content, every field but the checksum itself, in canonical JSON."""
    content = {name: value for name, value in cell.items() if name != "checksum"}
    text = json.dumps(content, sort_keys=True, allow_nan=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _read_json(path: Path) -> dict[str, Any] | None:
    """A stored cell, None when the file is absent; anything else that is not a cell is a DataError."""
    fix = ("cells are written atomically, so it was edited, copied incompletely or written by another tool: "
           "delete it and that cell is recomputed on the next run.")
    try:
        cell = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as error:
        raise DataError(f"The results store file {path} is not UTF-8 text ({error.reason}); {fix}") from error
    except json.JSONDecodeError as error:
        raise DataError(f"The results store file {path} is not valid JSON ({error}); {fix}") from error
    except OSError as error:
        raise DataError(f"The results store file {path} cannot be read ({error.strerror}); check its "
                        "permissions.") from error
    missing = [name for name in CELL_FIELDS if name not in cell] if isinstance(cell, dict) else list(CELL_FIELDS)
    if missing or cell.get("format") not in READABLE_FORMATS or not isinstance(cell.get("rows"), list):
        what = f"a JSON {type(cell).__name__}" if not isinstance(cell, dict) else (
            f"missing {missing}" if missing else f"format {cell.get('format')!r}, expected {CELL_FORMAT}")
        raise DataError(f"The results store file {path} is not a cell of this tool ({what}); {fix}")
    return cell


def _atomic_write_frame(frame: pd.DataFrame, path: Path) -> None:
    """A DataFrame as CSV or Parquet (by suffix), written atomically."""
    if path.suffix == ".csv":
        replace_atomically(path, lambda tmp: frame.to_csv(tmp, index=False))
    else:
        replace_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))
