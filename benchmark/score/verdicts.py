"""What a stored study says about each metric: the verdicts of its scorecard, with the study named.

Two file formats are read:
- a study's own `scorecard.csv` (written by the report stage; `reports.scorecard`), with the study named
  from the `study.json` beside it when there is one;
- the shipped format, `benchmark/score/scorecard.json`: {"format": FORMAT, "study": {...}, "rows": [...]},
  written by `python -m benchmark.score.ship_scorecard --from OUTPUT_DIR` from a finished study.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.errors import ConfigError
from reports.scorecard import QUESTIONS

FORMAT = "mribench-scorecard/1"
SHIPPED = Path(__file__).resolve().parent / "scorecard.json"
REQUIRED = ("metric", "a", "b", "c_robustness", "d")  # every scorecard answers these; vessel studies add clDice


@dataclass
class Verdicts:
    """Per metric {question key: verdict}, and the study they come from."""

    rows: dict[str, dict[str, str]]
    study: dict[str, str]
    path: str

    def note(self, metric: str) -> str:
        """"detects harmful localised edits: no; ..." for `metric` ("" when the study did not score it)."""
        row = self.rows.get(metric)
        if row is None:
            return ""
        return "; ".join(f"{text}: {row[key]}" for key, text in QUESTIONS.items() if key in row)

    def source(self) -> str:
        """One line naming the study: data, date, commit."""
        study = self.study
        return (f"{study.get('name', 'study')} (data: {study.get('data', '?')}; run {study.get('created', '?')}; "
                f"commit {study.get('commit', '?')})")


def _rows(frame: pd.DataFrame, path: Path) -> dict[str, dict[str, str]]:
    missing = [column for column in REQUIRED if column not in frame.columns]
    if missing:
        raise ConfigError(f"scorecard={path}: not a scorecard (columns {missing} are missing); pass a study's "
                          "scorecard.csv or a file written by `python -m benchmark.score.ship_scorecard`.")
    frame = frame.fillna("")
    return {str(row["metric"]): {column: str(row[column]) for column in frame.columns if column != "metric"}
            for _, row in frame.iterrows()}


def study_from_info(folder: Path) -> dict[str, str]:
    """The naming fields of a study's study.json (empty when absent or unreadable)."""
    try:
        info = json.loads((folder / "study.json").read_text())
    except (OSError, ValueError):
        return {}
    data = info.get("data") or {}
    n_subjects = data.get("n_subjects") or {}
    return {"name": str(info.get("title", "study")), "created": str(info.get("created", "?")),
            "data": f"{data.get('source', '?')} {data.get('description', '')}".strip()
                    + (", subjects " + ", ".join(f"{split} {n}" for split, n in n_subjects.items())
                       if n_subjects else ""),  # per split: under cross-validation the splits overlap
            "command": str(info.get("command", ""))}


def load_verdicts(path: str | Path | None) -> Verdicts:
    """The verdicts of `path` (None: the shipped file, or none when the installation lacks it); ConfigError
    for a missing file or another format."""
    if path is None and not SHIPPED.is_file():
        return Verdicts({}, {"name": "no study (this installation ships no scorecard.json; pass scorecard=PATH)"},
                        str(SHIPPED))
    path = SHIPPED if path is None else Path(str(path)).expanduser()
    if not path.is_file():
        raise ConfigError(f"scorecard={path}: no such file; pass a study's scorecard.csv (in its output_dir) or "
                          "leave scorecard unset for the shipped verdicts.")
    if path.suffix == ".json":
        try:
            content = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ConfigError(f"scorecard={path}: not readable JSON ({error}).") from error
        if not isinstance(content, dict) or content.get("format") != FORMAT:
            raise ConfigError(f"scorecard={path}: a JSON file of another format (expected \"format\": \"{FORMAT}\"); "
                              "write one with `python -m benchmark.score.ship_scorecard --from OUTPUT_DIR`.")
        return Verdicts(_rows(pd.DataFrame(content.get("rows") or []), path), content.get("study") or {}, str(path))
    if path.suffix != ".csv":
        raise ConfigError(f"scorecard={path}: a {path.suffix or 'suffix-less'} file; pass a study's scorecard.csv "
                          "or a shipped-format .json.")
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise ConfigError(f"scorecard={path}: not a readable CSV ({error}).") from error
    return Verdicts(_rows(frame, path), study_from_info(path.parent), str(path))
