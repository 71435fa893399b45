"""Which axial slices of a subject enter the study (2D mode), and an account of what was asked and taken.

`data.slices.min_brain_fraction` is the share of the study's field of view (the `data.size` pixels after
the `fov_mm` zoom and the centre crop) that must be brain for a slice to count as a brain slice: the same
slice covers far more of a 192 mm field of view than of the 240 mm grid it is stored on, so a fraction of
the stored slice would let almost no tumour-free slice of a real BraTS volume qualify.

Policies: `brain` (brain slices), `tumour` (slices holding tumour), `mix` (`tumour_fraction` of the slices
with tumour, the rest tumour-free brain slices, topped up with tumour slices when too few healthy ones
exist). `SliceSelection` records the counts so the data summary can say when a policy could not be met.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig

from benchmark.data import preprocess
from benchmark.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SliceSelection:
    """One subject's chosen slices and the counts behind them. Kinds: `tumour` (holds tumour), `healthy`
    (tumour-free with enough brain), `brain` (enough brain, with or without tumour; asked by policy=brain).
    `asked`: what the policy wants; `available`: the pools; `taken`: the chosen slices by tumour or not."""

    indices: list[int]
    asked: dict[str, int]
    available: dict[str, int]
    taken: dict[str, int]

    def counts(self) -> dict[str, dict[str, int]]:
        """{asked|available|taken: {kind: slices}}: what the summary reports and the cache stores."""
        return {"asked": self.asked, "available": self.available, "taken": self.taken}


def field_of_view_brain(brain: np.ndarray, zoom: Sequence[float], size: Sequence[int], centre: Sequence[float]
                        ) -> np.ndarray:
    """The brain mask (Z, H, W) as the study sees each slice: zoomed in-plane by `zoom` (H, W factors, nearest
    neighbour) and cropped or zero-padded to `size` around `centre` (zoomed pixel coordinates), exactly as
    the chosen slices are."""
    if any(abs(f - 1) > 1e-3 for f in zoom):
        brain = preprocess.zoom_plane(brain, zoom, order=0)
    return preprocess.crop_or_pad(brain, size, centre)


def select_slices(brain_fraction: np.ndarray, has_tumour: np.ndarray, slices_cfg: DictConfig,
                  rng: np.random.Generator) -> SliceSelection:
    """Axial slice indices by policy (see the module docstring).

    `brain_fraction`: share of each slice's field of view that is brain (0-1, one per slice);
    `has_tumour`: whether each slice holds a tumour label.
    """
    brain = np.flatnonzero(brain_fraction >= float(slices_cfg.min_brain_fraction))
    tumour_pool = np.flatnonzero(has_tumour)
    healthy_pool = np.setdiff1d(brain, tumour_pool)
    count = int(slices_cfg.per_subject)
    policy = str(slices_cfg.policy)

    def pick(pool: np.ndarray, k: int) -> list[int]:
        return rng.choice(pool, size=min(k, len(pool)), replace=False).tolist() if k > 0 else []

    available = {"tumour": len(tumour_pool), "healthy": len(healthy_pool), "brain": len(brain)}
    if policy == "brain":
        chosen = pick(brain, count)
        asked = {"brain": count}
    elif policy == "tumour":
        chosen = pick(tumour_pool, count)
        asked = {"tumour": count}
    elif policy == "mix":
        asked = {"tumour": round(count * float(slices_cfg.tumour_fraction))}
        asked["healthy"] = count - asked["tumour"]
        tumour = pick(tumour_pool, asked["tumour"])
        healthy = pick(healthy_pool, count - len(tumour))
        top_up = pick(np.setdiff1d(tumour_pool, tumour), count - len(tumour) - len(healthy))
        chosen = tumour + healthy + top_up
    else:
        raise ConfigError(f"data.slices.policy '{policy}' is not one of brain, tumour, mix.")
    with_tumour = int(np.isin(chosen, tumour_pool).sum())
    taken = {"tumour": with_tumour, "healthy": len(chosen) - with_tumour}
    return SliceSelection(sorted(chosen), asked, available, taken)


def _pool_description(kind: str, count: int, min_brain_fraction: float) -> str:
    """`only 3 tumour-free slices have >= 30% brain in the field of view`, `no slice holds tumour`."""
    singular = count in (0, 1)
    noun = {"tumour": "slice", "healthy": "tumour-free slice", "brain": "slice"}[kind] + ("" if singular else "s")
    if kind == "tumour":
        predicate = "holds tumour" if singular else "hold tumour"
    else:
        predicate = ("has" if singular else "have") + f" >= {min_brain_fraction:.0%} brain in the field of view"
    return f"{'no' if count == 0 else f'only {count}'} {noun} {predicate}"


def shortfall(subject_id: str, counts: dict[str, dict[str, int]], min_brain_fraction: float) -> str | None:
    """Why one subject's selection falls short of what its policy asked (None when it does not)."""
    taken = dict(counts["taken"], brain=sum(counts["taken"].values()))
    reasons = [f"{taken[kind]} of {asked} {kind} slices "
               f"({_pool_description(kind, counts['available'][kind], min_brain_fraction)})"
               for kind, asked in counts["asked"].items() if taken[kind] < asked]
    return f"{subject_id}: {'; '.join(reasons)}" if reasons else None


