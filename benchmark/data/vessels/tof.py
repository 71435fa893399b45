"""Render a time-of-flight MR angiogram (TOF-MRA) from a vessel map and static tissue maps.

TOF-MRA is a spoiled 3D gradient echo with a short TR: static tissue is driven into a low steady state,
while blood flowing into the slab is fresh (fully relaxed) and bright (Dumoulin & Hart 1986). Modelled:
- static tissue at its spoiled-gradient-echo steady state S = PD sin(a) (1 - E1) / (1 - E1 cos(a)),
  E1 = exp(-TR / T1), with magnetisation transfer suppressing grey and white matter and muscle; fat
  (short T1, no MT) stays bright, dimmed only by the dephasing of its spectral peaks at the echo time;
- inflowing blood relaxed on entry and saturated by every excitation it sees inside the slab:
  Mz(n) = Mss + (M0 - Mss) (E1 cos a)^n after n = path / (v TR) pulses, so slow flow in small, distal
  vessels fades deep in the slab (velocity v grows with the vessel radius, v = v_ref (r / r_ref)^0.5);
- partial volume at the wall: a voxel mixes blood and tissue by its blood fraction;
- the acquisition's point spread (a Gaussian of `psf_fwhm_mm`), a smooth receive-coil shading and
  Rician noise (magnitude of complex Gaussian noise; Gudbjartsson & Patz 1995).
Intensities are relative to fresh blood (1.0). Calibrated against a real TOF crop (`calibrate`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

T1_MS_3T = {"blood": 1650.0, "wm": 850.0, "gm": 1330.0, "csf": 4000.0, "fat": 380.0, "skin": 1400.0}
PROTON_DENSITY = {"blood": 0.85, "wm": 0.69, "gm": 0.8, "csf": 1.0, "fat": 0.9, "skin": 0.7, "bone": 0.05}


@dataclass(frozen=True)
class TofParameters:
    """Acquisition and physiology of the rendered angiogram (3 T, typical clinical protocol).

    flip_deg 10-30; tr_ms 15-40; mt_factor: signal kept after magnetisation transfer per tissue (0-1);
    fat_dephasing: fat signal kept at the echo time (0-1); velocity_ref_cm_s at radius_ref_mm (ICA ~35 cm/s
    at 2 mm radius), velocity_exponent; psf_fwhm_mm per
    axis (X, Y, Z); noise_fraction: Rician sigma relative to the grey-matter signal; coil_variation:
    amplitude of the smooth multiplicative shading (0-0.3).
    """

    flip_deg: float = 18.0
    tr_ms: float = 24.0
    mt_factor: dict[str, float] = field(default_factory=lambda: {"wm": 0.55, "gm": 0.65, "skin": 0.6})
    fat_dephasing: float = 0.5
    velocity_ref_cm_s: float = 35.0
    radius_ref_mm: float = 2.0
    velocity_exponent: float = 0.5
    psf_fwhm_mm: tuple[float, float, float] = (0.6, 0.6, 0.9)
    noise_fraction: float = 0.06
    coil_variation: float = 0.1


def steady_state(t1_ms: float, params: TofParameters) -> float:
    """Longitudinal steady state Mss / M0 of a spoiled gradient echo (0-1)."""
    alpha = np.deg2rad(params.flip_deg)
    e1 = np.exp(-params.tr_ms / t1_ms)
    return float((1 - e1) / (1 - e1 * np.cos(alpha)))


def tissue_signal(params: TofParameters) -> dict[str, float]:
    """Static signal per tissue relative to fresh inflowing blood (1.0)."""
    fresh = PROTON_DENSITY["blood"]
    out = {"bone": PROTON_DENSITY["bone"] * 0.1 / fresh}
    for name in ("wm", "gm", "csf", "fat", "skin"):
        kept = params.mt_factor.get(name, 1.0) * (params.fat_dephasing if name == "fat" else 1.0)
        out[name] = PROTON_DENSITY[name] * steady_state(T1_MS_3T[name], params) * kept / fresh
    return out


def blood_signal(path_mm: np.ndarray, radius_mm: np.ndarray, params: TofParameters) -> np.ndarray:
    """Signal of blood (relative to fresh blood) after travelling `path_mm` inside the slab in a vessel of
    `radius_mm`: saturation by n = path / (v TR) excitations."""
    alpha = np.deg2rad(params.flip_deg)
    e1 = np.exp(-params.tr_ms / T1_MS_3T["blood"])
    m_ss = steady_state(T1_MS_3T["blood"], params)
    ratio = np.clip(radius_mm / params.radius_ref_mm, 0.05, 2.0) ** params.velocity_exponent
    speed_mm_per_ms = params.velocity_ref_cm_s * 10.0 / 1000.0 * ratio
    pulses = np.maximum(path_mm, 0.0) / (speed_mm_per_ms * params.tr_ms)
    return (m_ss + (1.0 - m_ss) * (e1 * np.cos(alpha)) ** pulses).astype(np.float32)


def local_radius_mm(mask: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Radius of the vessel covering each mask voxel (mm; 0 outside): the largest distance to the wall
    within a vessel-sized neighbourhood, i.e. the distance of the nearby centreline to the wall."""
    distance = ndimage.distance_transform_edt(mask, sampling=spacing).astype(np.float32)
    reach = np.maximum(np.ceil(2.5 / np.asarray(spacing)).astype(int) * 2 + 1, 3)
    return (ndimage.maximum_filter(distance, size=tuple(reach)) * mask).astype(np.float32)


