"""Read a folder of images made by a generative model so it can be scored like a perturbed set.

Layout: `<folder>/images/<name>.{png,nii,nii.gz}` and, when the model was conditioned on masks,
`<folder>/labels/<name>.<same ext>` (BraTS 2023 values 0-3). PNG and 2D NIfTI files are slices already
in display order; they are scaled to [0, 1] (PNG by the maximum of their integer type, NIfTI by the same
percentile clipping as real data) and resized to the reference's in-plane size when they differ. 3D
NIfTI volumes go through the full preprocessing of real data (`data.*`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from skimage.io import imread
from skimage.transform import resize

from benchmark.data import preprocess
from benchmark.data.imageset import ImageSet
from benchmark.data.nifti import load_volume, volume_shape
from benchmark.data.prepare import load_subject, subject_items
from benchmark.data.readers import CaseFiles, strip_nifti_suffix
from benchmark.errors import DataError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".nii.gz", ".nii")


def _stem(path: Path) -> str | None:
    if path.name.endswith(".png"):
        return path.name[:-4]
    return strip_nifti_suffix(path.name)


def _read_slice(path: Path, kind: str) -> np.ndarray:
    """One 2D slice as float (images) or int (labels)."""
    if path.name.endswith(".png"):
        try:
            array = imread(path)
        except (OSError, ValueError) as error:
            raise DataError(f"{path}: cannot read this PNG ({error}).") from error
        if array.ndim == 3:
            array = array[..., :3].mean(axis=-1) if kind == "image" else array[..., 0]
        if kind == "image" and np.issubdtype(array.dtype, np.integer):
            return array.astype(np.float32) / np.iinfo(array.dtype).max
        return array
    volume = load_volume(path, kind=kind)
    array = np.squeeze(volume.data)
    if array.ndim != 2:
        raise DataError(f"{path}: expected a 2D slice, got shape {volume.data.shape}.")
    return array


def _slice_item(image_path: Path, label_path: Path | None, size: tuple[int, int], clip: list[float]) -> tuple:
    image = _read_slice(image_path, "image").astype(np.float32)
    labels = _read_slice(label_path, "label").astype(np.int64) if label_path else np.zeros(image.shape, np.int64)
    if labels.shape != image.shape:
        raise DataError(f"{label_path}: shape {labels.shape} does not match its image {image.shape}.")
    if not np.isfinite(image).all():
        raise DataError(f"{image_path}: the image holds NaN or Inf values.")
    outside = sorted(set(np.unique(labels).tolist()) - {0, 1, 2, 3})
    if outside:
        raise DataError(f"{label_path}: label values {outside} are outside 0-3 (BraTS 2023 convention).")
    brain = preprocess.brain_mask_from_image(image[None, :, :, None])[:, :, 0] | (labels > 0)
    if not image_path.name.endswith(".png"):
        image = preprocess.normalise_intensity(image[None], brain, clip)[0]
    if image.shape != size:
        image = resize(image, size, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)
        labels = resize(labels, size, order=0, anti_aliasing=False, preserve_range=True).astype(np.int64)
        brain = resize(brain, size, order=0, anti_aliasing=False).astype(bool)
    return image[None], labels, brain, -1


def load_generated_set(folder: Path, data_cfg: DictConfig, reference: ImageSet, seed: int) -> ImageSet:
    """The generated images in `folder` as an ImageSet shaped like `reference` (labels zero when the
    folder has none; `meta["has_labels"]` says which)."""
    folder = Path(folder).expanduser()
    image_dir, label_dir = folder / "images", folder / "labels"
    if not image_dir.is_dir():
        raise DataError(f"{folder}: a generated set needs an images/ folder (and labels/ for its masks).")
    files = sorted(p for p in image_dir.iterdir() if p.name.endswith(IMAGE_SUFFIXES))
    if not files:
        raise DataError(f"{image_dir}: no .png, .nii or .nii.gz files.")
    has_labels = label_dir.is_dir()
    items, owners = [], []
    size = tuple(reference.images.shape[-2:])
    for path in files:
        label = None
        if has_labels:
            label = next((p for p in label_dir.glob(f"{_stem(path)}.*") if p.name.endswith(IMAGE_SUFFIXES)), None)
            if label is None:
                raise DataError(f"{path}: no label file with the same name in {label_dir}.")
        if path.name.endswith(".png") or sum(n > 1 for n in volume_shape(path)) == 2:  # a 2D slice
            items.append(_slice_item(path, label, size, list(data_cfg.clip_percentiles)))
            owners.append(_stem(path) or path.name)
            continue
        if label is None:
            raise DataError(f"{path}: 3D generated volumes need their label map in {label_dir}.")
        modality = reference.modalities[0]
        case = CaseFiles(_stem(path) or path.name, {modality: path}, label, label_map={0: 0, 1: 1, 2: 2, 3: 3})
        subject = load_subject(case, [modality], data_cfg)
        new = subject_items(subject, data_cfg, np.random.default_rng([seed, 3, len(owners)]))
        items += new
        owners += [case.subject_id] * len(new)
    images, labels, brains, indices = zip(*items, strict=True)
    if reference.spatial_dims != images[0].ndim - 1:
        raise DataError(f"{folder}: generated items are {images[0].ndim - 1}D but the study is "
                        f"{reference.spatial_dims}D.")
    log.info("generated set %s: %d items%s", folder, len(items), " with labels" if has_labels else "")
    return ImageSet(
        images=torch.from_numpy(np.stack(images)).float(),
        labels=torch.from_numpy(np.stack(labels)[:, None].astype(np.int64)),
        brain_masks=torch.from_numpy(np.stack(brains)[:, None].astype(bool)),
        subject_ids=owners, slice_indices=list(indices), modalities=reference.modalities,
        spacing=reference.spacing, meta={"source": str(folder), "has_labels": has_labels},
    )
