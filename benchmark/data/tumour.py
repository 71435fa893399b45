"""Synthetic brain tumours for the phantom: placement, BraTS-style compartments and mass effect.

A tumour is a lobulated core (enhancing rim around a necrotic centre) inside a larger oedema that
spreads preferentially along white matter and stays out of the ventricles, as in glioblastoma on
BraTS scans. Shapes are level sets of the distance to the centre with the radius perturbed by
smooth random noise, so no compartment is a sphere. The compartments are nested by construction:
the necrotic core lies inside the core eroded by the rim thickness, and the oedema contains a
dilation of the core, so every necrotic voxel is surrounded by enhancing tumour and every core
voxel by tumour. Mass effect is a radial displacement pushing tissue away from the centre and
decaying with distance, weakened near the brain surface where the skull stops expansion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

NECROTIC, OEDEMA, ENHANCING = 1, 2, 4  # BraTS 2021 label values written to the files


@dataclass(frozen=True)
class TumourSpec:
    """One tumour, in mm of the world (MNI) space of the subject.

    `core_radius_mm` (outer radius of the enhancing rim) 8-20; `necrotic_radius_mm` 0 (no necrosis,
    10 %) or 0.7-1.3 times the core radius minus the rim (the rim never gets thinner than `rim_mm`);
    `oedema_radius_mm` the core radius plus 6-18; `rim_mm` the minimum enhancing rim thickness 2-4.5;
    `mass_effect_mm` the peak displacement of the surrounding tissue.
    """

    centre_mm: tuple[float, float, float]
    core_radius_mm: float
    necrotic_radius_mm: float
    oedema_radius_mm: float
    rim_mm: float
    mass_effect_mm: float


def draw_tumour_specs(
    rng: np.random.Generator,
    n_tumours: int,
    candidates_mm: np.ndarray,
    depth_mm: np.ndarray,
    min_margin_mm: float = 6.0,
) -> list[TumourSpec]:
    """Draw up to `n_tumours` non-overlapping tumours centred on candidate white-matter points.

    `candidates_mm` (K, 3) are allowed centres in world mm, `depth_mm` (K,) their distance to the
    brain surface; a tumour needs `core radius + min_margin_mm` of depth and its core may not
    touch another tumour's core (8 mm gap). Returns fewer tumours when no candidate fits.
    """
    specs: list[TumourSpec] = []
    for _ in range(n_tumours):
        core = float(rng.uniform(8.0, 20.0))
        rim = float(rng.uniform(2.0, 4.5))
        necrotic = float((core - rim) * rng.uniform(0.7, 1.3)) if rng.random() < 0.9 else 0.0
        oedema = core + float(rng.uniform(6.0, 18.0))
        fits = depth_mm >= core + min_margin_mm
        for other in specs:
            gap = np.linalg.norm(candidates_mm - np.asarray(other.centre_mm), axis=1)
            fits &= gap >= core + other.core_radius_mm + 8.0
        if not fits.any():
            continue
        centre = candidates_mm[rng.choice(np.flatnonzero(fits))]
        mass = float(0.3 * core * rng.uniform(0.6, 1.0))
        specs.append(TumourSpec(tuple(float(c) for c in centre), core, necrotic, oedema, rim, mass))
    return specs


def mass_effect_displacement(
    grid_mm: np.ndarray, specs: list[TumourSpec], attenuation: np.ndarray
) -> np.ndarray:
    """Outward displacement (3, *shape) in mm: where each output point samples the untouched tissue.

    For a tumour at c with core radius R, the magnitude at distance r is
    u(r) = A (r / s) exp((1 - r^2 / s^2) / 2) with s = 1.2 R and A = `mass_effect_mm`, peaking at
    r = s and zero at the centre; A < 0.6 s keeps r - u(r) increasing, so the warp never folds.
    Output point x samples the anatomy at x - u(x) r_hat: tissue appears pushed away from c.
    `attenuation` (*shape) in [0, 1] scales the field (0 at the brain surface).
    """
    shift = np.zeros_like(grid_mm)
    for spec in specs:
        rel = grid_mm - np.asarray(spec.centre_mm, dtype=grid_mm.dtype).reshape(3, 1, 1, 1)
        r = np.sqrt((rel**2).sum(0)) + 1e-6
        s = 1.2 * spec.core_radius_mm
        magnitude = spec.mass_effect_mm / s * np.exp((1.0 - (r / s) ** 2) / 2.0)  # u(r) / r
        shift += rel * magnitude
    return shift * attenuation


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_vox: float) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_vox, mode="wrap")
    return field / max(float(field.std()), 1e-8)


def tumour_compartments(
    rng: np.random.Generator,
    spec: TumourSpec,
    centre_vox: np.ndarray,
    voxel_mm: float,
    brain: np.ndarray,
    white_matter: np.ndarray,
    csf: np.ndarray,
) -> dict[str, np.ndarray]:
    """Boolean masks `necrotic`, `core`, `oedema` (full grid) of one tumour on the subject grid.

    `brain` (bool), `white_matter` and `csf` (probabilities) are the subject's deformed maps on the
    output grid, `centre_vox` the tumour centre in voxel indices. Core stays one voxel inside the
    brain; oedema is limited to the brain, avoids CSF and reaches further in white matter.
    """
    half = int(np.ceil((1.4 * spec.oedema_radius_mm + 2 * voxel_mm) / voxel_mm))
    lo = np.maximum(np.round(centre_vox).astype(int) - half, 0)
    hi = np.minimum(np.round(centre_vox).astype(int) + half + 1, brain.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    shape = tuple(int(b - a) for a, b in zip(lo, hi, strict=True))
    axes = [(np.arange(a, b) - c) * voxel_mm for a, b, c in zip(lo, hi, centre_vox, strict=True)]
    r = np.sqrt(sum(a**2 for a in np.meshgrid(*axes, indexing="ij", sparse=True)))
    lobes = 0.12 * _smooth_noise(rng, shape, 5.0 / voxel_mm) + 0.05 * _smooth_noise(rng, shape, 2.0 / voxel_mm)
    inner = 0.15 * _smooth_noise(rng, shape, 3.0 / voxel_mm)
    fingers = 0.22 * _smooth_noise(rng, shape, 4.0 / voxel_mm)

    brain_box = brain[box]
    inside = ndimage.binary_erosion(brain_box, iterations=1, border_value=1)
    core = _largest_component((r < spec.core_radius_mm * (1.0 + lobes)) & inside)
    rim_vox = max(1, round(spec.rim_mm / voxel_mm))
    necrotic = np.zeros_like(core)
    if spec.necrotic_radius_mm > 0:
        necrotic = (r < spec.necrotic_radius_mm * (1.0 + inner)) & ndimage.binary_erosion(core, iterations=rim_vox)
    reach = spec.oedema_radius_mm * (1.0 + fingers) * (0.55 + 0.6 * white_matter[box])
    oedema = (r < reach) & (csf[box] < 0.6)
    oedema = (oedema | ndimage.binary_dilation(core, iterations=max(1, round(2.0 / voxel_mm)))) & brain_box
    oedema = _components_touching(oedema, core)

    out = {}
    for name, local in (("necrotic", necrotic), ("core", core), ("oedema", oedema)):
        full = np.zeros(brain.shape, dtype=bool)
        full[box] = local
        out[name] = full
    return out


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 26-connected component (one solid core, no satellite specks)."""
    labelled, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n <= 1:
        return mask
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    return labelled == int(sizes.argmax())


def _components_touching(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Keep the 26-connected components of `mask` that overlap `seed` (drops stray oedema islands)."""
    labelled, _ = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    keep = np.unique(labelled[seed & mask])
    return np.isin(labelled, keep[keep > 0])


def merge_labels(compartments: list[dict[str, np.ndarray]], shape: tuple[int, ...]) -> np.ndarray:
    """BraTS 2021 label map (uint8): 2 oedema, then 4 enhancing over it, then 1 necrotic core."""
    label = np.zeros(shape, dtype=np.uint8)
    for comp in compartments:
        label[comp["oedema"]] = OEDEMA
    for comp in compartments:
        label[comp["core"]] = ENHANCING
    for comp in compartments:
        label[comp["necrotic"]] = NECROTIC
    return label
