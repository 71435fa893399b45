"""Full-reference image metrics on MRI-like images (zero background, bright lesion, dark ventricles) in 2D and
3D, on three intensity scales ([0, 1], 12-bit scanner integers, z-scored with negative values), against
scikit-image and MONAI at the tolerances the README states.

Tolerances: against scikit-image (float64 numpy) 1e-12 for float64 inputs (rounding of a few thousand sums)
and 1e-6 for float32 inputs (float32 has 6e-8 relative precision; measured <= 5e-7); against MONAI 1e-5,
because MONAI's SSIM rounds more on its own (measured 2.3e-6 from scikit-image with float64 inputs).
PSNR in dB: 1e-10 in float64. On these images a 10 % change of K1 moves SSIM by >= 1.3e-4 and a 5 % change
of K2 by >= 6e-4, far above every tolerance (checked below), so the constants are pinned.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from monai.metrics import MultiScaleSSIMMetric, PSNRMetric, SSIMMetric
from skimage.metrics import (
    mean_squared_error,
    normalized_mutual_information,
    normalized_root_mse,
    peak_signal_noise_ratio,
    structural_similarity,
)

from benchmark.errors import BenchmarkError
from benchmark.metrics import mae, ms_ssim, mse, nmi, nmse, psnr, ssim
from benchmark.metrics.image import ms_ssim_scales
from tests.mri_like import SCALES, pair, z_scored

SHAPES = {"2d": (96, 80), "3d": (24, 40, 32)}
SKIMAGE_TOL = {torch.float64: 1e-12, torch.float32: 1e-6}
MONAI_TOL = 1e-5
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, written here independently


def scaled_pair(shape: tuple[int, ...], scale: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """(candidates, references, data range) on one of the intensity scales, float64 arrays (n, 1, *shape)."""
    x, y, masks = pair(shape, seed=seed)
    if scale == "z_scored":
        x, y = z_scored(x, masks), z_scored(y, masks)
        return x, y, float(max(x.max(), y.max()) - min(x.min(), y.min()))
    transform, data_range = SCALES[scale]
    return transform(x), transform(y), data_range


def skimage_ssim(x: np.ndarray, y: np.ndarray, data_range: float, **constants: float) -> np.ndarray:
    return np.array([
        structural_similarity(x[i, 0], y[i, 0], data_range=data_range, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, **constants)
        for i in range(x.shape[0])
    ])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("scale", ["unit", "scanner_12bit", "z_scored"])
@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_ssim_matches_scikit_image(dims, scale, dtype):
    x, y, data_range = scaled_pair(SHAPES[dims], scale)
    ours = ssim(torch.from_numpy(x).to(dtype), torch.from_numpy(y).to(dtype), data_range=data_range)
    assert ours.dtype == dtype and ours.shape == (2,)
    reference = skimage_ssim(x, y, data_range)
    np.testing.assert_allclose(ours.double().numpy(), reference, rtol=0, atol=SKIMAGE_TOL[dtype])
    assert reference.min() > 0.3 and reference.max() < 0.95  # a regime where every term of SSIM matters


@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_ssim_constants_are_pinned_by_the_tolerance(dims):
    """The comparison above has the power to see K1 off by 10 % and K2 off by 5 %."""
    x, y, data_range = scaled_pair(SHAPES[dims], "scanner_12bit")
    reference = skimage_ssim(x, y, data_range)
    for constants in ({"K1": 0.011}, {"K2": 0.0315}):
        shifted = skimage_ssim(x, y, data_range, **constants)
        assert np.abs(shifted - reference).min() > 100 * SKIMAGE_TOL[torch.float32]
        ours = ssim(torch.from_numpy(x), torch.from_numpy(y), data_range=data_range,
                    **{key.lower(): value for key, value in constants.items()})
        np.testing.assert_allclose(ours.numpy(), shifted, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", ["unit", "scanner_12bit"])
@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_ssim_matches_monai(dims, scale):
    x, y, data_range = scaled_pair(SHAPES[dims], scale)
    a, b = torch.from_numpy(x), torch.from_numpy(y)
    monai = SSIMMetric(spatial_dims=len(SHAPES[dims]), data_range=data_range)(a, b).flatten()
    np.testing.assert_allclose(ssim(a, b, data_range=data_range).numpy(), monai.double().numpy(), atol=MONAI_TOL)


def test_identical_mri_like_images_score_perfectly():
    _, y, data_range = scaled_pair(SHAPES["3d"], "z_scored")
    a = torch.from_numpy(y)
    np.testing.assert_allclose(ssim(a, a, data_range=data_range).numpy(), 1.0, atol=1e-12)
    np.testing.assert_allclose(ms_ssim(a, a, data_range=data_range).numpy(), 1.0, atol=1e-12)
    assert torch.isposinf(psnr(a, a, data_range=data_range)).all()
    assert (mse(a, a) == 0).all() and (mae(a, a) == 0).all() and (nmse(a, a) == 0).all()


@pytest.mark.parametrize("scale", ["unit", "scanner_12bit", "z_scored"])
@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_psnr_matches_scikit_image_and_monai(dims, scale):
    x, y, data_range = scaled_pair(SHAPES[dims], scale)
    ours = psnr(torch.from_numpy(x), torch.from_numpy(y), data_range=data_range).numpy()
    expected = [peak_signal_noise_ratio(y[i], x[i], data_range=data_range) for i in range(x.shape[0])]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10)
    monai = PSNRMetric(max_val=data_range)(torch.from_numpy(x), torch.from_numpy(y)).flatten().numpy()
    np.testing.assert_allclose(ours, monai, rtol=0, atol=1e-10)
    direct = 10 * np.log10(data_range**2 / ((x - y) ** 2).reshape(x.shape[0], -1).mean(1))
    np.testing.assert_allclose(ours, direct, rtol=0, atol=1e-10)


def test_psnr_refuses_a_non_positive_data_range():
    x, y, _ = scaled_pair(SHAPES["2d"], "unit")
    for bad in (0.0, -1.0):
        with pytest.raises(BenchmarkError, match=r"^psnr: data_range must be positive, got "):
            psnr(torch.from_numpy(x), torch.from_numpy(y), data_range=bad)


@pytest.mark.parametrize(
    ("shape", "scales", "scale"),
    [((128, 112), 4, "unit"), ((180, 176), 5, "scanner_12bit"), ((44, 48, 46), 3, "scanner_12bit")],
    ids=["2d-4-unit", "2d-5-12bit", "3d-3-12bit"],
)
def test_ms_ssim_values_match_monai(shape, scales, scale):
    """Values, not only shapes, in 2D and 3D; the weights renormalised over the scales that fit."""
    x, y, data_range = scaled_pair(shape, scale)
    a, b = torch.from_numpy(x), torch.from_numpy(y)
    values, used = ms_ssim(a, b, data_range=data_range, return_scales=True)
    assert used == scales
    weights = np.array(MS_SSIM_WEIGHTS[:scales]) / sum(MS_SSIM_WEIGHTS[:scales])
    monai = MultiScaleSSIMMetric(spatial_dims=len(shape), data_range=data_range, weights=tuple(weights))(a, b)
    np.testing.assert_allclose(values.numpy(), monai.flatten().double().numpy(), rtol=0, atol=MONAI_TOL)
    assert values.min() < 0.99  # not the trivial regime where every product is 1


def test_ms_ssim_scale_count_follows_the_smallest_side():
    """11-voxel window at the coarsest scale: sides 22-43 give 2 scales, 44-87 give 3, 176+ give 5."""
    expectations = {(21, 64): 1, (22, 64): 2, (43, 64): 2, (44, 64): 3, (88, 90): 4, (175, 300): 4, (176, 176): 5}
    for shape, scales in expectations.items():
        x, y, _ = scaled_pair(shape, "unit")
        assert ms_ssim(torch.from_numpy(x), torch.from_numpy(y), return_scales=True)[1] == scales, shape
    assert ms_ssim_scales((400, 400)) == 5 and ms_ssim_scales((400, 400), max_scales=3) == 3  # capped
    x, y, _ = scaled_pair((180, 176), "unit")
    a, b = torch.from_numpy(x), torch.from_numpy(y)
    values, used = ms_ssim(a, b, weights=(0.2, 0.3, 0.5), return_scales=True)
    assert used == 3  # as many scales as weights given, even where 5 would fit
    monai = MultiScaleSSIMMetric(spatial_dims=2, data_range=1.0, weights=(0.2, 0.3, 0.5))(a, b).flatten()
    np.testing.assert_allclose(values.numpy(), monai.double().numpy(), rtol=0, atol=MONAI_TOL)
    with pytest.raises(BenchmarkError, match=r"^ms_ssim: images of spatial shape \(10, 64\) are smaller"):
        ms_ssim(torch.zeros(1, 1, 10, 64), torch.zeros(1, 1, 10, 64))


@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_error_metrics_match_scikit_image_on_z_scored_volumes(dims):
    x, y, _ = scaled_pair(SHAPES[dims], "z_scored")
    a, b = torch.from_numpy(x), torch.from_numpy(y)
    assert x.min() < -1  # negative intensities inside the brain
    for i in range(x.shape[0]):
        assert mse(a, b)[i].item() == pytest.approx(mean_squared_error(y[i], x[i]), abs=1e-12)
        assert mae(a, b)[i].item() == pytest.approx(np.abs(x[i] - y[i]).mean(), abs=1e-12)
        expected_nmse = normalized_root_mse(y[i], x[i], normalization="euclidean") ** 2
        assert nmse(a, b)[i].item() == pytest.approx(expected_nmse, abs=1e-12)
        assert nmi(a, b)[i].item() == pytest.approx(normalized_mutual_information(x[i], y[i], bins=100), abs=1e-12)


def test_nmse_is_normalised_by_the_reference_not_the_candidate():
    x, y, _ = scaled_pair(SHAPES["2d"], "unit")
    a, b = torch.from_numpy(x), 2 * torch.from_numpy(y)
    expected = ((x - 2 * y) ** 2).reshape(2, -1).sum(1) / ((2 * y) ** 2).reshape(2, -1).sum(1)
    np.testing.assert_allclose(nmse(a, b).numpy(), expected, rtol=1e-12)


def test_integer_volumes_are_refused_with_the_dtype_named_then_scored_as_float():
    x, y, data_range = scaled_pair(SHAPES["3d"], "scanner_12bit")
    a, b = torch.from_numpy(x).to(torch.int16), torch.from_numpy(y).to(torch.int16)
    for metric in (ssim, ms_ssim, mse, mae, nmse, nmi):
        with pytest.raises(BenchmarkError, match=rf"^{metric.__name__}: candidate has dtype torch.int16"):
            metric(a, b)
    expected = skimage_ssim(x.astype(np.int16), y.astype(np.int16), data_range)
    np.testing.assert_allclose(ssim(a.double(), b.double(), data_range=data_range).numpy(), expected, atol=1e-12)


def test_mixed_precision_pairs_are_promoted_to_the_wider_type():
    x, y, _ = scaled_pair(SHAPES["2d"], "unit")
    a32, b64 = torch.from_numpy(x).float(), torch.from_numpy(y)
    assert ssim(a32, b64).dtype == torch.float64
    np.testing.assert_allclose(ssim(a32, b64).numpy(), skimage_ssim(a32.double().numpy(), y, 1.0), atol=1e-12)


@pytest.mark.parametrize("scale", ["unit", "scanner_12bit"])
def test_nmi_matches_scikit_image_when_the_range_is_exactly_zero_to_peak(scale):
    """Zero background and a voxel at the peak: the joint histogram spans exactly [0, 1] or [0, 4095]."""
    x, y, data_range = scaled_pair(SHAPES["2d"], scale)
    x[:, 0, 40, 40] = y[:, 0, 40, 40] = data_range
    assert x.min() == 0 and x.max() == data_range
    ours = nmi(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    expected = [normalized_mutual_information(x[i], y[i], bins=100) for i in range(2)]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


def test_nmi_of_constant_items():
    """An empty slice against a structured one: 1 (no shared information), as scikit-image; two empty
    slices: 2 (each determines the other) instead of scikit-image's 0/0."""
    _, y, _ = scaled_pair(SHAPES["2d"], "unit")
    empty = np.zeros_like(y)
    assert nmi(torch.from_numpy(empty), torch.from_numpy(y)).tolist() == pytest.approx(
        [normalized_mutual_information(empty[i], y[i], bins=100) for i in range(2)], abs=1e-12)
    both = nmi(torch.from_numpy(empty), torch.from_numpy(empty + 0.3))
    assert both.tolist() == [2.0, 2.0]


