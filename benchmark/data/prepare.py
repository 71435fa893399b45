"""From a data config to train/validation/test ImageSets: find cases, split by subject, preprocess,
extract slices (2D) or keep volumes (3D). Deterministic from the seed.

Subjects are prepared one at a time (streamed, never all volumes in memory), on every available core
(`data.workers`, 0 = all), and each prepared subject is cached by the content of its files and the
settings (`benchmark.data.cache`), so a rerun on unchanged data skips NIfTI decoding.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from benchmark.data import preprocess
from benchmark.data.cache import FileDigests, SubjectCache, file_digest, stamp, subject_key
from benchmark.data.cohort import COHORT, find_cohort_cases, stratified_order
from benchmark.data.config_checks import check_data_config, check_memory
from benchmark.data.imageset import ImageSet, PreparedData
from benchmark.data.input_checks import refuse_blank, refuse_duplicate_ids, refuse_duplicate_scans
from benchmark.data.label_convention import RememberedValues, detect_label_map
from benchmark.data.labels import PRESETS, resolve_label_map, scored_structures
from benchmark.data.readers import CaseFiles, find_brats_cases, find_folder_cases, find_msd_cases, load_case
from benchmark.data.slices import (
    SliceSelection,
    empty_split_message,
    field_of_view_brain,
    select_slices,
    selection_report,
    warn_unmet_policy,
)
from benchmark.data.sources import find_manifest_cases, find_pattern_cases
from benchmark.errors import ConfigError, DataError
from benchmark.workers import process_context, worker_count

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
    plane_zoom: tuple[float, float] = (1.0, 1.0)  # 2D: in-plane (H, W) zoom still to apply to chosen slices


def modalities_of(data_cfg: DictConfig) -> tuple[str, ...]:
    """`data.modality` as a tuple of lower-case names (a single name or a list)."""
    value = data_cfg.modality
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise ConfigError("data.modality is empty; name at least one modality (e.g. flair).")
    return tuple(str(n).lower() for n in names)


def find_cases(data_cfg: DictConfig, modalities: Sequence[str], digests: FileDigests | None = None
               ) -> tuple[Path, list[CaseFiles]]:
    """The dataset's root folder and its cases (the phantom is generated first when needed), each with the
    source's label map: the configured one, or with `data.label_map: null` the convention its label files
    share (`benchmark.data.label_convention`)."""
    source = data_cfg.source
    if source == "vessels":
        from benchmark.data.vessels.sources import find_vessel_cases

        root, cases = find_vessel_cases(data_cfg, modalities)
        for case in cases:
            case.source = case.source or "vessels"
        return root, cases
    if source == COHORT:
        root, cases, _ = find_cohort_cases(data_cfg, modalities, find_cases)
        return root, cases
    label_map = resolve_label_map(data_cfg.label_map)
    if source == "phantom":
        from benchmark.data.phantom_files import ensure_phantom

        params = data_cfg.phantom
        root = ensure_phantom(
            Path(data_cfg.cache_dir).expanduser(), n_subjects=int(params.n_subjects),
            voxel_size_mm=float(params.voxel_size_mm), max_tumours=int(params.max_tumours),
            tumour_free_fraction=float(params.tumour_free_fraction), seed=int(params.seed),
        )
        cases = with_label_map(find_brats_cases(root, modalities), PRESETS["brats2021"])  # as it writes them
        for case in cases:
            case.source = "phantom"
        return root, cases
    if source == "manifest":
        if not data_cfg.manifest:
            raise ConfigError("data.manifest is not set; pass data.manifest=/path/to/cases.csv.")
        manifest = Path(str(data_cfg.manifest)).expanduser()
        root, cases = manifest.parent, find_manifest_cases(manifest, modalities, label_map)  # a row's map wins
    elif data_cfg.root is None:
        raise ConfigError(f"data.root is not set for data source '{source}'; pass data.root=/path/to/dataset.")
    else:
        root = Path(str(data_cfg.root)).expanduser()
        cases = _find_in_root(data_cfg, root, modalities, label_map)
    undecided = [c for c in cases if c.label_map is None]
    if label_map is None and source in ("brats", "pattern", "manifest") and undecided:
        where = str(data_cfg.manifest) if source == "manifest" else str(root)
        digests = digests or file_digests(data_cfg)
        index = digests.index.with_name("label_values.json") if digests.index else None
        label_map = detect_label_map([c.label for c in undecided if c.label is not None], where,
                                     RememberedValues(index, digests.digest), _workers(data_cfg, len(undecided)))
    for case in cases:
        case.source = case.source or str(source)
        if case.label_map is None and label_map is not None:
            case.label_map = label_map
    return root, cases


def _find_in_root(data_cfg: DictConfig, root: Path, modalities: Sequence[str], label_map: dict[int, int] | None
                  ) -> list[CaseFiles]:
    source = data_cfg.source
    if source == "brats":
        return find_brats_cases(root, modalities)
    if source == "msd":
        return find_msd_cases(root, modalities)
    if source == "folder":
        return find_folder_cases(root, modalities, list(data_cfg.channel_names), label_map)
    if source == "pattern":
        return find_pattern_cases(root, OmegaConf.to_container(data_cfg.patterns), modalities, label_map)
    raise ConfigError(f"data.source '{source}' is not one of phantom, brats, msd, folder, pattern, manifest, "
                      "cohort, vessels.")


def with_label_map(cases: list[CaseFiles], label_map: dict[int, int]) -> list[CaseFiles]:
    """`cases`, each reading its labels with `label_map`."""
    for case in cases:
        case.label_map = label_map
    return cases


def apply_missing_label(cases: list[CaseFiles], policy: str) -> tuple[list[CaseFiles], list[str]]:
    """Cases without a label file: an error naming them (`error`), left out with a warning (`skip`), or
    kept as tumour-free (`empty`). Returns the cases kept and the subjects without a label."""
    unlabelled = [case for case in cases if case.label is None]
    names = [case.subject_id for case in unlabelled]
    if not unlabelled:
        return cases, []
    where = ", ".join(f"{c.subject_id} ({next(iter(c.images.values())).parent})" for c in unlabelled[:5])
    more = f" and {len(unlabelled) - 5} more" if len(unlabelled) > 5 else ""
    if policy == "error":
        raise DataError(f"{len(unlabelled)} of {len(cases)} cases have no label file: {where}{more}. Add the label "
                        "files, or set data.missing_label=skip (leave these cases out) or data.missing_label=empty "
                        "(read them as tumour-free, e.g. for unlabelled scans).")
    if policy == "skip":
        log.warning("data.missing_label=skip: %d of %d cases without a label file are left out: %s%s",
                    len(unlabelled), len(cases), where, more)
        return [case for case in cases if case.label is not None], names
    log.warning("data.missing_label=empty: %d cases without a label file are read as tumour-free", len(unlabelled))
    return cases, names


def split_subjects(subject_ids: Sequence[str], fractions: DictConfig, seed: int,
                   sources: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Assign whole subjects to train/val/test (never slices), shuffled by the seed; each split gets one
    subject at least. With several `sources` (one per subject) the order is stratified by source, so each
    split holds every source in proportion."""
    n = len(subject_ids)
    if n < 3:
        raise DataError(f"found {n} subject(s); a train/validation/test split needs 3 at least.")
    total = sum(float(fractions[s]) for s in SPLITS)
    n_val = max(1, round(n * float(fractions.val) / total))
    n_test = max(1, round(n * float(fractions.test) / total))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(f"found {n} subjects: too few for the split {OmegaConf.to_container(fractions)}.")
    if sources is not None and len(set(sources)) > 1:
        ids = stratified_order(subject_ids, sources, seed)
    else:
        ids = [subject_ids[i] for i in np.random.default_rng([seed, 1]).permutation(n)]
    return {"train": ids[:n_train], "val": ids[n_train:n_train + n_val], "test": ids[n_train + n_val:]}


