"""Validate the data config before anything is read or generated: one ConfigError naming the key and the fix.

Types and choices (data.source, data.mode, data.missing_label, data.slices.policy, ...) are the schema's
(benchmark.config_schema), checked while Hydra composes; these are the ranges and relations between keys."""

from __future__ import annotations

import math
import os
from typing import Any

from omegaconf import DictConfig, ListConfig

from benchmark.data.labels import resolve_label_map
from benchmark.errors import ConfigError


def _numbers(value: Any, key: str) -> list[float]:
    if not isinstance(value, list | tuple | ListConfig):
        raise ConfigError(f"{key}={value} must be a list of numbers, e.g. {key}=[128,128].")
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={list(value)} must hold numbers only.") from None


def check_geometry(data_cfg: DictConfig) -> None:
    """mode, size, field of view and resampling."""
    mode = str(data_cfg.mode)
    size = _numbers(data_cfg.size, "data.size")
    want = 2 if mode == "2d" else 3
    if len(size) != want or any(s < 8 or s != int(s) for s in size):
        raise ConfigError(f"data.size={[int(s) if s == int(s) else s for s in size]}: data.mode={mode} needs {want} "
                          f"whole numbers of pixels, each >= 8 (e.g. data.size={[128] * want}).")
    fov = data_cfg.fov_mm
    if fov is not None:
        values = [float(fov)] if isinstance(fov, int | float) else _numbers(fov, "data.fov_mm")
        if len(values) not in (1, want) or any(not 20 <= v <= 1000 for v in values):
            raise ConfigError(f"data.fov_mm={fov} must be one length in mm (20-1000, about 200 covers an adult "
                              f"brain) or {want} of them, or null to crop at the source spacing.")
    resample = data_cfg.resample_mm
    if resample is not None and not (isinstance(resample, int | float) and 0.1 <= float(resample) <= 20):
        raise ConfigError(f"data.resample_mm={resample} must be a spacing in mm (0.1-20) or null.")


def check_intensity_and_labels(data_cfg: DictConfig) -> None:
    """clip_percentiles and label_map."""
    clip = _numbers(data_cfg.clip_percentiles, "data.clip_percentiles")
    if len(clip) != 2 or not 0 <= clip[0] < clip[1] <= 100:
        raise ConfigError(f"data.clip_percentiles={clip} must be [low, high] with 0 <= low < high <= 100, "
                          "e.g. data.clip_percentiles=[1,99] (a reversed pair would make binary images).")
    resolve_label_map(data_cfg.label_map)


def check_split_and_slices(data_cfg: DictConfig) -> None:
    """Split fractions and the slice policy."""
    split = data_cfg.split
    try:
        fractions = {name: float(split[name]) for name in ("train", "val", "test")}
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"data.split={dict(split)} needs numeric train, val and test fractions.") from None
    if any(v <= 0 for v in fractions.values()):
        raise ConfigError(f"data.split={fractions}: every fraction must be positive.")
    slices = data_cfg.slices
    if slices.per_subject < 1:
        raise ConfigError(f"data.slices.per_subject={slices.per_subject} must be a whole number >= 1.")
    for key in ("tumour_fraction", "min_brain_fraction"):
        value = slices[key]
        if not 0 <= float(value) <= 1:
            raise ConfigError(f"data.slices.{key}={value} must be a fraction in [0, 1].")


def physical_memory() -> int:
    """This machine's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(data_cfg: DictConfig, n_subjects: int, channels: int, memory: int | None = None) -> None:
    """ConfigError when the prepared items alone (float32 images, uint8 labels, bool brain masks: 4 bytes a
    pixel per channel + 2) would take more than half of the machine's memory (`memory`, bytes): the study
    holds perturbed copies of them beside, so more cannot run."""
    memory = memory or physical_memory()
    pixels = math.prod(int(n) for n in data_cfg.size)
    items = n_subjects * (int(data_cfg.slices.per_subject) if str(data_cfg.mode) == "2d" else 1)
    need = items * pixels * (4 * channels + 2)
    if need > memory / 2:
        per_item = "slices" if str(data_cfg.mode) == "2d" else "volumes"
        raise ConfigError(
            f"data.size={[int(n) for n in data_cfg.size]}: {items} {per_item} ({n_subjects} subjects) of "
            f"{pixels:,} pixels x {channels} channel(s) need {need / 2**30:.1f} GiB for the prepared data alone, more "
            f"than half of this machine's {memory / 2**30:.1f} GiB (the study holds perturbed copies beside it). "
            "Lower data.size (a brain needs about 200 mm: data.size=[128,128] with data.fov_mm=192 is 1.5 mm "
            "pixels), data.slices.per_subject or the number of subjects.")


def check_data_config(data_cfg: DictConfig) -> None:
    """Every check above; called by the pipeline before any file is read or the phantom is generated."""
    source = str(data_cfg.source)
    check_geometry(data_cfg)
    if source == "cohort":
        from benchmark.data.cohort import check_cohort

        check_cohort(data_cfg)
    check_intensity_and_labels(data_cfg)
    check_split_and_slices(data_cfg)
    modality = data_cfg.modality
    channels = 1 if isinstance(modality, str) else max(len(modality), 1)
    subjects = int(data_cfg.phantom.n_subjects) if source == "phantom" else 3  # a split needs 3 at least
    check_memory(data_cfg, subjects, channels)
    if data_cfg.workers < 0:
        raise ConfigError(f"data.workers={data_cfg.workers} must be 0 or more: 0 uses every available core, 1 reads "
                          "subjects one after another.")
