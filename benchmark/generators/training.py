"""Train a mask-conditioned generator on the training split, caching a checkpoint at every budget.

A checkpoint is stored under the sha256 of everything that determines it (training images, labels and
brain masks, the generator's config, the seed, the device type, `CODE_VERSION`) and the budget (optimiser
steps), written atomically (benchmark.atomic): a killed run leaves the last complete budget, never half a
file. A rerun loads the largest cached budget and trains on from it; since the checkpoint holds the
optimiser states and every random generator's state, resumed training gives the same weights as an
uninterrupted run. A non-finite loss stops training: the budgets reached so far stay usable, the later
ones are reported as failed with the step and loss that diverged.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError
from benchmark.generators.base import ConditionalGenerator, condition_channels
from segmentation.cache import load_checkpoint, save_checkpoint

GENERATOR_FIELDS = ("state", "history", "seconds")  # what a generator checkpoint holds

CODE_VERSION = "gen-1"
NOT_IN_KEY = ("budgets", "sample_batch")  # which steps are kept and how sampling batches do not change weights
log = logging.getLogger("benchmark.generators")


@dataclass
class TrainingRun:
    """The outcome of `train_generator`: per budget a checkpoint path or the reason it failed."""

    name: str
    key: str
    checkpoints: dict[int, Path] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # {"step": s, loss name: value}
    seconds: dict[int, float] = field(default_factory=dict)  # training wall time up to each budget
    from_cache: bool = False


def generator_key(config: dict[str, Any], train: ImageSet, seed: int, device: torch.device) -> str:
    """Hex sha256 of (code version, generator config, seed, device type, training data)."""
    digest = hashlib.sha256(f"{CODE_VERSION}|seed={seed}|device={device.type}|".encode())
    weights_config = {k: v for k, v in config.items() if k not in NOT_IN_KEY}
    digest.update(OmegaConf.to_yaml(OmegaConf.create(weights_config), sort_keys=True).encode())
    digest.update(f"{tuple(train.images.shape)}:{train.modalities}".encode())
    for tensor in (train.images, train.labels, train.brain_masks):
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def checkpoint_path(cache_dir: Path, name: str, key: str, budget: int) -> Path:
    return Path(cache_dir).expanduser() / f"generator-{name}-{key[:24]}-step{budget}.pt"


def build_seeded(generator: ConditionalGenerator, image_channels: int, device: torch.device, seed: int) -> None:
    """Build the networks with weights drawn from `seed`, leaving the global random state untouched."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        generator.build(image_channels, device)


def load_trained(generator: ConditionalGenerator, path: Path, key: str, image_channels: int,
                 device: torch.device) -> ConditionalGenerator:
    """The generator with the weights of checkpoint `path`, in eval mode, ready to sample."""
    payload = load_checkpoint(path, key, GENERATOR_FIELDS)
    if payload is None:
        raise FileNotFoundError(f"generator checkpoint {path} is missing or was written for another key")
    build_seeded(generator, image_channels, device, 0)
    generator.load_state(payload["state"])
    generator.train_mode(False)
    return generator


def _batch(train: ImageSet, batch_size: int, rng: torch.Generator, device: torch.device
           ) -> tuple[torch.Tensor, torch.Tensor]:
    index = torch.randint(0, len(train), (batch_size,), generator=rng)
    condition = condition_channels(train.labels[index], train.brain_masks[index])
    return train.images[index].to(device), condition.to(device)


def _resume(generator: ConditionalGenerator, run: TrainingRun, paths: dict[int, Path], rng: torch.Generator) -> int:
    """Load the largest cached budget into `generator`; returns its step (0 when nothing is cached)."""
    for budget in sorted(paths, reverse=True):
        payload = load_checkpoint(paths[budget], run.key, GENERATOR_FIELDS)
        if payload is None:
            continue
        generator.load_state(payload["state"])
        rng.set_state(payload["rng"])
        torch.set_rng_state(payload["torch_rng"])
        run.history, run.seconds = list(payload["history"]), dict(payload["seconds"])
        run.checkpoints = {b: paths[b] for b in paths if b <= budget}
        return budget
    return 0


def train_generator(name: str, generator: ConditionalGenerator, config: dict[str, Any], train: ImageSet, seed: int,
                    device: torch.device, cache_dir: Path) -> TrainingRun:
    """Train `generator` on `train` up to its largest budget, from the largest cached budget on."""
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"generator {name}: device {device} was requested but this machine has no CUDA device "
                          f"(torch {torch.__version__}); use device=cpu or device=auto.")
    key = generator_key(config, train, seed, device)
    run = TrainingRun(name, key)
    paths = {budget: checkpoint_path(cache_dir, name, key, budget) for budget in generator.budgets}
    build_seeded(generator, train.images.shape[1], device, seed)
    rng = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        step = _resume(generator, run, paths, rng)
        run.from_cache = step == generator.budgets[-1]
        if step:
            log.info("generator %s seed %d: resumed from the cached checkpoint at step %d", name, seed, step)
        _train_from(generator, run, paths, train, step, rng, device)
    return run


def _train_from(generator: ConditionalGenerator, run: TrainingRun, paths: dict[int, Path], train: ImageSet,
                step: int, rng: torch.Generator, device: torch.device) -> None:
    """Optimisation steps from `step` to the last budget, saving each budget as it is reached."""
    last = generator.budgets[-1]
    log_every = max(1, last // 200)
    elapsed = run.seconds.get(step, 0.0)
    generator.train_mode(True)
    start = time.perf_counter()
    while step < last:
        images, condition = _batch(train, generator.batch_size, rng, device)
        losses = generator.train_step(images, condition, rng)
        step += 1
        bad = ", ".join(f"loss {k}={v}" for k, v in losses.items() if not math.isfinite(v))
        if not bad and step in paths and not generator.weights_finite():
            bad = "non-finite weights"
        if bad:
            reason = f"generator {run.name} diverged at step {step}: {bad}; lower its lr or use another seed"
            run.failures = {b: reason for b in paths if b >= step}
            log.warning(reason)
            return
        if step % log_every == 0 or step == last:
            run.history.append({"step": float(step), **losses})
        if step in paths:
            run.seconds[step] = elapsed + time.perf_counter() - start
            payload = {"key": run.key, "budget": step, "state": generator.state(), "rng": rng.get_state(),
                       "torch_rng": torch.get_rng_state(), "history": run.history, "seconds": run.seconds}
            save_checkpoint(paths[step], payload)
            run.checkpoints[step] = paths[step]
            log.info("generator %s: step %d saved (%.1f s of training)", run.name, step, run.seconds[step])
