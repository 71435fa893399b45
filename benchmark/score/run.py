"""One scoring run: read the folders, compute the suite, its floors and intervals, flag every generated
image, attach the stored study's verdicts. Nothing is written here (see `benchmark.score.outputs`)."""

from __future__ import annotations

import logging
import math
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from benchmark.errors import ConfigError
from benchmark.metrics.suite import MetricSuite
from benchmark.score.features import features_with_progress, load_disk_cache, save_disk_cache
from benchmark.score.flags import ImageFlags, image_flags, pixel_vectors
from benchmark.score.inputs import ScoreInputs, item_names, read_inputs
from benchmark.score.uncertainty import bootstrap_intervals, noise_floor
from benchmark.score.verdicts import Verdicts, load_verdicts
from benchmark.study import item_data
from benchmark.study.info import preprocessing_line

log = logging.getLogger("benchmark.score")


@dataclass
class ScoreResult:
    """Everything a scoring run reports: one row per metric output and the per-image flags."""

    inputs: ScoreInputs
    metrics: list[dict[str, Any]]
    flags: ImageFlags
    item_values: dict[str, np.ndarray]  # per generated image, by output (NaN where the metric has no value)
    verdicts: Verdicts
    settings: dict[str, Any]
    elapsed_s: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)  # the process's peak memory at each stage's end


def peak_rss_mib() -> float:
    """The peak resident memory of this process so far, MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def build_suite(cfg: DictConfig) -> MetricSuite:
    from benchmark.pipeline import build_metric_suite

    return build_metric_suite(cfg)


def _per_item(suite: MetricSuite, n: int) -> dict[str, np.ndarray]:
    """The suite's last per-item values spread over the n candidate positions."""
    out = {}
    for output, item in suite.items.items():
        values = np.full(n, math.nan)
        positions, chosen = item.positions.numpy(), item.values.numpy()
        if item.aggregate == "mean":
            values[positions] = chosen
        else:  # per-item MSE behind a pooled PSNR: report the item's own PSNR
            data_range = float(item.aggregate.partition(":")[2] or 1.0)
            with np.errstate(divide="ignore"):
                values[positions] = 10 * np.log10(data_range**2 / chosen)
        out[output] = values
    return out


