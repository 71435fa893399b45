"""Folders of generated images as pseudo-perturbations, so the runner scores them like any other set."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from benchmark.data.generated import load_generated_set
from benchmark.data.imageset import ImageSet
from perturbations.base import PerturbedSet


class GeneratedSet:
    """A folder of a generative model's outputs; every 'severity' returns the same set.

    The set stands in for the perturbed test set (metrics against the real test set, robustness Dice of
    the clean model on it when masks exist) and for the perturbed training set (utility Dice: train on
    it, test on real data), exactly as a perturbation does.
    """

    family = "generated"
    scope = "set"

    def __init__(self, name: str, folder: Path, data_cfg: DictConfig, reference: ImageSet, seed: int) -> None:
        self.name, self.folder = name, Path(folder)
        self._set = load_generated_set(self.folder, data_cfg, reference, seed)
        self.has_labels = bool(self._set.meta["has_labels"])
        digest = hashlib.sha256(self._set.images.numpy().tobytes())
        digest.update(self._set.labels.numpy().tobytes())
        self.fingerprint = digest.hexdigest()[:16]  # a changed folder recomputes its cells

    def parameters(self, severity: int) -> dict[str, Any]:
        return {"folder": str(self.folder), "items": len(self._set), "has_labels": self._set.meta["has_labels"]}

    def apply(self, clean: ImageSet, severity: int, seed: int, train: ImageSet | None = None) -> PerturbedSet:
        n = len(self._set)
        return PerturbedSet(self._set, torch.full((n,), -1, dtype=torch.long), self.parameters(severity),
                               sources=[f"generated:{i}" for i in range(n)])
