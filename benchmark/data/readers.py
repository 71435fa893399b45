"""Find and load cases in the supported layouts: BraTS 2021/2023, MSD Task01_BrainTumour, plain folders
(manifest files and glob patterns live in `benchmark.data.sources`). Volumes may be NIfTI, MetaImage or
NRRD (`benchmark.data.nifti`).

Every reader returns `CaseFiles`; `load_case` turns one into channel-first arrays in RAS+ order with
labels mapped onto the BraTS 2023 convention (0 background, 1 necrotic core, 2 oedema, 3 enhancing).
A case whose label file is missing has `label=None`; `prepare` applies `data.missing_label` to it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.data.labels import PRESETS, map_labels
from benchmark.data.nifti import ITK_SUFFIXES, Volume, check_same_grid, load_volume
from benchmark.errors import DataError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
VOLUME_SUFFIXES = (*NIFTI_SUFFIXES, *ITK_SUFFIXES)
# Our modality names -> file suffixes used by BraTS 2021 and BraTS 2023.
BRATS_SUFFIXES: dict[str, tuple[str, ...]] = {
    "t1": ("t1", "t1n"),
    "t1ce": ("t1ce", "t1c"),
    "t2": ("t2", "t2w"),
    "flair": ("flair", "t2f"),
}
MSD_CHANNELS = {"flair": 0, "t1": 1, "t1ce": 2, "t2": 3}
MSD_LABEL_MAP = PRESETS["msd"]  # MSD: 1 oedema, 2 non-enhancing tumour, 3 enhancing
IDENTITY_LABEL_MAP = PRESETS["brats2023"]
BRAIN_MASK_THRESHOLD = 0.5  # provided masks may be stored as 0 / 0.99999997 (BRATS 2015 DeepMedic)


@dataclass
class CaseFiles:
    """Where one subject's images and label live, and how to read them."""

    subject_id: str
    images: dict[str, Path]  # modality -> file (several modalities may share one 4D file)
    label: Path | None  # None: the case has no label file
    channels: dict[str, int] = field(default_factory=dict)  # modality -> index in a 4D file
    label_map: dict[int, int] | None = None  # source value -> our value; None: detect BraTS 2021/2023
    brain_mask: Path | None = None  # a provided brain mask (> 0.5 is brain); None: derived from the image
    source: str = ""  # the dataset the case comes from (data.source, or its name in data.sources)

    def files(self) -> list[Path]:
        """Every file the case reads, once each, in a stable order."""
        paths = [*self.images.values(), self.label, self.brain_mask]
        return sorted({Path(p) for p in paths if p is not None}, key=str)


