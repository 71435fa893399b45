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
