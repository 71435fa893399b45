"""A tumour edit whose removed tissue is filled by the learned inpainter (`benchmark.generators.inpainter`)
instead of the classical fill of `perturbations.fill`: optional, `conf/perturbation/tumour_remove_learned*.yaml`."""

from __future__ import annotations

from functools import partial
from typing import Any

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError
from benchmark.generators.inpainter import DiffusionInpainter
from perturbations.base import Perturbation, PerturbedSet, check_severity, check_train
from perturbations.morphology import TumourEdit


class LearnedFill(Perturbation):
    """A tumour edit whose removed tissue is filled by the learned inpainter instead of the classical fill.

    edit: the tumour edit (e.g. `perturbations.morphology.TumourRemove`, its end points, label mode and margin);
    inpainter: a `DiffusionInpainter`, trained on the `train` split passed to `apply` (required). The edit's
    random stream is kept, so the removed part is the same as with the classical fill; only the fill differs.
    """

    family = "morphological"
    scope = "sample"
    needs_train = True

    def __init__(self, edit: Perturbation, inpainter: DiffusionInpainter) -> None:
        super().__init__()
        if not isinstance(edit, TumourEdit):
            raise ConfigError(f"LearnedFill: 'edit' must be a tumour edit (perturbations.morphology), got "
                              f"{type(edit).__name__}")
        if not isinstance(inpainter, DiffusionInpainter):
            raise ConfigError(f"LearnedFill: 'inpainter' must be a DiffusionInpainter, got {type(inpainter).__name__}")
        self.edit, self.inpainter = edit, inpainter

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {**self.edit.parameters_at(severity), "fill": "diffusion (RePaint)"}

    def describe(self, severity: int) -> dict[str, Any]:
        return {**self.edit.describe(severity), "perturbation": self.name, **self.parameters(severity)}

    def apply(self, clean: ImageSet, severity: int, seed: int, train: ImageSet | None = None) -> PerturbedSet:
        """The edit at `severity`, filled by the inpainter (trained on `train` once, cached)."""
        if check_severity(severity) == 0:
            return self.identity(clean, severity)
        self.inpainter.fit(check_train(self.name, clean, train), seed)
        out = self.edit.with_fill(partial(self.inpainter.fill, seed=seed)).apply(clean, severity, seed, train)
        out.parameters = self.describe(severity)
        return out
