"""After the sweep: the real-vs-real noise floor, the subject (cluster) bootstrap and the sample-size
curves, all recomputed from the stored per-item values and features (no network runs again except the
features of the held-out clean subjects, once per seed).

- Noise floor: the validation and test subjects are all clean, real and unseen by training. Pooled, they
  are split at random `floor_splits` times into two disjoint halves of as many subjects as the test set
  (or half the pool when it is smaller); every metric that needs no clean counterpart is computed between
  the halves (first as reference, second as candidate). Mean and std over the splits are the metric's
  real-vs-real floor and spread at the test set's size. Reference (paired) metrics have no real-vs-real
  counterpart: their clean value is the identity; their noise is the subject-bootstrap spread.
- Subject bootstrap: the test subjects are drawn with replacement `n_boot` times; in each draw every
  metric of every cell is recomputed on the items of the drawn subjects (clean reference items too), and
  every Dice from the per-subject values, so the cells of one draw share their subjects as in the study.
- Sample-size curves: FID-, KID-, PRDC-, FRD- and authenticity-type entries at n = 8, 16, 32, ..., 2048
  (the powers of two below the item count) and all items, for the clean held-out subjects and one
  perturbation per family (noise, morphological, memorisation) at severity 3, `curve_repeats` random draws
  each.

Writes floor.csv, resamples.parquet, curves.csv and resampling.json under the output folder.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from benchmark.atomic import replace_atomically, write_text_atomically
from benchmark.metrics.entries import AuthenticityMetric, FrechetMetric, KIDMetric, PRDCMetric
from benchmark.metrics.image_statistics import FrechetRadiomicsDistance
from benchmark.study import item_data
from benchmark.study.item_data import ItemData
from benchmark.study.recompute import evaluate

log = logging.getLogger("benchmark.study")
CURVE_METRICS = (FrechetMetric, KIDMetric, PRDCMetric, FrechetRadiomicsDistance, AuthenticityMetric)
CURVE_FAMILIES = {"noise": ("gaussian_noise",), "morphological": ("tumour_remove_keep", "tumour_remove"),
                  "memorisation": ("memorisation_copies",)}


def subject_positions(slot: np.ndarray) -> dict[str, np.ndarray]:
    """Positions of the items of each subject ("" = unattached items)."""
    return {s: np.flatnonzero(slot == s) for s in np.unique(slot)}


def draw_positions(groups: dict[str, np.ndarray], drawn: Iterable[str], rng: np.random.Generator) -> np.ndarray:
    """The positions of the drawn subjects' items (repeats for repeated subjects); unattached items are
    resampled on their own, with replacement."""
    parts = [groups[s] for s in drawn if s in groups]
    loose = groups.get("")
    if loose is not None and len(loose):
        parts.append(rng.choice(loose, len(loose), replace=True))
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def curve_sizes(n_all: int) -> list[int]:
    """Sample sizes of the curves: the powers of two from 8 to 2048 below `n_all`, then `n_all` itself."""
    return sorted({n for n in (2 ** np.arange(3, 12)).tolist() if n < n_all} | {n_all})


class StudyResampler:
    """Floor, bootstrap and curves of one finished sweep (see the module docstring). The three counts come from
    the study's `resampling` settings, their one home (conf/config.yaml)."""

    def __init__(self, runner: Any, n_boot: int, floor_splits: int, curve_repeats: int) -> None:
        self.runner, self.suite, self.data = runner, runner.suite, runner.data
        self.n_boot, self.floor_splits, self.curve_repeats = n_boot, floor_splits, curve_repeats
        self.output_dir = Path(runner.output_dir)
        self.timing: dict[str, float] = {}

    def run(self) -> None:
        """Floor, bootstrap and curves for every seed, single-threaded: the many small linear-algebra calls
        of a resample are several times slower when torch spreads each over threads."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._run()
        finally:
            torch.set_num_threads(threads)

    def _run(self) -> None:
        seeds = [int(s) for s in self.runner.cfg.study.seeds]
        floors, boots, curves = [], [], []
        for seed in seeds:
            cells = self._metric_cells(seed)
            if not any(key.severity == 0 for key in cells):
                log.warning("resampling: no clean metrics cell for seed %d; no floor or bootstrap", seed)
                continue
            clean = cells[next(key for key in cells if key.severity == 0)]
            train = self._train_features()
            held_out = self._held_out(seed)
            floors.append(self._timed("floor", self._floor, clean, held_out, train, seed))
            boots.append(self._timed("bootstrap", self._bootstrap, cells, clean, train, seed))
            curves.append(self._timed("curves", self._curves, cells, clean, held_out, train, seed))
        self._write("floor.csv", pd.concat(floors, ignore_index=True) if floors else pd.DataFrame())
        self._write("resamples.parquet", pd.concat(boots, ignore_index=True) if boots else pd.DataFrame())
        self._write("curves.csv", pd.concat(curves, ignore_index=True) if curves else pd.DataFrame())
        subjects = sorted(set(self.data.test.subject_ids))
        info = {"n_test_subjects": len(subjects), "test_subjects": subjects,
                "n_held_out_subjects": len(set(self.data.val.subject_ids)), "n_test_items": len(self.data.test),
                "n_boot": self.n_boot, "floor_splits": self.floor_splits, "curve_repeats": self.curve_repeats,
                "seeds": seeds, "elapsed_s": self.timing}
        write_text_atomically(self.output_dir / "resampling.json", json.dumps(info, indent=2))
        log.info("resampling: floor %.1f s, bootstrap %.1f s, curves %.1f s", *(self.timing.get(k, 0.0) for k in
                                                                                 ("floor", "bootstrap", "curves")))

    def _timed(self, name: str, work: Any, *args: Any) -> Any:
        start = time.perf_counter()
        result = work(*args)
        self.timing[name] = self.timing.get(name, 0.0) + time.perf_counter() - start
        return result

    def _metric_cells(self, seed: int) -> dict[Any, ItemData]:
        """Side files of the finished metrics cells of `seed`, by cell key."""
        out = {}
        for cell in self.runner.cells():
            if cell.key.stage != "metrics" or cell.key.seed != seed:
                continue
            if not self.runner.store.done(cell.key, cell.config_hash):
                continue
            data = item_data.load(item_data.item_path(self.runner.store.root, cell.key.file_name()))
            if data is not None:
                out[cell.key] = data
        return out

    def _train_features(self) -> dict[str, np.ndarray]:
        train = self.data.train
        return {name: self.suite.features_of(name, train, "train", self.runner.device).cpu().numpy().astype(np.float64)
                for name in sorted({m.feature_extractor for m in self.suite.metrics.values() if m.feature_extractor})}

    def _held_out(self, seed: int) -> ItemData:
        """Per-item values and features of the clean validation subjects (test set as reference)."""
        path = self.runner.store.root / item_data.ITEMS_FOLDER / f"held_out-seed{seed}.npz"
        data = item_data.load(path)
        if data is not None and len(data) == len(self.data.val):
            return data
        val, test = self.data.val, self.data.test
        self.suite.compute(test, val, -torch.ones(len(val), dtype=torch.long), self.data.train, self.runner.device,
                           skip_kinds=("reference",))
        data = item_data.capture(self.suite, val, np.asarray(val.subject_ids, dtype=str), self.runner.device)
        item_data.save(path, data)
        return data

    def _floor(self, clean: ItemData, held_out: ItemData, train: dict, seed: int) -> pd.DataFrame:
        return noise_floor(self.suite, clean, held_out, train, self.floor_splits, seed)

    def _bootstrap(self, cells: dict, clean: ItemData, train: dict, seed: int) -> pd.DataFrame:
        subjects = sorted(set(self.data.test.subject_ids))
        rng = np.random.default_rng(seed + 1)
        clean_groups = subject_positions(clean.slot)
        cell_groups = {key: subject_positions(data.slot) for key, data in cells.items()}
        dice = self._dice_cases(seed)
        records = []
        for b in range(self.n_boot):
            drawn = rng.choice(subjects, len(subjects), replace=True)
            ref_positions = draw_positions(clean_groups, drawn, rng)
            for key, data in cells.items():
                positions = draw_positions(cell_groups[key], drawn, rng)
                for quantity, value in evaluate(self.suite, clean, data, ref_positions, positions, train).items():
                    records.append((b, key.stage, key.perturbation, key.severity, seed, quantity, value))
            for (stage, perturbation, severity, quantity), per_case in dice.items():
                chosen = [per_case[s] for s in drawn if s in per_case]
                chosen += [v for s, v in per_case.items() if s not in set(subjects)]  # copies: kept as they are
                if chosen:
                    records.append((b, stage, perturbation, severity, seed, quantity, float(np.mean(chosen))))
        return pd.DataFrame.from_records(records, columns=["resample", "stage", "perturbation", "severity", "seed",
                                                           "quantity", "value"])

    def _dice_cases(self, seed: int) -> dict[tuple, dict[str, float]]:
        out: dict[tuple, dict[str, float]] = {}
        for cell in self.runner.store.cells():
            key = cell["key"]
            if key["seed"] != seed or cell.get("status") != "ok" or not key["stage"].startswith("dice_"):
                continue
            for case in cell.get("cases", []):
                if case.get("case_kind", "item") == "item" and ("/dice_" in case["quantity"]
                                                                or "/cldice_" in case["quantity"]):
                    out.setdefault((key["stage"], key["perturbation"], key["severity"], case["quantity"]),
                                   {})[str(case["case_id"])] = float(case["value"])
        return out

    def _curves(self, cells: dict, clean: ItemData, held_out: ItemData, train: dict, seed: int) -> pd.DataFrame:
        only = {m.name for m in self.suite.metrics.values() if isinstance(m, CURVE_METRICS)}
        sets = {"clean (held-out subjects)": held_out}
        for family, names in CURVE_FAMILIES.items():
            for key, data in cells.items():
                if key.perturbation in names and key.severity == 3:
                    sets[f"{key.perturbation} sev 3 ({family})"] = data
                    break
        n_all = len(clean)
        sizes = curve_sizes(n_all)
        rng = np.random.default_rng(seed + 2)
        records = []
        for label, data in sets.items():
            for n in sizes:
                for repeat in range(self.curve_repeats if n < n_all else 1):
                    ref = rng.choice(n_all, n, replace=False)
                    cand = rng.choice(len(data), min(n, len(data)), replace=False)
                    values = evaluate(self.suite, clean, data, ref, cand, train, only=only)
                    records += [{"seed": seed, "set": label, "n": n, "repeat": repeat, "quantity": q, "value": v}
                                for q, v in values.items()]
        return pd.DataFrame.from_records(records)

    def _write(self, name: str, frame: pd.DataFrame) -> None:
        path = self.output_dir / name
        if name.endswith(".csv"):
            replace_atomically(path, lambda tmp: frame.to_csv(tmp, index=False))
        else:
            replace_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))


def noise_floor(suite: Any, clean: ItemData, held_out: ItemData, train: dict, splits: int, seed: int) -> pd.DataFrame:
    """Real-vs-real values of every metric without a clean counterpart, over `splits` random disjoint
    subject halves of the pooled clean sets (as many subjects per half as `clean` has, at most half the
    pool). Columns seed, split, n_subjects, quantity, value."""
    pool = _concatenate(clean, held_out)
    groups = subject_positions(pool.slot)
    subjects = sorted(s for s in groups if s)
    k = min(len(set(clean.slot) - {""}), len(subjects) // 2)
    rng = np.random.default_rng(seed)
    records = []
    for split in range(splits if k >= 1 else 0):
        order = rng.permutation(subjects)
        first, second = draw_positions(groups, order[:k], rng), draw_positions(groups, order[k:2 * k], rng)
        values = evaluate(suite, pool, pool, first, second, train, skip_reference=True)
        records += [{"seed": seed, "split": split, "n_subjects": k, "quantity": q, "value": v}
                    for q, v in values.items()]
    return pd.DataFrame.from_records(records, columns=["seed", "split", "n_subjects", "quantity", "value"])


def _concatenate(first: ItemData, second: ItemData) -> ItemData:
    """Two sets' side data as one pool (positions of the second shifted past the first)."""
    shift = len(first)
    pool = ItemData(slot=np.concatenate([first.slot, second.slot]))
    for output in set(first.items) & set(second.items):
        (v1, p1, agg), (v2, p2, _) = first.items[output], second.items[output]
        pool.items[output] = (np.concatenate([v1, v2]), np.concatenate([p1, p2 + shift]), agg)
    for name in set(first.features) & set(second.features):
        (f1, p1), (f2, p2) = first.features[name], second.features[name]
        pool.features[name] = (np.concatenate([f1, f2]), np.concatenate([p1, p2 + shift]))
    for name in set(first.radiomics) & set(second.radiomics):
        pool.radiomics[name] = np.concatenate([first.radiomics[name], second.radiomics[name]])
    return pool