def strip_nifti_suffix(name: str) -> str | None:
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def strip_volume_suffix(name: str) -> str | None:
    """`case_flair.nii.gz` or `case_flair.mha` -> `case_flair`; None for a file that is not a volume."""
    lower = name.lower()
    for suffix in VOLUME_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _require_dir(root: Path, what: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: the {what} folder does not exist (set data.root to the dataset's folder).")
    return root


def _brats_suffix(stem: str) -> str | None:
    """`Case_flair` -> flair (BraTS 2021), `BraTS-GLI-00001-000-t2f` -> t2f (BraTS 2023)."""
    for separator in ("_", "-"):
        if separator in stem:
            return stem.rsplit(separator, 1)[-1].lower()
    return None


def find_brats_cases(root: Path, modalities: Sequence[str]) -> list[CaseFiles]:
    """One case per sub-folder holding `<case>_<modality>.nii[.gz]` (2023: `<case>-<modality>`) files and
    a `seg` label map (label None when absent). Sub-folders without NIfTI files are not cases."""
    root = _require_dir(root, "BraTS")
    cases = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        by_key: dict[str, Path] = {}  # "flair" -> .../Case_flair.nii.gz
        for file in sorted(folder.iterdir()):
            stem = strip_volume_suffix(file.name)
            suffix = _brats_suffix(stem) if stem else None
            if suffix:
                _refuse_folder(file)
                if suffix in by_key:
                    raise DataError(f"{folder}: two files for '{suffix}': {by_key[suffix].name} and {file.name}; "
                                    "keep one of them (the study would read only one, by directory order).")
                by_key[suffix] = file
        if not by_key:
            continue
        images = {}
        for modality in modalities:
            found = [by_key[s] for s in BRATS_SUFFIXES.get(modality, (modality,)) if s in by_key]
            if not found:
                raise DataError(
                    f"{folder}: no {modality} image (expected a file ending in "
                    f"{' or '.join('_' + s + '.nii.gz' for s in BRATS_SUFFIXES.get(modality, (modality,)))})."
                )
            if len(found) > 1:
                raise DataError(f"{folder}: two {modality} images, {found[0].name} and {found[1].name} (BraTS 2021 "
                                "and 2023 names of one modality); keep one of them.")
            images[modality] = found[0]
        cases.append(CaseFiles(folder.name, images, by_key.get("seg")))
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
    """Pairs `images/<name>` with `labels/<name>` (label None when absent); 4D images name their channels
    by `channel_names`."""
    root = _require_dir(root, "dataset")
    image_dir, label_dir = _require_dir(root / "images", "images"), root / "labels"
    unknown = [m for m in modalities if m not in channel_names]
    if unknown:
        raise DataError(f"{root}: modalities {unknown} are not among data.channel_names {list(channel_names)}.")
    images = _by_stem(image_dir)
    labels = _by_stem(label_dir) if label_dir.is_dir() else {}
    cases = []
    for subject, image in images.items():
        label = labels.get(subject)
        channels = {m: list(channel_names).index(m) for m in modalities} if len(channel_names) > 1 else {}
        cases.append(CaseFiles(subject, {m: image for m in modalities}, label, channels,
                               label_map or IDENTITY_LABEL_MAP))
    return cases


def _refuse_folder(path: Path) -> None:
    if path.is_dir():
        raise DataError(f"{path}: a folder with a volume file's name; it must be a file (.nii, .nii.gz, .mha, .mhd, "
                        ".nrrd or .nhdr; move the file out of it, or rename the folder).")


def _by_stem(folder: Path) -> dict[str, Path]:
    """The volume files (NIfTI, MetaImage, NRRD) of `folder` by name without suffix; DataError when two share a
    name (`a.nii` and `a.nii.gz`, `a.nii.gz` and `a.mha`) or one is a folder."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        stem = strip_volume_suffix(path.name)
        if stem is None:
            continue
        _refuse_folder(path)
        if stem in found:
            raise DataError(f"{folder}: two files for '{stem}': {found[stem].name} and {path.name}; keep one of them "
                            "(they would be read as one case).")
        found[stem] = path
    return found


def _read_brain_mask(path: Path, reference: Volume) -> np.ndarray:
    """A provided brain mask as bool (values > 0.5), on the grid of `reference`."""
    volume = load_volume(path, kind="brain mask")
    check_same_grid(reference, volume)
    return np.squeeze(volume.data, axis=tuple(range(3, volume.data.ndim))) > BRAIN_MASK_THRESHOLD


def load_case(case: CaseFiles, modalities: Sequence[str]
              ) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], np.ndarray | None]:
    """Return image (C, X, Y, Z) float32, label (X, Y, Z) uint8 in our convention (zeros for a case
    without label file), spacing in mm, and the provided brain mask (bool) or None."""
    cache: dict[Path, Volume] = {}
    channels = []
    reference = None
    for modality in modalities:
        path = case.images[modality]
        if path not in cache:  # several modalities may share one 4D file: decode it once
            cache[path] = load_volume(path)
        volume = cache[path]
        if reference is None:
            reference = volume
        check_same_grid(reference, volume)
        data = volume.data
        if modality in case.channels:
            if data.ndim != 4 or case.channels[modality] >= data.shape[3]:
                raise DataError(f"{path}: expected a 4D image with channel {case.channels[modality]} ({modality}), "
                                f"got shape {data.shape}.")
            data = data[..., case.channels[modality]]
        elif data.ndim != 3:
            raise DataError(f"{path}: expected a 3D image, got shape {data.shape}.")
        channels.append(data)
    if case.label is None:
        labels = np.zeros(reference.data.shape[:3], dtype=np.uint8)
    else:
        label = load_volume(case.label, kind="label")
        if label.data.ndim != 3:
            raise DataError(f"{case.label}: a label map must be 3D, got shape {label.data.shape}.")
        check_same_grid(reference, label)
        labels = map_labels(label.data, case.label_map, case.label)
    brain = None if case.brain_mask is None else _read_brain_mask(case.brain_mask, reference)
    return np.stack(channels), labels, reference.spacing, brain
