"""SNR and CNR details the recovery tests leave open: the exact background estimate, which input an error
names, every BraTS label above 0 counted as tumour, and regions whose spread is exactly 0 or 1.

Expected values come from scipy.ndimage and numpy on images with a zero background and negative (z-scored)
intensities inside the brain, 2D and 3D.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from benchmark.errors import DataError
from benchmark.metrics.no_reference import cnr, snr, tumour_cnr


def _brain(shape: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(2, 1, *shape) z-scored-looking images (negative and positive values) in a box 'brain', noise outside."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, dtype=bool)
    mask[..., 6:-6, 5:-7] = True
    images = rng.normal(0.0, 0.05, size=(2, *shape))  # background noise, as in a magnitude image's air
    images[:, mask] = rng.normal(-0.3, 1.0, size=(2, int(mask.sum())))
    return torch.from_numpy(images[:, None]), torch.from_numpy(np.broadcast_to(mask, (2, 1, *shape)).copy())


@pytest.mark.parametrize("shape", [(30, 28), (3, 30, 28)])
def test_background_noise_is_the_std_beyond_three_voxels_in_plane_over_the_rayleigh_factor(shape):
    images, masks = _brain(shape, seed=1)
    ours = snr(images, masks, noise="background")
    in_plane = np.ones((1,) * (len(shape) - 2) + (7, 7), dtype=bool)  # 3 voxels each way, in-plane only
    for k in range(2):
        x, m = images[k, 0].numpy(), masks[k, 0].numpy()
        far = ~ndi.binary_dilation(m, in_plane)
        sigma = x[far].std() / 0.655
        assert ours[k].item() == pytest.approx(x[m].mean() / sigma, rel=1e-12)


def test_cnr_errors_name_the_metric_and_the_region():
    images, masks = _brain((20, 20))
    other = ~masks
    with pytest.raises(DataError, match=r"^cnr: region A shape \(2, 1, 20, 19\) does not match"):
        cnr(images, masks[..., :19], other)
    with pytest.raises(DataError, match=r"^cnr: region B shape \(2, 1, 19, 20\) does not match"):
        cnr(images, masks, other[..., :19, :])
    empty = masks.clone()
    empty[1] = False
    with pytest.raises(DataError, match=r"^cnr: region A of items \[1\] has fewer than 1 voxels"):
        cnr(images, empty, other)
    with pytest.raises(DataError, match=r"^cnr: region B of items \[1\] has fewer than 1 voxels"):
        cnr(images, other, empty)
    with pytest.raises(DataError, match=r"^cnr: images contain NaN"):
        cnr(torch.full_like(images, float("nan")), masks, other)


def test_cnr_of_constant_regions_names_the_items_and_a_unit_spread_is_fine():
    images = torch.zeros(3, 1, 4, 4, dtype=torch.float64)
    a = torch.zeros(3, 1, 4, 4, dtype=torch.bool)
    a[:, :, :2] = True
    images[0, 0, 0], images[0, 0, 1] = 0.0, 2.0  # region A: 0 and 2, variance 1; region B constant 5
    images[0, 0, 2:] = 5.0
    images[1] = -1.0  # both regions constant
    images[2, 0, 0] = 3.0
    images[2, 0, 2:] = torch.arange(8, dtype=torch.float64).reshape(2, 4)
    with pytest.raises(DataError, match=r"^cnr: both regions are constant in items \[1\]$"):
        cnr(images, a, ~a)
    assert cnr(images[:1], a[:1], ~a[:1]).item() == pytest.approx(4.0, abs=1e-12)  # |1 - 5| / sqrt(1 + 0)


def test_constant_region_list_stops_at_ten_items():
    images = torch.ones(12, 1, 4, 4, dtype=torch.float64)
    a = torch.zeros(12, 1, 4, 4, dtype=torch.bool)
    a[:, :, :2] = True
    with pytest.raises(DataError, match=r"items \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\]$"):
        cnr(images, a, ~a)


@pytest.mark.parametrize("label", [1, 2, 3])
def test_tumour_cnr_counts_every_brats_label_above_zero_as_tumour(label):
    images, masks = _brain((24, 24), seed=2)
    labels = torch.zeros_like(images, dtype=torch.uint8)
    labels[:, :, 9:14, 9:15] = label
    ours = tumour_cnr(images, labels, masks)
    for k in range(2):
        x, t = images[k, 0].numpy(), labels[k, 0].numpy() > 0
        rest = masks[k, 0].numpy() & ~t
        expected = abs(x[t].mean() - x[rest].mean()) / math.sqrt(x[t].var() + x[rest].var())
        assert ours[k].item() == pytest.approx(expected, rel=1e-12)


def test_tumour_cnr_refuses_any_mismatched_shape_and_names_all_three():
    images, masks = _brain((16, 16))
    labels = torch.zeros_like(images, dtype=torch.uint8)
    labels[:, :, 6:9, 6:9] = 2
    expected = r"^tumour_cnr: labels {} and brain masks {} must match images \(2, 1, 16, 16\)$"
    with pytest.raises(DataError, match=expected.format(r"\(2, 1, 16, 15\)", r"\(2, 1, 16, 16\)")):
        tumour_cnr(images, labels[..., :15], masks)
    with pytest.raises(DataError, match=expected.format(r"\(2, 1, 16, 16\)", r"\(2, 1, 15, 16\)")):
        tumour_cnr(images, labels, masks[..., :15, :])


def test_background_needs_ten_far_voxels_and_says_how_to_fix_it():
    def scene(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Brain in columns 0-9 of a 14-wide image: only column 13 is more than 3 voxels away (`rows` voxels)."""
        rng = np.random.default_rng(rows)
        images = torch.from_numpy(rng.normal(1.0, 0.1, size=(1, 1, rows, 14)))
        masks = torch.zeros(1, 1, rows, 14, dtype=torch.bool)
        masks[..., :10] = True
        return images, masks

    images, masks = scene(10)
    far = images[0, 0, :, 13].numpy()
    assert snr(images, masks, noise="background").item() == pytest.approx(
        images[0, 0, :, :10].mean().item() / (far.std() / 0.655), rel=1e-12)
    with pytest.raises(DataError, match=r"^snr: items \[0\] have no usable background \(fewer than 10 voxels or "
                                        r"constant, e.g. skull-stripped data\); use noise='immerkaer'$"):
        snr(*scene(9), noise="background")
    flat = torch.ones(12, 1, 12, 14, dtype=torch.float64)
    with pytest.raises(DataError, match=r"^snr: items \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\] have no usable"):
        snr(flat, scene(12)[1].expand(12, -1, -1, -1), noise="background")


