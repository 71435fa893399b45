"""The six real BRATS 2015 gliomas of ../shared/data/brats2015-deepmedic as 2D tumour slices, for realism checks.

DeepMedic's example layout (per case `Flair_subtrMeanDivStd.nii.gz`, z-scored in the brain; `brainmask.nii.gz`,
threshold 0.5; `OTMultiClass.nii.gz`, BRATS 2015 labels 1 necrosis, 2 oedema, 3 non-enhancing, 4 enhancing).
Read with the project's NIfTI reader (RAS+), labels mapped to BraTS 2023 (1, 3 -> NCR 1; 2 -> ED 2; 4 -> ET 3),
then the study's preprocessing (`benchmark.data.preprocess`: 1/99 percentile clipping in the brain, [0, 1],
display order, crop/pad about the brain's bounding box). A development loader for perturbation realism, not a
data source of the study (the data readers own that).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmark.data import preprocess
from benchmark.data.imageset import ImageSet
from benchmark.data.nifti import load_volume
from benchmark.errors import DataError

BRATS2015_TO_2023 = np.array([0, 1, 2, 1, 3], dtype=np.int64)


def case_folders(root: Path) -> list[Path]:
    """Every case folder (one holding a FLAIR file) under `root`, sorted by name."""
    folders = sorted({p.parent for p in Path(root).rglob("Flair_subtrMeanDivStd.nii.gz")}, key=lambda p: p.name)
    if not folders:
        raise DataError(f"{root}: no DeepMedic case folders (Flair_subtrMeanDivStd.nii.gz) found")
    return folders


def load_patient(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image (Z, H, W) in [0, 1], labels (Z, H, W) BraTS 2023, brain (Z, H, W) bool) in display order."""
    flair = load_volume(folder / "Flair_subtrMeanDivStd.nii.gz").data.astype(np.float32)
    brain = load_volume(folder / "brainmask.nii.gz", kind="mask").data > 0.5
    raw = np.rint(load_volume(folder / "OTMultiClass.nii.gz", kind="label").data).astype(np.int64)
    labels = BRATS2015_TO_2023[np.clip(raw, 0, 4)] * brain
    image = preprocess.normalise_intensity(flair[None], brain, (1.0, 99.0))[0]
    return tuple(preprocess.to_display_order(a) for a in (image, labels, brain))


def tumour_slices(labels: np.ndarray, count: int, min_voxels: int = 150) -> list[int]:
    """`count` axial slices spread evenly over those holding at least `min_voxels` lesion voxels."""
    area = (labels > 0).sum(axis=(1, 2))
    pool = np.flatnonzero(area >= min_voxels)
    if len(pool) <= count:
        return pool.tolist()
    return pool[np.linspace(0, len(pool) - 1, count).round().astype(int)].tolist()


def real_tumour_slices(root: Path, per_patient: int = 8, size: int = 192) -> ImageSet:
    """2D FLAIR tumour slices of every patient under `root` (default 8 each: 48 for the six patients)."""
    items, subjects, indices = [], [], []
    for folder in case_folders(root):
        image, labels, brain = load_patient(folder)
        centre = preprocess.bounding_box_centre(brain.any(axis=0))
        for z in tumour_slices(labels, per_patient):
            items.append([preprocess.crop_or_pad(a[z], (size, size), centre) for a in (image, labels, brain)])
            subjects.append(folder.name.removesuffix("_1"))
            indices.append(z)
    images, labels, brains = (np.stack([item[k] for item in items])[:, None] for k in range(3))
    return ImageSet(images=torch.from_numpy(images).float(), labels=torch.from_numpy(labels.astype(np.int64)),
                    brain_masks=torch.from_numpy(brains.astype(bool)), subject_ids=subjects, slice_indices=indices,
                    modalities=("flair",), spacing=(1.0, 1.0), meta={"source": str(root)})
