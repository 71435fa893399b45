"""Real-vs-real noise floors and bootstrap intervals of a scoring run, recomputed from stored per-item
values and features with the study's `benchmark.study.recompute.evaluate` (no network runs again).

- Floor: the real set's subjects are split `floor_splits` times at random into two disjoint halves; every
  metric without a clean counterpart is computed between them (first half as reference). Mean and std
  over the splits are its floor and spread. Halves hold half the real items, so sample-size-biased metrics
  (FID, KID) read somewhat higher than they would at the full size: the floor is conservative.
- Interval: `n_boot` resamples draw the real and the generated subjects with replacement (one subject per
  file for flat folders of slices); the 2.5th and 97.5th percentiles of each metric over them.
"""

from __future__ import annotations

import math

import numpy as np

from benchmark.metrics.suite import MetricSuite
from benchmark.study.item_data import ItemData
from benchmark.study.recompute import evaluate
from benchmark.study.resampling import draw_positions, subject_positions


def noise_floor(suite: MetricSuite, real: ItemData, train: dict[str, np.ndarray], splits: int,
                seed: int) -> dict[str, tuple[float, float]]:
    """{output: (mean, std)} of the real-vs-real values over `splits` random subject halves."""
    groups = subject_positions(real.slot)
    subjects = sorted(groups)
    k = len(subjects) // 2
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    for _ in range(splits if k >= 2 else 0):
        order = rng.permutation(subjects)
        first, second = draw_positions(groups, order[:k], rng), draw_positions(groups, order[k:2 * k], rng)
        for output, value in evaluate(suite, real, real, first, second, train, skip_reference=True).items():
            values.setdefault(output, []).append(value)
    return {output: _mean_std(v) for output, v in values.items()}


def bootstrap_intervals(suite: MetricSuite, real: ItemData, generated: ItemData, train: dict[str, np.ndarray],
                        n_boot: int, seed: int) -> dict[str, tuple[float, float]]:
    """{output: (2.5th, 97.5th percentile)} over `n_boot` subject resamples of both sets."""
    real_groups, generated_groups = subject_positions(real.slot), subject_positions(generated.slot)
    real_subjects, generated_subjects = sorted(real_groups), sorted(generated_groups)
    rng = np.random.default_rng(seed + 1)
    values: dict[str, list[float]] = {}
    for _ in range(n_boot):
        ref = draw_positions(real_groups, rng.choice(real_subjects, len(real_subjects)), rng)
        cand = draw_positions(generated_groups, rng.choice(generated_subjects, len(generated_subjects)), rng)
        for output, value in evaluate(suite, real, generated, ref, cand, train).items():
            values.setdefault(output, []).append(value)
    return {output: _percentiles(v) for output, v in values.items()}


def _mean_std(values: list[float]) -> tuple[float, float]:
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if not len(finite):
        return math.nan, math.nan
    return float(finite.mean()), float(finite.std(ddof=1)) if len(finite) > 1 else math.nan


def _percentiles(values: list[float]) -> tuple[float, float]:
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(finite) < 0.9 * len(values) or not len(finite):
        return math.nan, math.nan  # undefined on too many resamples to carry an interval
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)
