"""Distribution shift of the whole set: population shift and mode dropping.

Each output item is an untouched clean item, so reference metrics see perfect pairs (reference_index points
at the item used) while the set's composition drifts: what distribution metrics should catch. The set keeps
its size; `sources` says which clean item fills each slot. One generator per (seed, name) draws a fixed
order of candidates, and a level takes a prefix of it, so the items changed at one level include those of
the level below.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError, DataError
from perturbations.base import SetPerturbation, at_severity, end_points


def refill(clean: ImageSet, replaced: np.ndarray, donors: np.ndarray, rng: np.random.Generator):
    """Replace the items at `replaced` by donors (cycled in a random order); (set, reference_index, sources)."""
    index = np.arange(len(clean))
    if len(replaced):
        order = rng.permutation(donors)
        index[replaced] = order[np.arange(len(replaced)) % len(order)]
    reference = torch.as_tensor(index, dtype=torch.long)
    return clean.subset(reference), reference, [f"clean:{i}" for i in index.tolist()]


def lesion_sizes(clean: ImageSet) -> np.ndarray:
    """Number of tumour voxels per item."""
    return clean.labels.flatten(1).gt(0).sum(1).cpu().numpy()


class PopulationShift(SetPerturbation):
    """The set's mix changes: tumour-free items over-represented, or tumours of one size range only.

    mode: "tumour_free" replaces a growing share of the lesion items by tumour-free items; "small_tumours"
    / "large_tumours" replace a growing share of the lesion items outside the smallest / largest third
    (by lesion size) by lesion items inside it. Replacements are drawn from the clean set itself.
    fraction: share of the candidate items replaced, 0..1; default 0.2 -> 1.0 (all of them at level 5).
    """

    family = "shift"
    modes = ("tumour_free", "small_tumours", "large_tumours")

    def __init__(self, mode: str = "tumour_free", fraction: Any = (0.2, 1.0)) -> None:
        super().__init__()
        if mode not in self.modes:
            raise ConfigError(f"parameter 'mode' must be one of {self.modes}, got {mode!r}")
        self.mode = mode
        self.fraction = end_points("fraction", fraction, low=0.0, high=1.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"mode": self.mode, "fraction": at_severity(self.fraction, severity)}

    def build_set(self, clean, params, rng, train):
        sizes = lesion_sizes(clean)
        lesion = np.flatnonzero(sizes > 0)
        if self.mode == "tumour_free":
            candidates, donors = lesion, np.flatnonzero(sizes == 0)
        else:
            if len(lesion) < 3:
                raise DataError(f"perturbation '{self.name}' ({self.mode}) needs at least 3 items with a lesion, "
                                f"the set has {len(lesion)}")
            lo, hi = np.quantile(sizes[lesion], [1 / 3, 2 / 3])
            keep = sizes[lesion] <= lo if self.mode == "small_tumours" else sizes[lesion] >= hi
            candidates, donors = lesion[~keep], lesion[keep]
        if len(donors) == 0:
            raise DataError(f"perturbation '{self.name}' ({self.mode}) found no items to draw replacements from "
                            "(e.g. no tumour-free slices in the clean set)")
        order = rng.permutation(candidates)
        replaced = order[: round(params["fraction"] * len(candidates))]
        return refill(clean, np.sort(replaced), donors, rng)


class ModeDropping(SetPerturbation):
    """The set collapses onto a shrinking fraction of its subjects (a generator dropping modes).

    Items of dropped subjects are replaced by items of the kept subjects. keep: share of subjects kept,
    0..1 (at least one subject is always kept); default 0.8 -> 0.1.
    """

    family = "shift"

    def __init__(self, keep: Any = (0.8, 0.1)) -> None:
        super().__init__()
        self.keep = end_points("keep", keep, low=0.0, high=1.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"subjects_kept": at_severity(self.keep, severity)}

    def build_set(self, clean, params, rng, train):
        subjects = np.array(sorted(set(clean.subject_ids)))
        order = rng.permutation(subjects)
        kept = set(order[: max(1, round(params["subjects_kept"] * len(subjects)))].tolist())
        in_kept = np.array([s in kept for s in clean.subject_ids])
        return refill(clean, np.flatnonzero(~in_kept), np.flatnonzero(in_kept), rng)
