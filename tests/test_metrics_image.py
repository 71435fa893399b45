"""Full-reference image metrics against scikit-image and MONAI on the same inputs (tolerance 1e-4)."""

import numpy as np
import pytest
import torch
from monai.metrics import MultiScaleSSIMMetric, SSIMMetric
from skimage.metrics import normalized_mutual_information, peak_signal_noise_ratio, structural_similarity

from benchmark.errors import BenchmarkError
from benchmark.metrics import mae, ms_ssim, mse, nmi, nmse, psnr, ssim
from benchmark.metrics.image import ms_ssim_scales

SHAPES = [(3, 2, 40, 33), (2, 1, 16, 20, 24)]


def _pair(shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=generator)
    y = (0.7 * x + 0.3 * torch.rand(shape, generator=generator)).clamp(0, 1)
    return x, y


@pytest.mark.parametrize("shape", SHAPES)
def test_ssim_matches_scikit_image_and_monai(shape):
    x, y = _pair(shape)
    ours = ssim(x, y, data_range=1.0)
    reference = [
        structural_similarity(
            x[i].double().numpy(), y[i].double().numpy(), data_range=1.0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, channel_axis=0,
        )
        for i in range(shape[0])
    ]
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-4, rtol=0)
    monai = SSIMMetric(spatial_dims=len(shape) - 2, data_range=1.0)(x, y).flatten()
    np.testing.assert_allclose(ours.numpy(), monai.numpy(), atol=1e-4, rtol=0)
    assert torch.allclose(ssim(x, x), torch.ones(shape[0]), atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_psnr_mse_mae_nmse_nmi_match_references(shape):
    x, y = _pair(shape, seed=1)
    for i in range(shape[0]):
        xi, yi = x[i].double().numpy(), y[i].double().numpy()
        assert abs(psnr(x, y, data_range=1.0)[i].item() - peak_signal_noise_ratio(yi, xi, data_range=1.0)) < 1e-4
        assert abs(nmi(x, y)[i].item() - normalized_mutual_information(xi, yi, bins=100)) < 1e-4
        assert abs(mse(x, y)[i].item() - np.mean((xi - yi) ** 2)) < 1e-6
        assert abs(mae(x, y)[i].item() - np.mean(np.abs(xi - yi))) < 1e-6
        assert abs(nmse(x, y)[i].item() - np.sum((xi - yi) ** 2) / np.sum(yi**2)) < 1e-6
    assert torch.isinf(psnr(x, x, data_range=1.0)).all()


def test_ms_ssim_matches_monai_with_adapted_scales():
    x, y = _pair((2, 1, 128, 128), seed=2)
    values, scales = ms_ssim(x, y, return_scales=True)
    assert scales == 4 == ms_ssim_scales((128, 128))
    weights = torch.tensor([0.0448, 0.2856, 0.3001, 0.2363])
    monai = MultiScaleSSIMMetric(spatial_dims=2, data_range=1.0, weights=tuple((weights / weights.sum()).tolist()))
    np.testing.assert_allclose(values.numpy(), monai(x, y).flatten().numpy(), atol=1e-4)
    x, y = _pair((2, 1, 180, 176), seed=3)
    values, scales = ms_ssim(x, y, return_scales=True)
    assert scales == 5
    np.testing.assert_allclose(values.numpy(), MultiScaleSSIMMetric(spatial_dims=2)(x, y).flatten().numpy(), atol=1e-4)
    assert ms_ssim_scales((24, 24, 24)) == 2
    assert ms_ssim(*_pair((1, 1, 24, 24, 24))).shape == (1,)


@pytest.mark.parametrize(
    "bad",
    [
        lambda x: x[:, :, :-1],
        lambda x: x.masked_fill(x > 0.99, float("nan")),
        lambda x: (x * 255).to(torch.uint8),
        lambda x: x[0],
    ],
    ids=["shape", "nan", "dtype", "rank"],
)
@pytest.mark.parametrize("metric", [ssim, ms_ssim, mse, nmi])
def test_bad_input_is_a_clear_error(bad, metric):
    x, y = _pair((2, 1, 32, 32))
    with pytest.raises(BenchmarkError, match=metric.__name__):
        metric(bad(x), y)


def test_too_small_for_window_and_zero_reference():
    with pytest.raises(BenchmarkError, match="window"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(BenchmarkError, match="all zero"):
        nmse(torch.rand(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
