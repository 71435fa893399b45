"""The 36 NSS features against a numpy re-implementation of the reference MATLAB code (brisque_feature.m,
estimateggdparam.m, estimateaggdparam.m of Mittal et al.), on images that look like MRI slices.

The reference is written from the published code, not from the module: its own 7x7 Gaussian (sigma 7/6),
scipy's correlate with replicated borders, MATLAB's moment-matching grid 0.2:0.001:10 with scipy's gamma. The
half-size image is checked on its own against Pillow's antialiased bicubic downscale (as MATLAB's imresize(0.5)),
to float32 precision, and then taken from the module in float64 so that near-zero values keep their sign.
Masking and patches follow the module's documented rules, not MATLAB's: a product counts when both voxels are in
the mask and belongs to the patch of its first voxel, its partner p + shift anywhere in the image (MATLAB's
circshift wraps around the image, and NIQE's blkproc around each block); the half-scale mask keeps 2x2 blocks
at least half inside.
Images have bright and dark structures, flat zero regions inside the mask (exact zero MSCN values and products),
non-zero borders (where the padding matters) and odd sizes (cropped to whole patches).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from PIL import Image
from scipy.special import gammaln

from benchmark.metrics.no_reference.natural_scene import half_scale, nss_features
from tests.mri_like import blob_per_patch_masks

GRID = np.linspace(0.2, 10.0, 9801)  # MATLAB gam = 0.2:0.001:10
SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # NIQE's four orientations (BRISQUE's (-1, 1): the same pairs)


def _window() -> np.ndarray:
    g = np.exp(-((np.arange(7) - 3.0) ** 2) / (2 * (7 / 6) ** 2))
    window = np.outer(g, g)
    return window / window.sum()


def _mscn(image: np.ndarray) -> np.ndarray:
    x = 255.0 * image
    mu = ndi.correlate(x, _window(), mode="nearest")
    sigma = np.sqrt(np.abs(ndi.correlate(x * x, _window(), mode="nearest") - mu * mu))
    return (x - mu) / (sigma + 1.0)


def _ggd(values: np.ndarray) -> list[float]:
    """estimateggdparam: [alpha, sigma^2]."""
    r_gam = np.exp(gammaln(1 / GRID) + gammaln(3 / GRID) - 2 * gammaln(2 / GRID))
    sigma_sq = np.mean(values**2)
    rho = sigma_sq / np.mean(np.abs(values)) ** 2
    return [GRID[np.argmin(np.abs(rho - r_gam))], sigma_sq]


def _aggd(values: np.ndarray) -> list[float]:
    """estimateaggdparam and brisque_feature.m's mean: [alpha, mean, left std^2, right std^2]."""
    left, right = np.sqrt(np.mean(values[values < 0] ** 2)), np.sqrt(np.mean(values[values > 0] ** 2))
    gamma_hat = left / right
    r_hat = np.mean(np.abs(values)) ** 2 / np.mean(values**2)
    r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    r_gam = np.exp(2 * gammaln(2 / GRID) - gammaln(1 / GRID) - gammaln(3 / GRID))
    alpha = GRID[np.argmin(np.abs(r_gam - r_norm))]
    g1, g2, g3 = (np.exp(gammaln(k / alpha)) for k in (1, 2, 3))
    return [alpha, (right - left) * (g2 / g1) * np.sqrt(g1 / g3), left**2, right**2]