@pytest.mark.gpu
def test_metrics_on_cuda_equal_the_cpu_values():
    """Every tensor a metric makes lives on the images' device (a CPU-only index breaks NMI on CUDA)."""
    x, y, data_range = scaled_pair(SHAPES["3d"], "scanner_12bit")
    a, b = torch.from_numpy(x), torch.from_numpy(y)
    for metric in (ssim, ms_ssim, psnr):
        torch.testing.assert_close(metric(a.cuda(), b.cuda(), data_range=data_range).cpu(),
                                   metric(a, b, data_range=data_range), rtol=1e-10, atol=1e-12)
    for metric in (mse, mae, nmse, nmi):
        torch.testing.assert_close(metric(a.cuda(), b.cuda()).cpu(), metric(a, b), rtol=1e-10, atol=1e-12)


def test_nmse_names_the_all_zero_reference_items_first_ten():
    x, y, _ = scaled_pair(SHAPES["2d"], "unit")
    candidates = torch.from_numpy(x[[0]]).repeat(13, 1, 1, 1)
    references = torch.from_numpy(y[[0]]).repeat(13, 1, 1, 1)
    references[1] = 0
    with pytest.raises(BenchmarkError, match=r"^nmse: reference item\(s\) \[1\] are all zero; NMSE is undefined"):
        nmse(candidates, references)
    references[1:] = 0
    with pytest.raises(BenchmarkError, match=r"^nmse: reference item\(s\) \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\] are"):
        nmse(candidates, references)


def test_every_metric_returns_the_input_precision():
    x, y, _ = scaled_pair(SHAPES["2d"], "unit")
    for dtype in (torch.float32, torch.float64):
        a, b = torch.from_numpy(x).to(dtype), torch.from_numpy(y).to(dtype)
        for metric in (ssim, ms_ssim, mse, mae, nmse, nmi):
            assert metric(a, b).dtype == dtype, metric.__name__
        assert psnr(a, b, data_range=1.0).dtype == dtype


@pytest.mark.parametrize("shape", [(8, 40), (40, 8), (4, 40, 40)])
def test_ssim_refuses_images_shorter_than_the_window_along_any_axis(shape):
    """Every spatial axis counts, the first included (a wide but short slab is still too small)."""
    x = torch.rand(1, 1, *shape, dtype=torch.float64)
    message = rf"^ssim: images of spatial shape {re.escape(str(tuple(shape)))} are smaller than the 11-voxel "
    with pytest.raises(BenchmarkError, match=message):
        ssim(x, x, data_range=1.0)
