"""Checks on a dataset's cases before and while they are read: inputs that would silently make blank slices
or leak one scan into two splits are refused with a DataError naming the files.

- blank inputs: an image whose voxels all share one value, an image constant inside the brain, an empty
  provided brain mask (each would give blank or tumour-only slices);
- one scan under two subject ids: two cases whose image files have the same content (SHA-256) would land in
  different splits (train and validation or test: leakage), so they are refused, not merged: which id is
  right is the user's call;
- two cases with one subject id (they would be read as one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmark.data.readers import CaseFiles
from benchmark.errors import DataError


def refuse_blank(case: CaseFiles, modalities: Sequence[str], image: np.ndarray, brain: np.ndarray,
                 provided: np.ndarray | None) -> None:
    """DataError when an image channel (C, X, Y, Z) is one value everywhere or inside `brain`, or when the
    provided brain mask is empty."""
    if provided is not None and not provided.any():
        raise DataError(f"{case.brain_mask}: the brain mask is empty (no voxel above 0.5) for subject "
                        f"{case.subject_id}; fix the mask, or remove it to derive one from the image.")
    for modality, channel in zip(modalities, image, strict=True):
        path = case.images[modality]
        low, high = float(channel.min()), float(channel.max())
        if low == high:
            raise DataError(f"{path}: the {modality} image is blank (every voxel is {low:g}) for subject "
                            f"{case.subject_id}; re-export the scan, or leave the case out.")
        inside = channel[brain]
        if inside.size and float(inside.min()) == float(inside.max()):
            raise DataError(f"{path}: the {modality} image is constant ({float(inside.min()):g}) inside the brain "
                            f"({inside.size} voxels) for subject {case.subject_id}: a mask or a placeholder, not a "
                            "scan; re-export it, or leave the case out.")


def refuse_duplicate_ids(cases: Sequence[CaseFiles]) -> None:
    """DataError when two cases share a subject id."""
    seen: dict[str, CaseFiles] = {}
    for case in cases:
        if case.subject_id in seen:
            first = next(iter(seen[case.subject_id].images.values()))
            raise DataError(f"two cases are named {case.subject_id}: {first} and {next(iter(case.images.values()))}; "
                            "subject ids must be unique (rename one of them).")
        seen[case.subject_id] = case


def refuse_duplicate_scans(cases: Sequence[CaseFiles], digest: Callable[[Path], str], workers: int = 1) -> None:
    """DataError when the image files of two subjects have the same content: the same scan under two ids
    would be split into train and validation/test. `digest`: a file's content hash, computed on `workers`
    threads (hashing releases the GIL)."""
    owned = [(case.subject_id, path) for case in cases for path in sorted(set(case.images.values()), key=str)
             if Path(path).is_file()]  # a missing file is named with its subject when the case is read
    with ThreadPoolExecutor(max(1, workers)) as pool:
        keys = list(pool.map(digest, [path for _, path in owned]))
    owner: dict[str, tuple[str, Path]] = {}
    for (subject_id, path), key in zip(owned, keys, strict=True):
        first = owner.setdefault(key, (subject_id, path))
        if first[0] != subject_id:
            raise DataError(f"subjects {first[0]} and {subject_id} read the same scan ({first[1]} and "
                            f"{path} have the same content): it would enter two splits (train and validation "
                            "or test) and leak. Refused, not merged: keep the scan under one subject id.")

