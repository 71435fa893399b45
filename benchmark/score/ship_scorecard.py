"""Write the verdict file shipped in the package from a finished study:
`python -m benchmark.score.ship_scorecard --from OUTPUT_DIR [--to PATH]`.

Reads OUTPUT_DIR/scorecard.csv (the report stage's) and OUTPUT_DIR/study.json, and writes
`benchmark/score/scorecard.json` (format `benchmark.score.verdicts.FORMAT`) naming the study: its title,
data, creation time, command, and the git commit of this checkout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from benchmark.atomic import write_text_atomically
from benchmark.errors import BenchmarkError, ConfigError, report_error
from benchmark.score.verdicts import FORMAT, SHIPPED, load_verdicts, study_from_info


def git_commit(folder: Path) -> str:
    """The checkout's commit (with "+dirty" when it has uncommitted changes), or "unknown"."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=folder, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def shipped_content(output_dir: Path) -> dict:
    """The shipped file's content for the study in `output_dir`."""
    scorecard = Path(output_dir) / "scorecard.csv"
    if not scorecard.is_file():
        raise ConfigError(f"{scorecard}: no scorecard; run the study with its report stage first "
                          "(`python -m benchmark ... stages=[data,study,report]`).")
    load_verdicts(scorecard)  # refuses another format
    study = study_from_info(Path(output_dir))
    if not study:
        raise ConfigError(f"{Path(output_dir) / 'study.json'}: missing or unreadable; the shipped file names the "
                          "study it comes from.")
    study["commit"] = git_commit(Path(__file__).resolve().parent)
    study["output_dir"] = str(Path(output_dir).resolve())
    rows = pd.read_csv(scorecard).fillna("").to_dict(orient="records")
    return {"format": FORMAT, "study": study, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="a finished study's output_dir")
    parser.add_argument("--to", default=str(SHIPPED), help=f"where to write (default {SHIPPED})")
    args = parser.parse_args(argv)
    try:
        content = shipped_content(Path(args.source))
    except BenchmarkError as error:
        report_error(error)
        sys.exit(2)
    write_text_atomically(Path(args.to), json.dumps(content, indent=2) + "\n")
    print(f"wrote {args.to}: {len(content['rows'])} metrics from {content['study']['name']} "
          f"({content['study']['created']}, commit {content['study']['commit']})")


if __name__ == "__main__":
    main()
