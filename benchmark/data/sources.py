"""Datasets in any layout: a manifest file (CSV/TSV) or glob patterns with a `{subject}` placeholder.

Manifest (`data=manifest data.manifest=cases.csv`): one row per subject, columns `subject`, one column per
modality (named as in `data.modality`), `label` and optionally `brain_mask`; relative paths are read from
the manifest's folder; an empty label cell means the case has no label. Optional columns `source` (the
dataset a row comes from: splits and folds are stratified by it) and `label_map` (a preset name for that
row, overriding `data.label_map`) let one manifest describe a multi-source cohort.

Patterns (`data=pattern data.root=/data data.patterns.flair='*/{subject}/Flair.nii.gz' ...`): one pattern
per modality plus `label` and optionally `brain_mask`, relative to `data.root`. `{subject}` matches one
path component and names the subject; `*`, `?` and `**` are glob wildcards. Subjects are those of the
first modality's pattern.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmark.data.labels import resolve_label_map
from benchmark.data.readers import CaseFiles
from benchmark.errors import ConfigError, DataError

SUBJECT = "{subject}"
OPTIONAL_COLUMNS = ("label", "brain_mask")


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A regular expression for a relative glob pattern whose `{subject}` is captured."""
    parts = re.split(r"(\{subject\}|\*\*/|\*\*|\*|\?)", pattern)
    wildcard = {SUBJECT: "(?P<subject>[^/]+)", "**/": "(?:[^/]+/)*", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wildcard.get(part, re.escape(part)) for part in parts) + r"\Z")


def subject_glob(pattern: str) -> str:
    """The glob that finds every subject's file: `{subject}` as `*`, runs of `*` inside a name as one `*`
    (`a*{subject}` is `a*`, not the recursive `**`)."""
    return "/".join(part if part == "**" else re.sub(r"\*+", "*", part.replace(SUBJECT, "*"))
                    for part in pattern.split("/"))


def no_subject_message(root: Path, pattern: str, key: str) -> str:
    """Why a pattern names no subject: no file matches its glob at all, or files match but none puts one whole
    path component where `{subject}` stands."""
    glob = subject_glob(pattern)
    found = sorted(p.relative_to(root).as_posix() for p in root.glob(glob) if p.is_file())
    if not found:
        return f"{root}: no file matches {key}='{pattern}' (searched as the glob '{glob}' under data.root)."
    return (f"{root}: {len(found)} files match the glob '{glob}' (e.g. {found[0]}) but none fits {key}='{pattern}': "
            f"{SUBJECT} stands for a non-empty part of one folder or file name (never a '/') and the rest of the path "
            "must match the pattern's other parts (`*` any part of one name, `**/` any number of folders, zero "
            "included). Adjust the pattern to the layout.")


def _one_match(root: Path, pattern: str, subject: str, what: str) -> Path | None:
    """The single file matching `pattern` for `subject` (None when none; DataError when ambiguous)."""
    glob = pattern.replace(SUBJECT, subject)
    found = sorted(p for p in root.glob(glob) if p.is_file())
    if len(found) > 1:
        raise DataError(f"{root}: data.patterns.{what}='{pattern}' matches {len(found)} files for subject "
                        f"{subject} ({found[0].name}, {found[1].name}, ...); make the pattern specific.")
    return found[0] if found else None


