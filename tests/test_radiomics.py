"""Radiomics features on original images against pyradiomics 3.0.1, same binning (binWidth 1/32), 2D and 3D."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.errors import ConfigError, DataError
from benchmark.metrics.radiomics import RadiomicsExtractor, radiomics_features
from benchmark.metrics.radiomics.discretise import DEFAULT_BIN_WIDTH, discretise
from tests._pyradiomics import assert_features_match, pyradiomics_features, textured_images

pytest.importorskip("radiomics")

# Every feature matches pyradiomics to rounding (observed max relative error ~1e-10); atol covers features
# whose value is ~0 (ClusterShade of a symmetric histogram).
RTOL, ATOL = 1e-6, 1e-9


def _compare(images: torch.Tensor, masks: torch.Tensor | None, spacing: float) -> None:
    dims = images.ndim - 2
    ours, names = radiomics_features(images, masks, image_types=("original",), spacing=(spacing,) * dims)
    assert ours.shape == (images.shape[0], 79) and len(names) == 79
    for k in range(images.shape[0]):
        image = images[k, 0].numpy()
        if masks is None:  # pyradiomics needs some background: pad one zero row outside the mask
            mask = np.pad(np.ones_like(image, dtype=bool), [(0, 1)] + [(0, 0)] * (dims - 1))
            image = np.pad(image, [(0, 1)] + [(0, 0)] * (dims - 1))
        else:
            mask = masks[k, 0].numpy()
        reference = pyradiomics_features(image, mask, DEFAULT_BIN_WIDTH, {"Original": {}}, spacing)
        assert_features_match(ours[k].numpy(), names, reference, RTOL, ATOL)


def test_2d_features_match_pyradiomics_with_masks():
    images, masks = textured_images(4, (24, 28), seed=0)
    _compare(images, masks, spacing=1.5)


def test_2d_features_match_pyradiomics_whole_image():
    images, _ = textured_images(2, (20, 20), seed=1)
    _compare(images, None, spacing=1.0)


def test_3d_features_match_pyradiomics():
    images, masks = textured_images(2, (8, 12, 12), seed=2)
    _compare(images, masks, spacing=1.0)


def test_discretise_follows_pyradiomics_bin_edges():
    from radiomics.imageoperations import binImage

    images, masks = textured_images(3, (16, 16), seed=3)
    levels = discretise(images[:, 0].double(), masks[:, 0], 0.07)
    for k in range(3):
        expected, _ = binImage(images[k, 0].double().numpy(), masks[k, 0].numpy(), binWidth=0.07)
        np.testing.assert_array_equal(levels[k].numpy(), expected)


def test_batching_and_mask_outside_values_do_not_change_features():
    images, masks = textured_images(5, (20, 20), seed=4)
    full, _ = radiomics_features(images, masks, image_types=("original",), batch_size=5)
    chunked, _ = radiomics_features(images, masks, image_types=("original",), batch_size=2)
    torch.testing.assert_close(full, chunked, rtol=1e-12, atol=1e-12)
    scrambled = torch.where(masks, images, torch.rand(images.shape, generator=torch.Generator().manual_seed(0)))
    outside, _ = radiomics_features(scrambled, masks, image_types=("original",))
    torch.testing.assert_close(full, outside, rtol=1e-12, atol=1e-12)


def test_extractor_shapes_names_and_errors():
    images, masks = textured_images(3, (32, 32), seed=5)
    extractor = RadiomicsExtractor(sigmas=(2.0, 3.0), spacing=(1.5, 1.5))
    features = extractor(images, masks)
    assert features.shape == (3, 79 * 7) and len(extractor.names) == 79 * 7
    assert "log-sigma-2-0-mm-3D_glcm_Contrast" in extractor.names and "wavelet-HH_ngtdm_Busyness" in extractor.names
    assert torch.isfinite(features).all()
    with pytest.raises(DataError, match="NaN"):
        extractor(torch.full((1, 1, 8, 8), float("nan")))
    with pytest.raises(DataError, match="fewer than 2 voxels"):
        extractor(images, torch.zeros_like(masks))
    with pytest.raises(DataError, match=r"\(N, 1, H, W\)"):
        extractor(images[:, 0])
    with pytest.raises(ConfigError, match="image_types"):
        RadiomicsExtractor(image_types=("square",))


@pytest.mark.parametrize("case", ["constant", "binary"])
def test_degenerate_regions_match_pyradiomics(case):
    """A flat region (one grey level) and a two-level step: pyradiomics' special cases (MCC = 1, ...)."""
    image = np.full((16, 16), 0.5, np.float32)
    if case == "binary":
        image[:, 8:] = 1.0
    mask = np.zeros((16, 16), bool)
    mask[3:13, 3:13] = True
    ours, names = radiomics_features(torch.from_numpy(image)[None, None], torch.from_numpy(mask)[None, None],
                                     image_types=("original",))  # fmt: skip
    reference = pyradiomics_features(image, mask, DEFAULT_BIN_WIDTH, {"Original": {}})
    assert_features_match(ours[0].numpy(), names, reference, RTOL, ATOL)


def test_scattered_single_voxels_are_refused():
    image = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros_like(image, dtype=torch.bool)
    mask[..., 2, 2] = mask[..., 9, 9] = mask[..., 12, 4] = True
    with pytest.raises(DataError, match="undefined"):
        radiomics_features(image, mask, image_types=("original",))


def test_images_outside_unit_range_need_a_matching_bin_width():
    ct_like = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 4000
    with pytest.raises(DataError, match="larger bin_width"):
        radiomics_features(ct_like, image_types=("original",))
    features, _ = radiomics_features(ct_like, image_types=("original",), bin_width=25.0)
    assert torch.isfinite(features).all()
