"""The site-shift cell: clean images of one source against clean images of another (a shift nobody
simulated: other scanners, other preprocessing), beside each metric's within-source noise floor.

For every ordered pair of sources (A, B) with B the larger, `draws` times: the n subjects of A (n = the
smaller of |A| and half of |B|) against n random subjects of B gives the shift; n subjects of B against
n other subjects of B gives the within-source floor at the same sample size. Both are computed from the
stored per-item features of the clean cell (no network runs again); only metrics without a clean
counterpart (distribution, no-reference) are defined between different subjects. `z` is the shift's
distance from the floor in floor standard deviations, signed so that positive means "looks worse".
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd

from benchmark.numerics import spread
from benchmark.study.item_data import ItemData
from benchmark.study.recompute import evaluate
from benchmark.study.resampling import draw_positions, subject_positions

COLUMNS = ["source_a", "source_b", "n_subjects", "quantity", "higher_is_better", "shift", "shift_std", "floor",
           "floor_std", "z", "draws"]


def site_shift(suite: Any, clean: ItemData, source_of: dict[str, str], draws: int, seed: int) -> pd.DataFrame:
    """One row per (source pair, metric): see the module docstring."""
    groups = subject_positions(clean.slot)
    by_source: dict[str, list[str]] = {}
    for subject in sorted(s for s in groups if s):
        by_source.setdefault(source_of.get(subject, ""), []).append(subject)
    by_source.pop("", None)
    description = suite.describe()
    rng = np.random.default_rng([seed, 7])
    records = []
    for a, b in itertools.combinations(sorted(by_source, key=lambda s: (len(by_source[s]), s)), 2):
        small, large = by_source[a], by_source[b]
        n = min(len(small), len(large) // 2)
        if n < 1:
            continue
        shifts, floors = [], []
        for _ in range(draws):
            drawn_a = rng.choice(small, n, replace=False)
            order = rng.permutation(large)
            first, second = order[:n], order[n:2 * n]
            positions_a = draw_positions(groups, drawn_a, rng)
            positions_b1, positions_b2 = draw_positions(groups, first, rng), draw_positions(groups, second, rng)
            shifts.append(evaluate(suite, clean, clean, positions_b1, positions_a, {}, skip_reference=True))
            floors.append(evaluate(suite, clean, clean, positions_b1, positions_b2, {}, skip_reference=True))
        for quantity in sorted(set(shifts[0]) & set(floors[0])):
            if description.get(quantity, {}).get("kind") == "memorisation":
                continue  # judged against each subject's training set, not between the two sources
            shift = np.array([s[quantity] for s in shifts], dtype=float)
            floor = np.array([f[quantity] for f in floors], dtype=float)
            if not (np.isfinite(shift).all() and np.isfinite(floor).all()):
                continue
            higher = bool(description.get(quantity, {}).get("higher_is_better", True))
            floor_spread = spread(floor)
            worse = (floor.mean() - shift.mean()) if higher else (shift.mean() - floor.mean())
            records.append({"source_a": a, "source_b": b, "n_subjects": n, "quantity": quantity,
                            "higher_is_better": higher, "shift": float(shift.mean()),
                            "shift_std": spread(shift), "floor": float(floor.mean()), "floor_std": floor_spread,
                            "z": float(worse / floor_spread) if floor_spread > 0 else math.nan, "draws": draws})
    return pd.DataFrame.from_records(records, columns=COLUMNS)
