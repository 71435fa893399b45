"""From a data config to train/validation/test ImageSets: find cases, split by subject, preprocess,
extract slices (2D) or keep volumes (3D). Deterministic from the seed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from benchmark.data import preprocess
from benchmark.data.imageset import ImageSet, PreparedData
from benchmark.data.readers import CaseFiles, find_brats_cases, find_folder_cases, find_msd_cases, load_case
from benchmark.errors import ConfigError, DataError

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


@dataclass
class Subject:
    """One preprocessed subject in display order: images (C, Z, H, W), labels and brain (Z, H, W)."""

    subject_id: str
    images: np.ndarray
    labels: np.ndarray
    brain: np.ndarray
    spacing: tuple[float, float, float]  # mm along (Z, H, W)


def modalities_of(data_cfg: DictConfig) -> tuple[str, ...]:
    """`data.modality` as a tuple of lower-case names (a single name or a list)."""
    value = data_cfg.modality
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise ConfigError("data.modality is empty; name at least one modality (e.g. flair).")
    return tuple(str(n).lower() for n in names)


def find_cases(data_cfg: DictConfig, modalities: Sequence[str]) -> tuple[Path, list[CaseFiles]]:
    """The dataset's root folder and its cases (the phantom is generated first when needed)."""
    source = data_cfg.source
    if source == "phantom":
        from benchmark.data.phantom_files import ensure_phantom

        params = data_cfg.phantom
        root = ensure_phantom(
            Path(data_cfg.cache_dir).expanduser(), n_subjects=int(params.n_subjects),
            voxel_size_mm=float(params.voxel_size_mm), max_tumours=int(params.max_tumours),
            tumour_free_fraction=float(params.tumour_free_fraction), seed=int(params.seed),
        )
        return root, find_brats_cases(root, modalities)
    if data_cfg.root is None:
        raise ConfigError(f"data.root is not set for data source '{source}'; pass data.root=/path/to/dataset.")
    root = Path(str(data_cfg.root))
    if source == "brats":
        return root, find_brats_cases(root, modalities)
    if source == "msd":
        return root, find_msd_cases(root, modalities)
    if source == "folder":
        label_map = data_cfg.get("label_map")
        label_map = {int(k): int(v) for k, v in label_map.items()} if label_map else None
        return root, find_folder_cases(root, modalities, list(data_cfg.channel_names), label_map)
    raise ConfigError(f"data.source '{source}' is not one of phantom, brats, msd, folder.")


def split_subjects(subject_ids: Sequence[str], fractions: DictConfig, seed: int) -> dict[str, list[str]]:
    """Assign whole subjects to train/val/test (never slices), shuffled by the seed; each split gets one
    subject at least."""
    n = len(subject_ids)
    if n < 3:
        raise DataError(f"found {n} subject(s); a train/validation/test split needs 3 at least.")
    total = sum(float(fractions[s]) for s in SPLITS)
    n_val = max(1, round(n * float(fractions.val) / total))
    n_test = max(1, round(n * float(fractions.test) / total))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(f"found {n} subjects: too few for the split {OmegaConf.to_container(fractions)}.")
    order = np.random.default_rng([seed, 1]).permutation(n)
    ids = [subject_ids[i] for i in order]
    return {"train": ids[:n_train], "val": ids[n_train:n_train + n_val], "test": ids[n_train + n_val:]}


def load_subject(case: CaseFiles, modalities: Sequence[str], data_cfg: DictConfig) -> Subject:
    """Read, mask, normalise, optionally resample and reorient one case."""
    image, labels, spacing = load_case(case, modalities)
    if data_cfg.resample_mm:
        target = float(data_cfg.resample_mm)
        image = preprocess.resample(image, spacing, target, order=1)
        labels = preprocess.resample(labels, spacing, target, order=0)
        spacing = (target,) * 3
    brain = preprocess.brain_mask_from_image(image) | (labels > 0)
    image = preprocess.normalise_intensity(image, brain, data_cfg.clip_percentiles)
    display_spacing = (spacing[2], spacing[1], spacing[0])
    return Subject(case.subject_id, preprocess.to_display_order(image), preprocess.to_display_order(labels),
                   preprocess.to_display_order(brain), display_spacing)