def _flag_rows(name: str, suite: MetricSuite, inputs: ScoreInputs, device: torch.device
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The rows (generated, real, train) the flags measure distances on: pixels or an extractor's features."""
    if name == "pixels":
        train = None if inputs.train is None else pixel_vectors(inputs.train.images)
        return pixel_vectors(inputs.generated.images), pixel_vectors(inputs.real.images), train
    rows = [features_with_progress(suite, name, s, label, device) if s is not None else None
            for s, label in ((inputs.generated, "generated"), (inputs.real, "real"), (inputs.train, "train"))]
    return rows[0], rows[1], rows[2]


def score(cfg: DictConfig, device: torch.device) -> ScoreResult:
    """Score `cfg.generated` against `cfg.real` (and `cfg.train`); see the package docstring."""
    verdicts = load_verdicts(cfg.scorecard)  # a bad scorecard fails before any compute
    suite = build_suite(cfg)
    flags_cfg = cfg.flags
    for key in ("copy_features", "ood_features"):
        if flags_cfg[key] != "pixels" and flags_cfg[key] not in suite.extractors:
            raise ConfigError(f"flags.{key}={flags_cfg[key]}: choose pixels or one of metrics.extractors "
                              f"({sorted(suite.extractors)}).")
    elapsed: dict[str, float] = {}
    peaks: dict[str, float] = {}
    start = time.perf_counter()
    inputs = read_inputs(cfg)
    elapsed["read"] = time.perf_counter() - start
    peaks["read"] = peak_rss_mib()
    log.info("real %d, generated %d, train %s items of %s (%s)", len(inputs.real), len(inputs.generated),
             len(inputs.train) if inputs.train is not None else "no",
             "x".join(map(str, inputs.real.images.shape[2:])), "paired by name" if inputs.paired else "unpaired")

    start = time.perf_counter()
    cache = Path(str(cfg.feature_cache)).expanduser() if cfg.feature_cache else None
    extractors = sorted({m.feature_extractor for m in suite.metrics.values() if m.feature_extractor}
                        | ({flags_cfg.ood_features} - {"pixels"}))
    features = {}
    for name in extractors:
        misses = suite.cache.misses
        read = load_disk_cache(suite, cache, name)
        features[name] = {label: features_with_progress(suite, name, s, label, device)
                          for label, s in (("real", inputs.real), ("generated", inputs.generated),
                                           ("train", inputs.train)) if s is not None}
        log.info("%s features: %d items in the disk cache, %d computed", name, read, suite.cache.misses - misses)
    elapsed["features"] = time.perf_counter() - start
    peaks["features"] = peak_rss_mib()

    start = time.perf_counter()
    no_train = () if inputs.train is not None else ("memorisation",)
    unpaired = -torch.ones(len(inputs.real), dtype=torch.long)
    suite.compute(inputs.real, inputs.real, unpaired, inputs.train, device, skip_kinds=("reference", *no_train))
    real_data = item_data.capture(suite, inputs.real, np.asarray(inputs.real.subject_ids, dtype=str), device)
    skip = (*no_train, *(() if inputs.paired else ("reference",)))
    values = suite.compute(inputs.real, inputs.generated, inputs.reference_index, inputs.train, device,
                           skip_kinds=skip)
    described = suite.describe()
    per_item = _per_item(suite, len(inputs.generated))
    generated_data = item_data.capture(suite, inputs.generated, np.asarray(inputs.generated.subject_ids, dtype=str),
                                       device)
    elapsed["metrics"] = time.perf_counter() - start
    peaks["metrics"] = peak_rss_mib()
    for name in extractors:
        save_disk_cache(suite, cache, name)

    start = time.perf_counter()
    train_features = {name: rows["train"].numpy().astype(np.float64) for name, rows in features.items()
                      if "train" in rows}
    seed = int(cfg.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small linear-algebra calls: several times faster on one thread (as the study)
    try:
        floors = noise_floor(suite, real_data, train_features, int(cfg.resampling.floor_splits), seed)
        intervals = bootstrap_intervals(suite, real_data, generated_data, train_features,
                                        int(cfg.resampling.n_boot), seed)
    finally:
        torch.set_num_threads(threads)
    elapsed["resampling"] = time.perf_counter() - start
    peaks["resampling"] = peak_rss_mib()

    start = time.perf_counter()
    copy_generated, copy_real, copy_train = _flag_rows(str(flags_cfg.copy_features), suite, inputs, device)
    ood_generated, ood_real, _ = _flag_rows(str(flags_cfg.ood_features), suite, inputs, device)
    flags = image_flags(copy_generated, copy_real, copy_train, ood_generated, ood_real,
                        float(flags_cfg.copy_fpr), float(flags_cfg.ood_fpr), int(flags_cfg.ood_k),
                        str(flags_cfg.copy_features), str(flags_cfg.ood_features), seed)
    elapsed["flags"] = time.perf_counter() - start
    peaks["flags"] = peak_rss_mib()

    rows = [metric_row(output, values[output], described.get(output, {}), floors.get(output),
                       intervals.get(output), verdicts, suite.flags.get(output))
            for output in values]
    settings = {"preprocessing": preprocessing_line(cfg.data), "n_boot": int(cfg.resampling.n_boot),
                "floor_splits": int(cfg.resampling.floor_splits), "seed": seed,
                "flags": OmegaConf.to_container(flags_cfg, resolve=True),
                "feature_extractors": {name: suite.extractor(name).describe() for name in extractors},
                "sizes": {"real": len(inputs.real), "generated": len(inputs.generated),
                          "train": len(inputs.train) if inputs.train is not None else 0,
                          "paired": int((inputs.reference_index >= 0).sum())},
                "generated_names": item_names(inputs.generated)}
    return ScoreResult(inputs, rows, flags, per_item, verdicts, settings, elapsed, peaks)


def metric_row(output: str, value: float, described: dict, floor: tuple[float, float] | None,
               interval: tuple[float, float] | None, verdicts: Verdicts, flagged: str | None) -> dict[str, Any]:
    """One metric's row: value, interval, floor, where the value lies against the floor, and the verdicts."""
    floor_mean, floor_std = floor if floor else (math.nan, math.nan)
    low, high = interval if interval else (math.nan, math.nan)
    higher = described.get("higher_is_better")
    return {"metric": output, "kind": described.get("kind", ""), "value": value, "ci_low": low, "ci_high": high,
            "floor": floor_mean, "floor_std": floor_std, "higher_is_better": higher,
            "against_floor": against_floor(value, floor_mean, floor_std, higher),
            "verdicts": verdicts.note(output), "notes": flagged or ""}


def against_floor(value: float, floor: float, spread: float, higher_is_better: bool | None) -> str:
    """"within floor" when the value lies within 2 floor spreads of the real-vs-real mean, else whether it
    is worse or better than real data; "" without a floor."""
    if not all(math.isfinite(v) for v in (value, floor, spread)) or higher_is_better is None:
        return ""
    if abs(value - floor) <= 2 * spread:
        return "within floor"
    worse = value < floor if higher_is_better else value > floor
    return "worse than real" if worse else "better than real"
