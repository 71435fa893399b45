"""The sensitivity study: every (perturbation, severity, seed) cell through the metric suite and the
downstream segmentation, each finished cell written to the results store at once.

Stages of a cell (store key `stage`):
- `metrics`: the perturbed test set against the clean test set (and the training set, for memorisation);
- `dice_robustness`: the model trained on the clean training split, evaluated on the perturbed test set
  with the labels as the perturbation defines them;
- `dice_utility`: a model trained on the perturbed training split (the stand-in for a generator's output,
  images with the masks they were conditioned on), evaluated on the clean test set.
Severity 0 is the identity for every perturbation, so its cells are computed once per seed and shared.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from benchmark.data.imageset import ImageSet, PreparedData
from benchmark.errors import DiskFullError
from benchmark.study.info import levels_of
from benchmark.study.scope import StudyScope, hash_config, plain, stage_configs, study_scope
from benchmark.study.store import CellKey, ResultsStore

log = logging.getLogger("benchmark.study")
Rows = tuple[list[dict[str, Any]], list[dict[str, Any]]]  # (result rows, per-case rows)
TUMOUR_STRUCTURES = frozenset({"WT", "TC", "ET", "NCR", "ED"})  # the structures a source's label map can rule out
SCORE_KINDS = {"dice": "dice", "cldice": "dice", "hd95": "hd95", "components": "components"}  # column prefix -> kind


@dataclass(frozen=True)
class Cell:
    """One unit of work and the hash of the configuration it depends on."""

    key: CellKey
    family: str
    config_hash: str


def metric_rows(values: dict[str, float], description: dict[str, dict], n_reference: int, n_candidate: int
                ) -> list[dict[str, Any]]:
    """Result rows of one metric-suite evaluation; a non-finite value becomes a failed row with a reason."""
    rows = []
    for name, value in values.items():
        info = description.get(name, {})
        row = {"quantity": name, "value": float(value), "kind": info.get("kind", ""),
               "higher_is_better": bool(info.get("higher_is_better", True)),
               "feature_extractor": info.get("feature_extractor") or "", "n_reference": n_reference,
               "n_candidate": n_candidate}
        if math.isnan(float(value)):  # +-inf is a legitimate value (PSNR of identical images)
            row.update(status="failed", error=info.get("notes") or f"{name} is undefined for this set")
        rows.append(row)
    return rows


@dataclass(frozen=True)
class SubjectSources:
    """Which source each subject comes from and the structures each source is scored on (from the data
    summary): a structure a source cannot contain (enhancing tumour in BRATS 2012) is n/a for its subjects."""

    source_of: dict[str, str]
    structures: dict[str, frozenset[str]]

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> SubjectSources:
        sources = summary.get("sources") or {}
        source_of = {subject: name for name, entry in sources.items()
                     for ids in entry.get("subjects", {}).values() for subject in ids}
        structures = {name: frozenset(entry.get("scored_structures", ())) for name, entry in sources.items()}
        return cls(source_of, structures)

    def scored(self, subject: str, structure: str) -> bool:
        """Whether `structure` is scored for `subject`: a source limits only the tumour structures (its label
        map decides which it can contain); a vessel is scored wherever the subject has a label."""
        source = self.source_of.get(subject)
        if source is None or structure not in TUMOUR_STRUCTURES:
            return True
        return structure in self.structures.get(source, frozenset({structure}))


def dice_rows(per_case: pd.DataFrame, protocol: str, n_reference: int, n_candidate: int,
              sources: SubjectSources | None = None) -> Rows:
    """Mean Dice / HD95 per region over cases as result rows, and the per-case values behind them. A case
    whose source cannot contain a region (`sources`) is left out of that region's mean."""
    rows, cases = [], []
    sources = sources or SubjectSources({}, {})
    for column in [c for c in per_case.columns if c.startswith(tuple(f"{p}_" for p in SCORE_KINDS))]:
        prefix, structure = column.split("_", 1)
        kind = SCORE_KINDS[prefix]
        values = pd.to_numeric(per_case[column], errors="coerce").astype(float)
        scored = np.array([sources.scored(str(s), structure) for s in per_case["subject_id"]], dtype=bool)
        keep = np.isfinite(values) & scored
        finite = values[keep]
        quantity = f"{protocol}/{column}"
        row = {"quantity": quantity, "value": float(finite.mean()) if len(finite) else float("nan"),
               "kind": kind, "higher_is_better": kind == "dice", "n_reference": n_reference,
               "n_candidate": n_candidate}
        if not len(finite):
            row.update(status="failed", error=f"{column} is undefined for every case (no tumour in label or output)")
        rows.append(row)
        cases += [{"quantity": quantity, "case_id": case_id, "value": float(v),
                   "source": sources.source_of.get(str(case_id), "")}
                  for case_id, v in zip(per_case["subject_id"][keep], finite, strict=True)]
    return rows, cases


