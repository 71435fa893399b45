"""The cross-validated study (`study.cv.folds=k`): one sweep per fold, then one pooled store the report reads.

Each fold runs the ordinary sweep (`StudyRunner`) on its own train / validation / test subjects into its own
store, `folds/fold<f>/` under output_dir, so a fold's cells and its segmentation checkpoints (cached by
content) are kept and a rerun resumes. The pooled cell of every key is then written to `store/` (and to
results.csv / cases.parquet), and the noise floor and subject bootstrap run on the pooled cells. Folds are
independent jobs: `study.cv.only_fold=<f>` runs one fold's sweep (a Hydra multirun job per fold or per
perturbation, on joblib or submitit), and a final plain run, whose fold cells are then all done, pools them.

- Dice and HD95 (both protocols): each subject's value comes from the fold that tested it (a model that
  never saw it); the pooled value is the mean over all subjects, and the per-subject cases are kept.
- Metrics: recomputed from the folds' stored per-item values and features on the union of all folds'
  test items (every subject once) against the union of their clean items, so a distribution metric is
  one estimate on all subjects, not an average of k small-sample estimates (FID and KID are biased at
  small n). Authenticity and copy rate are per-item decisions: each item is judged against its own fold's
  training set and the pooled value is the share over all test items (equal to the folds' values averaged
  with weights by their number of items), so the bootstrap resamples them like any item average. Outputs
  that need a whole training set (the FID train gap) or the images themselves (MS-SSIM diversity, Inception
  Score) cannot be recomputed on the union: they are each fold's value, averaged with weights by the fold's
  number of test items, and get no interval. `cv.json` names the pooling of each output.
- Site shift (several sources): `site_shift.csv`, see `benchmark.study.site_shift`.
- Noise floor: real-vs-real halves of all subjects' clean items. Subject bootstrap: all subjects drawn
  with replacement; the FID train gap gets no bootstrap interval (its training set differs by fold).
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from benchmark.atomic import replace_atomically, write_text_atomically
from benchmark.data.folds import MIN_FOLDS, Folds
from benchmark.errors import ConfigError
from benchmark.study import item_data
from benchmark.study.item_data import ItemData
from benchmark.study.recompute import evaluate, memorisation_items
from benchmark.study.resampling import StudyResampler, _concatenate
from benchmark.study.runner import Cell, StudyRunner
from benchmark.study.scope import hash_config
from benchmark.study.store import CellKey, ResultsStore

log = logging.getLogger("benchmark.study")
POOLING_SCHEME = 2  # part of a pooled cell's identity: pooled cells of an earlier scheme are recomputed
SITE_SHIFT_DRAWS = 20  # draws of the site-shift cell (each two evaluations of every distribution metric)


def fold_dir(output_dir: Path, fold: int) -> Path:
    return Path(output_dir) / "folds" / f"fold{fold}"


def check_cv_config(cfg: DictConfig) -> int | None:
    """`study.cv.folds` (None: off); cross-validation scores perturbations, not generated sets."""
    folds = cfg.study.cv.folds
    if folds is None:
        return None
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < MIN_FOLDS:
        raise ConfigError(f"study.cv.folds={folds} must be a whole number >= {MIN_FOLDS} (each fold tests on one "
                          "fold, selects checkpoints on the next and trains on the rest), or null to use data.split.")
    only = cfg.study.cv.only_fold
    if only is not None and (isinstance(only, bool) or not isinstance(only, int) or not 0 <= only < folds):
        raise ConfigError(f"study.cv.only_fold={only} is not a fold of study.cv.folds={folds}; choose 0 to {folds - 1} "
                          "(a multirun job per fold: study.cv.only_fold=0,1,...) or null for every fold.")
    if cfg.study.generated or cfg.generators:
        raise ConfigError("study.cv.folds is set together with generated sets (study.generated or generators=...); "
                          "a generated set belongs to one test split, so score it without cross-validation "
                          "(study.cv.folds=null).")
    return folds


def run_cv_study(cfg: DictConfig, folds: Folds, device: Any, output_dir: Path, perturbations: dict, suite: Any
                 ) -> list[StudyRunner]:
    """Every fold's sweep, then the pooled store and its resampling (see the module docstring)."""
    fold_cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    OmegaConf.update(fold_cfg, "study.resampling.enabled", False, force_add=True)
    runners = []
    only = cfg.study.cv.only_fold
    for f, data in enumerate(folds.folds):
        if only is not None and f != int(only):
            continue
        log.info("cross-validation fold %d of %d: %d train, %d validation, %d test subjects", f + 1,
                 len(folds.folds), len(set(data.train.subject_ids)), len(set(data.val.subject_ids)),
                 len(set(data.test.subject_ids)))
        runner = StudyRunner(fold_cfg, data, device, fold_dir(output_dir, f), perturbations, suite)
        runner.run()
        runners.append(runner)
    partial = [cfg.study.only_perturbation, cfg.study.only_severity, only]
    if any(value is not None for value in partial):
        log.info("pooling skipped in a partial job (study.only_*, study.cv.only_fold): run once more without them; "
                 "every fold's cells are then done and only the pooled store, floor and bootstrap are computed")
        return runners
    pooled = PooledStudy(cfg, runners, device, output_dir, suite)
    pooled.write()
    settings = cfg.study.resampling
    if settings.enabled:
        PooledResampler(pooled, int(settings.n_boot), int(settings.floor_splits), int(settings.curve_repeats)).run()
        write_site_shift(pooled, folds, min(int(settings.floor_splits), SITE_SHIFT_DRAWS))
    return runners


