"""Scores of a vessel segmentation beyond voxel overlap: clDice and the error in the number of pieces.

A missing arterial segment costs little Dice (vessels are thin, so few voxels) but breaks the tree; clDice
(Shit et al., CVPR 2021) scores the overlap of centrelines instead: topology precision = share of the predicted
centreline inside the reference mask, topology sensitivity = share of the reference centreline inside the
prediction, clDice = their harmonic mean. Centrelines are scikit-image's `skeletonize` (2D or 3D). The
component error is |pieces(prediction) - pieces(reference)| with full connectivity (8 in 2D, 26 in 3D), the
Betti-0 error: an occlusion or a gap adds a piece, a merged vessel removes one.

Empty masks: clDice is 1 when both are empty and 0 when exactly one is (as Dice in evaluation.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import label as connected_components
from skimage.morphology import skeletonize


def centreline_counts(pred: np.ndarray, ref: np.ndarray) -> tuple[int, int, int, int]:
    """(predicted centreline voxels inside ref, predicted centreline voxels, reference centreline voxels inside
    pred, reference centreline voxels) of two boolean masks of one item."""
    pred_line = skeletonize(pred) if pred.any() else np.zeros_like(pred, dtype=bool)
    ref_line = skeletonize(ref) if ref.any() else np.zeros_like(ref, dtype=bool)
    pred_line, ref_line = pred_line.astype(bool), ref_line.astype(bool)
    return int((pred_line & ref).sum()), int(pred_line.sum()), int((ref_line & pred).sum()), int(ref_line.sum())


def cldice_from_counts(counts: Sequence[tuple[int, int, int, int]]) -> float:
    """clDice of items pooled like a subject's Dice: the centreline counts summed over the items first."""
    inside_ref, pred_total, inside_pred, ref_total = np.sum(np.asarray(counts, dtype=float).reshape(-1, 4), axis=0)
    if pred_total == 0 and ref_total == 0:
        return 1.0
    if pred_total == 0 or ref_total == 0:
        return 0.0
    precision, sensitivity = inside_ref / pred_total, inside_pred / ref_total
    return 0.0 if precision + sensitivity == 0 else float(2 * precision * sensitivity / (precision + sensitivity))


def cldice(pred: np.ndarray, ref: np.ndarray) -> float:
    """clDice of two boolean masks (2D or 3D), in [0, 1]."""
    return cldice_from_counts([centreline_counts(np.asarray(pred, bool), np.asarray(ref, bool))])


def piece_count(mask: np.ndarray) -> int:
    """Connected pieces of a boolean mask, full connectivity."""
    return int(connected_components(mask, structure=np.ones((3,) * mask.ndim))[1])


def component_error(pred: np.ndarray, ref: np.ndarray) -> int:
    """|pieces(pred) - pieces(ref)|, the Betti-0 error of one item."""
    return abs(piece_count(np.asarray(pred, bool)) - piece_count(np.asarray(ref, bool)))
