"""Synthetic brain-MRI phantom with tumours: the embedded default dataset, built offline.

Every subject is the MNI152 2009a symmetric template that nilearn ships in its wheel (T1, grey- and
white-matter probability maps, brain mask; nothing is downloaded), deformed by a random affine and a
smooth displacement field of a few mm, with 0-2 tumours (`benchmark.data.tumour`) that push the
surrounding tissue away. Four contrasts (T1, T1ce, T2, FLAIR) are mixed from the tissue
probabilities with per-contrast relative intensities, carry the template's own T1 texture, a
multiplicative bias field and Rician noise, and are zero outside the brain like skull-stripped
BraTS scans. `benchmark.data.phantom_files` writes subjects in the BraTS 2021 layout and caches them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from benchmark.data.tumour import (
    ENHANCING,
    NECROTIC,
    OEDEMA,
    TumourSpec,
    draw_tumour_specs,
    mass_effect_displacement,
    merge_labels,
    tumour_compartments,
)

MODALITIES: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")

# Relative signal per tissue and contrast (white matter on T1 ~ 0.9). Sources: typical 3T
# appearance: T1 CSF < GM < WM; T2 the reverse with bright CSF; FLAIR like T2 with CSF nulled;
# gadolinium brightens the enhancing rim on T1ce; oedema is bright on T2 and FLAIR.
TISSUE_SIGNAL: dict[str, dict[str, float]] = {
    "t1": {"csf": 0.28, "gm": 0.64, "wm": 0.90, "necrotic": 0.30, "enhancing": 0.60, "oedema": 0.55},
    "t1ce": {"csf": 0.30, "gm": 0.66, "wm": 0.90, "necrotic": 0.32, "enhancing": 1.45, "oedema": 0.57},
    "t2": {"csf": 1.00, "gm": 0.58, "wm": 0.40, "necrotic": 0.92, "enhancing": 0.66, "oedema": 0.84},
    "flair": {"csf": 0.10, "gm": 0.62, "wm": 0.46, "necrotic": 0.50, "enhancing": 0.72, "oedema": 0.98},
}
# Sign and gain with which the template's T1 texture (residual to its tissue model) enters each contrast.
TEXTURE_GAIN: dict[str, float] = {"t1": 1.5, "t1ce": 1.5, "t2": -1.5, "flair": -0.8}
OEDEMA_REPLACEMENT = 0.85  # oedema infiltrates tissue: 15 % of the underlying signal remains


@dataclass(frozen=True)
class MniTemplate:
    """MNI152 maps at 1 mm prepared for one output grid.

    `maps` (4, 197, 233, 189) float32: grey matter, white matter, brain mask, T1 intensity, blurred
    to the output resolution; `depth_mm` (1, 99, 117, 95) distance to the brain surface on a 2 mm
    grid; `candidates_mm` (K, 3) white-matter points of the cerebral hemispheres allowed as tumour
    centres, with `candidate_depth_mm`.
    The output grid has `shape` voxels of `voxel_mm` mm and the RAS+ `affine`, same origin as MNI.
    """

    maps: torch.Tensor
    depth_mm: torch.Tensor
    candidates_mm: np.ndarray
    candidate_depth_mm: np.ndarray
    origin_mm: np.ndarray
    voxel_mm: float
    shape: tuple[int, int, int]
    affine: np.ndarray


@dataclass
class PhantomSubject:
    """One generated subject: float32 images per modality, uint8 BraTS 2021 labels, bool brain mask,
    the deformed tissue probability maps (gm, wm, csf; not written to disk) and facts for the json."""

    images: dict[str, np.ndarray]
    label: np.ndarray
    brain: np.ndarray
    tissues: dict[str, np.ndarray]
    facts: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=2)
def load_mni_template(voxel_size_mm: float) -> MniTemplate:
    """Load nilearn's bundled MNI152 maps and prepare them for an isotropic output grid of `voxel_size_mm`."""
    from nilearn import datasets  # imported here: nilearn takes ~2 s to import

    t1_img = datasets.load_mni152_template(resolution=1)
    gm = datasets.load_mni152_gm_template(resolution=1).get_fdata(dtype=np.float32)
    wm = datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32)
    brain = datasets.load_mni152_brain_mask(resolution=1).get_fdata(dtype=np.float32) > 0.5
    t1 = t1_img.get_fdata(dtype=np.float32)
    origin = t1_img.affine[:3, 3].astype(np.float64)

    depth = ndimage.distance_transform_edt(brain[::2, ::2, ::2], sampling=2.0).astype(np.float32)  # 2 mm grid
    candidates, candidate_depth = _tumour_candidates(origin, brain, wm, depth)
    sigma = np.sqrt(max(voxel_size_mm**2 - 1.0, 0.0)) / 2.355  # FWHM of the new voxel, in 1 mm voxels
    maps = np.stack([gm, wm, brain.astype(np.float32), t1])
    if sigma > 0.05:
        maps = np.stack([ndimage.gaussian_filter(m, sigma) for m in maps])
    shape = tuple(int(np.floor((n - 1) / voxel_size_mm)) + 1 for n in brain.shape)
    affine = np.diag([voxel_size_mm, voxel_size_mm, voxel_size_mm, 1.0])
    affine[:3, 3] = origin
    return MniTemplate(
        maps=torch.from_numpy(np.ascontiguousarray(maps)),
        depth_mm=torch.from_numpy(depth)[None],
        candidates_mm=candidates,
        candidate_depth_mm=candidate_depth,
        origin_mm=origin,
        voxel_mm=float(voxel_size_mm),
        shape=shape,  # type: ignore[arg-type]
        affine=affine,
    )