def split_selection(selections: dict[str, dict[str, dict[str, int]]], min_brain_fraction: float) -> dict:
    """One split's slice selection summed over its subjects: slices of each kind asked and taken, whether
    the policy was met, why not (per subject), and the subjects that gave no slice at all."""
    total = {"asked": {}, "taken": {}}
    for counts in selections.values():
        for row in total:
            for kind, n in counts[row].items():
                total[row][kind] = total[row].get(kind, 0) + n
    reasons = [r for s, counts in selections.items() if (r := shortfall(s, counts, min_brain_fraction))]
    return {**total, "policy_met": not reasons, "shortfalls": reasons,
            "subjects_without_slices": [s for s, counts in selections.items() if not sum(counts["taken"].values())]}


def selection_report(selections: dict[str, dict[str, dict[str, dict[str, int]]]], data_cfg: DictConfig) -> dict:
    """The `slice_selection` entry of the data summary: the policy, where the brain fraction is measured,
    and per split what `split_selection` says."""
    slices = data_cfg.slices
    fov = data_cfg.fov_mm
    view = "x".join(str(int(n)) for n in data_cfg.size) + " pixels" + (f" covering {fov} mm" if fov else "")
    return {"policy": str(slices.policy), "per_subject": int(slices.per_subject),
            "tumour_fraction": float(slices.tumour_fraction), "min_brain_fraction": float(slices.min_brain_fraction),
            "brain_fraction_measured_on": f"the study's field of view ({view}) of each slice",
            "splits": {split: split_selection(by_subject, float(slices.min_brain_fraction))
                       for split, by_subject in selections.items()}}


def warn_unmet_policy(report: dict) -> None:
    """Log, per split, the subjects that gave no slice and the slice counts when the policy was not met."""
    for split, entry in report["splits"].items():
        if entry["subjects_without_slices"]:
            log.warning("%s: %d subject(s) gave no slice under data.slices.policy=%s and are not counted: %s", split,
                        len(entry["subjects_without_slices"]), report["policy"],
                        ", ".join(entry["subjects_without_slices"]))
        if not entry["policy_met"]:
            log.warning("%s: data.slices.policy=%s asked %s slices and took %s (data_summary.json lists why): %s",
                        split, report["policy"], entry["asked"], entry["taken"], " | ".join(entry["shortfalls"][:3]))


def empty_split_message(split: str, selections: dict[str, dict[str, dict[str, int]]], slices_cfg: DictConfig) -> str:
    """The error for a split that no subject gave a slice to: the policy, and why each subject gave none."""
    fraction = float(slices_cfg.min_brain_fraction)
    reasons = [r for s, counts in selections.items() if (r := shortfall(s, counts, fraction))]
    return (f"the {split} split is empty after slice selection (data.slices.policy={slices_cfg.policy}, "
            f"min_brain_fraction={slices_cfg.min_brain_fraction}): {'; '.join(reasons[:5])}. Relax data.slices "
            "(policy=brain or mix, a lower min_brain_fraction) or add subjects.")
