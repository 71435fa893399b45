"""NIQE on real-like sets where some items have no patch that is half brain: scored per item on a fallback,
flagged and counted, never failing the set (on the six BRATS 2015 patients one test slice is such an item)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.metrics.no_reference.niqe import NIQE, brisque_slices, patch_features
from tests.test_no_reference import _images


def _rim(masks: torch.Tensor, width: int) -> torch.Tensor:
    """Only a band `width` px wide along the top edge is brain: no 16 px patch is half brain."""
    rim = torch.zeros_like(masks)
    rim[..., :width, :] = True
    return rim


def test_items_without_usable_patch_use_partial_brain_patches_and_are_counted():
    images, masks = _images(10, (64, 64), seed=3)
    model = NIQE(patch_size=16).fit(images[:6], masks[:6])
    test_masks = masks[6:].clone()
    test_masks[1] = _rim(masks[7:8], 5)[0]  # item 1: a sliver of brain
    scores = model(images[6:], test_masks)
    assert torch.isfinite(scores).all() and model.fallback["partial_brain_patches"] == [1]
    assert model.fallback["whole_brain"] == [] and model.fallback["unscorable"] == []
    # the fallback item is scored on its own partial patches by the same formula
    features, usable, _ = patch_features(images[7:8], test_masks[1:2], 16, 0.0, "niqe")
    rows = features[0][usable[0]].numpy()
    s = (model.covariance.numpy() + np.cov(rows, rowvar=False)) / 2
    d = model.mean.numpy() - rows.mean(0)
    assert scores[1].item() == pytest.approx(math.sqrt(d @ np.linalg.pinv(s) @ d), rel=1e-6)
    # the other items score exactly as without the odd one
    alone = model(images[6:][[0, 2, 3]], test_masks[[0, 2, 3]])
    torch.testing.assert_close(scores[[0, 2, 3]], alone)
    assert model.fallback["partial_brain_patches"] == []  # flags describe the last call


def test_item_without_any_brain_pixel_is_nan_alone():
    images, masks = _images(6, (64, 64), seed=4)
    model = NIQE(patch_size=16).fit(images[:4], masks[:4])
    test_masks = masks[4:].clone()
    test_masks[0] = False
    test_masks[0, 0, 0, 0] = True  # one pixel: no patch fit, no whole-image fit
    scores = model(images[4:], test_masks)
    assert math.isnan(scores[0].item()) and math.isfinite(scores[1].item())
    assert model.fallback["unscorable"] == [0]
    assert brisque_slices(images[4:5], test_masks[:1]) == [None]

