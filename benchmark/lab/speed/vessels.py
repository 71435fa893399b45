"""The vessel study end to end: wall time, peak memory, the clean segmenter's vessel scores, what each vessel
edit costs them at severity 5, where the time went, and the scorecard's verdicts.

    python -m benchmark.lab.speed.vessels --out runs/vessels [--json vessels.json] [overrides...]

Runs `python -m benchmark experiment=vessels output_dir=<out>` under GNU time (`/usr/bin/time -v`: wall clock
and the peak resident set of the largest process it waited for) while sampling, every 0.5 s, the summed
resident memory and the CPU time of the whole process tree (worker processes started through a fork server
are not waited for by the study and escape GNU time's figures). On a shared machine the CPU time is the
steadier figure: the wall clock counts the other users' share of the cores. Then reads the study's tables:
failed rows, clean vessel Dice / clDice, per vessel edit the severity-5 robustness Dice and clDice and their
drop from clean, the time per stage from `mribench.log`, and the scorecard's verdicts per question. Extra
arguments are passed to the study as Hydra overrides (e.g. `data=vessels data.root=../shared/data/vessels`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.lab.speed.cohort import QUESTIONS

REPO = Path(__file__).resolve().parents[3]  # the checkout: the study runs its code and conf/
SCORES = ("dice_vessel", "cldice_vessel")
STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\]")


def tree_pids(root: int) -> set[int]:
    """Process `root` and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return tree


def sample_tree(root: int, cpu_ticks: dict[int, int]) -> int:
    """Summed resident memory (bytes) of the tree of `root`; records each process's CPU clock ticks (user +
    system) in `cpu_ticks`, so the tree's CPU time counts worker processes nobody waits for."""
    total = 0
    for pid in tree_pids(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu_ticks[pid] = int(fields[11]) + int(fields[12])  # utime, stime
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(match.group(1)) * 1024 if match else 0
    return total


def run_study(out: Path, overrides: list[str]) -> dict[str, Any]:
    """Run the vessel study under /usr/bin/time -v; wall seconds, peak RSS (GNU time's and the sampled
    process tree's) in GiB and the exit status."""
    out.mkdir(parents=True, exist_ok=True)
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "benchmark", "experiment=vessels", f"output_dir={out}",
               *overrides]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, done, ticks = [0], threading.Event(), {}

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], sample_tree(process.pid, ticks))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    done.set()
    sampler.join()
    (out / "time-v.txt").write_text(stderr[-20000:])
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", stderr)
    largest = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    seconds = None
    if wall:
        hours, minutes, secs = wall.groups()
        seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
    return {"returncode": process.returncode, "wall_s": seconds,
            "peak_rss_gib_largest_process": int(largest.group(1)) / 2**20 if largest else None,
            "peak_rss_gib_process_tree": peak[0] / 2**30,
            "cpu_s_process_tree": sum(ticks.values()) / os.sysconf("SC_CLK_TCK"), "load_average_after": os.getloadavg()}


def vessel_scores(results: pd.DataFrame) -> dict[str, Any]:
    """Clean robustness vessel Dice / clDice and, per perturbation at its highest severity, the values and
    their drop from clean (positive: the edit costs the segmenter)."""
    ok = results[(results["status"] == "ok") & (results["stage"] == "dice_robustness")]
    clean = {score: float(ok.loc[(ok["severity"] == 0) & (ok["quantity"] == f"robustness/{score}"), "value"].iloc[0])
             for score in SCORES}
    top = int(ok["severity"].max())
    edits = {}
    for perturbation, rows in ok[ok["severity"] == top].groupby("perturbation"):
        values = {s: float(rows.loc[rows["quantity"] == f"robustness/{s}", "value"].iloc[0]) for s in SCORES}
        edits[perturbation] = {**{s: round(v, 4) for s, v in values.items()},
                               **{f"{s}_drop": round(clean[s] - v, 4) for s, v in values.items()}}
    return {"clean": {s: round(v, 4) for s, v in clean.items()}, "severity": top, "edits": edits}


def stage_seconds(log_path: Path) -> dict[str, float]:
    """Seconds per stage from the study's log: data (start to the first cell), metric cells, segmenter
    training, other segmentation cells, resampling and the report."""
    lines = log_path.read_text().splitlines()
    stamps = [(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f"), line) for line in lines
              if (m := STAMP.match(line))]
    if not stamps:
        return {}
    totals = {"data": 0.0, "metrics": 0.0, "training": 0.0, "segmentation_cells": 0.0, "resampling": 0.0,
              "report": 0.0}
    start = stamps[0][0]
    for when, line in stamps:
        if "study:" in line and "cells" in line:
            totals["data"] = (when - start).total_seconds()
        if (m := re.search(r"trained in ([\d.]+) s", line)):
            totals["training"] += float(m.group(1))
        if (m := re.search(r"- metrics .*\(([\d.]+) s\)$", line)):
            totals["metrics"] += float(m.group(1))
        if (m := re.search(r"- dice_(?:robustness|utility) .*\(([\d.]+) s\)$", line)):
            totals["segmentation_cells"] += float(m.group(1))
        if (m := re.search(r"resampling: floor ([\d.]+) s, bootstrap ([\d.]+) s, curves ([\d.]+) s", line)):
            totals["resampling"] = sum(float(v) for v in m.groups())
    report = [when for when, line in stamps if "report written" in line]
    resampled = [when for when, line in stamps if "resampling:" in line]
    if report and resampled:
        totals["report"] = (report[0] - resampled[0]).total_seconds()
    totals["segmentation_cells"] -= totals["training"]  # a cell that trained its model includes the training
    return {k: round(v, 1) for k, v in totals.items()}


def summarise(out: Path) -> dict[str, Any]:
    """Failed rows, vessel scores, stage times and scorecard verdict counts of a finished vessel study."""
    results = pd.read_parquet(out / "results.parquet")
    scorecard = pd.read_csv(out / "scorecard.csv")
    questions = [q for q in scorecard.columns if q in QUESTIONS or (q.startswith("c_") and not q.endswith("evidence"))]
    return {
        "failed_rows": int((results["status"] != "ok").sum()),
        "vessel_scores": vessel_scores(results),
        "stage_seconds": stage_seconds(out / "mribench.log"),
        "verdicts": {q: scorecard[q].value_counts().to_dict() for q in questions},
        "yes": {q: sorted(scorecard.loc[scorecard[q] == "yes", "metric"]) for q in questions},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the study's output_dir")
    parser.add_argument("--json", type=Path, default=None, help="write the measurement here too")
    args, overrides = parser.parse_known_args()
    measured = run_study(args.out.resolve(), overrides)
    if measured["returncode"] == 0:
        measured |= summarise(args.out.resolve())
    text = json.dumps(measured, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