class StudyRunner:
    """Runs the cells of the configured study into a results store under `output_dir`."""

    def __init__(self, cfg: DictConfig, data: PreparedData, device: torch.device, output_dir: Path,
                 perturbations: dict, suite: Any) -> None:
        self.cfg, self.data, self.device, self.output_dir = cfg, data, device, output_dir
        self.perturbations, self.suite = perturbations, suite
        self.stage_configs = stage_configs(cfg)
        self.cache_dir = Path(cfg.study.checkpoint_dir).expanduser()
        self.protocols = [str(protocol) for protocol in cfg.segmentation.protocols]
        self.structures = str(cfg.segmentation.structures)
        self.utility_families = {str(family) for family in cfg.segmentation.utility_families}
        levels = cfg.study.utility_severities
        self.utility_severities = None if levels is None else {int(level) for level in levels}
        self.needs_segmenter = isinstance(self.stage_configs["metrics"], list)  # a task-aware feature extractor
        self._clean_models: dict[int, Any] = {}
        self._attached_seed: int | None = None
        self._shared: dict[tuple[str, int], Rows] = {}
        self._last_perturbed: tuple[tuple, Any] | None = None
        self.study_scope = self.scope()
        self.store = ResultsStore(output_dir / "store", export_dir=output_dir, scope=self.study_scope)
        self.sources = SubjectSources.from_summary(data.summary)

    def cells(self, selected: bool = True) -> list[Cell]:
        """Every cell of the study in run order, filtered by study.only_perturbation / only_severity when
        `selected` (a multirun job's share)."""
        study, data_hash = self.cfg.study, {"content": self.data.fingerprint}  # content, not the data config
        only_p, only_s = (study.only_perturbation, study.only_severity) if selected else (None, None)
        cells = []
        for seed in study.seeds:
            for name, perturbation in self.perturbations.items():
                if only_p is not None and name != only_p:
                    continue
                for severity in levels_of(perturbation, study.severities):
                    if only_s is not None and int(severity) != int(only_s):
                        continue
                    p_cfg = self._identity(name, perturbation, int(severity))
                    stages = self._stages(perturbation, int(severity))
                    for stage, stage_cfg in stages.items():
                        key = CellKey(stage, name, int(severity), int(seed))
                        cells.append(Cell(key, perturbation.family,
                                          hash_config(stage, data_hash, p_cfg, stage_cfg, int(severity), int(seed))))
        return cells

    def scope(self) -> StudyScope:
        """What this study's cells share (data fingerprint, stage configs) and every cell it defines."""
        cells = {cell.key.file_name(): cell.config_hash for cell in self.cells(selected=False)}
        return study_scope(self.cfg, self.data.fingerprint, cells)

    def _stages(self, perturbation: Any, severity: int) -> dict[str, Any]:
        """The stages a cell runs, each with the configuration its result depends on."""
        configs = self.stage_configs
        stages = {"metrics": configs["metrics"]}
        if not getattr(perturbation, "has_labels", True):  # a generated set without masks: no Dice
            return stages
        if "robustness" in self.protocols:
            stages["dice_robustness"] = configs["dice_robustness"]
        generated = perturbation.family == "generated"
        at_level = self.utility_severities is None or severity in self.utility_severities
        if "utility" in self.protocols and (generated or (perturbation.family in self.utility_families and at_level)):
            stages["dice_utility"] = configs["dice_utility"]
        return stages

    def _identity(self, name: str, perturbation: Any, severity: int) -> Any:
        """What a cell's hash records of its perturbation: the config entry, the content of a generated
        set, or "identity" at severity 0 (shared by every perturbation)."""
        if perturbation.family == "generated":
            return perturbation.parameters(severity) | {"content": perturbation.fingerprint}
        return plain(self.cfg.perturbation[name]) if severity > 0 else "identity"

    def run(self) -> None:
        """Compute every unfinished cell; a failing cell is recorded with its error and the sweep goes on."""
        cells = self.cells()
        self.store.declare(self.study_scope)
        self.store.cells()
        if self.store.left_out:
            log.warning("study: %s", self.store.left_out_line())
        todo = [c for c in cells if not self.store.done(c.key, c.config_hash)]
        log.info("study: %d cells, %d already done, %d to compute", len(cells), len(cells) - len(todo), len(todo))
        for cell in tqdm(todo, desc="cells", unit="cell", disable=None):
            start = time.perf_counter()
            try:
                rows, cases = self.compute(cell)
                status, error = "ok", None
            except DiskFullError:  # not the cell's failure: every later write would fail too
                raise
            except Exception as exc:  # a failing cell must not stop the sweep
                rows, cases, status = [], [], "failed"
                error = f"{type(exc).__name__}: {exc}"
                log.debug("cell %s failed:\n%s", cell.key, traceback.format_exc())
            elapsed = time.perf_counter() - start
            self.store.write_cell(cell.key, cell.config_hash, rows, status=status, error=error, elapsed_s=elapsed,
                                  cases=cases, family=cell.family)
            summary = error or ", ".join(f"{r['quantity']}={r['value']:.4g}" for r in rows[:4])
            log.info("%s %s sev %d seed %d: %s (%.1f s)", cell.key.stage, cell.key.perturbation, cell.key.severity,
                     cell.key.seed, summary, elapsed)
        self.resample()

    def compute(self, cell: Cell) -> Rows:
        """The rows of one cell; severity-0 cells are shared between perturbations."""
        key = cell.key
        if key.severity == 0:
            shared = (key.stage, key.seed)
            if shared not in self._shared:
                self._shared[shared] = self._compute(cell)
            rows, cases = self._shared[shared]
            return [dict(r) for r in rows], [dict(c) for c in cases]
        return self._compute(cell)

    def _compute(self, cell: Cell) -> Rows:
        key = cell.key
        perturbation = self.perturbations[key.perturbation]
        stages: dict[str, Callable[[Any, CellKey], Rows]] = {
            "metrics": self._metrics, "dice_robustness": self._robustness, "dice_utility": self._utility,
        }
        return stages[key.stage](perturbation, key)

    def _perturb(self, perturbation: Any, clean: ImageSet, key: CellKey) -> Any:
        """The perturbed set of a cell; the last one is kept, because a cell's metrics and robustness
        stages run one after the other on the same perturbed test set (a tumour edit costs seconds)."""
        memo = (key.perturbation, key.severity, key.seed, id(clean))
        if self._last_perturbed is None or self._last_perturbed[0] != memo:
            self._last_perturbed = (memo, perturbation.apply(clean, key.severity, key.seed, train=self.data.train))
        return self._last_perturbed[1]

    def _metrics(self, perturbation: Any, key: CellKey) -> Rows:
        if self.needs_segmenter and self._attached_seed != key.seed:  # attaching drops cached features
            self.suite.attach_segmenter(self._clean_model(key.seed))
            self._attached_seed = key.seed
        perturbed = self._perturb(perturbation, self.data.test, key)
        values = self.suite.compute(self.data.test, perturbed.data, perturbed.reference_index, self.data.train,
                                    self.device)
        rows = metric_rows(values, self.suite.describe(), len(self.data.test), len(perturbed.data))
        self._save_items(key, perturbed)
        return rows, []

    def _save_items(self, key: CellKey, perturbed: Any) -> None:
        """The cell's per-item values and features for the subject bootstrap (store/items/, a side file)."""
        from benchmark.study import item_data

        slot = item_data.slot_subjects(perturbed.data, self.data.test, perturbed.reference_index)
        data = item_data.capture(self.suite, perturbed.data, slot, self.device)
        item_data.save(item_data.item_path(self.store.root, key.file_name()), data)

    def resample(self) -> None:
        """Noise floor, subject bootstrap and sample-size curves from the stored side files
        (`study.resampling`: n_boot, floor_splits, curve_repeats; enabled: false skips it)."""
        from benchmark.study.resampling import StudyResampler

        settings = self.cfg.study.resampling
        if not settings.enabled:
            return
        if self.cfg.study.only_perturbation is not None or self.cfg.study.only_severity is not None:
            log.info("resampling skipped in a partial job (study.only_*): run the study once more without them, "
                     "every cell is then done and only the floor, bootstrap and curves are computed")
            return
        StudyResampler(self, int(settings.n_boot), int(settings.floor_splits), int(settings.curve_repeats)).run()

    def _train(self, train: ImageSet, seed: int, name: str) -> Any:
        """Train (or load from the checkpoint cache) a segmenter and save its training curves."""
        from segmentation import plot_training_curves, train_segmenter

        model = train_segmenter(train, self.data.val, self.cfg.segmentation, seed, self.device, self.cache_dir)
        plot_training_curves(model.history, self.output_dir / "segmentation" / f"curves_{name}_seed{seed}.png",
                             title=f"{name}, seed {seed}")
        for warning in model.info.get("warnings", []):
            log.warning("segmentation %s: %s", name, warning)
        return model

    def _clean_model(self, seed: int) -> Any:
        if seed not in self._clean_models:
            self._clean_models[seed] = self._train(self.data.train, seed, "clean")
        return self._clean_models[seed]

    def _robustness(self, perturbation: Any, key: CellKey) -> Rows:
        from segmentation import evaluate_segmenter

        perturbed = self._perturb(perturbation, self.data.test, key)
        per_case = evaluate_segmenter(self._clean_model(key.seed), perturbed.data, self.device, self.structures)
        return dice_rows(per_case, "robustness", len(self.data.test), len(perturbed.data), self.sources)

    def _utility(self, perturbation: Any, key: CellKey) -> Rows:
        from segmentation import evaluate_segmenter

        if key.severity == 0:
            model = self._clean_model(key.seed)
            n_train = len(self.data.train)
        else:
            perturbed = self._perturb(perturbation, self.data.train, key)
            model = self._train(perturbed.data, key.seed, f"{key.perturbation}_sev{key.severity}")
            n_train = len(perturbed.data)
        per_case = evaluate_segmenter(model, self.data.test, self.device, self.structures)
        return dice_rows(per_case, "utility", n_train, len(self.data.test), self.sources)

    def examples(self) -> dict[tuple[str, int], tuple]:
        """One slice per (perturbation, severity) for the report's image grid: the test item with the
        largest tumour (its middle tumour slice for volumes), as (image, labels)."""
        areas = self.data.test.labels.flatten(1).gt(0).sum(1)
        index = int(areas.argmax())
        out = {}
        seed = int(self.cfg.study.seeds[0])
        for name, perturbation in self.perturbations.items():
            for severity in levels_of(perturbation, self.cfg.study.severities):
                perturbed = self._perturb(perturbation, self.data.test, CellKey("example", name, int(severity), seed))
                item = min(index, len(perturbed.data) - 1)
                image, label = perturbed.data.images[item, 0], perturbed.data.labels[item, 0]
                if image.ndim == 3:
                    z = int(label.flatten(1).gt(0).sum(1).argmax())
                    image, label = image[z], label[z]
                out[(name, int(severity))] = (image.cpu().numpy(), label.cpu().numpy())
        return out
