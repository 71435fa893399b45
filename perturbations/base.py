"""The perturbation interface: a severity maps to concrete parameters, a deterministic transform applies them.

Two scopes share one `apply` signature. A *sample* perturbation edits every item on its own (noise, artifacts,
tumour edits): subclasses implement `perturb_item`. A *set* perturbation rebuilds the whole set (population
shift, mode dropping, memorisation): subclasses implement `build_set`. Both return a `PerturbedSet` that records
the parameters and, per item, where it came from.

Randomness: each item draws from a generator seeded by (seed, perturbation name, item identity = subject,
slice and repeat count), never from global state, not from its position and not from the severity, so that
the levels of one item share their random draws (common random numbers: level 3 differs from level 2 only by
its parameters, e.g. the same noise field, scaled) and an item is perturbed alike alone or in any batch.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError, DataError

SEVERITIES: tuple[int, ...] = (0, 1, 2, 3, 4, 5)
FAMILIES: frozenset[str] = frozenset({"noise", "artifact", "shift", "morphological", "memorisation"})


@dataclass
class PerturbedSet:
    """A perturbed set with provenance.

    `reference_index[i]` is the index into the clean set of item i's clean counterpart (-1 when it has none,
    e.g. a training image copied in); `sources[i]` says where item i came from ("clean:12", "train:5");
    `skipped` lists the items passed through unchanged because the edit did not apply (no lesion).
    """

    data: ImageSet
    reference_index: torch.Tensor
    parameters: dict[str, Any]
    skipped: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def check_severity(severity: int) -> int:
    """`severity` as an int in 0..5, or a ConfigError."""
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer) or severity not in SEVERITIES:
        raise ConfigError(f"severity must be an integer from 0 (identity) to 5, got {severity!r}")
    return int(severity)


def check_severities(severities: Sequence[int]) -> list[int]:
    """Validate a configured list of severities at config time (before any compute)."""
    return [check_severity(s) for s in severities]


def end_points(
    name: str, value: Any, low: float | None = None, high: float | None = None, integer: bool = False
) -> tuple[float, ...]:
    """Validate a parameter's severity schedule: [at level 1, at level 5] or one value per level 1..5.

    Two values are interpolated linearly over levels 1..5; five values are taken as they are (for schedules
    that are not linear, e.g. memorisation fractions). A single number means the same value at every level.
    `low`/`high` bound every value (inclusive). Raises ConfigError naming the parameter.
    """
    values = [value] if isinstance(value, int | float) and not isinstance(value, bool) else value
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(
            f"parameter '{name}' must be a number, [at severity 1, at severity 5] or five values, got {value!r}"
        ) from None
    shown = value if isinstance(value, int | float) else list(value)  # as configured, for the messages
    if len(values) == 1:
        values = values * 2
    if len(values) not in (2, 5):
        raise ConfigError(f"parameter '{name}' needs 2 end points or 5 per-level values, got {len(values)}: {value!r}")
    for v in values:
        if not np.isfinite(v) or (low is not None and v < low) or (high is not None and v > high):
            bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
            raise ConfigError(f"parameter '{name}' = {shown!r}: every value must lie in {bounds}, got {v}")
        if integer and v != int(v):
            raise ConfigError(f"parameter '{name}' = {shown!r} must hold whole numbers")
    return values


def at_severity(schedule: tuple[float, ...], severity: int) -> float:
    """The value of a validated schedule at a severity in 1..5 (linear between end points)."""
    if len(schedule) == 5:
        return schedule[severity - 1]
    return round(schedule[0] + (schedule[1] - schedule[0]) * (severity - 1) / 4, 10)


def item_seed(seed: int, name: str, key: str) -> int:
    """A 63-bit seed from (seed, perturbation name, item key), stable across processes, batches and order."""
    digest = hashlib.blake2b(f"{name}\x00{key}".encode(), digest_size=16).digest()
    words = np.frombuffer(digest, dtype=np.uint32).tolist()
    entropy = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *words])
    return int(entropy.generate_state(1, dtype=np.uint64)[0] >> 1)


def item_rng(seed: int, name: str, key: str) -> np.random.Generator:
    """The numpy generator of one item (see `item_seed`)."""
    return np.random.default_rng(item_seed(seed, name, key))


def item_keys(data: ImageSet) -> list[str]:
    """Each item's identity: subject, slice and how many identical items precede it (for repeated items).

    Seeding from the identity rather than the position makes an item's perturbation the same whether it is
    perturbed alone, in a batch or in a reordered set.
    """
    seen: dict[str, int] = {}
    keys = []
    for subject, index in zip(data.subject_ids, data.slice_indices, strict=True):
        base = f"{subject}/{index}"
        keys.append(f"{base}#{seen.get(base, 0)}")
        seen[base] = seen.get(base, 0) + 1
    return keys


class Perturbation(ABC):
    """Turns a clean ImageSet into a perturbed one at a severity 0 (identity) .. 5.

    Subclasses set `family` and `scope`, validate their end points in `__init__` (raise ConfigError), and map
    a severity to concrete parameters in `parameters_at` (a small pure function). `name` is set by
    `instantiate_perturbations` from the config key.
    """

    family: ClassVar[str] = "noise"
    scope: ClassVar[str] = "sample"

    def __init__(self) -> None:
        self.name = type(self).__name__

    def parameters(self, severity: int) -> dict[str, Any]:
        """The concrete parameters at `severity` (empty at severity 0, the identity)."""
        severity = check_severity(severity)
        return {} if severity == 0 else self.parameters_at(severity)

    @abstractmethod
    def parameters_at(self, severity: int) -> dict[str, Any]:
        """The concrete parameters at a severity in 1..5."""

    @abstractmethod
    def apply(self, clean: ImageSet, severity: int, seed: int, train: ImageSet | None = None) -> PerturbedSet:
        """The perturbed set; same (severity, seed, clean, train) gives the same result."""

    def stream(self) -> str:
        """The name of this perturbation's random stream (items draw from (seed, stream, item identity))."""
        return self.name

    def describe(self, severity: int) -> dict[str, Any]:
        """What a report records: name, family, scope, severity and parameters."""
        return {"perturbation": self.name, "family": self.family, "scope": self.scope, "severity": severity,
                **self.parameters(severity)}

    def identity(self, clean: ImageSet, severity: int) -> PerturbedSet:
        """Severity 0: the clean set itself, every item its own reference."""
        n = len(clean)
        return PerturbedSet(clean.subset(torch.arange(n)), torch.arange(n), self.describe(severity), [],
                            [f"clean:{i}" for i in range(n)])