def inflow_path_mm(mask: np.ndarray, spacing: tuple[float, ...], tortuosity: float = 1.4) -> np.ndarray:
    """Blood's path length (mm) from the slab's inferior face (z index 0, arteries flow upward) to each mask
    voxel, along the vessels (shortest path through 26-connected mask voxels). Voxels not reached from
    the inferior face get `tortuosity` times their height above it."""
    spacing_arr = np.asarray(spacing, dtype=np.float64)
    height = (np.arange(mask.shape[2]) * spacing_arr[2])[None, None, :] * np.ones(mask.shape, np.float32)
    path = np.zeros(mask.shape, np.float32)
    voxels = np.argwhere(mask)
    if len(voxels) == 0:
        return path
    lookup = np.full(mask.shape, -1, np.int64)
    lookup[tuple(voxels.T)] = np.arange(len(voxels))
    rows, cols, weights = [], [], []
    for step in itertools.product((-1, 0, 1), repeat=3):
        if step <= (0, 0, 0):
            continue  # each undirected edge once
        neighbour = voxels + np.array(step)
        valid = ((neighbour >= 0) & (neighbour < mask.shape)).all(axis=1)
        target = np.full(len(voxels), -1, np.int64)
        target[valid] = lookup[tuple(neighbour[valid].T)]
        linked = np.flatnonzero(target >= 0)
        rows.append(linked)
        cols.append(target[linked])
        weights.append(np.full(len(linked), float(np.linalg.norm(np.array(step) * spacing_arr))))
    graph = coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(len(voxels), len(voxels))).tocsr()
    sources = np.flatnonzero(voxels[:, 2] == voxels[:, 2].min())
    distance = dijkstra(graph, directed=False, indices=sources, min_only=True)
    fallback = tortuosity * height[tuple(voxels.T)]
    path[tuple(voxels.T)] = np.where(np.isfinite(distance), distance, fallback)
    return path


def _coil_shading(shape: tuple[int, ...], rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A smooth multiplicative field 1 +- amplitude (a few control points per axis)."""
    coarse = rng.standard_normal(tuple(3 for _ in shape))
    field_ = ndimage.zoom(coarse, [n / 3 for n in shape], order=1, mode="nearest", grid_mode=True)
    field_ = field_ / max(float(np.abs(field_).max()), 1e-6)
    return (1.0 + amplitude * field_).astype(np.float32)


def render_tof(vessel_fraction: np.ndarray, spacing: tuple[float, float, float], tissues: dict[str, np.ndarray],
               rng: np.random.Generator, *, radius_mm: np.ndarray | None = None, path_mm: np.ndarray | None = None,
               params: TofParameters | None = None) -> np.ndarray:
    """A TOF-MRA volume (X, Y, Z) float32, fresh blood ~1.0, on the grid of `vessel_fraction`.

    `vessel_fraction`: blood share per voxel (0-1; a binary mask works: its edges get partial volume from
    the PSF); `spacing` mm per axis, Z the slab axis with inflow at index 0; `tissues`: static tissue
    fractions by name (`anatomy.TISSUES`); `radius_mm` / `path_mm`: vessel radius and inflow path per
    voxel (derived from the mask when None); `rng` draws the coil shading and the noise.
    """
    params = params or TofParameters()
    fraction = np.clip(np.asarray(vessel_fraction, np.float32), 0.0, 1.0)
    mask = fraction >= 0.5
    if radius_mm is None:
        radius_mm = local_radius_mm(mask | (fraction > 0), spacing)
    if path_mm is None:
        path_mm = inflow_path_mm(mask | (fraction > 0), spacing)
    signal = tissue_signal(params)
    static = np.zeros(fraction.shape, np.float32)
    for name, share in tissues.items():
        static += share * np.float32(signal[name])
    blood = blood_signal(path_mm, np.maximum(radius_mm, 0.05), params)
    image = fraction * blood + (1.0 - fraction) * static
    image *= _coil_shading(image.shape, rng, params.coil_variation)
    sigma_vox = [f / 2.355 / s for f, s in zip(params.psf_fwhm_mm, spacing, strict=True)]
    image = ndimage.gaussian_filter(image, sigma_vox, mode="nearest")
    sigma = params.noise_fraction * signal["gm"]
    real = image + rng.normal(0.0, sigma, image.shape).astype(np.float32)
    imaginary = rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return np.sqrt(real * real + imaginary * imaginary).astype(np.float32)