def find_pattern_cases(root: Path, patterns: Mapping[str, str], modalities: Sequence[str],
                       label_map: dict[int, int] | None) -> list[CaseFiles]:
    """Cases found by glob patterns under `root` (see the module docstring)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: the dataset folder does not exist (set data.root to the dataset's folder).")
    missing = [m for m in modalities if m not in patterns]
    if missing:
        raise ConfigError(f"data.patterns has no pattern for modalities {missing}; add e.g. "
                          f"data.patterns.{missing[0]}='{{subject}}/{missing[0]}.nii.gz' (have {sorted(patterns)}).")
    for name, pattern in patterns.items():
        if pattern is not None and str(pattern).count(SUBJECT) != 1:
            raise ConfigError(f"data.patterns.{name}='{pattern}' must hold {SUBJECT} exactly once.")
        if pattern is not None and any("**" in part and part != "**" for part in str(pattern).split("/")):
            raise ConfigError(f"data.patterns.{name}='{pattern}': `**` must be a whole path component (`**/`, any "
                              "number of folders); use `*` inside a name.")
    first = str(patterns[modalities[0]])
    regex = _pattern_regex(first)
    subjects = sorted({m["subject"] for p in root.glob(subject_glob(first))
                       if p.is_file() and (m := regex.match(p.relative_to(root).as_posix()))})
    if not subjects:
        raise DataError(no_subject_message(root, first, f"data.patterns.{modalities[0]}"))
    cases = []
    for subject in subjects:
        images = {}
        for modality in modalities:
            path = _one_match(root, str(patterns[modality]), subject, modality)
            if path is None:
                raise DataError(f"{root}: subject {subject} has no {modality} image matching "
                                f"data.patterns.{modality}='{patterns[modality]}'.")
            images[modality] = path
        extra = {name: _one_match(root, str(patterns[name]), subject, name) if patterns.get(name) else None
                 for name in OPTIONAL_COLUMNS}
        if patterns.get("brain_mask") and extra["brain_mask"] is None:
            raise DataError(f"{root}: subject {subject} has no brain mask matching "
                            f"data.patterns.brain_mask='{patterns['brain_mask']}' (remove the pattern to derive one).")
        cases.append(CaseFiles(subject, images, extra["label"], label_map=label_map, brain_mask=extra["brain_mask"]))
    return cases


def find_manifest_cases(manifest: Path, modalities: Sequence[str], label_map: dict[int, int] | None
                        ) -> list[CaseFiles]:
    """Cases listed in a CSV or TSV manifest (see the module docstring)."""
    manifest = Path(manifest).expanduser()
    if not manifest.is_file():
        raise DataError(f"{manifest}: the manifest file does not exist (set data.manifest to a .csv or .tsv file).")
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{manifest}: cannot read the manifest as UTF-8 text ({error}).") from error
    delimiter = "\t" if manifest.suffix.lower() == ".tsv" or "\t" in text.splitlines()[0:1][0] else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    columns = [c.strip() for c in reader.fieldnames or []]
    rows = list(reader)
    if columns and not rows:
        raise DataError(f"{manifest}: the manifest has its header ({', '.join(columns)}) but lists no subject; add "
                        "one row per subject below it.")
    needed = ["subject", *modalities]
    absent = [c for c in needed if c not in columns]
    if absent:
        raise DataError(f"{manifest}: columns {absent} are missing (have {columns}); a manifest has the columns "
                        f"subject, one per modality ({', '.join(modalities)}), label and optionally brain_mask.")
    base, cases, seen = manifest.parent, [], set()
    for line, raw in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        subject = row["subject"]
        if not subject or subject in seen:
            raise DataError(f"{manifest}, line {line}: subject {subject!r} is empty or listed twice.")
        seen.add(subject)
        empty = [m for m in modalities if not row[m]]
        if empty:
            raise DataError(f"{manifest}, line {line}: subject {subject} has no path for {empty}.")
        path = {name: (base / row[name]).resolve() if row.get(name) else None for name in (*modalities,
                                                                                           *OPTIONAL_COLUMNS)}
        row_map = label_map
        if row.get("label_map"):
            try:
                row_map = resolve_label_map(row["label_map"])
            except ConfigError as error:
                raise DataError(f"{manifest}, line {line}: subject {subject}: {error}") from None
        cases.append(CaseFiles(subject, {m: path[m] for m in modalities}, path["label"], label_map=row_map,
                               brain_mask=path["brain_mask"], source=row.get("source", "")))
    if not cases:
        raise DataError(f"{manifest}: the manifest lists no subject.")
    return cases
