"""The real-cohort study end to end: wall time, peak memory and what the scorecard decides.

    python -m benchmark.lab.speed.cohort --root ../shared/data --out runs/cohort [--json cohort.json]
        [--phantom runs/quick] [overrides...]

Runs `python -m benchmark experiment=cohort data.root=<root> output_dir=<out>` under GNU time (`/usr/bin/time
-v`: wall clock and the peak resident set size of the largest process of the tree), then reads the study's
tables: the number of failed rows, the test subjects per fold, the scorecard's verdicts per question and the
site-shift cell. With `--phantom` (the output folder of a phantom study, e.g. `experiment=quick`) it writes
`replication.csv` beside the cohort's tables: per metric and question the phantom's verdict, the patients'
verdict and whether they agree, disagree or cannot be compared (either undecided). Extra arguments are passed
to the study as Hydra overrides.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[3]  # the checkout root: python -m benchmark runs its code
QUESTIONS = ("a", "b", "c_robustness", "c_utility", "d")


def run_study(root: Path, out: Path, overrides: list[str]) -> dict[str, Any]:
    """Run the cohort study under /usr/bin/time -v; wall seconds, peak RSS in GiB and the exit status."""
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "benchmark", "experiment=cohort", f"data.root={root}",
               f"output_dir={out}", *overrides]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    (Path(out) / "time-v.txt").parent.mkdir(parents=True, exist_ok=True)
    (Path(out) / "time-v.txt").write_text(result.stderr[-20000:])
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", result.stderr)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    seconds = None
    if wall:
        hours, minutes, secs = wall.groups()
        seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
    return {"returncode": result.returncode, "wall_s": seconds,
            "peak_rss_gib": int(peak.group(1)) / 2**20 if peak else None}


def summarise(out: Path) -> dict[str, Any]:
    """Failed rows, folds, scorecard verdict counts and the site-shift z per metric of a finished study."""
    results = pd.read_parquet(out / "results.parquet")
    scorecard = pd.read_csv(out / "scorecard.csv")
    cv = json.loads((out / "cv.json").read_text())
    summary: dict[str, Any] = {
        "failed_rows": int((results["status"] != "ok").sum()),
        "test_subjects_per_fold": [len(f) for f in cv["test_subjects"]],
        "verdicts": {q: scorecard[q].value_counts().to_dict() for q in QUESTIONS if q in scorecard},
        "decided": {q: scorecard.loc[scorecard[q] != "inconclusive", ["metric", q]].values.tolist()
                    for q in QUESTIONS if q in scorecard},
    }
    shift = out / "site_shift.csv"
    if shift.is_file():
        frame = pd.read_csv(shift)
        summary["site_shift_z"] = dict(zip(frame["quantity"], frame["z"].round(2), strict=True))
    return summary


def replication(phantom: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    """One row per metric and question of both scorecards: phantom and real verdict and their relation
    (agree: both decided alike; disagree: decided differently; undecided: either is inconclusive)."""
    rows = []
    for metric in sorted(set(phantom["metric"]) & set(real["metric"])):
        p, r = phantom.set_index("metric").loc[metric], real.set_index("metric").loc[metric]
        for question in QUESTIONS:
            if question not in p or question not in r:
                continue
            a, b = str(p[question]), str(r[question])
            relation = "undecided" if "inconclusive" in (a, b) else ("agree" if a == b else "disagree")
            rows.append({"metric": metric, "question": question, "phantom": a, "real": b, "relation": relation})
    return pd.DataFrame(rows, columns=["metric", "question", "phantom", "real", "relation"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="folder holding the cohort's source folders")
    parser.add_argument("--out", type=Path, required=True, help="the study's output_dir")
    parser.add_argument("--json", type=Path, default=None, help="write the measurement here too")
    parser.add_argument("--phantom", type=Path, default=None, help="a phantom study's output folder to compare with")
    args, overrides = parser.parse_known_args()
    measured = run_study(args.root.resolve(), args.out.resolve(), overrides)
    if measured["returncode"] == 0:
        measured |= summarise(args.out)
        if args.phantom:
            table = replication(pd.read_csv(args.phantom / "scorecard.csv"), pd.read_csv(args.out / "scorecard.csv"))
            table.to_csv(args.out / "replication.csv", index=False)
            measured["replication"] = table["relation"].value_counts().to_dict()
    text = json.dumps(measured, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