def target_spacing(data_cfg: DictConfig, spacing: Sequence[float]) -> tuple[float, float, float]:
    """The (X, Y, Z) spacing in mm to resample a RAS+ volume to: `resample_mm` (isotropic) first, then the
    field of view `fov_mm` spread over `size` pixels in-plane (and in depth for 3D)."""
    target = [float(data_cfg.resample_mm)] * 3 if data_cfg.resample_mm else [float(s) for s in spacing]
    fov = data_cfg.fov_mm
    if fov is None:
        return tuple(target)
    size = [int(s) for s in data_cfg.size]  # display order: [H, W] or [D, H, W]
    fovs = [float(fov)] * len(size) if isinstance(fov, int | float) else [float(f) for f in fov]
    per_axis = [f / n for f, n in zip(fovs, size, strict=True)]
    target[0], target[1] = per_axis[-1], per_axis[-2]  # W runs along X, H along Y (anterior up)
    if len(size) == 3:
        target[2] = per_axis[0]
    return tuple(target)


def load_subject(case: CaseFiles, modalities: Sequence[str], data_cfg: DictConfig) -> Subject:
    """Read, mask, normalise, resample to the field of view and reorient one case. In 2D mode the in-plane
    resampling is left to the chosen slices (`plane_zoom`): a dozen slices cost less than a volume."""
    image, labels, spacing, provided = load_case(case, modalities)
    brain = (provided if provided is not None else preprocess.brain_mask_from_image(image)) | (labels > 0)
    refuse_blank(case, modalities, image, brain, provided)
    image = preprocess.normalise_intensity(image, brain, data_cfg.clip_percentiles)
    target = list(target_spacing(data_cfg, spacing))
    plane_zoom = (1.0, 1.0)
    if data_cfg.mode == "2d":
        plane_zoom = (spacing[1] / target[1], spacing[0] / target[0])  # display H runs along Y, W along X
        target[0], target[1] = spacing[0], spacing[1]
    if any(abs(s / t - 1) > 1e-3 for s, t in zip(spacing, target, strict=True)):
        image = preprocess.resample(image, spacing, target, order=1)
        labels = preprocess.resample(labels, spacing, target, order=0)
        brain = preprocess.resample(brain, spacing, target, order=0)
        image = image * brain  # zero outside the brain, as before resampling
        spacing = tuple(target)
    display_spacing = (spacing[2], spacing[1] / plane_zoom[0], spacing[0] / plane_zoom[1])
    return Subject(case.subject_id, preprocess.to_display_order(image), preprocess.to_display_order(labels),
                   preprocess.to_display_order(brain), display_spacing, plane_zoom)