def _tumour_candidates(
    origin: np.ndarray, brain: np.ndarray, wm: np.ndarray, depth: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """White-matter points (probability > 0.7) of the cerebral hemispheres, every 2nd voxel, in mm.

    Excludes the cerebellum and brainstem (below z = 0 mm except the temporal lobes: y > -20 mm,
    |x| > 20 mm, z > -35 mm) and a 6 mm band around the midline.
    """
    idx = np.argwhere((wm[::2, ::2, ::2] > 0.7) & brain[::2, ::2, ::2])
    xyz = idx * 2.0 + origin
    x, y, z = xyz.T
    cerebral = (z > 0) | ((z > -35) & (y > -20) & (np.abs(x) > 20))
    keep = cerebral & (np.abs(x) > 6)
    return xyz[keep], depth[tuple(idx[keep].T)]


def _coarse_field(rng: np.random.Generator, channels: int, shape: tuple[int, ...], spacing_vox: float) -> torch.Tensor:
    """Smooth random field (channels, *shape), unit-ish std: noise on a control grid, trilinearly upsampled.

    `spacing_vox` is the control-point spacing in output voxels; below 1 it is clamped to 1 (voxel-scale noise).
    """
    spacing_vox = max(spacing_vox, 1.0)
    ctrl = tuple(int(np.ceil(n / spacing_vox)) + 2 for n in shape)
    noise = ndimage.gaussian_filter(rng.standard_normal((channels, *ctrl)), (0, 0.7, 0.7, 0.7))
    noise /= max(float(noise.std()), 1e-8)
    up = F.interpolate(torch.from_numpy(noise).float()[None], size=shape, mode="trilinear", align_corners=True)
    return up[0]


def _world_grid(template: MniTemplate) -> torch.Tensor:
    """World coordinates (3, *shape) in mm of every output voxel centre."""
    axes = [torch.arange(n, dtype=torch.float32) * template.voxel_mm for n in template.shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    return grid + torch.from_numpy(template.origin_mm).float().view(3, 1, 1, 1)


def _sample(
    volume: torch.Tensor, points_mm: torch.Tensor, origin_mm: np.ndarray, spacing_mm: float = 1.0
) -> torch.Tensor:
    """Trilinear sample of a template volume (C, X, Y, Z) at world points (3, *shape); zero outside."""
    size = torch.tensor(volume.shape[1:], dtype=torch.float32).view(3, 1, 1, 1)
    index = (points_mm - torch.from_numpy(origin_mm).float().view(3, 1, 1, 1)) / spacing_mm
    normalised = 2.0 * index / (size - 1.0) - 1.0
    grid = normalised.flip(0).permute(1, 2, 3, 0)[None]  # grid_sample wants (z, y, x) order last
    return F.grid_sample(volume[None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]


def euler_rotation(angles_rad: np.ndarray) -> np.ndarray:
    """The 3 x 3 rotation by `angles_rad` about the first, second and third axis, applied in that order."""
    matrix = np.eye(3)
    for axis, angle in enumerate(angles_rad):
        a, b = [i for i in range(3) if i != axis]
        r = np.eye(3)
        r[a, a] = r[b, b] = np.cos(angle)
        r[a, b], r[b, a] = -np.sin(angle), np.sin(angle)
        matrix = matrix @ r
    return matrix


def _anatomy_displacement(rng: np.random.Generator, grid_mm: torch.Tensor, template: MniTemplate) -> torch.Tensor:
    """Subject anatomy as a displacement (3, *shape) in mm: random scale (+-5 %), rotation (+-4 deg)
    about the brain centre, plus a smooth field of ~2.5 mm std on a 30 mm control grid."""
    rot = euler_rotation(np.deg2rad(rng.uniform(-4.0, 4.0, size=3)))
    linear = torch.from_numpy(rot @ np.diag(rng.uniform(0.95, 1.05, size=3)) - np.eye(3)).float()
    centre = torch.tensor([0.0, -18.0, 18.0]).view(3, 1, 1, 1)
    affine_part = torch.einsum("ij,j...->i...", linear, grid_mm - centre)
    smooth = 2.5 * _coarse_field(rng, 3, template.shape, 30.0 / template.voxel_mm)
    return affine_part + smooth


def _draw_tumours(
    rng: np.random.Generator,
    template: MniTemplate,
    anatomy: torch.Tensor,
    max_tumours: int,
    tumour_free_fraction: float,
) -> list[TumourSpec]:
    """Tumour count (none with probability `tumour_free_fraction`, else 1..max_tumours) and specs in subject mm."""
    if max_tumours <= 0 or rng.random() < tumour_free_fraction:
        return []
    n = int(rng.integers(1, max_tumours + 1))
    specs = draw_tumour_specs(rng, n, template.candidates_mm, template.candidate_depth_mm)
    moved = []
    for spec in specs:  # template point c appears in the subject at about c - d(c)
        vox = np.round((np.asarray(spec.centre_mm) - template.origin_mm) / template.voxel_mm).astype(int)
        vox = np.clip(vox, 0, np.asarray(template.shape) - 1)
        centre = np.asarray(spec.centre_mm) - anatomy[(slice(None), *vox)].numpy()
        moved.append(replace(spec, centre_mm=tuple(float(c) for c in centre)))
    return moved


def generate_phantom_subject(
    template: MniTemplate, rng: np.random.Generator, *, max_tumours: int = 2, tumour_free_fraction: float = 0.2
) -> PhantomSubject:
    """Generate one subject on `template`'s grid; every random draw comes from `rng`."""
    grid = _world_grid(template)
    anatomy = _anatomy_displacement(rng, grid, template)
    specs = _draw_tumours(rng, template, anatomy, max_tumours, tumour_free_fraction)
    depth = _sample(template.depth_mm, grid + anatomy, template.origin_mm, spacing_mm=2.0)[0]
    attenuation = torch.clamp(depth / 15.0, 0.0, 1.0).numpy()
    push = torch.from_numpy(mass_effect_displacement(grid.numpy(), specs, attenuation)).float()
    gm, wm, mask, t1 = _sample(template.maps, grid - push + anatomy, template.origin_mm).numpy()
    brain = mask > 0.5
    csf = np.clip(mask - gm - wm, 0.0, 1.0)

    v = template.voxel_mm
    compartments = [
        tumour_compartments(rng, s, (np.asarray(s.centre_mm) - template.origin_mm) / v, v, brain, wm, csf)
        for s in specs
    ]
    label = merge_labels(compartments, template.shape)
    tissues = {"gm": gm, "wm": wm, "csf": csf}
    images = _contrasts(rng, template, tissues, t1, label, brain)
    facts = _facts(template, specs, compartments, label, tissues, brain)
    return PhantomSubject(images=images, label=label, brain=brain, tissues=tissues, facts=facts)


def _contrasts(
    rng: np.random.Generator,
    template: MniTemplate,
    tissues: dict[str, np.ndarray],
    t1_template: np.ndarray,
    label: np.ndarray,
    brain: np.ndarray,
) -> dict[str, np.ndarray]:
    """Mix the four contrasts from tissue and tumour fractions; add texture, bias field, Rician noise."""
    v = template.voxel_mm
    gm, wm, csf = tissues["gm"], tissues["wm"], tissues["csf"]
    texture = t1_template - (0.66 * gm + 0.88 * wm + 0.28 * csf)  # template detail its tissue maps miss
    fine = _coarse_field(rng, 1, template.shape, 2.0 / v)[0].numpy()
    tumour_texture = _coarse_field(rng, 1, template.shape, 3.0 / v)[0].numpy()
    fractions = _tumour_fractions(label)
    remaining = np.clip(1.0 - sum(fractions.values()), 0.0, 1.0)
    images = {}
    for modality in MODALITIES:
        signal = TISSUE_SIGNAL[modality]
        tissue = gm * signal["gm"] + wm * signal["wm"] + csf * signal["csf"] + TEXTURE_GAIN[modality] * texture
        tumour = sum(fractions[k] * signal[k] for k in ("necrotic", "enhancing", "oedema"))
        image = (remaining * tissue + tumour * (1.0 + 0.12 * tumour_texture)) * (1.0 + 0.03 * fine)
        bias = np.exp(0.12 * _coarse_field(rng, 1, template.shape, 80.0 / v)[0].numpy())
        sigma = rng.uniform(0.012, 0.03) * max(signal.values())
        noisy = np.hypot(image * bias + sigma * rng.standard_normal(image.shape, dtype=np.float32),
                         sigma * rng.standard_normal(image.shape, dtype=np.float32))
        scale = rng.uniform(600.0, 1400.0)  # arbitrary scanner units, different per scan
        images[modality] = np.where(brain, noisy * scale, 0.0).astype(np.float32)
    return images


def _tumour_fractions(label: np.ndarray) -> dict[str, np.ndarray]:
    """Soft (partial-volume) fraction of each tumour compartment: its mask blurred by 0.5 voxel.

    Oedema is scaled by OEDEMA_REPLACEMENT since it infiltrates rather than replaces tissue. Only the
    tumours' bounding box (plus 3 voxels) is filtered.
    """
    fractions = {name: np.zeros(label.shape, dtype=np.float32) for name in ("necrotic", "enhancing", "oedema")}
    if not label.any():
        return fractions
    found = np.argwhere(label > 0)
    box = tuple(slice(max(a - 3, 0), b + 4) for a, b in zip(found.min(0), found.max(0), strict=True))
    for name, value in (("necrotic", NECROTIC), ("enhancing", ENHANCING), ("oedema", OEDEMA)):
        fractions[name][box] = ndimage.gaussian_filter((label[box] == value).astype(np.float32), 0.5)
    fractions["oedema"] *= OEDEMA_REPLACEMENT
    return fractions


def _facts(
    template: MniTemplate,
    specs: list[TumourSpec],
    compartments: list[dict[str, np.ndarray]],
    label: np.ndarray,
    tissues: dict[str, np.ndarray],
    brain: np.ndarray,
) -> dict[str, Any]:
    """Per-subject facts for phantom.json: tumours (centre, radii, volumes in ml) and tissue volumes."""
    ml = template.voxel_mm**3 / 1000.0
    tumours = []
    for spec, comp in zip(specs, compartments, strict=True):
        centre_vox = (np.asarray(spec.centre_mm) - template.origin_mm) / template.voxel_mm
        tumours.append({
            "centre_mm": [round(c, 2) for c in spec.centre_mm],
            "centre_voxel": [round(float(c), 2) for c in centre_vox],
            "radii_mm": {"necrotic": round(spec.necrotic_radius_mm, 2), "core": round(spec.core_radius_mm, 2),
                         "oedema": round(spec.oedema_radius_mm, 2), "rim": round(spec.rim_mm, 2)},
            "mass_effect_mm": round(spec.mass_effect_mm, 2),
            "volumes_ml": {"necrotic": float(comp["necrotic"].sum() * ml),
                           "enhancing": float((comp["core"] & ~comp["necrotic"]).sum() * ml),
                           "oedema": float((comp["oedema"] & ~comp["core"]).sum() * ml),
                           "whole": float((comp["oedema"] | comp["core"]).sum() * ml)},
        })
    return {
        "n_tumours": len(specs),
        "tumours": tumours,
        "label_volumes_ml": {str(k): float((label == k).sum() * ml) for k in (NECROTIC, OEDEMA, ENHANCING)},
        "tissue_volumes_ml": {k: float(p[brain].sum() * ml) for k, p in tissues.items()},
        "brain_volume_ml": float(brain.sum() * ml),
    }
