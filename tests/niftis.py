"""Small synthetic datasets written as real NIfTI files in each supported layout, for the tests."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (24, 28, 20)
SPACING = (1.5, 1.5, 2.0)


def synthetic_case(seed: int, shape: tuple[int, int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """A bright ellipsoid 'brain' on a zero background with a three-compartment tumour blob.

    Returns an image (X, Y, Z) float32 and labels in the BraTS 2023 convention (1 core, 2 oedema, 3 ET).
    """
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    brain = (grid**2).sum(0) < 0.8
    image = (0.5 + 0.1 * rng.standard_normal(shape)).astype(np.float32) * brain
    centre = rng.uniform(-0.2, 0.2, size=3)
    radius = np.sqrt(((grid - centre[:, None, None, None]) ** 2).sum(0))
    labels = np.zeros(shape, dtype=np.uint8)
    labels[radius < 0.45] = 2
    labels[radius < 0.3] = 3
    labels[radius < 0.15] = 1
    image[labels == 2] += 0.4
    image[labels == 3] += 0.8
    return image, labels


def affine(spacing: tuple[float, ...] = SPACING) -> np.ndarray:
    return np.diag([*spacing, 1.0])


def save(array: np.ndarray, path: Path, spacing: tuple[float, ...] = SPACING) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine(spacing)), str(path))
    return path


def write_brats(root: Path, n_cases: int = 4, version: int = 2021) -> Path:
    """BraTS layout: root/<case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz (2023: t1n, t1c, t2w, t2f)."""
    names = ("t1", "t1ce", "t2", "flair") if version == 2021 else ("t1n", "t1c", "t2w", "t2f")
    for i in range(n_cases):
        case = f"BraTS-{i:03d}"
        image, labels = synthetic_case(i)
        if version == 2021:
            labels = np.where(labels == 3, 4, labels).astype(np.uint8)
        for k, name in enumerate(names):
            save(image * (1 + 0.1 * k), root / case / f"{case}_{name}.nii.gz")
        save(labels, root / case / f"{case}_seg.nii.gz")
    return root


def write_msd(root: Path, n_cases: int = 4) -> Path:
    """MSD Task01: dataset.json, imagesTr/*.nii.gz (4D: FLAIR, T1w, t1gd, T2w), labelsTr/*.nii.gz."""
    msd_of_ours = {0: 0, 1: 2, 2: 1, 3: 3}  # ours -> MSD (1 oedema, 2 non-enhancing, 3 enhancing)
    training = []
    for i in range(n_cases):
        image, labels = synthetic_case(i)
        name = f"BRATS_{i:03d}.nii.gz"
        save(np.stack([image * (1 + 0.1 * k) for k in range(4)], axis=-1), root / "imagesTr" / name)
        save(np.vectorize(msd_of_ours.get)(labels).astype(np.uint8), root / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    modality = {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}
    (root / "dataset.json").write_text(json.dumps({"name": "BRATS", "modality": modality, "training": training}))
    return root


def write_folder(root: Path, n_cases: int = 4) -> Path:
    """Plain folder: root/images/<name>.nii.gz and root/labels/<name>.nii.gz."""
    for i in range(n_cases):
        image, labels = synthetic_case(i)
        save(image, root / "images" / f"case{i}.nii.gz")
        save(labels, root / "labels" / f"case{i}.nii.gz")
    return root
