"""No-reference metrics against scikit-image, scipy, torchmetrics and direct numpy formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.stats
import torch
from skimage.measure import blur_effect as skimage_blur_effect

from benchmark.errors import BenchmarkError, DataError
from benchmark.metrics.no_reference import (
    NIQE,
    BRISQUEDistance,
    blur_effect,
    brisque_features,
    cnr,
    snr,
    total_variation,
    tumour_cnr,
    variance_of_laplacian,
)
from benchmark.metrics.no_reference.natural_scene import aggd_features, gaussian_window, ggd_features, mscn


def _images(n: int, shape: tuple[int, ...], seed: int, smooth: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Smoothed-noise images in [0, 1] inside an ellipse-shaped 'brain' (0 outside) and the bool mask."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    mask = ((grid / np.array([0.9, 0.75, 0.8][: len(shape)]).reshape(-1, *[1] * len(shape))) ** 2).sum(0) < 1
    images = []
    for _ in range(n):
        image = ndi.gaussian_filter(rng.random(shape), smooth)
        image = (image - image.min()) / (image.max() - image.min())
        images.append(0.2 + 0.8 * image)
    images = torch.from_numpy(np.stack(images)[:, None] * mask)
    return images.float(), torch.from_numpy(np.broadcast_to(mask, (n, 1, *shape)).copy())


@pytest.mark.parametrize("shape", [(48, 40), (12, 20, 16)])
def test_blur_effect_matches_skimage(shape):
    images, _ = _images(3, shape, seed=0)
    ours = blur_effect(images)
    expected = [skimage_blur_effect(im[0].double().numpy()) for im in images]
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-10)
    blurred = torch.from_numpy(ndi.uniform_filter(images.double().numpy(), (1, 1) + (5,) * len(shape)))
    assert (blur_effect(blurred) > ours).all()


@pytest.mark.parametrize("shape", [(32, 30), (10, 12, 14)])
def test_variance_of_laplacian_matches_scipy(shape):
    images, masks = _images(2, shape, seed=1)
    for use_mask in (False, True):
        ours = variance_of_laplacian(images, masks if use_mask else None)
        for k in range(2):
            lap = ndi.laplace(images[k, 0].double().numpy())
            expected = lap[masks[k, 0].numpy()].var() if use_mask else lap.var()
            assert ours[k].item() == pytest.approx(expected, rel=1e-10)


def test_total_variation_matches_torchmetrics_and_numpy():
    from torchmetrics.functional.image import total_variation as tm_total_variation

    images, masks = _images(3, (24, 20), seed=2)
    ours = total_variation(images, reduction="sum")
    torch.testing.assert_close(ours, tm_total_variation(images.double(), reduction="none"), rtol=1e-10, atol=0)
    x, m = images[:, 0].double().numpy(), masks[:, 0].numpy()
    for k in range(3):
        dy = np.abs(np.diff(x[k], axis=0)) * (m[k, 1:] & m[k, :-1])
        dx = np.abs(np.diff(x[k], axis=1)) * (m[k, :, 1:] & m[k, :, :-1])
        expected = (dy.sum() + dx.sum()) / m[k].sum()
        assert total_variation(images, masks)[k].item() == pytest.approx(expected, rel=1e-10)


def test_snr_immerkaer_recovers_known_noise():
    clean, masks = _images(4, (96, 96), seed=3, smooth=4.0)
    sigma = 0.02
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * sigma
    noisy = ((clean + noise) * masks).double()
    ours = snr(noisy, masks)
    mean_brain = (noisy * masks).flatten(1).sum(1) / masks.flatten(1).sum(1)
    np.testing.assert_allclose((mean_brain / ours).numpy(), sigma, rtol=0.1)
    # direct formula with scipy on one image
    x, m = noisy[0, 0].double().numpy(), masks[0, 0].numpy()
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=float)
    response = np.abs(ndi.correlate(x, kernel))[1:-1, 1:-1]
    inner = ndi.binary_erosion(m, np.ones((3, 3)), border_value=0)[1:-1, 1:-1]
    expected_sigma = math.sqrt(math.pi / 2) / 6 * response[inner].mean()
    assert ours[0].item() == pytest.approx(mean_brain[0].item() / expected_sigma, rel=1e-9)


def test_snr_background_uses_rayleigh_correction_and_refuses_constant_background():
    clean, masks = _images(2, (96, 96), seed=4, smooth=4.0)
    rng = np.random.default_rng(1)
    sigma = 0.03
    magnitude = np.abs(
        clean.double().numpy() + sigma * (rng.normal(size=clean.shape) + 1j * rng.normal(size=clean.shape))
    )
    ours = snr(torch.from_numpy(magnitude), masks, noise="background")
    mean_brain = (torch.from_numpy(magnitude) * masks).flatten(1).sum(1) / masks.flatten(1).sum(1)
    np.testing.assert_allclose((mean_brain / ours).numpy(), sigma, rtol=0.1)
    with pytest.raises(DataError, match="immerkaer"):
        snr(clean, masks, noise="background")
    with pytest.raises(BenchmarkError, match="noise must be"):
        snr(clean, masks, noise="air")


def test_cnr_matches_numpy_and_tumour_cnr_needs_tumour():
    images, masks = _images(2, (40, 40), seed=5)
    labels = torch.zeros_like(images, dtype=torch.long)
    labels[:, :, 15:22, 12:20] = 2
    ours = tumour_cnr(images, labels, masks)
    for k in range(2):
        x, t = images[k, 0].double().numpy(), labels[k, 0].numpy() > 0
        rest = masks[k, 0].numpy() & ~t
        expected = abs(x[t].mean() - x[rest].mean()) / math.sqrt(x[t].var() + x[rest].var())
        assert ours[k].item() == pytest.approx(expected, rel=1e-10)
    torch.testing.assert_close(cnr(images, labels > 0, masks & (labels == 0)), ours)
    with pytest.raises(DataError, match="region A"):
        tumour_cnr(images, torch.zeros_like(labels), masks)


def test_mscn_matches_scipy():
    images, _ = _images(2, (30, 26), seed=6)
    images = images + 0.1 * torch.rand(images.shape, generator=torch.Generator().manual_seed(6))  # non-zero borders
    ours, _ = mscn(images[:, 0].double())
    g = np.exp(-((np.arange(7) - 3.0) ** 2) / (2 * (7 / 6) ** 2))  # MATLAB fspecial('gaussian', 7, 7/6)
    window = np.outer(g, g) / np.outer(g, g).sum()
    np.testing.assert_allclose(gaussian_window().numpy(), window, rtol=1e-14)
    for k in range(2):
        x = images[k, 0].double().numpy() * 255
        mu = ndi.correlate(x, window, mode="nearest")
        sigma = np.sqrt(np.abs(ndi.correlate(x**2, window, mode="nearest") - mu**2))
        np.testing.assert_allclose(ours[k].numpy(), (x - mu) / (sigma + 1), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("alpha", [0.8, 1.5, 2.0, 3.0])
def test_ggd_and_aggd_fits_recover_parameters(alpha):
    rng = np.random.default_rng(7)
    samples = scipy.stats.gennorm(alpha, scale=0.7).rvs(size=(1, 200, 200), random_state=rng)
    x = torch.from_numpy(samples)
    (fit,), _ = ggd_features(x, torch.ones_like(x), (200, 200))
    assert fit[0, 0, 0].item() == pytest.approx(alpha, rel=0.05)
    assert fit[0, 0, 1].item() == pytest.approx(float(np.mean(samples**2)), rel=1e-9)
    # AGGD with left scale 0.35 and right scale 0.7: P(x < 0) = 0.35 / 1.05; left variance = right / 4
    negative = rng.random(samples.shape) < 0.35 / 1.05
    magnitude = np.abs(scipy.stats.gennorm(alpha).rvs(size=samples.shape, random_state=rng))
    x = torch.from_numpy(np.where(negative, -0.35 * magnitude, 0.7 * magnitude))
    (fit,), ok = aggd_features(x, torch.ones_like(x), (200, 200))
    assert ok.all() and fit[0, 0, 0].item() == pytest.approx(alpha, rel=0.05)
    assert fit[0, 0, 2].item() / fit[0, 0, 3].item() == pytest.approx(0.25, rel=0.05)
    assert fit[0, 0, 1].item() > 0  # right side wider: positive mean


def test_niqe_distance_formula_and_sensitivity():
    images, masks = _images(24, (96, 96), seed=8)
    model = NIQE(patch_size=32).fit(images[:16], masks[:16])
    test = images[16:]
    noisy = (test + 0.05 * torch.randn(test.shape, generator=torch.Generator().manual_seed(2))) * masks[16:]
    clean_scores, noisy_scores = model(test, masks[16:]), model(noisy, masks[16:])
    assert clean_scores.shape == (8,) and (noisy_scores > clean_scores).all()
    from benchmark.metrics.no_reference.niqe import patch_features

    features, usable, _ = patch_features(test, masks[16:], 32, 0.5, "niqe")
    rows = features[0][usable[0]].numpy()
    s = (model.covariance.numpy() + np.cov(rows, rowvar=False)) / 2
    d = model.mean.numpy() - rows.mean(0)
    assert clean_scores[0].item() == pytest.approx(math.sqrt(d @ np.linalg.pinv(s) @ d), rel=1e-6)


def test_niqe_and_brisque_accept_volumes():
    volumes, masks = _images(4, (4, 64, 64), seed=9)
    scores = NIQE(patch_size=16).fit(volumes[:2], masks[:2])(volumes[2:], masks[2:])
    distances = BRISQUEDistance().fit(volumes, masks)(volumes[2:], masks[2:])
    assert scores.shape == distances.shape == (2,) and torch.isfinite(scores).all() and torch.isfinite(distances).all()


def test_brisque_distance_is_mahalanobis_to_reference():
    images, masks = _images(60, (64, 64), seed=10)
    model = BRISQUEDistance().fit(images[:50], masks[:50])
    reference = brisque_features(images[:50], masks[:50]).numpy()
    test = brisque_features(images[50:], masks[50:]).numpy()
    precision = np.linalg.pinv(np.cov(reference, rowvar=False))
    d = test - reference.mean(0)
    expected = np.sqrt(np.einsum("nd,de,ne->n", d, precision, d))
    np.testing.assert_allclose(model(images[50:], masks[50:]).numpy(), expected, rtol=1e-6)
    noisy = (images[50:] + 0.05 * torch.randn(images[50:].shape, generator=torch.Generator().manual_seed(3))) * masks[
        50:
    ]
    assert model(noisy, masks[50:]).mean() > model(images[50:], masks[50:]).mean()


def test_bad_inputs_raise_clear_errors():
    images, masks = _images(2, (32, 32), seed=11)
    with pytest.raises(DataError, match="NaN"):
        variance_of_laplacian(torch.full_like(images, float("nan")))
    with pytest.raises(DataError, match=r"\(N, 1, H, W\)"):
        blur_effect(images[:, 0])
    with pytest.raises(DataError, match="fewer than"):
        snr(images, torch.zeros_like(masks))
    with pytest.raises(DataError, match="does not match"):
        total_variation(images, masks[:, :, :16])
    with pytest.raises(BenchmarkError, match="fit"):
        NIQE()(images, masks)
    corner = NIQE(patch_size=16).fit(images, masks)  # items without usable patch: per item, never the set
    assert torch.isnan(corner(images, _corner(masks))).all() and len(corner.fallback["unscorable"]) == len(images)


def _corner(masks: torch.Tensor) -> torch.Tensor:
    """A mask holding a 3x3 corner only: too small for any patch."""
    corner = torch.zeros_like(masks)
    corner[..., :3, :3] = True
    return corner


def test_alpha_lookup_by_bisection_equals_the_matlab_argmin():
    from benchmark.metrics.no_reference.natural_scene import AGGD_RATIO, ALPHAS, GGD_RATIO, _lookup

    generator = torch.Generator().manual_seed(0)
    for table, low, high in ((GGD_RATIO, 1.0, 6.0), (AGGD_RATIO, 0.1, 0.9)):
        ratio = low + (high - low) * torch.rand(5000, dtype=torch.float64, generator=generator)
        brute = ALPHAS[(table.view(1, -1) - ratio.view(-1, 1)).abs().argmin(1)]
        torch.testing.assert_close(_lookup(ratio, table), brute, rtol=0, atol=0)
