"""Checkpoint selection by validation Dice counts only the subjects that have each region: a tumour-free
subject scores Dice 1 for an empty prediction (BraTS convention), which made a model predicting no tumour
the "best" checkpoint of the default study (clean WT Dice 0.415 instead of 0.882)."""

import math

import torch
from torch import nn

from benchmark.data.imageset import ImageSet
from segmentation.training import validation_dice


class LabelsFromIntensity(nn.Module):
    """A fixed 'network' whose logits pick label round(3 * image), or background everywhere."""

    blocks_down = (0,)  # size divisor 1: no padding

    def __init__(self, empty: bool = False):
        super().__init__()
        self.empty = empty
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, images):
        labels = torch.zeros_like(images[:, 0]).long() if self.empty else (images[:, 0] * 3).round().long()
        return nn.functional.one_hot(labels, 4).movedim(-1, 1).float() + self.weight


def _val(with_tumour: list[bool]) -> ImageSet:
    n = len(with_tumour)
    labels = torch.zeros(n, 1, 16, 16, dtype=torch.long)
    for i, tumour in enumerate(with_tumour):
        if tumour:
            labels[i, 0, 4:12, 4:12] = 2
            labels[i, 0, 6:10, 6:10] = 3
            labels[i, 0, 7:9, 7:9] = 1
    images = labels.float() / 3
    return ImageSet(images, labels, torch.ones_like(labels, dtype=torch.bool), [f"s{i}" for i in range(n)],
                    [0] * n, ("flair",), (1.0, 1.0))


def test_tumour_free_subjects_do_not_reward_an_empty_prediction():
    val = _val([False, False, True])
    empty = validation_dice(LabelsFromIntensity(empty=True), val, batch_size=2)
    assert empty == {"dice_WT": 0.0, "dice_TC": 0.0, "dice_ET": 0.0}  # all-subject mean would be 2/3
    oracle = validation_dice(LabelsFromIntensity(), val, batch_size=2)
    assert oracle == {"dice_WT": 1.0, "dice_TC": 1.0, "dice_ET": 1.0}


def test_a_region_no_validation_subject_has_is_nan():
    val = _val([False, True])
    val.labels[val.labels == 1] = 3  # no necrotic core: TC = {1, 3} still present, only label 1 gone
    val.labels[val.labels == 3] = 2  # and no enhancing tumour either: TC and ET absent
    dice = validation_dice(LabelsFromIntensity(), val, batch_size=2)
    assert dice["dice_WT"] == 1.0 and math.isnan(dice["dice_TC"]) and math.isnan(dice["dice_ET"])