def subject_items(subject: Subject, data_cfg: DictConfig, rng: np.random.Generator) -> list[tuple]:
    """(image, label, brain, slice index) items of one subject, cropped/padded to data.size."""
    return subject_slices(subject, data_cfg, rng)[0]


def subject_slices(subject: Subject, data_cfg: DictConfig, rng: np.random.Generator
                   ) -> tuple[list[tuple], SliceSelection | None]:
    """`subject_items` and, in 2D mode, the slice selection that chose them (None for 3D volumes)."""
    size = [int(s) for s in data_cfg.size]
    if data_cfg.mode == "3d":
        if len(size) != 3:
            raise ConfigError(f"data.mode=3d needs data.size=[D, H, W], got {size}.")
        centre = preprocess.bounding_box_centre(subject.brain)
        crop = [preprocess.crop_or_pad(a, size, centre) for a in (subject.images, subject.labels, subject.brain)]
        return [(*crop, -1)], None
    if data_cfg.mode != "2d" or len(size) != 2:
        raise ConfigError(f"data.mode must be 2d with data.size=[H, W] or 3d with [D, H, W]; got "
                          f"{data_cfg.mode} with {size}.")
    zoom = subject.plane_zoom
    resize = any(abs(f - 1) > 1e-3 for f in zoom)
    centre = preprocess.bounding_box_centre(subject.brain.any(axis=0)) * np.array(zoom)
    in_view = field_of_view_brain(subject.brain, zoom, size, centre)
    selection = select_slices(in_view.mean(axis=(1, 2)), (subject.labels > 0).any(axis=(1, 2)), data_cfg.slices,
                              rng)
    items = []
    for z in selection.indices:
        planes = [subject.images[:, z], subject.labels[z], subject.brain[z]]
        if resize:
            planes = [preprocess.zoom_plane(p, zoom, order=1 if i == 0 else 0) for i, p in enumerate(planes)]
            planes[0] = planes[0] * planes[2]  # zero outside the brain, as before resampling
        items.append((*[preprocess.crop_or_pad(p, size, centre) for p in planes], z))
    return items, selection


