"""Subject-level k-fold cross-validation (`study.cv.folds`): every subject is prepared once and is a test
subject in exactly one fold.

The subjects are put in one order stratified by source (`benchmark.data.cohort.stratified_order`) and dealt
round-robin into k folds, so each fold holds every source in proportion. Fold f tests on fold f, selects
its segmentation checkpoint on fold f + 1 (mod k) and trains on the other k - 2 folds. A subject's slices
are drawn once, independently of the fold, so a subject is the same items in every fold it appears in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig

from benchmark.data.cohort import stratified_order
from benchmark.data.config_checks import check_data_config
from benchmark.data.imageset import ImageSet, PreparedData
from benchmark.data.prepare import SPLITS, _prepare_all, find_checked_cases, modalities_of, source_summary
from benchmark.data.slices import selection_report, warn_unmet_policy
from benchmark.errors import ConfigError, DataError

log = logging.getLogger(__name__)
MIN_FOLDS = 3  # a test fold, a validation fold and at least one training fold


@dataclass
class Folds:
    """Every prepared subject (`everyone`), the k fold datasets and the data summary of the whole cohort."""

    everyone: ImageSet
    folds: list[PreparedData]
    summary: dict[str, Any]


def fold_subjects(subject_ids: list[str], sources: list[str], k: int, seed: int) -> list[list[str]]:
    """The k folds' subjects: the source-stratified order dealt round-robin."""
    order = stratified_order(subject_ids, sources, seed)
    return [order[f::k] for f in range(k)]


def check_folds(k: Any, subject_ids: list[str], sources: list[str]) -> int:
    """`study.cv.folds` as a whole number that every source can fill (ConfigError naming the source)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < MIN_FOLDS:
        raise ConfigError(f"study.cv.folds={k} must be a whole number >= {MIN_FOLDS} (each fold tests on one fold, "
                          "selects checkpoints on the next and trains on the rest), or null to use data.split.")
    if k > len(subject_ids):
        raise ConfigError(f"study.cv.folds={k} exceeds the {len(subject_ids)} subjects; choose at most "
                          f"study.cv.folds={len(subject_ids)} (every fold needs a test subject).")
    counts = {source: sources.count(source) for source in sorted(set(sources))}
    if len(counts) > 1:
        small = {source: n for source, n in counts.items() if n < k}
        if small:
            source, n = next(iter(small.items()))
            raise ConfigError(f"study.cv.folds={k} exceeds the {n} subjects of source '{source}' (folds are "
                              f"stratified by source, so every fold needs one of each); choose study.cv.folds<={n} "
                              f"or drop the source with ~data.sources.{source}.")
    return int(k)


def prepare_folds(data_cfg: DictConfig, seed: int, k: Any) -> Folds:
    """Find and prepare every subject once, then build the k fold datasets (see the module docstring)."""
    from benchmark.data.summary import summarise

    check_data_config(data_cfg)
    modalities = modalities_of(data_cfg)
    root, cases, unlabelled, digests = find_checked_cases(data_cfg, modalities)
    by_id = {case.subject_id: case for case in cases}
    ids = sorted(by_id)
    sources = [by_id[i].source for i in ids]
    k = check_folds(k, ids, sources)
    groups = fold_subjects(ids, sources, k, seed)
    jobs = [("train", by_id[subject], [seed, 2, len(SPLITS), index]) for index, subject in enumerate(ids)]
    sets, selections = _prepare_all(jobs, modalities, data_cfg, digests)
    everyone = sets["train"]
    prepared = set(everyone.subject_ids)
    groups = [[s for s in group if s in prepared] for group in groups]  # a subject that gave no slice is named
    ids = [s for s in ids if s in prepared]  # in the slice selection report and not counted
    folds = []
    for f in range(k):
        split = {"test": groups[f], "val": groups[(f + 1) % k]}
        split["train"] = [s for g, group in enumerate(groups) if g not in (f, (f + 1) % k) for s in group]
        sets = {name: _subset(everyone, subjects) for name, subjects in split.items()}
        if not bool(sets["val"].tumour_present.any()):
            raise DataError(f"fold {f} of study.cv.folds={k} has no tumour in its validation subjects "
                            f"({', '.join(split['val'])}), so its checkpoint cannot be selected on Dice; choose "
                            "another study.cv.folds or seed, or raise data.slices.tumour_fraction.")
        fold = PreparedData(sets["train"], sets["val"], sets["test"], summary={})
        fold.summary = summarise(fold, data_cfg, {s: split[s] for s in SPLITS}, root)
        fold.summary["sources"] = source_summary(cases, {s: split[s] for s in SPLITS})
        folds.append(fold)
    everything = {"train": [], "val": [], "test": ids}
    summary = summarise(PreparedData(everyone, everyone, everyone, summary={}, fingerprint="-"), data_cfg,
                        everything, root)
    first = folds[0].summary["splits"]
    summary["splits"] = {"train (each fold)": first["train"], "val (each fold)": first["val"],
                         "test (all folds)": summary["splits"]["test"]}
    summary["sources"] = source_summary(cases, everything)
    if data_cfg.mode == "2d":
        summary["slice_selection"] = report = selection_report({"test": selections["train"]}, data_cfg)
        warn_unmet_policy(report)
    summary["cross_validation"] = {"folds": k, "test_subjects": groups, "seed": seed,
                                   "scheme": "fold f: test fold f, validation fold f+1 (mod k), train the rest"}
    summary["unlabelled_cases"] = {"policy": str(data_cfg.missing_label),
                                   "count": len(unlabelled), "subjects": unlabelled}
    log.info("cross-validation: %d folds of %s subjects", k, [len(g) for g in groups])
    return Folds(everyone, folds, summary)


def _subset(images: ImageSet, subjects: list[str]) -> ImageSet:
    wanted = set(subjects)
    return images.subset(torch.tensor([i for i, s in enumerate(images.subject_ids) if s in wanted], dtype=torch.long))
