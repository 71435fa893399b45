"""The generator step of the study: instantiate the configured generators (`generators.<name>`), train
each on the training split once per study seed (cached), and hand every (architecture, budget) to the
runner as a generated set. Writes `generators/generators.json` (training and sampling times, loss
curves, failures) and `generators/samples.npz` (real test slices and each set's slices for the same masks)
for the report. A generator that diverges is recorded as a failed cell with its reason; the rest go on.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from benchmark.atomic import replace_atomically, write_text_atomically
from benchmark.data.imageset import PreparedData
from benchmark.errors import ConfigError
from benchmark.generators.base import ConditionalGenerator
from benchmark.generators.sets import GeneratorSet
from benchmark.generators.training import train_generator
from benchmark.study.scope import hash_config, study_scope
from benchmark.study.store import CellKey, ResultsStore

log = logging.getLogger("benchmark.generators")
N_SAMPLES = 6  # test items shown per generator in the report


def instantiate_generators(generators_cfg: DictConfig | None) -> dict[str, ConditionalGenerator]:
    """One generator per `generators.<name>` entry; a bad entry is a ConfigError naming it. An entry without a
    `_target_` holds an experiment's settings for a generator the `generator=[...]` list did not select
    (e.g. `experiment=generators generator=[regressor]`): it is left out, and the log says so."""
    out = {}
    for name, spec in (generators_cfg or {}).items():
        if "_target_" not in spec:
            log.warning("generators.%s has settings but no model (not in generator=[...]): left out", name)
            continue
        try:
            generator = instantiate(spec)
        except InstantiationException as error:
            raise ConfigError(f"generators.{name} (conf/generator/{name}.yaml) cannot be built: {error}") from error
        if not isinstance(generator, ConditionalGenerator):
            raise ConfigError(f"generators.{name}: _target_ {spec.get('_target_')} is not a "
                              "benchmark.generators.ConditionalGenerator.")
        out[str(name)] = generator
    return out


def add_generator_sets(cfg: DictConfig, data: PreparedData, device: torch.device, output_dir: Path,
                       perturbations: dict[str, Any]) -> dict[str, GeneratorSet]:
    """Train every configured generator for every study seed and add its budgets to `perturbations`."""
    specs = cfg.generators or {}
    if not specs:
        return {}
    if data.train.spatial_dims != 2:
        raise ConfigError("generators train on 2D slices only; use data.mode=2d with experiment=generators.")
    seeds = [int(s) for s in cfg.study.seeds]
    cache_dir = Path(cfg.study.checkpoint_dir).expanduser()
    store = ResultsStore(output_dir / "store", export_dir=output_dir, scope=study_scope(cfg, data.fingerprint))
    added, summary = {}, {}
    for name, generator in instantiate_generators(specs).items():
        config = OmegaConf.to_container(specs[name], resolve=True)
        runs = {seed: train_generator(name, generator, config, data.train, seed, device, cache_dir) for seed in seeds}
        summary[name] = _run_summary(generator, runs)
        for budget in generator.budgets:
            set_name = f"{name}_{budget}"
            failures = {seed: run.failures[budget] for seed, run in runs.items() if budget in run.failures}
            for seed, reason in failures.items():
                _record_failure(store, set_name, seed, reason)
            if seeds[0] in failures:
                continue
            make = partial(instantiate, specs[name])
            summary[name].setdefault("sets", []).append(set_name)
            added[set_name] = GeneratorSet(set_name, generator.architecture, budget, make, runs,
                                           data.train.images.shape[1], device)
    perturbations.update(added)
    _write_outputs(output_dir / "generators", data, added, summary, seeds[0])
    return added


def _run_summary(generator: ConditionalGenerator, runs: dict) -> dict[str, Any]:
    return {"architecture": generator.architecture, "budgets": generator.budgets,
            "runs": {str(seed): {"key": run.key[:16], "training_seconds": {str(b): s for b, s in run.seconds.items()},
                                 "from_cache": run.from_cache, "failures": {str(b): r for b, r in run.failures.items()},
                                 "history": run.history}
                     for seed, run in runs.items()}}


def _record_failure(store: ResultsStore, set_name: str, seed: int, reason: str) -> None:
    """A failed metrics cell for a generator that diverged, so the report lists it with its reason."""
    key = CellKey("metrics", set_name, 1, seed)
    store.write_cell(key, hash_config("generator-failed", reason), [], status="failed", error=reason,
                     family="generated")


def shown_items(labels: torch.Tensor, subject_ids: list[str], n: int) -> list[int]:
    """Up to `n` items for the sample grid: each subject's slice with the largest tumour, largest first,
    then the next largest slices when there are fewer subjects than `n`."""
    areas = labels.flatten(1).gt(0).sum(1).tolist()
    order = sorted(range(len(areas)), key=lambda i: (-areas[i], i))
    best_per_subject = list({subject_ids[i]: i for i in reversed(order)}.values())
    firsts = sorted(best_per_subject, key=lambda i: (-areas[i], i))
    rest = [i for i in order if i not in firsts]
    return (firsts + rest)[:n]


def _write_outputs(folder: Path, data: PreparedData, sets: dict[str, GeneratorSet], summary: dict, seed: int) -> None:
    """generators.json and samples.npz: what the report's Generators section shows."""
    folder.mkdir(parents=True, exist_ok=True)
    shown = torch.tensor(shown_items(data.test.labels, data.test.subject_ids, N_SAMPLES))
    arrays = {"real": data.test.images[shown, 0].numpy(), "labels": data.test.labels[shown, 0].numpy()}
    for entry in summary.values():
        entry["sampling_seconds_per_item"] = {}
        for name in entry.get("sets", []):
            arrays[name] = sets[name].generated(data.test, seed).images[shown, 0].cpu().numpy()
            entry["sampling_seconds_per_item"][name] = sets[name].sampling_seconds.get(seed)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    replace_atomically(folder / "samples.npz", write)
    write_text_atomically(folder / "generators.json", json.dumps(summary, indent=1, default=float))
