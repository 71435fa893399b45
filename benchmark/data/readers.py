"""Find and load cases in the supported layouts: BraTS 2021/2023, MSD Task01_BrainTumour, plain folders.

Every reader returns `CaseFiles`; `load_case` turns one into channel-first arrays in RAS+ order with
labels mapped onto the BraTS 2023 convention (0 background, 1 necrotic core, 2 oedema, 3 enhancing).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.data.nifti import Volume, check_same_grid, load_volume
from benchmark.errors import DataError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
# Our modality names -> file suffixes used by BraTS 2021 and BraTS 2023.
BRATS_SUFFIXES: dict[str, tuple[str, ...]] = {
    "t1": ("t1", "t1n"),
    "t1ce": ("t1ce", "t1c"),
    "t2": ("t2", "t2w"),
    "flair": ("flair", "t2f"),
}
MSD_CHANNELS = {"flair": 0, "t1": 1, "t1ce": 2, "t2": 3}
MSD_LABEL_MAP = {0: 0, 1: 2, 2: 1, 3: 3}  # MSD: 1 oedema, 2 non-enhancing tumour, 3 enhancing
IDENTITY_LABEL_MAP = {0: 0, 1: 1, 2: 2, 3: 3}


@dataclass
class CaseFiles:
    """Where one subject's images and label live, and how to read them."""

    subject_id: str
    images: dict[str, Path]  # modality -> file (several modalities may share one 4D file)
    label: Path
    channels: dict[str, int] = field(default_factory=dict)  # modality -> index in a 4D file
    label_map: dict[int, int] | None = None  # source value -> our value; None: detect BraTS 2021/2023


def strip_nifti_suffix(name: str) -> str | None:
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _require_dir(root: Path, what: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: the {what} folder does not exist (set data.root to the dataset's folder).")
    return root


def find_brats_cases(root: Path, modalities: Sequence[str]) -> list[CaseFiles]:
    """One case per sub-folder holding `<case>_<modality>.nii[.gz]` files and a `_seg` label map."""
    root = _require_dir(root, "BraTS")
    cases = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        by_key = {}  # "flair" -> .../Case_flair.nii.gz
        for file in folder.iterdir():
            stem = strip_nifti_suffix(file.name)
            if stem and "_" in stem:
                by_key[stem.rsplit("_", 1)[-1].lower()] = file
        if "seg" not in by_key:
            continue
        images = {}
        for modality in modalities:
            found = [by_key[s] for s in BRATS_SUFFIXES.get(modality, (modality,)) if s in by_key]
            if not found:
                raise DataError(
                    f"{folder}: no {modality} image (expected a file ending in "
                    f"{' or '.join('_' + s + '.nii.gz' for s in BRATS_SUFFIXES.get(modality, (modality,)))})."
                )
            images[modality] = found[0]
        cases.append(CaseFiles(folder.name, images, by_key["seg"]))
    return cases


def find_msd_cases(root: Path, modalities: Sequence[str]) -> list[CaseFiles]:
    """Cases listed in the `training` section of MSD Task01's dataset.json (4D images, 4 channels)."""
    root = _require_dir(root, "MSD Task01_BrainTumour")
    manifest = root / "dataset.json"
    if not manifest.is_file():
        raise DataError(f"{manifest}: missing; an MSD task folder holds dataset.json, imagesTr/ and labelsTr/.")
    try:
        entries = json.loads(manifest.read_text())["training"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DataError(f"{manifest}: not a valid MSD dataset.json ({error}).") from error
    unknown = [m for m in modalities if m not in MSD_CHANNELS]
    if unknown:
        raise DataError(f"{manifest}: modalities {unknown} are not in MSD Task01 (have {sorted(MSD_CHANNELS)}).")
    cases = []
    for entry in entries:
        image = root / entry["image"]
        subject = strip_nifti_suffix(image.name) or image.name
        cases.append(CaseFiles(subject, {m: image for m in modalities}, root / entry["label"],
                               channels={m: MSD_CHANNELS[m] for m in modalities}, label_map=MSD_LABEL_MAP))
    return cases


def find_folder_cases(
    root: Path, modalities: Sequence[str], channel_names: Sequence[str], label_map: dict[int, int] | None
) -> list[CaseFiles]:
    """Pairs `images/<name>` with `labels/<name>`; 4D images name their channels by `channel_names`."""
    root = _require_dir(root, "dataset")
    image_dir, label_dir = _require_dir(root / "images", "images"), _require_dir(root / "labels", "labels")
    unknown = [m for m in modalities if m not in channel_names]
    if unknown:
        raise DataError(f"{root}: modalities {unknown} are not among data.channel_names {list(channel_names)}.")
    cases = []
    for image in sorted(image_dir.iterdir()):
        subject = strip_nifti_suffix(image.name)
        if subject is None:
            continue
        label = next((label_dir / f"{subject}{s}" for s in NIFTI_SUFFIXES if (label_dir / f"{subject}{s}").exists()),
                     None)
        if label is None:
            raise DataError(f"{image}: no matching label map {label_dir / subject}.nii.gz.")
        channels = {m: list(channel_names).index(m) for m in modalities} if len(channel_names) > 1 else {}
        cases.append(CaseFiles(subject, {m: image for m in modalities}, label, channels,
                               label_map or IDENTITY_LABEL_MAP))
    return cases


def _map_labels(label: Volume, label_map: dict[int, int] | None) -> np.ndarray:
    """Map source label values onto ours; BraTS files are told apart by their enhancing value (4 or 3)."""
    values = set(np.unique(label.data).tolist())
    if label_map is None:
        if {3, 4} <= values:
            raise DataError(f"{label.path}: holds both 3 and 4; BraTS uses 4 (2021) or 3 (2023) for enhancing.")
        label_map = {0: 0, 1: 1, 2: 2, 4: 3} if 4 in values else IDENTITY_LABEL_MAP
    outside = sorted(values - set(label_map))
    if outside:
        raise DataError(
            f"{label.path}: label values {outside} are outside the expected set {sorted(label_map)}; "
            "check the dataset layout (data=brats|msd|folder) or set data.label_map."
        )
    lookup = np.zeros(max(label_map) + 1, dtype=np.int64)
    for source, target in label_map.items():
        lookup[source] = target
    return lookup[label.data]


def load_case(case: CaseFiles, modalities: Sequence[str]) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Return image (C, X, Y, Z) float32, label (X, Y, Z) int64 in our convention, and spacing in mm."""
    label = load_volume(case.label, kind="label")
    if label.data.ndim != 3:
        raise DataError(f"{case.label}: a label map must be 3D, got shape {label.data.shape}.")
    cache: dict[Path, Volume] = {}
    channels = []
    for modality in modalities:
        path = case.images[modality]
        volume = cache.setdefault(path, load_volume(path))
        check_same_grid(label, volume)
        data = volume.data
        if modality in case.channels:
            if data.ndim != 4 or case.channels[modality] >= data.shape[3]:
                raise DataError(f"{path}: expected a 4D image with channel {case.channels[modality]} ({modality}), "
                                f"got shape {data.shape}.")
            data = data[..., case.channels[modality]]
        elif data.ndim != 3:
            raise DataError(f"{path}: expected a 3D image, got shape {data.shape}.")
        channels.append(data)
    return np.stack(channels), _map_labels(label, case.label_map), label.spacing
