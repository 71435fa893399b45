"""A trained generator as a generated set of the study (family "generated"), conditioned on the masks of
whichever split the runner hands it: the test masks give the set that every metric and the clean
segmenter score, the training masks give the synthetic training set of the utility protocol.

Each synthetic item is paired with the real item whose masks it was drawn from (`reference_index`), so
the reference metrics (SSIM, PSNR, LPIPS) compare a synthetic slice with the real slice of the same masks.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import torch

from benchmark.data.imageset import ImageSet
from benchmark.generators.base import ConditionalGenerator, condition_channels
from benchmark.generators.training import TrainingRun, load_trained
from perturbations.base import PerturbedSet

log = logging.getLogger("benchmark.generators")


def set_digest(data: ImageSet) -> str:
    """sha256 of a set's labels and brain masks: the conditioning that determines the generated set."""
    digest = hashlib.sha256()
    for tensor in (data.labels, data.brain_masks):
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def noise_seeds(seed: int, conditioning: str, n: int) -> list[int]:
    """One seed per item, from the study seed and the conditioning set, independent of batch size."""
    base = int(hashlib.sha256(f"{seed}|{conditioning}".encode()).hexdigest()[:12], 16)
    return [base + i for i in range(n)]


@torch.no_grad()
def generate(generator: ConditionalGenerator, masks_from: ImageSet, seed: int) -> ImageSet:
    """A synthetic set with the labels and brain masks of `masks_from` and the generator's images."""
    seeds = noise_seeds(seed, set_digest(masks_from), len(masks_from))
    batches = []
    for start in range(0, len(masks_from), generator.sample_batch):
        stop = start + generator.sample_batch
        condition = condition_channels(masks_from.labels[start:stop], masks_from.brain_masks[start:stop])
        batches.append(generator.sample(condition.to(generator.device), seeds[start:stop]).cpu())
    images = torch.cat(batches).to(masks_from.images.dtype)
    return masks_from.with_images(images.to(masks_from.images.device))


class GeneratorSet:
    """One (architecture, budget) of a trained generator; the runner's seed picks the training run.

    Behaves like benchmark.study.generated.GeneratedSet: family "generated", one level, `parameters()`,
    `fingerprint` (the cache keys of its checkpoints: retraining recomputes its cells) and `apply()`.
    """

    family = "generated"
    scope = "set"
    has_labels = True

    def __init__(self, name: str, architecture: str, budget: int, make_generator: Any, runs: dict[int, TrainingRun],
                 image_channels: int, device: torch.device) -> None:
        self.name, self.architecture, self.budget = name, architecture, int(budget)
        self.make_generator, self.runs = make_generator, runs
        self.image_channels, self.device = image_channels, device
        keys = "|".join(f"{seed}:{run.key}" for seed, run in sorted(runs.items()))
        self.fingerprint = hashlib.sha256(f"{name}|{budget}|{keys}".encode()).hexdigest()[:16]
        self._models: dict[int, ConditionalGenerator] = {}
        self._sets: dict[tuple[int, str], ImageSet] = {}
        self.sampling_seconds: dict[int, float] = {}  # per seed: seconds per generated item (last call)

    def parameters(self, severity: int) -> dict[str, Any]:
        return {"architecture": self.architecture, "budget_steps": self.budget,
                "conditioning": "masks of the scored split"}

    def model(self, seed: int) -> ConditionalGenerator:
        """The generator trained with `seed`, at this budget; raises the training failure if it diverged."""
        run = self.runs.get(seed)
        if run is None:
            raise KeyError(f"generator {self.name} was not trained for seed {seed}")
        if self.budget in run.failures:
            raise RuntimeError(run.failures[self.budget])
        if seed not in self._models:
            self._models[seed] = load_trained(self.make_generator(), run.checkpoints[self.budget], run.key,
                                              self.image_channels, self.device)
        return self._models[seed]

    def generated(self, masks_from: ImageSet, seed: int) -> ImageSet:
        """The set generated for the masks of `masks_from` (memoised per seed and conditioning)."""
        memo = (seed, set_digest(masks_from))
        if memo not in self._sets:
            start = time.perf_counter()
            self._sets[memo] = generate(self.model(seed), masks_from, seed)
            self.sampling_seconds[seed] = (time.perf_counter() - start) / max(1, len(masks_from))
            log.info("generator %s seed %d: %d items sampled (%.3f s each)", self.name, seed, len(masks_from),
                     self.sampling_seconds[seed])
        return self._sets[memo]

    def apply(self, clean: ImageSet, severity: int, seed: int, train: ImageSet | None = None) -> PerturbedSet:
        data = self.generated(clean, int(seed))
        n = len(data)
        return PerturbedSet(data, torch.arange(n), self.parameters(severity),
                               sources=[f"{self.name}:{clean.subject_ids[i]}:{clean.slice_indices[i]}"
                                        for i in range(n)])
