"""Dice and HD95 of the segmentation stage on hand-built label maps whose answers are worked out here, from the
BraTS 2023 region definitions written independently of the package (labels 1 necrotic core, 2 oedema,
3 enhancing tumour; whole tumour = {1, 2, 3}, tumour core = {1, 3}, enhancing tumour = {3}; Baid et al.
2021 / the BraTS 2023 challenge, the convention the README states). Exact rational values: tolerance 1e-6
(float32 voxel counts far below 2^24).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.networks.nets import UNet

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError
from segmentation.evaluation import evaluate_segmenter, item_hd95, score_label_maps, subject_groups
from segmentation.segmenter import Segmenter

BRATS_2023 = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,), "NCR": (1,), "ED": (2,)}
TOL = 1e-6


def imageset(labels: torch.Tensor, subjects: list[str], slices: list[int], spacing=(1.5, 2.0)) -> ImageSet:
    images = (labels > 0).float() * 0.8 + 0.1
    return ImageSet(images=images, labels=labels, brain_masks=torch.ones_like(labels, dtype=torch.bool),
                    subject_ids=subjects, slice_indices=slices, modalities=("flair",), spacing=spacing, meta={})


def layered(size: int = 16) -> torch.Tensor:
    """One (1, 1, size, size) reference: 4 voxels of label 1, 8 of label 3, 12 of label 2, the rest 0."""
    label = torch.zeros(1, 1, size, size, dtype=torch.long)
    flat = label.view(-1)
    flat[0:4], flat[20:28], flat[40:52] = 1, 3, 2
    return label


def test_region_dice_follows_the_brats_2023_definitions():
    """Prediction relabels the 4 necrotic voxels as oedema: WT and ET stay perfect, TC and NCR and ED do not."""
    reference = layered()
    predicted = reference.clone()
    predicted[reference == 1] = 2
    row = score_label_maps(predicted, imageset(reference, ["s"], [0]), with_hd95=False).iloc[0]
    expected = {
        "WT": 1.0,                       # {1,2,3}: 24 voxels in both
        "TC": 2 * 8 / (12 + 8),          # {1,3}: reference 4 + 8, prediction 8
        "ET": 1.0,                       # {3}: 8 in both
        "NCR": 0.0,                      # {1}: reference 4, prediction none
        "ED": 2 * 12 / (12 + 16),        # {2}: reference 12, prediction 12 + 4
    }
    for name, value in expected.items():
        assert row[f"dice_{name}"] == pytest.approx(value, abs=TOL), name
    assert row["ref_voxels_WT"] == 24 and row["n_items"] == 1


@pytest.mark.parametrize("name", list(BRATS_2023))
def test_each_structure_against_masks_built_from_the_spec(name):
    """Random label maps; reference masks from the spec table above, Dice by the textbook formula."""
    g = torch.Generator().manual_seed(3)
    reference = torch.randint(0, 4, (3, 1, 12, 12), generator=g)
    predicted = torch.randint(0, 4, (3, 1, 12, 12), generator=g)
    row = score_label_maps(predicted, imageset(reference, ["s"] * 3, [0, 1, 2]), with_hd95=False).iloc[0]
    p, r = np.isin(predicted.numpy(), BRATS_2023[name]), np.isin(reference.numpy(), BRATS_2023[name])
    assert row[f"dice_{name}"] == pytest.approx(2 * (p & r).sum() / (p.sum() + r.sum()), abs=TOL)


def test_subject_dice_pools_voxels_over_slices_not_averages_per_slice():
    """Slice 1: 10 reference voxels, all found; slice 2: 30 reference voxels, none found.
    Pooled Dice = 2 * 10 / (10 + 40) = 0.4; the mean of per-slice Dice would be 0.5."""
    reference = torch.zeros(2, 1, 8, 8, dtype=torch.long)
    reference[0].view(-1)[:10] = 2
    reference[1].view(-1)[:30] = 2
    predicted = torch.zeros_like(reference)
    predicted[0] = reference[0]
    row = score_label_maps(predicted, imageset(reference, ["s", "s"], [4, 5]), with_hd95=False).iloc[0]
    assert row["dice_WT"] == pytest.approx(0.4, abs=TOL)
    assert row["ref_voxels_WT"] == 40 and row["n_items"] == 2


def test_hd95_of_isolated_voxels_is_their_distance_in_mm_along_the_right_axis():
    """Single-voxel masks 3 rows apart (1.5 mm rows) then 4 columns apart (2.0 mm columns)."""
    spacing = (1.5, 2.0)
    pred = torch.zeros(2, 1, 20, 24)
    ref = torch.zeros_like(pred)
    pred[0, 0, 5, 5], ref[0, 0, 8, 5] = 1, 1
    pred[1, 0, 5, 5], ref[1, 0, 5, 9] = 1, 1
    np.testing.assert_allclose(item_hd95(pred, ref, spacing)[:, 0].numpy(), [4.5, 8.0], atol=TOL)
    pred[1] = 0
    diagonal = math.hypot(20 * 1.5, 24 * 2.0)
    hd = item_hd95(pred, ref, spacing)[:, 0]
    assert hd[1].item() == pytest.approx(diagonal, abs=1e-4)
    assert torch.isnan(item_hd95(torch.zeros_like(pred), torch.zeros_like(ref), spacing)).all()


def test_hd95_of_regions_in_the_subject_table():
    """Tumour core: reference {1,3} voxel at (2, 2), prediction label 3 at (2, 6): 4 columns x 2.0 mm = 8 mm;
    the oedema voxel of the prediction is far away but is not core. Whole tumour adds it: 95th percentile."""
    reference = torch.zeros(1, 1, 16, 16, dtype=torch.long)
    predicted = torch.zeros_like(reference)
    reference[0, 0, 2, 2] = 1
    predicted[0, 0, 2, 6] = 3
    predicted[0, 0, 14, 2] = 2
    row = score_label_maps(predicted, imageset(reference, ["s"], [0])).iloc[0]
    assert row["hd95_TC"] == pytest.approx(8.0, abs=TOL)
    assert row["hd95_ET"] == pytest.approx(math.hypot(16 * 1.5, 16 * 2.0), abs=1e-4)  # reference has no ET
    assert row["dice_ET"] == 0.0 and row["dice_TC"] == 0.0


def test_subject_groups_keep_first_appearance_and_sort_by_slice():
    groups = subject_groups(["b", "a", "b", "a", "c"], [7, 3, 2, 9, 0])
    assert list(groups) == ["b", "a", "c"]
    assert groups == {"b": [2, 0], "a": [1, 3], "c": [4]}


def test_table_has_one_row_per_subject_in_order():
    reference = layered().repeat(3, 1, 1, 1)
    predicted = reference.clone()
    predicted[2] = 0  # subject "y" has one of its two slices empty
    table = score_label_maps(predicted, imageset(reference, ["y", "x", "y"], [1, 0, 0]))
    assert table["subject_id"].tolist() == ["y", "x"] and table["n_items"].tolist() == [2, 1]
    assert table.loc[0, "dice_WT"] == pytest.approx(2 * 24 / (48 + 24), abs=TOL)
    assert table.loc[1, "dice_WT"] == 1.0
    assert list(table.columns) == ["subject_id", "n_items", *[f"dice_{s}" for s in BRATS_2023],
                                   "hd95_WT", "hd95_TC", "hd95_ET", "ref_voxels_WT"]


def test_evaluate_segmenter_scores_the_model_prediction_and_drops_non_finite_items():
    torch.manual_seed(0)
    network = UNet(spatial_dims=2, in_channels=1, out_channels=4, channels=(4, 8), strides=(2,))
    model = Segmenter(network=network, modalities=("flair",), spatial_dims=2)
    reference = layered().repeat(3, 1, 1, 1)
    test = imageset(reference, ["a", "b", "b"], [0, 0, 1])
    expected = score_label_maps(model.predict(test.images), test)
    assert evaluate_segmenter(model, test, device="cpu").equals(expected)
    images = test.images.clone()
    images[1] = float("nan")
    with pytest.warns(UserWarning, match=r"^the test set has 1 item\(s\) with NaN/Inf images, left out: \[1\]$"):
        table = evaluate_segmenter(model, test.with_images(images))
    assert table["n_items"].tolist() == [1, 1]
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"^segmentation was asked to run on cuda but this machine has 0 CUDA"):
            evaluate_segmenter(model, test, device="cuda")


def test_hd95_refuses_a_spacing_with_the_wrong_number_of_axes():
    """A 3-axis spacing for 2D slices would silently give a wrong diagonal (the score of a missed structure)."""
    reference = torch.zeros(1, 1, 8, 8)
    reference[0, 0, 2, 2] = 1
    with pytest.raises(ValueError):
        item_hd95(torch.zeros_like(reference), reference, spacing=(1.0, 1.0, 1.0))
    assert item_hd95(torch.zeros_like(reference), reference, spacing=(3.0, 4.0)).item() == pytest.approx(40.0)
