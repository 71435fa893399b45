"""Per-subject scores of a segmenter on a test set: Dice on BraTS regions and labels, HD95 on regions.

Dice follows MONAI's `DiceMetric` on the subject's items stacked into one volume (for 2D slices: every
test slice of the subject, so the Dice counts voxels of all its slices together). HD95 follows MONAI's
`HausdorffDistanceMetric` (95th percentile, symmetric, in mm using the set's spacing), computed per item
(slice or volume) and averaged over the subject's items where the structure is present in the reference
or the prediction: the slices of a 2D study are not adjacent, so no 3D surface joins them.

Empty masks follow the BraTS challenge convention, so no score is ever NaN: when the reference is empty,
Dice is 1 if the prediction is empty too and 0 otherwise; HD95 is the image diagonal (mm, the largest
distance possible in the field of view; BraTS uses a fixed 373.13 mm) when exactly one of the two is
empty, and 0 for a subject whose every item has both empty. So a label absent from a subject scores 1
when the model rightly predicts none of it.

Vessel studies (`structures="vessel"`, segmentation.structures in the config) score one structure, every
label > 0: Dice and HD95 as above, clDice and the component (Betti-0) error of `segmentation.vessel_scores`,
clDice pooled over a subject's items like Dice, the component error averaged over its items.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from monai.metrics import DiceMetric, compute_hausdorff_distance

from benchmark.data.imageset import REGIONS, ImageSet
from segmentation.checks import check_device, usable_items
from segmentation.segmenter import Segmenter
from segmentation.vessel_scores import centreline_counts, cldice_from_counts, component_error

# Evaluated structures: the BraTS regions first, then the labels that are not already a region (3 is ET).
STRUCTURES: dict[str, tuple[int, ...]] = {**REGIONS, "NCR": (1,), "ED": (2,)}
HD_PERCENTILE = 95.0


def structure_masks(labels: torch.Tensor) -> torch.Tensor:
    """(N, 1, *spatial) integer label maps -> (N, S, *spatial) float masks, one channel per STRUCTURES entry."""
    masks = [torch.isin(labels[:, 0], torch.tensor(values, device=labels.device)) for values in STRUCTURES.values()]
    return torch.stack(masks, dim=1).float()


def stack_subject(masks: torch.Tensor) -> torch.Tensor:
    """(n, S, *spatial) masks of one subject's items -> (1, S, n * spatial[0], *spatial[1:]) volume.

    For 2D slices this is (1, S, n, H, W); volumes are joined along their first axis.
    """
    stacked = masks.movedim(0, 1)
    return stacked.reshape(1, stacked.shape[0], -1, *stacked.shape[3:])


def subject_dice(pred_masks: torch.Tensor, ref_masks: torch.Tensor) -> torch.Tensor:
    """(S,) Dice of every structure over a subject's stacked items (MONAI DiceMetric, empty reference -> 0/1)."""
    metric = DiceMetric(include_background=True, reduction="none", ignore_empty=False)
    return metric(stack_subject(pred_masks), stack_subject(ref_masks))[0]


def item_hd95(pred_masks: torch.Tensor, ref_masks: torch.Tensor, spacing: Sequence[float]) -> torch.Tensor:
    """(n, S) HD95 in mm of every item and structure: the diagonal when one mask is empty, NaN when both are.

    MONAI is called once, on the (item, structure) pairs where both masks are non-empty.
    """
    spatial = pred_masks.shape[2:]
    diagonal = math.sqrt(sum((size * step) ** 2 for size, step in zip(spatial, spacing, strict=True)))
    pred_empty = pred_masks.flatten(2).sum(-1) == 0
    ref_empty = ref_masks.flatten(2).sum(-1) == 0
    hd = torch.where(pred_empty & ref_empty, math.nan, diagonal)
    both = ~pred_empty & ~ref_empty
    if both.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MONAI's warnings concern empty masks, excluded here
            hd[both] = compute_hausdorff_distance(
                pred_masks[both][:, None], ref_masks[both][:, None], include_background=True,
                percentile=HD_PERCENTILE, spacing=list(spacing),
            )[:, 0].cpu()
    return hd