def prepare_subject(case: CaseFiles, modalities: Sequence[str], data_cfg: DictConfig, draw: list[int],
                    cache_dir: str | None, digests: dict[str, str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """One subject's items as compact arrays (images float32, labels uint8, brain bool, slice indices,
    spacing), from the cache when its files and settings are unchanged. Runs in a worker process.

    `digests`: known content digests by path; returns the arrays and the digests of the case's files.
    """
    kinds = {**{str(p): "image" for p in case.images.values()}, str(case.label): "label",
             str(case.brain_mask): "brain mask"}
    for path in case.files():
        if path.is_dir():
            raise DataError(f"{path}: a folder where the {kinds[str(path)]} file should be (subject "
                            f"{case.subject_id}); point to the NIfTI file, or rename the folder.")
        if not path.is_file():
            raise DataError(f"{path}: the {kinds[str(path)]} file does not exist (subject {case.subject_id}).")
    case_digests = {str(p): digests.get(str(p)) or file_digest(p) for p in case.files()}
    cache = SubjectCache(Path(cache_dir) if cache_dir else None)
    key = _cache_key(case, modalities, data_cfg, draw, case_digests)
    cached = cache.load(key)
    if cached is not None:
        return cached, case_digests
    subject = load_subject(case, modalities, data_cfg)
    items, selection = subject_slices(subject, data_cfg, np.random.default_rng(draw))
    spacing = subject.spacing if data_cfg.mode == "3d" else subject.spacing[1:]
    arrays = {"images": np.stack([i[0] for i in items]).astype(np.float32) if items else np.zeros((0,)),
              "labels": np.stack([i[1] for i in items]).astype(np.uint8) if items else np.zeros((0,), np.uint8),
              "brain": np.stack([i[2] for i in items]).astype(bool) if items else np.zeros((0,), bool),
              "indices": np.array([i[3] for i in items], dtype=np.int64), "spacing": np.array(spacing),
              "selection": np.array(json.dumps(selection.counts() if selection else None))}
    cache.save(key, arrays)
    return arrays, case_digests


CACHED_SETTINGS = ("mode", "size", "fov_mm", "resample_mm", "clip_percentiles", "slices", "label_map",
                   "missing_label", "channel_names")


def _cache_key(case: CaseFiles, modalities: Sequence[str], data_cfg: DictConfig, draw: list[int],
               digests: dict[str, str]) -> str:
    """The subject cache key: its files' digests, the settings that shape its items, its random draw."""
    settings = OmegaConf.to_container(data_cfg, resolve=True)
    if case.label_map is not None:  # the map the case is read with (a cohort's sources each have their own)
        settings["label_map"] = {str(k): v for k, v in sorted(case.label_map.items())}
    return subject_key([digests[str(p)] for p in case.files()],
                       {k: settings.get(k) for k in CACHED_SETTINGS} | {"modalities": list(modalities)}, draw)


class SplitArrays:
    """One split's items, written subject by subject into tensors sized for the most items the split can
    hold (memory never written is never resident), so a subject's arrays are freed as soon as they are
    copied and no subject is held twice: the peak is about the final arrays."""

    def __init__(self, capacity: int, channels: int, spatial: Sequence[int]) -> None:
        self.images = torch.empty((capacity, channels, *spatial), dtype=torch.float32)
        self.labels = torch.empty((capacity, 1, *spatial), dtype=torch.uint8)  # 0-3: int64 would take 8x
        self.brains = torch.empty((capacity, 1, *spatial), dtype=torch.bool)
        self.owners: list[str] = []
        self.indices: list[int] = []
        self.spacing: tuple[float, ...] | None = None
        self.selections: dict[str, dict[str, dict[str, int]] | None] = {}  # subject -> slice counts (2D)

    def add(self, subject_id: str, arrays: dict[str, np.ndarray]) -> None:
        at, k = len(self.indices), len(arrays["indices"])
        self.selections[subject_id] = json.loads(str(arrays["selection"])) if "selection" in arrays else None
        if k == 0:
            return
        self.spacing = self.spacing or tuple(arrays["spacing"].tolist())
        self.images[at:at + k] = torch.from_numpy(arrays["images"])
        self.labels[at:at + k, 0] = torch.from_numpy(arrays["labels"])
        self.brains[at:at + k, 0] = torch.from_numpy(arrays["brain"])
        self.owners += [subject_id] * k
        self.indices += arrays["indices"].tolist()

    def image_set(self, modalities: tuple[str, ...], split: str) -> ImageSet:
        n = len(self.indices)
        if n == 0:
            raise DataError(f"the {split} split is empty after slice selection; relax data.slices "
                            "(policy, min_brain_fraction) or add subjects.")
        tensors = [t if n == len(t) else t[:n].clone() for t in (self.images, self.labels, self.brains)]
        return ImageSet(images=tensors[0], labels=tensors[1], brain_masks=tensors[2], subject_ids=self.owners,
                        slice_indices=self.indices, modalities=modalities, spacing=self.spacing)


def _workers(data_cfg: DictConfig, n_jobs: int) -> int:
    return worker_count(int(data_cfg.workers), n_jobs)


def file_digests(data_cfg: DictConfig) -> FileDigests:
    """The remembered content digests of input files (under the cache folder when the prepared cache is on)."""
    cache_dir = Path(data_cfg.cache_dir).expanduser() if data_cfg.prepared_cache else None
    return FileDigests(cache_dir / "prepared" / "file_digests.json" if cache_dir else None)


def _prepare_all(jobs: list[tuple[str, CaseFiles, list[int]]], modalities: tuple[str, ...], data_cfg: DictConfig,
                 digests: FileDigests) -> tuple[dict[str, ImageSet], dict[str, dict]]:
    """Prepare every subject (in parallel when there are many) and stream it, in order, into its split's
    arrays; cached subjects are read when their turn comes. Remembers the files' digests. Returns the sets
    and, per split, each subject's slice-selection counts (None in 3D mode)."""
    cache_dir = str(Path(data_cfg.cache_dir).expanduser()) if data_cfg.prepared_cache else None
    cache = SubjectCache(Path(cache_dir) if cache_dir else None)  # a ConfigError if it cannot be made
    args = [(case, modalities, data_cfg, draw, cache_dir, _known_digests(digests, case)) for _, case, draw in jobs]
    keys = {index: _cache_key(case, modalities, data_cfg, draw, known)
            for index, (case, _, _, draw, _, known) in enumerate(args)
            if cache_dir and len(known) == len(case.files())}
    pending = [index for index in range(len(args)) if index not in keys or not cache.path(keys[index]).is_file()]
    per_subject = int(data_cfg.slices.per_subject) if data_cfg.mode == "2d" else 1
    counts = {split: sum(1 for s, _, _ in jobs if s == split) for split in SPLITS}
    outputs = {split: SplitArrays(counts[split] * per_subject, len(modalities), [int(n) for n in data_cfg.size])
               for split in SPLITS}
    workers = _workers(data_cfg, len(pending))
    with ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=process_context()))
            stack.callback(pool.shutdown, cancel_futures=True)  # on an error, drop the subjects not started
            stream = pool.map(_prepare_star, [args[i] for i in pending], chunksize=2)
        else:
            stream = (prepare_subject(*args[i]) for i in pending)
        waiting = set(pending)
        for index, (split, case, _) in enumerate(jobs):
            cached = None if index in waiting else cache.load(keys[index])
            if index in waiting:
                arrays, case_digests = next(stream)
            elif cached is None:  # damaged entry: prepare it here
                arrays, case_digests = prepare_subject(*args[index])
            else:
                arrays, case_digests = cached, args[index][5]
            outputs[split].add(case.subject_id, arrays)
            _remember(digests, case_digests)
    digests.save()
    log.info("prepared %d subjects (%d from the cache) with %d worker(s)", len(jobs), len(jobs) - len(pending),
             workers)
    selections = {split: outputs[split].selections for split in SPLITS}
    for split in SPLITS:
        if counts[split] and not outputs[split].indices and data_cfg.mode == "2d":
            raise DataError(empty_split_message(split, selections[split], data_cfg.slices))
    return {split: outputs[split].image_set(modalities, split) for split in SPLITS if counts[split]}, selections


