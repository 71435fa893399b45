"""Per-subject Dice and HD95 of the segmentation stage against MONAI and direct numpy / scipy formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import DiceMetric
from scipy.ndimage import binary_erosion
from scipy.spatial.distance import cdist

from benchmark.data.imageset import REGIONS
from segmentation.evaluation import STRUCTURES, score_label_maps
from tests.segmentation_data import synthetic_slices

TOL = 1e-6  # float32 sums of a few thousand voxels


def numpy_dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """2|A and B| / (|A| + |B|), BraTS convention 1 when both are empty."""
    total = pred.sum() + ref.sum()
    return 1.0 if total == 0 else 2.0 * np.logical_and(pred, ref).sum() / total


def scipy_hd95(pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, float]) -> float:
    """Symmetric 95th-percentile Hausdorff distance between the erosion edges of two 2D masks (mm)."""
    edges = [np.argwhere(m & ~binary_erosion(m)) * np.asarray(spacing) for m in (pred, ref)]
    distances = cdist(edges[0], edges[1])
    return max(np.percentile(distances.min(axis=1), 95), np.percentile(distances.min(axis=0), 95))


@pytest.fixture(scope="module")
def test_set_and_prediction():
    """Synthetic labelled slices and a 'prediction': the labels shifted, eroded and partly relabelled."""
    test = synthetic_slices(n_subjects=3, per_subject=4, size=48, seed=5)
    g = torch.Generator().manual_seed(1)
    predicted = test.labels.roll(shifts=(2, -1), dims=(2, 3)).clone()
    flip = (torch.rand(predicted.shape, generator=g) < 0.05) & (predicted > 0)
    predicted[flip] = torch.randint(1, 4, (int(flip.sum()),), generator=g)
    return test, predicted


def test_dice_agrees_with_numpy_and_monai(test_set_and_prediction):
    test, predicted = test_set_and_prediction
    table = score_label_maps(predicted, test).set_index("subject_id")
    labels, pred = test.labels.numpy()[:, 0], predicted.numpy()[:, 0]
    for subject in table.index:
        items = [i for i, s in enumerate(test.subject_ids) if s == subject]
        for name, values in STRUCTURES.items():
            p, r = np.isin(pred[items], values), np.isin(labels[items], values)
            assert table.loc[subject, f"dice_{name}"] == pytest.approx(numpy_dice(p, r), abs=TOL)
            monai_value = DiceMetric(include_background=True, ignore_empty=False)(
                torch.from_numpy(p)[None, None].float(), torch.from_numpy(r)[None, None].float()
            )
            assert table.loc[subject, f"dice_{name}"] == pytest.approx(float(monai_value), abs=TOL)
    assert set(REGIONS) <= {c.removeprefix("dice_") for c in table.columns}


def test_hd95_agrees_with_scipy_per_slice(test_set_and_prediction):
    test, predicted = test_set_and_prediction
    table = score_label_maps(predicted, test).set_index("subject_id")
    labels, pred = test.labels.numpy()[:, 0], predicted.numpy()[:, 0]
    subject = test.subject_ids[0]
    items = [i for i, s in enumerate(test.subject_ids) if s == subject]
    for name in ("WT", "TC"):
        per_slice = []
        for i in items:
            p, r = np.isin(pred[i], STRUCTURES[name]), np.isin(labels[i], STRUCTURES[name])
            if p.any() and r.any():
                per_slice.append(scipy_hd95(p, r, test.spacing))
            elif p.any() or r.any():
                per_slice.append(np.hypot(48 * 1.5, 48 * 1.5))
        assert per_slice, "the fixture must give the first subject some tumour"
        assert table.loc[subject, f"hd95_{name}"] == pytest.approx(np.mean(per_slice), rel=1e-4)


def test_empty_masks_follow_brats_convention():
    test = synthetic_slices(n_subjects=1, per_subject=2, size=32, seed=0)
    test = test.with_images(test.images, labels=torch.zeros_like(test.labels))
    empty = score_label_maps(torch.zeros_like(test.labels), test).iloc[0]
    assert empty["dice_WT"] == 1.0 and empty["hd95_WT"] == 0.0
    spurious = torch.zeros_like(test.labels)
    spurious[0, 0, 10:14, 10:14] = 2
    row = score_label_maps(spurious, test).iloc[0]
    assert row["dice_WT"] == 0.0
    assert row["hd95_WT"] == pytest.approx(np.hypot(32 * 1.5, 32 * 1.5))  # one slice, the other excluded
    assert not score_label_maps(spurious, test).isna().any().any()
