"""The TOF-MRA renderer: tissue ordering of a spoiled gradient echo, inflow saturation, partial volume at
the wall, Rician noise, the inflow path along the vessels, and determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from benchmark.data.vessels.anatomy import TISSUES, coarse_grid, upsample
from benchmark.data.vessels.tof import (
    TofParameters,
    blood_signal,
    inflow_path_mm,
    local_radius_mm,
    render_tof,
    steady_state,
    tissue_signal,
)

SPACING = (0.5, 0.5, 0.5)


def _tube(shape: tuple[int, int, int] = (40, 40, 60), radius_vox: float = 4.0) -> np.ndarray:
    """A vertical cylinder along Z (the inflow axis) through the middle of the volume."""
    x, y = np.indices(shape[:2]) - ((np.array(shape[:2]) - 1) / 2)[:, None, None]
    disc = (x**2 + y**2) <= radius_vox**2
    return np.repeat(disc[:, :, None], shape[2], axis=2)


def _brain(shape: tuple[int, int, int], tissue: str = "wm") -> dict[str, np.ndarray]:
    maps = {name: np.zeros(shape, np.float32) for name in TISSUES}
    maps[tissue][:] = 1.0
    return maps


def test_steady_state_matches_the_spoiled_gradient_echo_formula() -> None:
    """Ernst: Mss / M0 = (1 - E1) / (1 - E1 cos a), checked by iterating the Bloch recursion."""
    params = TofParameters(flip_deg=20.0, tr_ms=25.0)
    e1, cos_a = np.exp(-25.0 / 900.0), np.cos(np.deg2rad(20.0))
    mz = 1.0
    for _ in range(2000):
        mz = 1 - (1 - mz * cos_a) * e1  # excite, then relax for one TR
    mz_before = mz
    assert steady_state(900.0, params) == pytest.approx(mz_before, rel=1e-6)


def test_tof_tissue_ordering() -> None:
    """Fresh blood > fat > grey ~ white matter > CSF > bone: what a TOF image shows."""
    signal = tissue_signal(TofParameters())
    assert 1.0 > signal["fat"] > max(signal["gm"], signal["wm"]) > signal["csf"] > signal["bone"]
    assert abs(signal["gm"] - signal["wm"]) < 0.05  # magnetisation transfer flattens grey/white contrast


def test_inflow_saturation_fades_slow_small_vessels_first() -> None:
    params = TofParameters()
    path = np.array([0.0, 20.0, 60.0, 120.0])
    large, small = blood_signal(path, np.full(4, 2.0), params), blood_signal(path, np.full(4, 0.3), params)
    assert large[0] == pytest.approx(1.0) and small[0] == pytest.approx(1.0)
    assert np.all(np.diff(large) < 0) and np.all(small[1:] < large[1:])
    assert small[-1] > steady_state(1650.0, params)  # never below the blood's own steady state


def test_rendered_tube_is_bright_with_a_partial_volume_wall() -> None:
    mask = _tube()
    image = render_tof(mask.astype(np.float32), SPACING, _brain(mask.shape), np.random.default_rng(0),
                       params=TofParameters(noise_fraction=0.0, coil_variation=0.0))
    plane, disc = image[:, :, 30], mask[:, :, 30]
    tissue = float(np.median(plane[~ndimage.binary_dilation(disc, iterations=4)]))
    core = float(plane[20, 20])
    wall = plane[disc & ~ndimage.binary_erosion(disc)]
    assert core > 3 * tissue
    assert np.all((wall > tissue) & (wall < core))  # the PSF mixes the wall with tissue
    low = image[20, 20, 2:10].mean()
    high = image[20, 20, -10:-2].mean()
    assert high < low  # blood deep in the slab has seen more excitations


def test_fractional_vessel_is_between_tissue_and_full_vessel() -> None:
    mask = _tube()
    tissues = _brain(mask.shape)
    quiet = TofParameters(noise_fraction=0.0, coil_variation=0.0, psf_fwhm_mm=(0.01, 0.01, 0.01))
    full = render_tof(mask.astype(np.float32), SPACING, tissues, np.random.default_rng(0), params=quiet)
    half = render_tof(mask * np.float32(0.5), SPACING, tissues, np.random.default_rng(0), params=quiet,
                      radius_mm=local_radius_mm(mask, SPACING), path_mm=inflow_path_mm(mask, SPACING))
    tissue = full[0, 0, 30]
    centre = (20, 20, 30)
    assert half[centre] == pytest.approx((full[centre] + tissue) / 2, rel=1e-4)


def test_rician_noise_on_air_and_determinism() -> None:
    """Air (no tissue) gets Rayleigh-distributed magnitude noise: mean sigma sqrt(pi / 2)."""
    shape = (30, 30, 30)
    air = {name: np.zeros(shape, np.float32) for name in TISSUES}
    mask = np.zeros(shape, np.float32)
    mask[15, 15, 15] = 1.0
    params = TofParameters(noise_fraction=0.1)
    image = render_tof(mask, SPACING, air, np.random.default_rng(3), params=params)
    sigma = 0.1 * tissue_signal(params)["gm"]
    far = image[:10, :10, :10]
    assert far.min() >= 0
    assert far.mean() == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.1)
    again = render_tof(mask, SPACING, air, np.random.default_rng(3), params=params)
    other = render_tof(mask, SPACING, air, np.random.default_rng(4), params=params)
    assert np.array_equal(image, again) and not np.array_equal(image, other)


def test_inflow_path_follows_the_vessel_not_the_height() -> None:
    """A U-shaped vessel: the descending limb is reached through the bend, so its path exceeds its height."""
    mask = np.zeros((30, 5, 40), bool)
    mask[5, 2, 0:30] = True  # up
    mask[5:25, 2, 29] = True  # across
    mask[24, 2, 10:30] = True  # down again
    path = inflow_path_mm(mask, (1.0, 1.0, 1.0))
    assert path[5, 2, 0] == 0 and path[5, 2, 29] == pytest.approx(29)
    # 29 up, 19 across, 19 down; each of the two bends is cut by a diagonal step (sqrt 2 for 2)
    assert path[24, 2, 10] == pytest.approx(29 + 19 + 19 - 2 * (2 - np.sqrt(2)), abs=1e-3)
    assert path[24, 2, 10] > 1.4 * 10  # more than its height: the fallback was not used


def test_local_radius_of_a_tube() -> None:
    mask = _tube(radius_vox=6.0)
    radius = local_radius_mm(mask, SPACING)
    assert radius[20, 20, 30] == pytest.approx(3.0, abs=0.5)
    assert radius[~mask].max() == 0


def test_tissue_on_a_coarse_grid_renders_like_the_fine_grid() -> None:
    """The coarse grid covers the same field of view: a smooth tissue map sampled there and interpolated
    back differs from the fine map by under 2 %."""
    shape, affine = (60, 60, 40), np.diag([0.5, 0.5, 0.8, 1.0])
    coarse_shape, coarse_affine = coarse_grid(shape, affine)
    assert coarse_shape == (20, 20, 20)
    fine_x = np.arange(shape[0]) * 0.5
    coarse_x = np.arange(coarse_shape[0]) * coarse_affine[0, 0] + coarse_affine[0, 3]
    profile = np.sin(coarse_x / 10.0)[:, None, None] * np.ones(coarse_shape, np.float32)
    back = upsample(profile.astype(np.float32), shape)
    inner = slice(3, -3)
    assert np.abs(back[inner, 0, 0] - np.sin(fine_x[inner] / 10.0)).max() < 0.02