def subject_hd95(pred_masks: torch.Tensor, ref_masks: torch.Tensor, spacing: Sequence[float]) -> torch.Tensor:
    """(S,) mean HD95 over a subject's items that show the structure; 0 when no item shows it at all."""
    return item_hd95(pred_masks, ref_masks, spacing).nanmean(dim=0).nan_to_num(0.0)


def subject_groups(subject_ids: Sequence[str], slice_indices: Sequence[int]) -> dict[str, list[int]]:
    """Item indices of each subject, in order of first appearance, each list sorted by slice index."""
    groups: dict[str, list[int]] = {}
    for index, subject in enumerate(subject_ids):
        groups.setdefault(subject, []).append(index)
    return {s: sorted(items, key=lambda i: slice_indices[i]) for s, items in groups.items()}


def score_label_maps(
    predicted: torch.Tensor, test: ImageSet, with_hd95: bool = True, structures: str = "tumour"
) -> pd.DataFrame:
    """One row per subject: Dice (and HD95) of `predicted` label maps (N, 1, *spatial) against `test.labels`.

    Columns: subject_id, n_items, dice_<S> for S in WT, TC, ET, NCR, ED, hd95_<R> for the regions R in
    WT, TC, ET (surface distances of single labels say little), and ref_voxels_WT
    (reference whole-tumour size in voxels, 0 for a tumour-free subject). For `structures="vessel"` see
    `score_vessel_maps`.
    """
    if structures == "vessel":
        return score_vessel_maps(predicted, test, with_hd95)
    pred_masks = structure_masks(predicted.cpu())
    ref_masks = structure_masks(test.labels.cpu())
    rows = []
    for subject, items in subject_groups(test.subject_ids, test.slice_indices).items():
        pred, ref = pred_masks[items], ref_masks[items]
        row: dict[str, object] = {"subject_id": subject, "n_items": len(items)}
        row.update({f"dice_{s}": float(v) for s, v in zip(STRUCTURES, subject_dice(pred, ref), strict=True)})
        if with_hd95:
            per_region = subject_hd95(pred[:, : len(REGIONS)], ref[:, : len(REGIONS)], test.spacing)
            row.update({f"hd95_{s}": float(v) for s, v in zip(REGIONS, per_region, strict=True)})
        row["ref_voxels_WT"] = int(ref[:, 0].sum())
        rows.append(row)
    return pd.DataFrame(rows)


def score_vessel_maps(predicted: torch.Tensor, test: ImageSet, with_hd95: bool = True) -> pd.DataFrame:
    """One row per subject of vessel scores (every label > 0 is vessel): subject_id, n_items, dice_vessel,
    cldice_vessel, hd95_vessel (mm; without `with_hd95`: absent), components_vessel (mean per-item |pieces
    predicted - pieces in the reference|) and ref_voxels_vessel."""
    pred_masks = (predicted.cpu() > 0).float()
    ref_masks = (test.labels.cpu() > 0).float()
    rows = []
    for subject, items in subject_groups(test.subject_ids, test.slice_indices).items():
        pred, ref = pred_masks[items], ref_masks[items]
        pred_np, ref_np = pred[:, 0].numpy().astype(bool), ref[:, 0].numpy().astype(bool)
        row: dict[str, object] = {"subject_id": subject, "n_items": len(items),
                                  "dice_vessel": float(subject_dice(pred, ref)[0]),
                                  "cldice_vessel": cldice_from_counts([centreline_counts(p, r)
                                                                       for p, r in zip(pred_np, ref_np, strict=True)])}
        if with_hd95:
            row["hd95_vessel"] = float(subject_hd95(pred, ref, test.spacing)[0])
        row["components_vessel"] = float(np.mean([component_error(p, r) for p, r in zip(pred_np, ref_np, strict=True)]))
        row["ref_voxels_vessel"] = int(ref.sum())
        rows.append(row)
    return pd.DataFrame(rows)


def evaluate_segmenter(model: Segmenter, test: ImageSet, device: torch.device | str | None = None,
                       structures: str = "tumour") -> pd.DataFrame:
    """Segment `test` and score it against its own labels: one row per subject (see `score_label_maps`).

    The labels are those of the test set as given, so a morphological edit is judged against the mask it
    defines. Items with NaN/Inf images are left out with a warning; a set with none usable is a DataError.
    """
    if device is not None:
        model.to(check_device(device))
    test, _ = usable_items(test, "test set")
    return score_label_maps(model.predict(test.images), test, structures=structures)
