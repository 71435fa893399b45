"""frd_v1's preprocessing paths that the generated 1.5 mm sets of test_radiomics_frd_score.py do not take, against
frd-score 1.0.1 itself: slices already at the 1 mm target (cropped, not resampled), anisotropic volumes whose
mask is one slice thick (that axis keeps its spacing), and the preprocessing's input types."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_radiomics_frd_score import _assert_features_equal, _generated

pytest.importorskip("frd_score.frd")


def test_2d_slice_at_the_target_spacing_is_cropped_not_resampled(tmp_path):
    image, mask = _generated(1, (44, 38), seed=60)[0]
    _assert_features_equal(tmp_path, image, mask, (1.0, 1.0))


@pytest.mark.xfail(strict=True, reason="open defect: on an anisotropic volume whose mask is one slice thick, 566 of "
                   "1014 frd_v1 features differ from frd-score 1.0.1 (TotalEnergy 1.69e8 vs 2.11e8); the handling of "
                   "the one-voxel-thick axis in resampling is not yet explained (README, Conventions)")
def test_anisotropic_volume_with_a_one_slice_thick_mask(tmp_path):
    image, mask = _generated(1, (6, 30, 26), seed=61)[0]
    thin = np.zeros_like(mask)
    thin[3] = mask[3]
    _assert_features_equal(tmp_path, image * thin, thin, (2.5, 0.8, 1.3))


def test_anisotropic_volume_resampled_on_every_axis(tmp_path):
    image, mask = _generated(1, (8, 22, 20), seed=62)[0]
    _assert_features_equal(tmp_path, image, mask, (2.0, 0.7, 1.4))


def test_two_blobs_touching_at_a_corner_are_one_component_as_in_frd_score(tmp_path):
    image, mask = _generated(1, (40, 36), seed=63)[0]
    corner = np.zeros_like(mask)
    corner[8:18, 6:16] = corner[18:28, 16:26] = True  # joined only diagonally: one 8-connected component
    _assert_features_equal(tmp_path, image, corner, (1.5, 1.5))


def test_batches_of_different_mask_sizes_and_input_types_give_the_same_features():
    import torch

    from benchmark.metrics.radiomics.frd_v1 import frd_v1_features

    items = [_generated(1, (40, 36), seed=64 + k)[0] for k in range(3)]
    masks = np.stack([m for _, m in items])
    masks[1, :12] = False  # a smaller region: a smaller resampled grid, padded in the stack
    images = torch.from_numpy(np.stack([i for i, _ in items]).astype(np.float32))[:, None]
    masks = torch.from_numpy(masks)[:, None]
    batched, _ = frd_v1_features(images, masks)
    for k in range(3):
        alone, _ = frd_v1_features(images[k : k + 1], masks[k : k + 1], (1.0, 1.0), batch_size=1)
        torch.testing.assert_close(batched[k : k + 1], alone, rtol=0, atol=0)
    torch.testing.assert_close(frd_v1_features(images.double(), masks.long(), batch_size=2)[0], batched, rtol=0, atol=0)
    fine = images.double() + 1e-9  # not float32 values: rounded to float32 first, as frd-score reads its files
    torch.testing.assert_close(frd_v1_features(fine, masks)[0], frd_v1_features(fine.float(), masks)[0], rtol=0, atol=0)


def test_frd_v1_input_errors_name_the_problem():
    import torch

    from benchmark.errors import ConfigError, DataError
    from benchmark.metrics.radiomics.frd_v1 import frd_v1_features

    image, mask = _generated(1, (16, 16), seed=67)[0]
    images, masks = torch.from_numpy(image)[None, None], torch.from_numpy(mask)[None, None]
    prefix = r"^frd_v1: images \(N, 1, H, W\) or \(N, 1, D, H, W\) and masks of the same shape are needed, got "
    with pytest.raises(ConfigError, match=prefix + r"\(1, 1, 16, 16\) and None$"):
        frd_v1_features(images, None)
    with pytest.raises(ConfigError, match=prefix + r"\(1, 1, 16, 16\) and \(1, 1, 16, 8\)$"):
        frd_v1_features(images, masks[..., :8])
    with pytest.raises(ConfigError, match=prefix + r"\(1, 16, 16\) and \(1, 16, 16\)$"):
        frd_v1_features(images[0], masks[0])
    speck = torch.zeros_like(masks)
    speck[..., 5, 5] = True
    with pytest.raises(DataError, match=r"hold fewer than 2 voxels"):
        frd_v1_features(images, speck)
    apart = torch.zeros_like(masks)
    apart[..., 2, 2] = apart[..., 12, 12] = True
    with pytest.raises(DataError, match=r"^frd_v1: a mask of 2 voxels is empty after resampling to 2 mm \(its voxels "
                                        r"fall between the grid's nearest neighbours\); use larger masks$"):
        frd_v1_features(images, apart)
    apart = torch.zeros_like(masks)
    apart[..., 2:4, 2:4] = apart[..., 10:12, 10:12] = True  # one voxel each at 2 mm: no two neighbours
    with pytest.raises(DataError, match=r"^frd_v1: radiomics features are undefined for some items \(a mask with no "
                                        r"two neighbouring voxels after resampling to 2 mm\); use larger masks$"):
        frd_v1_features(images, apart)