def _known_digests(digests: FileDigests, case: CaseFiles) -> dict[str, str]:
    """The remembered content digests of the case's files that are still valid (same size and mtime)."""
    known = {}
    for path in case.files():
        entry = digests.known.get(str(Path(path).absolute()))
        if path.is_file() and entry is not None and entry[0] == stamp(path):
            known[str(path)] = entry[1]
    return known


def _prepare_star(arg: tuple) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    return prepare_subject(*arg)


def _remember(digests: FileDigests, case_digests: dict[str, str]) -> None:
    for path, value in case_digests.items():
        key = str(Path(path).absolute())
        now = stamp(Path(path))
        if digests.known.get(key) != [now, value]:
            digests.known[key], digests.changed = [now, value], True


def find_checked_cases(data_cfg: DictConfig, modalities: Sequence[str]
                       ) -> tuple[Path, list[CaseFiles], list[str], FileDigests]:
    """The cases to prepare, after the checks that need no pixel: none found, missing labels
    (`data.missing_label`), duplicate ids, the memory bound and one scan under two ids. Returns the root,
    the cases, the subjects without a label and the file digests (remembered for the preparation)."""
    digests = file_digests(data_cfg)
    root, cases = find_cases(data_cfg, modalities, digests)
    if not cases:
        raise DataError(f"{root}: no cases found (is data.source={data_cfg.source} the right layout?).")
    cases, unlabelled = apply_missing_label(cases, str(data_cfg.missing_label))
    refuse_duplicate_ids(cases)
    check_memory(data_cfg, len(cases), len(modalities))
    if str(data_cfg.duplicate_scans) == "error":
        refuse_duplicate_scans(cases, digests.digest, _workers(data_cfg, len(cases)))
    return root, cases, unlabelled, digests