def select_slices(subject: Subject, slices_cfg: DictConfig, rng: np.random.Generator) -> list[int]:
    """Axial slice indices by policy: `brain` (enough brain), `tumour` (with tumour), `mix` (a share of
    tumour slices, the rest tumour-free brain slices)."""
    brain_fraction = subject.brain.mean(axis=(1, 2))
    has_brain = np.flatnonzero(brain_fraction >= float(slices_cfg.min_brain_fraction))
    has_tumour = np.flatnonzero((subject.labels > 0).any(axis=(1, 2)))
    count = int(slices_cfg.per_subject)
    policy = slices_cfg.policy

    def pick(pool: np.ndarray, k: int) -> list[int]:
        return sorted(rng.choice(pool, size=min(k, len(pool)), replace=False).tolist()) if k > 0 else []

    if policy == "brain":
        return pick(has_brain, count)
    if policy == "tumour":
        return pick(has_tumour, count)
    if policy == "mix":
        tumour = pick(has_tumour, round(count * float(slices_cfg.tumour_fraction)))
        healthy = pick(np.setdiff1d(has_brain, has_tumour), count - len(tumour))
        top_up = pick(np.setdiff1d(has_tumour, tumour), count - len(tumour) - len(healthy))  # few healthy slices
        return sorted(tumour + healthy + top_up)
    raise ConfigError(f"data.slices.policy '{policy}' is not one of brain, tumour, mix.")


def subject_items(subject: Subject, data_cfg: DictConfig, rng: np.random.Generator) -> list[tuple]:
    """(image, label, brain, slice index) items of one subject, cropped/padded to data.size."""
    size = [int(s) for s in data_cfg.size]
    if data_cfg.mode == "3d":
        if len(size) != 3:
            raise ConfigError(f"data.mode=3d needs data.size=[D, H, W], got {size}.")
        centre = preprocess.bounding_box_centre(subject.brain)
        crop = [preprocess.crop_or_pad(a, size, centre) for a in (subject.images, subject.labels, subject.brain)]
        return [(*crop, -1)]
    if data_cfg.mode != "2d" or len(size) != 2:
        raise ConfigError(f"data.mode must be 2d with data.size=[H, W] or 3d with [D, H, W]; got "
                          f"{data_cfg.mode} with {size}.")
    centre = preprocess.bounding_box_centre(subject.brain.any(axis=0))
    items = []
    for z in select_slices(subject, data_cfg.slices, rng):
        crop = [preprocess.crop_or_pad(a[..., z, :, :], size, centre)
                for a in (subject.images, subject.labels, subject.brain)]
        items.append((*crop, z))
    return items


def _image_set(items: list[tuple], subject_ids: list[str], modalities: tuple[str, ...],
               spacing: tuple[float, ...], split: str) -> ImageSet:
    if not items:
        raise DataError(f"the {split} split is empty after slice selection; relax data.slices "
                        "(policy, min_brain_fraction) or add subjects.")
    images, labels, brains, indices = zip(*items, strict=True)
    return ImageSet(
        images=torch.from_numpy(np.stack(images)).float(),
        labels=torch.from_numpy(np.stack(labels)[:, None].astype(np.int64)),
        brain_masks=torch.from_numpy(np.stack(brains)[:, None].astype(bool)),
        subject_ids=subject_ids, slice_indices=list(indices), modalities=modalities, spacing=spacing,
    )


def prepare_data(data_cfg: DictConfig, seed: int) -> PreparedData:
    """Find, split, preprocess and slice the configured dataset into an ImageSet per split."""
    from benchmark.data.summary import summarise

    modalities = modalities_of(data_cfg)
    root, cases = find_cases(data_cfg, modalities)
    if not cases:
        raise DataError(f"{root}: no cases found (is data.source={data_cfg.source} the right layout?).")
    by_id = {case.subject_id: case for case in cases}
    splits = split_subjects(sorted(by_id), data_cfg.split, seed)
    sets = {}
    for split, ids in splits.items():
        items, owners, spacing = [], [], (1.0,) * (3 if data_cfg.mode == "3d" else 2)
        for index, subject_id in enumerate(ids):
            subject = load_subject(by_id[subject_id], modalities, data_cfg)
            spacing = subject.spacing if data_cfg.mode == "3d" else subject.spacing[1:]
            rng = np.random.default_rng([seed, 2, SPLITS.index(split), index])
            new_items = subject_items(subject, data_cfg, rng)
            items += new_items
            owners += [subject_id] * len(new_items)
        sets[split] = _image_set(items, owners, modalities, spacing, split)
        log.info("%s: %d subjects, %d items", split, len(ids), len(items))
    data = PreparedData(sets["train"], sets["val"], sets["test"], summary={})
    data.summary = summarise(data, data_cfg, splits, root)
    return data