def write_site_shift(pooled: PooledStudy, folds: Folds, draws: int) -> None:
    """site_shift.csv: every pair of sources against the within-source floor (`benchmark.study.site_shift`),
    from the pooled clean items of the first seed; nothing for a single-source study."""
    from benchmark.study.runner import SubjectSources
    from benchmark.study.site_shift import site_shift

    source_of = SubjectSources.from_summary(folds.summary).source_of
    if len(set(source_of.values())) < 2:
        return
    seed = int(pooled.cfg.study.seeds[0])
    clean = next((item_data.load(item_data.item_path(pooled.store.root, c.key.file_name())) for c in pooled.cells()
                  if c.key.stage == "metrics" and c.key.severity == 0 and c.key.seed == seed), None)
    if clean is None:
        log.warning("site shift: no pooled clean items for seed %d", seed)
        return
    frame = site_shift(pooled.suite, clean, source_of, draws, seed)
    replace_atomically(pooled.output_dir / "site_shift.csv", lambda tmp: frame.to_csv(tmp, index=False))
    log.info("site shift: %d metrics between %d sources", frame["quantity"].nunique(), len(set(source_of.values())))


class PooledStudy:
    """The pooled cells of a cross-validated study, written to `output_dir/store`; it offers the runner's
    interface (cells, store, suite, data, device, cfg) that the resampler reads."""

    def __init__(self, cfg: DictConfig, runners: list[StudyRunner], device: Any, output_dir: Path, suite: Any) -> None:
        self.cfg, self.runners, self.device, self.output_dir, self.suite = cfg, runners, device, Path(output_dir), suite
        self.store = ResultsStore(self.output_dir / "store", export_dir=self.output_dir)
        tests = [runner.data.test for runner in runners]
        everyone = tests[0].concatenate(tests)
        self.data = SimpleNamespace(test=everyone, val=everyone.subset([]), train=None)
        self.pooling: dict[str, set[str]] = defaultdict(set)
        members: dict[CellKey, list[tuple[StudyRunner, Cell]]] = defaultdict(list)
        for runner in runners:
            for cell in runner.cells():
                members[cell.key].append((runner, cell))
        self.members = dict(members)
        self._train_cache: dict[StudyRunner, dict[str, np.ndarray]] = {}
        self._cells = [Cell(key, group[0][1].family,
                            hash_config("cv", POOLING_SCHEME, [c.config_hash for _, c in group]))
                       for key, group in self.members.items()]

    def cells(self) -> list[Cell]:
        return list(self._cells)

    def write(self) -> None:
        """Pool every key whose fold cells are all finished; a key with a failed fold cell is a failed cell
        naming the fold."""
        for cell in self._cells:
            group = self.members[cell.key]
            stored = [runner.store.read_cell(c.key) for runner, c in group]
            failed = [f for f, s in enumerate(stored) if s is None or s.get("status") != "ok"]
            if failed:
                reason = next((s.get("error") for s in stored if s is not None and s.get("error")), "not computed")
                self.store.write_cell(cell.key, cell.config_hash, [], status="failed", family=cell.family,
                                      error=f"fold {failed[0]} of this cell failed: {reason}")
                continue
            if self.store.done(cell.key, cell.config_hash) and (cell.key.stage != "metrics" or self._items_saved(cell)):
                continue
            if cell.key.stage == "metrics":
                rows, cases = self._pool_metrics(cell.key, stored), []
            else:
                rows, cases = pool_dice(stored)
            elapsed = sum(float(s.get("elapsed_s", 0.0)) for s in stored)
            self.store.write_cell(cell.key, cell.config_hash, rows, cases=cases, elapsed_s=elapsed, family=cell.family)
        write_text_atomically(self.output_dir / "cv.json", json.dumps(
            {"folds": len(self.runners), "fold_dirs": [str(r.output_dir) for r in self.runners],
             "test_subjects": [sorted(set(r.data.test.subject_ids)) for r in self.runners],
             "pooling": {q: sorted(methods) for q, methods in sorted(self.pooling.items())}}, indent=2))

    def _items_saved(self, cell: Cell) -> bool:
        return item_data.item_path(self.store.root, cell.key.file_name()).is_file()

    def _fold_items(self, key: CellKey) -> list[ItemData] | None:
        loaded = [item_data.load(item_data.item_path(runner.store.root, key.file_name())) for runner, _ in
                  self.members[key]]
        return None if any(data is None for data in loaded) else loaded

    def _clean_items(self, seed: int) -> list[ItemData] | None:
        """The folds' clean (severity 0) side data of `seed`: the shared clean cells store it once."""
        for key in self.members:
            if key.stage == "metrics" and key.severity == 0 and key.seed == seed:
                items = self._fold_items(key)
                if items is not None:
                    return items
        return None

    def _pool_metrics(self, key: CellKey, stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Recompute on the union of the folds' items where the stored data allow, else the weighted mean."""
        clean = self._clean_items(key.seed)
        candidate = self._fold_items(key) or (clean if key.severity == 0 else None)
        union: dict[str, float] = {}
        if candidate is not None and clean is not None:
            cand_all, clean_all = union_items(candidate), union_items(clean)
            cand_all.items |= self._memorisation_items(candidate)
            item_data.save(item_data.item_path(self.store.root, key.file_name()), cand_all)
            union = evaluate(self.suite, clean_all, cand_all, np.arange(len(clean_all)), np.arange(len(cand_all)), {})
        by_quantity: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for cell in stored:
            for row in cell["rows"]:
                by_quantity[row["quantity"]].append(row)
        rows = []
        for quantity, fold_rows in by_quantity.items():
            row = {name: fold_rows[0][name] for name in ("quantity", "kind", "higher_is_better", "family",
                                                         "feature_extractor")}
            row["n_reference"] = sum(int(r["n_reference"]) for r in fold_rows)
            row["n_candidate"] = sum(int(r["n_candidate"]) for r in fold_rows)
            value = union.get(quantity, math.nan)
            if not math.isnan(value):
                self.pooling[quantity].add("union of all folds' test items")
            else:
                value = weighted_fold_mean(fold_rows)
                if not math.isnan(value):  # an undefined cell (e.g. paired metrics on copies) names no pooling
                    self.pooling[quantity].add("mean of the folds' values, weighted by test items")
            row["value"] = value
            bad = [r for r in fold_rows if r.get("status", "ok") != "ok"]
            if bad or value != value:
                row.update(status="failed", error=(bad[0].get("error") if bad else "") or
                           f"{quantity} is undefined in a fold")
            rows.append(row)
        return rows


    def _memorisation_items(self, folds: list[ItemData]) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
        """Authenticity and copy-rate decisions per item, each fold's items against that fold's own training
        set, with positions shifted as in `union_items` (an output missing in a fold is left out)."""
        parts: dict[str, list[tuple[np.ndarray, np.ndarray, str]]] = defaultdict(list)
        offset = 0
        for runner, data in zip(self.runners, folds, strict=True):
            for output, (values, positions, aggregate) in memorisation_items(self.suite, data,
                                                                             self._train_features(runner)).items():
                parts[output].append((values, positions + offset, aggregate))
            offset += len(data)
        return {output: (np.concatenate([v for v, _, _ in chunks]), np.concatenate([p for _, p, _ in chunks]),
                         chunks[0][2])
                for output, chunks in parts.items() if len(chunks) == len(folds)}

    def _train_features(self, runner: StudyRunner) -> dict[str, np.ndarray]:
        """The fold's training features of every extractor a memorisation entry uses, computed once per fold."""
        if runner not in self._train_cache:
            names = {m.feature_extractor for m in self.suite.metrics.values() if m.kind == "memorisation"}
            self._train_cache[runner] = {
                name: self.suite.features_of(name, runner.data.train, "train", self.device).cpu().numpy()
                .astype(np.float64) for name in sorted(n for n in names if n)}
        return self._train_cache[runner]


def union_items(parts: list[ItemData]) -> ItemData:
    """The folds' side data as one set (each fold's positions shifted past the previous folds)."""
    pooled = parts[0]
    for part in parts[1:]:
        pooled = _concatenate(pooled, part)
    return pooled


def weighted_fold_mean(rows: list[dict[str, Any]]) -> float:
    """The folds' values averaged with weights by their test items (NaN when a fold has none)."""
    values = np.array([float(r["value"]) for r in rows])
    weights = np.array([max(int(r["n_candidate"]), 0) for r in rows], dtype=float)
    if not weights.sum() or np.isnan(values).any():
        return math.nan
    if np.isinf(values).any():  # PSNR of identical images: +inf in every fold that has it
        return float(values[np.isinf(values)][0]) if len(set(values[np.isinf(values)])) == 1 else math.nan
    return float(np.average(values, weights=weights))


def pool_dice(stored: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every subject's Dice / HD95 from its own fold; the pooled value is the mean over all subjects."""
    cases = [{k: case[k] for k in ("quantity", "case_id", "value", "source") if k in case}
             for cell in stored for case in cell.get("cases", []) if case.get("case_kind", "item") == "item"]
    frame = pd.DataFrame(cases, columns=["quantity", "case_id", "value", "source"])
    rows = []
    templates = {row["quantity"]: row for cell in stored for row in cell["rows"]}
    for quantity, template in templates.items():
        values = frame.loc[frame["quantity"] == quantity, "value"].astype(float)
        row = {name: template[name] for name in ("quantity", "kind", "higher_is_better", "family")}
        row["n_reference"] = sum(int(r["n_reference"]) for cell in stored for r in cell["rows"]
                                 if r["quantity"] == quantity)
        row["n_candidate"] = sum(int(r["n_candidate"]) for cell in stored for r in cell["rows"]
                                 if r["quantity"] == quantity)
        row["value"] = float(values.mean()) if len(values) else math.nan
        if not len(values):
            row.update(status="failed", error=f"{quantity} is undefined for every subject of every fold")
        rows.append(row)
    return rows, cases


class PooledResampler(StudyResampler):
    """Floor and subject bootstrap over all subjects of the pooled cells; no training-set features (they
    differ by fold) and no held-out set beyond the subjects themselves, so no sample-size curves."""

    def _train_features(self) -> dict[str, np.ndarray]:
        return {}

    def _held_out(self, seed: int) -> ItemData | None:
        return None

    def _floor(self, clean: ItemData, held_out: ItemData | None, train: dict, seed: int) -> pd.DataFrame:
        from benchmark.study.resampling import noise_floor

        return noise_floor(self.suite, clean, empty_like(clean), train, self.floor_splits, seed)

    def _curves(self, *args: Any) -> pd.DataFrame:
        return pd.DataFrame(columns=["seed", "set", "n", "repeat", "quantity", "value"])


def empty_like(data: ItemData) -> ItemData:
    """Side data with the same outputs and features as `data` and no item, so the floor's pool is `data`."""
    return ItemData(slot=data.slot[:0],
                    items={k: (v[:0], p[:0], agg) for k, (v, p, agg) in data.items.items()},
                    features={k: (f[:0], p[:0]) for k, (f, p) in data.features.items()},
                    radiomics={k: r[:0] for k, r in data.radiomics.items()})