def _scale(x: np.ndarray, mask: np.ndarray, patch: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(h, w, 18) features and validity per patch: the GGD of the masked MSCN values, the AGGD of each
    orientation's products whose first voxel is in the patch and second in the image and mask."""
    ph, pw = patch
    h, w = x.shape[0] // ph, x.shape[1] // pw
    features, valid = np.zeros((h, w, 18)), np.zeros((h, w), dtype=bool)
    for i in range(h):
        for j in range(w):
            voxels = [(a, b) for a in range(i * ph, (i + 1) * ph) for b in range(j * pw, (j + 1) * pw) if mask[a, b]]
            values = np.array([x[v] for v in voxels])
            ok = len(values) > 1 and np.mean(values**2) > 0
            if not ok:
                continue
            row = _ggd(values)
            for dy, dx in SHIFTS:
                products = np.array([x[a, b] * x[a + dy, b + dx] for a, b in voxels
                                     if 0 <= a + dy < x.shape[0] and 0 <= b + dx < x.shape[1] and mask[a + dy, b + dx]])
                ok = ok and (products < 0).any() and (products > 0).any()
                if not ok:
                    break
                row += _aggd(products)
            if ok:
                features[i, j], valid[i, j] = row, True
    return features, valid


def _downscale(image: np.ndarray) -> np.ndarray:
    """The half-size image the second scale starts from: the module's float64 bicubic (checked against Pillow's
    float32 one below), so that near-zero values keep their sign and the features compare at 1e-9."""
    return half_scale(torch.from_numpy(image)[None], torch.ones(1, *image.shape, dtype=torch.float64))[0][0].numpy()


def _reference(image: np.ndarray, mask: np.ndarray, patch: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """(P, 36) features and (P,) validity of one image (patch None: the whole image, cropped to even sides)."""
    h, w = image.shape
    ph, pw = patch or (h - h % 2, w - w % 2)
    image, mask = image[: h - h % ph, : w - w % pw], mask[: h - h % ph, : w - w % pw]
    first, valid1 = _scale(_mscn(image), mask, (ph, pw))
    small = _downscale(image)
    small_mask = mask.reshape(mask.shape[0] // 2, 2, mask.shape[1] // 2, 2).mean((1, 3)) >= 0.5
    second, valid2 = _scale(_mscn(small), small_mask, (ph // 2, pw // 2))
    return np.concatenate([first, second], -1).reshape(-1, 36), (valid1 & valid2).reshape(-1)


def _slices(n: int, shape: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MRI-like slices: a smooth head on a non-zero (noisy) border, a bright lesion, a dark flat ventricle
    (exactly 0 inside the mask) and a mask that covers the head and part of the background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    images, masks = [], []
    for _ in range(n):
        cy, cx = shape[0] / 2 + rng.normal(0, 2), shape[1] / 2 + rng.normal(0, 2)
        head = ((yy - cy) / (0.42 * shape[0])) ** 2 + ((xx - cx) / (0.4 * shape[1])) ** 2 < 1
        tissue = 0.45 + 0.25 * ndi.gaussian_filter(rng.standard_normal(shape), 1.5)
        image = np.where(head, tissue, 0.03 * rng.random(shape))
        lesion = (yy - cy - 4) ** 2 + (xx - cx + 5) ** 2 < 16
        image[lesion] = 0.9 + 0.05 * rng.random(lesion.sum())
        ventricle = (np.abs(yy - cy + 3) < 5) & (np.abs(xx - cx) < 6)
        image[ventricle] = 0.0  # wider than the 7x7 window: MSCN exactly 0 at its centre
        images.append(np.clip(image, 0, 1))
        masks.append(head | (rng.random(shape) < 0.3))
    return np.stack(images), np.stack(masks)


def _assert_features_close(ours: np.ndarray, expected: np.ndarray) -> None:
    """The same arithmetic in float64: 1e-9 (alpha, on its 0.001 grid, then matches exactly)."""
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("shape", [(48, 40), (47, 39)])
def test_whole_image_features_equal_the_matlab_reference(shape):
    images, masks = _slices(3, shape, seed=shape[1])
    even = (slice(0, shape[0] // 2 * 2), slice(0, shape[1] // 2 * 2))
    zeros = [(_mscn(image[even]) == 0)[mask[even]].sum() for image, mask in zip(images, masks, strict=True)]
    assert min(zeros) > 0  # exact zeros in the mask: neither left nor right of the AGGD
    features, valid, _ = nss_features(torch.from_numpy(images), torch.from_numpy(masks), None)
    assert features.shape == (3, 1, 36) and valid.all()
    for k in range(3):
        expected, expected_valid = _reference(images[k], masks[k], None)
        assert expected_valid.all()
        _assert_features_close(features[k].numpy(), expected)


def test_patch_features_equal_the_matlab_reference_per_patch():
    images, masks = _slices(2, (49, 41), seed=5)
    sparse = np.random.default_rng(6).random(masks.shape) < 0.45  # patches with few voxels and single products
    masks = masks & sparse
    features, valid, sharpness = nss_features(torch.from_numpy(images), torch.from_numpy(masks), (8, 8))
    assert features.shape == (2, 30, 36) and valid.shape == sharpness.shape == (2, 30)
    checked = 0
    for k in range(2):
        expected, expected_valid = _reference(images[k], masks[k], (8, 8))
        np.testing.assert_array_equal(valid[k].numpy(), expected_valid)
        _assert_features_close(features[k][valid[k]].numpy(), expected[expected_valid])
        checked += int(expected_valid.sum())
    assert checked >= 10


def test_half_scale_is_the_antialiased_bicubic_downscale_and_the_half_inside_mask():
    images, masks = _slices(2, (40, 36), seed=7)
    small, weights = half_scale(torch.from_numpy(images), torch.from_numpy(masks).double())
    for k in range(2):
        expected = np.asarray(Image.fromarray(images[k].astype(np.float32), mode="F").resize((18, 20), Image.BICUBIC))
        np.testing.assert_allclose(small[k].numpy(), expected, rtol=0, atol=1e-6)
        blocks = masks[k].reshape(20, 2, 18, 2).mean((1, 3))
        assert (blocks == 0.5).any()  # the boundary case: a block exactly half inside is kept
        np.testing.assert_array_equal(weights[k].numpy(), (blocks >= 0.5).astype(float))


def test_a_patch_needs_a_fit_at_both_scales():
    """4x4 blobs, one per 16 px patch: a fit at full scale, but the 2x2 blob at half scale has one diagonal
    product per patch (never both signs), so no patch is valid while the whole image is."""
    images, _ = _slices(1, (64, 64), seed=8)
    blobs = blob_per_patch_masks(1)
    _, valid1 = _scale(_mscn(images[0]), blobs[0], (16, 16))
    assert valid1.any()
    _, valid, _ = nss_features(torch.from_numpy(images), torch.from_numpy(blobs), (16, 16))
    assert not valid.any() and nss_features(torch.from_numpy(images), torch.from_numpy(blobs), None)[1].all()


@pytest.mark.gpu
def test_features_on_cuda_equal_the_cpu_values():
    """The Gaussian window and the alpha lookup tables follow the images' device."""
    images, masks = (torch.from_numpy(a) for a in _slices(2, (48, 40), seed=9))
    for patch in (None, (8, 8)):
        cpu = nss_features(images, masks, patch)
        gpu = nss_features(images.cuda(), masks.cuda(), patch)
        for ours, expected in zip(gpu, cpu, strict=True):
            torch.testing.assert_close(ours.cpu(), expected, rtol=1e-9, atol=1e-9)