class SamplePerturbation(Perturbation):
    """A perturbation that edits each item independently.

    `perturb_item` receives one item's image (C, *spatial), label (1, *spatial) and brain mask (1, *spatial)
    on the set's device, the parameters and the item's numpy generator; it returns (image, label) or None to
    pass the item through as skipped (e.g. no lesion to edit).
    """

    scope: ClassVar[str] = "sample"

    @abstractmethod
    def perturb_item(
        self, image: torch.Tensor, label: torch.Tensor, mask: torch.Tensor, params: dict[str, Any],
        rng: np.random.Generator, spacing: tuple[float, ...],
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """One perturbed item, or None when the perturbation does not apply to it."""

    def apply(self, clean: ImageSet, severity: int, seed: int, train: ImageSet | None = None) -> PerturbedSet:
        """Perturb every item; items for which `perturb_item` returns None are kept and listed as skipped."""
        severity = check_severity(severity)
        if severity == 0:
            return self.identity(clean, severity)
        params = self.parameters(severity)
        images, labels, skipped = clean.images.clone(), clean.labels.clone(), []
        for i, key in enumerate(item_keys(clean)):
            out = self.perturb_item(clean.images[i], clean.labels[i], clean.brain_masks[i], params,
                                    item_rng(seed, self.stream(), key), tuple(clean.spacing))
            if out is None:
                skipped.append(i)
                continue
            images[i] = out[0].to(images.dtype).clamp(0.0, 1.0)
            labels[i] = out[1].to(labels.dtype)
        n = len(clean)
        return PerturbedSet(clean.with_images(images, labels), torch.arange(n), self.describe(severity), skipped,
                            [f"clean:{i}" for i in range(n)])


class SetPerturbation(Perturbation):
    """A perturbation of the whole set (population shift, mode dropping, memorisation).

    `build_set` returns, per output item, where it comes from: `reference_index` (into clean, -1 for none),
    the items themselves and their `sources`. The set keeps the clean set's size.
    """

    scope: ClassVar[str] = "set"
    needs_train: ClassVar[bool] = False

    @abstractmethod
    def build_set(
        self, clean: ImageSet, params: dict[str, Any], rng: np.random.Generator, train: ImageSet | None
    ) -> tuple[ImageSet, torch.Tensor, list[str]]:
        """(perturbed items, reference_index, sources)."""

    def apply(self, clean: ImageSet, severity: int, seed: int, train: ImageSet | None = None) -> PerturbedSet:
        """Rebuild the set at `severity`; the generator is seeded by (seed, name) only, so levels are nested."""
        severity = check_severity(severity)
        if self.needs_train:
            check_train(self.name, clean, train)
        if severity == 0:
            return self.identity(clean, severity)
        rng = item_rng(seed, self.stream(), "<set>")
        data, reference, sources = self.build_set(clean, self.parameters(severity), rng, train)
        if len(data) != len(clean):
            raise RuntimeError(f"{self.name} built {len(data)} items from {len(clean)}")
        return PerturbedSet(data, reference.long(), self.describe(severity), [], sources)


def check_train(name: str, clean: ImageSet, train: ImageSet | None) -> ImageSet:
    """The training set, checked to be present and compatible with the clean set."""
    if train is None:
        raise DataError(f"perturbation '{name}' builds its set from training images: call apply(..., train=<the "
                        "training ImageSet>)")
    if len(train) == 0:
        raise DataError(f"perturbation '{name}': the training set is empty")
    if train.images.shape[1:] != clean.images.shape[1:] or tuple(train.modalities) != tuple(clean.modalities):
        raise DataError(f"perturbation '{name}': training images {tuple(train.images.shape[1:])} "
                        f"{train.modalities} do not match the clean set {tuple(clean.images.shape[1:])} "
                        f"{clean.modalities}")
    return train
