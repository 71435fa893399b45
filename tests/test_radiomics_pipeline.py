"""The radiomics pipeline around the feature classes: FRD against scipy, the recursive LoG against SimpleITK, the
extractor's configuration limits and messages, and the bounding box it crops to."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.errors import ConfigError, DataError
from benchmark.metrics.radiomics import RadiomicsExtractor, radiomics_features
from benchmark.metrics.radiomics.extractor import mask_box
from benchmark.metrics.radiomics.filters import laplacian_of_gaussian
from benchmark.metrics.radiomics.frd import frd, zscore_with_reference
from benchmark.metrics.radiomics.recursive_gaussian import recursive_laplacian_of_gaussian
from tests._pyradiomics import textured_images
from tests.test_radiomics_frd import _numpy_frd


def _sets() -> tuple[np.ndarray, np.ndarray]:
    """Reference and candidate features: column 0 constant in the reference only, column 1 with a small spread."""
    rng = np.random.default_rng(50)
    reference, candidate = rng.normal(size=(40, 4)) * [1, 0.3, 2, 5], rng.normal(size=(30, 4)) * [1, 0.3, 2, 5] + 0.4
    reference[:, 0] = 7.0
    return reference, candidate


def test_frd_is_log_frechet_of_reference_z_scores_with_constant_columns_centred():
    reference, candidate = _sets()
    std = reference.std(0)
    scale = np.where(std > 0, std, 1.0)
    z_ref, z_cand = (reference - reference.mean(0)) / scale, (candidate - reference.mean(0)) / scale
    expected = _numpy_frd(reference, candidate)  # scipy sqrtm; constant columns divided by 1
    assert frd(torch.from_numpy(candidate), torch.from_numpy(reference)) == pytest.approx(expected, rel=1e-9)
    assert frd(torch.from_numpy(candidate), torch.from_numpy(reference), paper_log=True) == pytest.approx(
        expected / 2, rel=1e-9)
    kept = std > 0
    dropped = _numpy_frd(reference[:, kept], candidate[:, kept])
    assert frd(torch.from_numpy(candidate), torch.from_numpy(reference), drop_constant=True) == pytest.approx(
        dropped, rel=1e-9)
    ours_ref, ours_cand = zscore_with_reference(torch.from_numpy(reference), torch.from_numpy(candidate), True)
    np.testing.assert_allclose(ours_ref.numpy(), z_ref[:, kept], rtol=1e-12)
    np.testing.assert_allclose(ours_cand.numpy(), z_cand[:, kept], rtol=1e-12)
    ours_ref, ours_cand = zscore_with_reference(torch.from_numpy(reference), torch.from_numpy(candidate))
    np.testing.assert_allclose(ours_cand.numpy(), z_cand, rtol=1e-12)


def test_frd_accepts_the_smallest_inputs_and_names_bad_ones():
    reference, candidate = _sets()
    as_int = torch.from_numpy(np.round(reference * 10).astype(np.int64))  # integer features are fine
    assert math.isfinite(frd(torch.from_numpy(candidate * 10), as_int))
    two = frd(torch.from_numpy(candidate[:2, :2]), torch.from_numpy(reference[:2, :2]), drop_constant=True)
    z = (reference[:2, 1] - reference[:2, 1].mean()) / reference[:2, 1].std()  # n = 2 each, one column left
    zc = (candidate[:2, 1] - reference[:2, 1].mean()) / reference[:2, 1].std()
    one_d = (z.mean() - zc.mean()) ** 2 + (math.sqrt(z.var(ddof=1)) - math.sqrt(zc.var(ddof=1))) ** 2
    assert two == pytest.approx(math.log(one_d), rel=1e-9)
    for name, args in (("reference", (reference[:1], candidate)), ("candidate", (reference, candidate[:1]))):
        with pytest.raises(DataError, match=rf"^frd: {name} features must be \(n >= 2, d\), got \(1, 4\)$"):
            frd(torch.from_numpy(args[1]), torch.from_numpy(args[0]))
    with pytest.raises(DataError, match=r"^frd: every feature is constant over the reference set; FRD is undefined$"):
        frd(torch.from_numpy(candidate[:, :1]), torch.from_numpy(reference[:, :1]), drop_constant=True)


@pytest.mark.parametrize(("shape", "spacing"), [((40, 36), (1.5, 1.5)), ((9, 12, 14), (2.0, 1.0, 1.2))])
def test_recursive_log_equals_simpleitk(shape, spacing):
    sitk = pytest.importorskip("SimpleITK")
    images, _ = textured_images(1, shape, seed=51)
    array = images[0, 0].double().numpy()
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing[::-1])
    log = sitk.LaplacianRecursiveGaussianImageFilter()
    log.SetNormalizeAcrossScale(True)
    log.SetSigma(3.0)
    expected = sitk.GetArrayFromImage(log.Execute(image))
    ours = recursive_laplacian_of_gaussian(torch.from_numpy(array)[None], 3.0, spacing)[0].numpy()
    assert np.abs(ours - expected).max() <= 1e-6 * np.abs(expected).max()


def test_log_limits_and_messages():
    images = torch.rand(1, 4, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(52))
    assert laplacian_of_gaussian(images, 0.5, (1.0, 1.0)).shape == images.shape  # 4 voxels: the smallest side
    with pytest.raises(ValueError, match=r"^laplacian_of_gaussian: every side must be >= 4 voxels, got \(3, 10\)$"):
        laplacian_of_gaussian(images[:, :3], 1.0, (1.0, 1.0))
    with pytest.raises(ValueError, match=r"^laplacian_of_gaussian: sigma must be > 0 mm, got 0\.0$"):
        laplacian_of_gaussian(images, 0.0, (1.0, 1.0))


def test_extractor_configuration_limits_and_messages():
    images, masks = textured_images(2, (16, 16), seed=53)
    sub_mm = RadiomicsExtractor(image_types=("log",), sigmas=(0.5,), batch_size=1)(images, masks)  # all allowed
    assert torch.isfinite(sub_mm).all()
    assert torch.isfinite(RadiomicsExtractor(image_types=("original",), sigmas=())(images, masks)).all()
    with pytest.raises(ConfigError, match=r"^radiomics: feature_classes \['glcm', 'shape'\] must be a subset of "
                                          r"\['firstorder', 'glcm', 'glrlm', 'glszm', 'ngtdm'\]$"):
        RadiomicsExtractor(feature_classes=("glcm", "shape"))
    with pytest.raises(ConfigError, match=r"^radiomics: feature_classes \[\] must be a subset"):
        RadiomicsExtractor(feature_classes=())
    for sigmas in ((), (0.0, 2.0), (-1.0,)):
        with pytest.raises(ConfigError, match=rf"^radiomics: LoG sigmas must be positive mm values, got "
                                              rf"\[{', '.join(str(float(s)) for s in sigmas)}\]$"):
            RadiomicsExtractor(image_types=("log",), sigmas=sigmas)
    for bin_width, batch_size in ((0.0, 4), (0.1, 0)):
        with pytest.raises(ConfigError, match=rf"^radiomics: bin_width \({bin_width}\) must be > 0 and batch_size "
                                              rf"\({batch_size}\) >= 1$"):
            RadiomicsExtractor(bin_width=bin_width, batch_size=batch_size)
    with pytest.raises(ConfigError, match=r"^radiomics: spacing \(1\.0, 1\.0, 1\.0\) needs one value per spatial "
                                          r"axis \(2\)$"):
        radiomics_features(images, masks, image_types=("original",), spacing=(1, 1, 1))


def test_extractor_passes_spacing_and_shift_and_defaults_to_no_shift():
    images, masks = textured_images(2, (16, 16), seed=54)
    kwargs = {"image_types": ("original",), "feature_classes": ("firstorder",)}
    expected, names = radiomics_features(images, masks, spacing=(2.0, 0.5), voxel_array_shift=300.0, **kwargs)
    extractor = RadiomicsExtractor(spacing=(2.0, 0.5), voxel_array_shift=300.0, **kwargs)
    torch.testing.assert_close(extractor(images, masks), expected, rtol=0, atol=0)
    assert extractor.names == names
    plain = RadiomicsExtractor(**kwargs)(images, masks)
    torch.testing.assert_close(plain, radiomics_features(images, masks, **kwargs)[0], rtol=0, atol=0)
    assert not torch.equal(plain, expected)


def test_undefined_features_are_named_with_their_items():
    images, masks = textured_images(12, (12, 12), seed=55)
    apart = torch.zeros_like(masks)
    apart[..., 2, 2] = apart[..., 8, 8] = True  # two voxels, no neighbours: first order only is defined
    apart[11] = masks[11]
    with pytest.raises(DataError) as error:
        radiomics_features(images, apart, image_types=("original",))
    message = str(error.value)
    assert "are undefined for items [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]: their masks hold no two neighbouring voxels (or " \
           "a filtered image is flat); use larger, connected masks" in message
    columns = message.split("features [")[1].split("]")[0].split(", ")  # the first three undefined, in order
    assert columns == ["'original_firstorder_RobustMeanAbsoluteDeviation'", "'original_glcm_Autocorrelation'",
                       "'original_glcm_ClusterProminence'"]  # two values leave nothing between p10 and p90


def test_mask_box_is_the_smallest_box_around_every_mask():
    masks = torch.zeros(2, 9, 10, 11, dtype=torch.bool)
    masks[0, 2, 3, 4] = masks[1, 5, 7, 8] = masks[1, 3, 1, 6] = True
    assert mask_box(masks) == (slice(None), slice(2, 6), slice(1, 8), slice(4, 9))
