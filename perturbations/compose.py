"""A composition of perturbations applied in sequence at the same severity (configured in YAML)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError
from perturbations.base import FAMILIES, Perturbation, PerturbedSet, check_severity


class Compose(Perturbation):
    """Apply `steps` one after the other, each at the requested severity.

    steps: the perturbations (Hydra instantiates the nested `_target_` nodes), a list or a name -> step
    mapping. family: the family the composition is reported under (default: the first step's). The scope
    is "set" when any step is set-level. Provenance composes: an item's reference is its source's reference,
    and each step draws from its own generator (name "<composition>/<step>").
    """

    def __init__(self, steps: Sequence[Perturbation] | Mapping[str, Perturbation], family: str | None = None) -> None:
        super().__init__()
        named = dict(steps) if isinstance(steps, Mapping) else {str(i): s for i, s in enumerate(steps)}
        if not named:
            raise ConfigError("parameter 'steps' of a composition must name at least one perturbation")
        for key, step in named.items():
            if not isinstance(step, Perturbation):
                raise ConfigError(f"composition step '{key}' is {type(step).__name__}, not a Perturbation: give "
                                  "it a '_target_' naming a Perturbation class")
        if family is not None and family not in FAMILIES:
            raise ConfigError(f"parameter 'family' must be one of {sorted(FAMILIES)}, got {family!r}")
        self.steps = named
        self.family = family or next(iter(named.values())).family
        self.scope = "set" if any(s.scope == "set" for s in named.values()) else "sample"

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {key: step.parameters(severity) for key, step in self.steps.items()}

    def apply(self, clean: ImageSet, severity: int, seed: int, train: ImageSet | None = None) -> PerturbedSet:
        severity = check_severity(severity)
        if severity == 0:
            return self.identity(clean, severity)
        data, reference = clean, torch.arange(len(clean))
        sources, skipped = [f"clean:{i}" for i in range(len(clean))], set()
        for key, step in self.steps.items():
            step.name = f"{self.name}/{key}"
            out = step.apply(data, severity, seed, train)
            inner = out.reference_index
            reference = torch.where(inner >= 0, reference[inner.clamp(min=0)], torch.full_like(inner, -1))
            sources = [src if src.startswith("train:") else sources[int(src.split(":")[1])] for src in out.sources]
            skipped |= set(out.skipped)
            data = out.data
        return PerturbedSet(data, reference, self.describe(severity), sorted(skipped), sources)
