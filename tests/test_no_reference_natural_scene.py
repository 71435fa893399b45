"""Natural-scene features per patch against a brute-force numpy count on sparse masks: which patches have a
fit (enough voxels, a variance, both signs in every neighbour product) and each patch's sharpness.

Sparse random masks (as a thin brain rim or a small lesion gives) make patches with 0, 1, 2, ... voxels and
products whose neighbour lies in the next patch, where a loop over voxels is the independent reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.metrics.no_reference.natural_scene import PRODUCT_SHIFTS, mscn, scale_features

PATCH = (4, 4)


def _reference(x: np.ndarray, sigma: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-patch validity, sharpness and voxel count by loops over the voxels of one (H, W) image."""
    h, wd = x.shape
    ph, pw = PATCH
    valid = np.zeros((h // ph, wd // pw), dtype=bool)
    sharp = np.zeros(valid.shape)
    count = np.zeros(valid.shape, dtype=int)
    for i in range(h // ph):
        for j in range(wd // pw):
            voxels = [(a, b) for a in range(i * ph, (i + 1) * ph) for b in range(j * pw, (j + 1) * pw) if w[a, b]]
            count[i, j] = len(voxels)
            sharp[i, j] = sum(sigma[v] for v in voxels) / max(len(voxels), 1)
            ok = len(voxels) > 1 and np.mean([x[v] ** 2 for v in voxels]) > 0
            for dy, dx in PRODUCT_SHIFTS:
                products = [x[a, b] * x[a + dy, b + dx] for a, b in voxels
                            if 0 <= a + dy < h and 0 <= b + dx < wd and w[a + dy, b + dx]]
                ok = ok and any(p < 0 for p in products) and any(p > 0 for p in products)
            valid[i, j] = ok
    return valid, sharp, count


@pytest.mark.parametrize("density", [0.15, 0.3, 0.6])
def test_patch_validity_and_sharpness_equal_a_voxel_loop_on_sparse_masks(density):
    rng = np.random.default_rng(int(density * 100))
    images = torch.from_numpy(rng.random((3, 48, 48)))
    masks = torch.from_numpy(rng.random((3, 48, 48)) < density)
    x, sigma = mscn(images)
    features, valid, sharpness = scale_features(images, masks.double(), PATCH)
    assert features.shape == (3, 12, 12, 18)
    hits = 0
    for k in range(3):
        expected_valid, expected_sharp, count = _reference(x[k].numpy(), sigma[k].numpy(), masks[k].numpy())
        np.testing.assert_array_equal(valid[k].numpy(), expected_valid)
        np.testing.assert_allclose(sharpness[k].numpy(), expected_sharp, rtol=1e-12, atol=1e-12)
        hits += int((expected_valid & (count == 2)).sum()) + int((~expected_valid & (count > 2)).sum())
    if density == 0.15:  # the sparse case must hold the boundary cases: valid with 2 voxels, invalid with more
        assert hits > 0


def test_a_patch_of_two_voxels_with_both_signs_in_every_product_has_a_fit():
    """Two voxels on a patch's lower edge, their neighbours in the next patches: the smallest fit that exists."""
    mask = np.ones((16, 16), dtype=bool)
    mask[:4, :4] = False
    mask[3, 2] = mask[3, 3] = True
    images = torch.from_numpy(np.random.default_rng(3).random((1, 16, 16)))  # a seed whose signs all differ
    x, sigma = mscn(images)
    expected_valid, expected_sharp, count = _reference(x[0].numpy(), sigma[0].numpy(), mask)
    assert count[0, 0] == 2 and expected_valid[0, 0]
    _, valid, sharpness = scale_features(images, torch.from_numpy(mask[None]).double(), PATCH)
    np.testing.assert_array_equal(valid[0].numpy(), expected_valid)
    np.testing.assert_allclose(sharpness[0].numpy(), expected_sharp, rtol=1e-12)