def test_immerkaer_needs_one_full_neighbourhood_and_names_the_items_without():
    rng = np.random.default_rng(5)
    images = torch.from_numpy(rng.normal(0.0, 1.0, size=(12, 1, 8, 8)))
    masks = torch.zeros(12, 1, 8, 8, dtype=torch.bool)
    masks[:, :, 2:5, 3:6] = True  # one 3x3 block: exactly one voxel with a full neighbourhood
    x = images[0, 0].numpy()
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=float)
    sigma = math.sqrt(math.pi / 2) / 6 * abs(ndi.correlate(x, kernel)[3, 4])
    assert snr(images[:1], masks[:1]).item() == pytest.approx(x[2:5, 3:6].mean() / sigma, rel=1e-12)
    thin = masks.clone()
    thin[:, :, 2] = False  # 2 x 3 blocks: no full neighbourhood anywhere
    with pytest.raises(DataError, match=r"^snr: brain masks of items \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\] have no "
                                        r"voxel with a full 3x3 neighbourhood$"):
        snr(images, thin)
    with pytest.raises(DataError, match=r"^snr: images contain NaN"):
        snr(torch.full_like(images, float("nan")), masks)


def test_snr_names_a_bad_brain_mask_and_refuses_a_zero_noise_estimate():
    images, masks = _brain((16, 16))
    with pytest.raises(DataError, match=r"^snr: brain mask shape \(2, 1, 16, 15\) does not match"):
        snr(images, masks[..., :15])
    with pytest.raises(DataError, match=r"^snr: brain mask of items \[0, 1\] has fewer than 1 voxels"):
        snr(images, torch.zeros_like(masks))
    ramp = torch.linspace(-1.0, 2.0, 16, dtype=torch.float64).expand(13, 1, 16, 16).clone()  # locally linear
    ramp[0] += images[0] * 0.01  # item 0 has noise (sigma well below 1), the other twelve none
    with pytest.raises(DataError, match=r"^snr: zero noise estimate for items \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\]$"):
        snr(ramp, masks[:1].expand(13, -1, -1, -1))


@pytest.mark.gpu
def test_snr_and_cnr_on_cuda_equal_the_cpu_values():
    """The Immerkær kernel and every mask follow the images' device."""
    images, masks = _brain((3, 30, 28), seed=3)
    for noise in ("immerkaer", "background"):
        torch.testing.assert_close(snr(images.cuda(), masks.cuda(), noise=noise).cpu(), snr(images, masks, noise=noise),
                                   rtol=1e-10, atol=0)
    torch.testing.assert_close(cnr(images.cuda(), masks.cuda(), ~masks.cuda()).cpu(), cnr(images, masks, ~masks),
                               rtol=1e-10, atol=0)
