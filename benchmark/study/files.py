"""The two files besides the results that the sweep writes for the report: study.json and examples.npz.

`study.json` (schema 1) describes the study so every figure can state its data, sample sizes, feature
extractors and preprocessing without recomputing anything. Keys, all optional except `data.source`:

    schema: 1
    title: str                                  # report title
    created: str                                # ISO time the sweep started
    command: str                                # the command line that ran it
    config_hash: str                            # hash of the resolved study config
    seeds: [int]
    data: {source: str, description: str, modalities: [str], spatial_dims: int, shape: [int],
           spacing_mm: [float], n_subjects: {split: int}, n_items: {split: int}}
    preprocessing: str                          # e.g. "1st/99th percentile clip, [0, 1], 128x128 at 1.5 mm"
    feature_extractors: {name: str}             # name as in results.feature_extractor -> description
    metrics: {name: {kind, higher_is_better, feature_extractor, notes}}     # MetricSuite.describe()
    perturbations: {name: {family, scope, parameters: {severity: {...}}}}    # Perturbation.parameters()
    segmentation: {model: str, ...}             # free-form: network, epochs, loss, protocols
    elapsed_s: {total: float, ...}              # wall times of the stages in seconds
    software: {package: version, 'torch threads': str}   # what the numbers were computed with

`examples.npz` holds one example image per (perturbation, severity) for the image grid: key
`<perturbation>__sev<severity>` -> float array (H, W) in [0, 1] (the runner picks the item, the channel
and, for volumes, the axial slice), and optionally `<perturbation>__sev<severity>__label` -> int array
(H, W) with the tumour labels drawn as a contour. Use `write_examples` / `read_examples`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.atomic import replace_atomically, write_text_atomically
from benchmark.errors import DataError

STUDY_SCHEMA = 1
NOT_RECORDED = "not recorded"


def data_name(description: str, source: str) -> str:
    """What a caption calls the data: a description that is a folder path becomes the folder's name (the
    report names the data, not where one machine keeps it); the phantom's folder, a cache entry named by a
    content hash, is named by its source alone (empty string)."""
    if "/" not in description and "\\" not in description:
        return description
    return "" if source == "phantom" else re.split(r"[/\\]", description.rstrip("/\\"))[-1]


@dataclass
class StudyInfo:
    """study.json as read back; fields the sweep did not record say so instead of being guessed."""

    data: dict[str, Any]
    preprocessing: str = NOT_RECORDED
    feature_extractors: dict[str, str] = field(default_factory=dict)
    title: str = "mri-metric-bench: which image-quality metrics track downstream Dice"
    created: str = NOT_RECORDED
    command: str = NOT_RECORDED
    config_hash: str = NOT_RECORDED
    seeds: list[int] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    perturbations: dict[str, dict[str, Any]] = field(default_factory=dict)
    segmentation: dict[str, Any] = field(default_factory=dict)
    elapsed_s: dict[str, float] = field(default_factory=dict)
    software: dict[str, str] = field(default_factory=dict)
    recorded: bool = True  # False when study.json was absent

    def data_line(self) -> str:
        """One line naming the data: source, modality, geometry, subjects and items per split."""
        d = self.data
        parts = [str(d.get("source", NOT_RECORDED))]
        name = data_name(str(d.get("description") or ""), parts[0])
        if name:
            parts.append(name)
        if d.get("modalities"):
            parts.append("/".join(d["modalities"]))
        if d.get("shape"):
            geometry = "x".join(str(s) for s in d["shape"])
            if d.get("spacing_mm"):
                geometry += f" at {'x'.join(f'{s:g}' for s in d['spacing_mm'])} mm"
            parts.append(geometry)
        for what in ("n_subjects", "n_items"):
            if d.get(what):
                label = "subjects" if what == "n_subjects" else "items"
                parts.append(f"{label} " + ", ".join(f"{k} {v}" for k, v in d[what].items()))
        return "; ".join(parts)

    def extractor_line(self, used: list[str]) -> str:
        """The feature extractors used by the shown metrics, with their descriptions."""
        if not used:
            return "none (no distribution metric shown)"
        return "; ".join(f"{name} ({self.feature_extractors.get(name, NOT_RECORDED)})" for name in used)


def write_study_info(path: Path, info: Mapping[str, Any]) -> None:
    """Write study.json atomically after checking that `data.source` is given and the rest is JSON."""
    if not isinstance(info.get("data"), Mapping) or "source" not in info["data"]:
        raise ValueError("study.json needs data.source (e.g. 'phantom', 'brats'); see benchmark.study.files")
    text = json.dumps({"schema": STUDY_SCHEMA, **info}, indent=2, default=str)
    write_text_atomically(Path(path), text)


def read_study_info(output_dir: Path) -> StudyInfo:
    """Read `output_dir/study.json`; a missing file gives a StudyInfo whose fields say 'not recorded'."""
    path = Path(output_dir) / "study.json"
    if not path.is_file():
        return StudyInfo(data={"source": NOT_RECORDED}, recorded=False)
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not valid JSON ({error}); rewrite it or delete it.") from error
    if raw.get("schema", STUDY_SCHEMA) != STUDY_SCHEMA:
        raise DataError(f"{path} has schema {raw.get('schema')}, this version reads schema {STUDY_SCHEMA}.")
    known = set(StudyInfo.__dataclass_fields__) - {"recorded"}
    fields = {k: v for k, v in raw.items() if k in known}
    fields.setdefault("data", {"source": NOT_RECORDED})
    return StudyInfo(**fields)


def write_examples(path: Path, examples: Mapping[tuple[str, int], np.ndarray | tuple[np.ndarray, np.ndarray]]) -> None:
    """Write examples.npz: {(perturbation, severity): image (H, W) in [0, 1], or (image, label map)}."""
    arrays: dict[str, np.ndarray] = {}
    for (perturbation, severity), value in examples.items():
        image, label = value if isinstance(value, tuple) else (value, None)
        image = np.asarray(image, dtype=np.float32).squeeze()
        if image.ndim != 2:
            raise ValueError(f"example {perturbation} severity {severity}: need one 2D slice, got {image.shape}")
        if not np.isfinite(image).all():
            raise ValueError(f"example {perturbation} severity {severity} has non-finite pixels")
        key = f"{perturbation}__sev{int(severity)}"
        arrays[key] = image
        if label is not None:
            label = np.asarray(label).squeeze().astype(np.int16)
            if label.shape != image.shape:
                raise ValueError(f"example {key}: label {label.shape} does not match image {image.shape}")
            arrays[f"{key}__label"] = label
    replace_atomically(Path(path), lambda tmp: _savez(tmp, arrays))


def read_examples(path: Path) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]]:
    """Read examples.npz back as {(perturbation, severity): (image, label or None)}."""
    out: dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]] = {}
    with np.load(path) as data:
        for key in data.files:
            if key.endswith("__label"):
                continue
            perturbation, _, severity = key.rpartition("__sev")
            if not perturbation or not severity.isdigit():
                raise DataError(f"{path}: key {key!r} is not <perturbation>__sev<severity>")
            label = data[f"{key}__label"] if f"{key}__label" in data.files else None
            out[(perturbation, int(severity))] = (data[key], label)
    return out


def _savez(path: str, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:  # a handle, or numpy appends .npz to the temporary name
        np.savez_compressed(handle, **arrays)