def prepare_data(data_cfg: DictConfig, seed: int) -> PreparedData:
    """Find, split, preprocess and slice the configured dataset into an ImageSet per split."""
    from benchmark.data.summary import summarise

    check_data_config(data_cfg)
    modalities = modalities_of(data_cfg)
    root, cases, unlabelled, digests = find_checked_cases(data_cfg, modalities)
    by_id = {case.subject_id: case for case in cases}
    ids = sorted(by_id)
    splits = split_subjects(ids, data_cfg.split, seed, [by_id[i].source for i in ids])
    jobs = [(split, by_id[subject_id], [seed, 2, SPLITS.index(split), index])
            for split, ids in splits.items() for index, subject_id in enumerate(ids)]
    sets, selections = _prepare_all(jobs, modalities, data_cfg, digests)
    contributing = {split: [s for s in ids if s in set(sets[split].subject_ids)] for split, ids in splits.items()}
    for split in SPLITS:
        log.info("%s: %d subjects, %d items", split, len(contributing[split]), len(sets[split]))
    data = PreparedData(sets["train"], sets["val"], sets["test"], summary={})
    data.summary = summarise(data, data_cfg, contributing, root)
    data.summary["sources"] = source_summary(cases, contributing)
    if data_cfg.mode == "2d":
        data.summary["slice_selection"] = report = selection_report(selections, data_cfg)
        warn_unmet_policy(report)
    data.summary["unlabelled_cases"] = {"policy": str(data_cfg.missing_label),
                                        "count": len(unlabelled), "subjects": unlabelled}
    return data


def source_summary(cases: Sequence[CaseFiles], splits: dict[str, list[str]]) -> dict[str, Any]:
    """Per source: its subjects by split, the label map it is read with, and the structures its subjects are
    scored on (a region the source cannot contain, such as enhancing tumour in BRATS 2012, is n/a)."""
    split_of = {subject: split for split, ids in splits.items() for subject in ids}
    out: dict[str, Any] = {}
    for case in cases:
        if case.subject_id not in split_of:
            continue
        entry = out.setdefault(case.source, {"subjects": {split: [] for split in SPLITS},
                                             "label_map": case.label_map,
                                             "scored_structures": scored_structures(case.label_map)})
        entry["subjects"][split_of[case.subject_id]].append(case.subject_id)
    for entry in out.values():
        entry["not_scored"] = [s for s in ("WT", "TC", "ET", "NCR", "ED") if s not in entry["scored_structures"]]
        entry["label_map"] = None if entry["label_map"] is None else {str(k): v for k, v in entry["label_map"].items()}
    return out
