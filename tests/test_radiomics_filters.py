"""LoG and wavelet images and the features computed on them, against SimpleITK / pyradiomics 3.0.1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.metrics.radiomics import radiomics_features
from benchmark.metrics.radiomics.discretise import DEFAULT_BIN_WIDTH
from benchmark.metrics.radiomics.filters import laplacian_of_gaussian, wavelet_decompositions
from tests._pyradiomics import assert_features_match, pyradiomics_features, textured_images

pytest.importorskip("radiomics")
sitk = pytest.importorskip("SimpleITK")


def _sitk(array: np.ndarray, spacing: float):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((spacing,) * array.ndim)
    return image


@pytest.mark.parametrize("shape", [(32, 32), (33, 27), (9, 10, 11)])
def test_wavelet_bands_match_pyradiomics(shape):
    from radiomics.imageoperations import getWaveletImage

    images, _ = textured_images(1, shape, seed=0)
    array = images[0, 0].double().numpy()
    mask = _sitk(np.ones(shape, dtype=np.uint8), 1.0)
    expected = {
        name.split("-")[1]: sitk.GetArrayFromImage(im) for im, name, _ in getWaveletImage(_sitk(array, 1.0), mask)
    }
    ours = wavelet_decompositions(torch.from_numpy(array)[None])
    assert sorted(ours) == sorted(expected) and len(ours) == 2 ** len(shape)
    for band, image in ours.items():  # pywt works in float32 inside pyradiomics: agreement to ~1e-7
        np.testing.assert_allclose(image[0].numpy(), expected[band], atol=1e-6, err_msg=band)


@pytest.mark.parametrize(("shape", "spacing"), [((48, 40), 1.5), ((33, 29), 1.0), ((10, 12, 14), 1.2)])
@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0, 5.0])
def test_log_matches_simpleitk_recursive_gaussian(shape, spacing, sigma):
    """Our line-operator form of ITK's recursive LoG vs SimpleITK itself: equal to its float32 output."""
    images, _ = textured_images(1, shape, seed=1)
    array = images[0, 0].double().numpy()
    log = sitk.LaplacianRecursiveGaussianImageFilter()
    log.SetNormalizeAcrossScale(True)
    log.SetSigma(sigma)
    expected = sitk.GetArrayFromImage(log.Execute(_sitk(array, spacing)))
    ours = laplacian_of_gaussian(torch.from_numpy(array)[None], sigma, (spacing,) * len(shape))[0].numpy()
    assert np.abs(ours - expected).max() <= 1e-6 * np.abs(expected).max()


def test_features_on_our_log_image_match_pyradiomics_exactly():
    """The feature code alone on a filtered image (negative values, other range) vs pyradiomics as Original."""
    images, masks = textured_images(2, (28, 28), seed=2)
    filtered = laplacian_of_gaussian(images[:, 0].double(), 2.0, (1.0, 1.0)).float().unsqueeze(1)
    ours, names = radiomics_features(filtered, masks, image_types=("original",))
    for k in range(2):
        reference = pyradiomics_features(
            filtered[k, 0].numpy(), masks[k, 0].numpy(), DEFAULT_BIN_WIDTH, {"Original": {}}
        )
        assert_features_match(ours[k].numpy(), names, reference, rtol=1e-6, atol=1e-9)


def test_wavelet_features_match_pyradiomics_end_to_end():
    images, masks = textured_images(2, (30, 30), seed=3)
    ours, names = radiomics_features(images, masks, image_types=("wavelet",), spacing=(1.5, 1.5))
    assert len(names) == 4 * 79
    for k in range(2):
        reference = pyradiomics_features(images[k, 0].numpy(), masks[k, 0].numpy(), DEFAULT_BIN_WIDTH,
                                         {"Wavelet": {}}, spacing=1.5)  # fmt: skip
        # the wavelet images agree to ~1e-7 (float32 inside pyradiomics), which moves first-order moments by
        # up to ~1e-4 relative where they are near 0; texture features see identical grey levels.
        assert_features_match(ours[k].numpy(), names, reference, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("shape", [(40, 40), (8, 16, 16)])
def test_all_image_types_match_pyradiomics_end_to_end(shape):
    """Original + LoG + wavelet, 2D and 3D: texture classes see identical grey levels; first-order moments
    differ by float32 rounding of the filtered images (up to ~1e-5 relative where they are near 0)."""
    images, masks = textured_images(2, shape, seed=7)
    spacing = (1.5,) * len(shape)
    ours, names = radiomics_features(images, masks, sigmas=(2.0, 3.0), spacing=spacing)
    assert len(names) == 79 * (1 + 2 + 2 ** len(shape))
    for k in range(2):
        reference = pyradiomics_features(images[k, 0].numpy(), masks[k, 0].numpy(), DEFAULT_BIN_WIDTH,
                                         {"Original": {}, "LoG": {"sigma": [2.0, 3.0]}, "Wavelet": {}},
                                         spacing=1.5)  # fmt: skip
        assert_features_match(ours[k].numpy(), names, reference, rtol=1e-4, atol=1e-6)
