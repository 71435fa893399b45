"""A vessel tree on a voxel grid: the share of each voxel filled by blood (partial volume), the local
vessel radius and the blood's path length from the inflow, which the TOF renderer needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.data.vessels.tree import VesselTree


@dataclass
class VesselMaps:
    """Per-voxel maps on one grid (X, Y, Z), float32.

    `fraction` share of the voxel inside a vessel, 0-1 (partial volume at the wall); `radius_mm` the
    radius of the vessel covering the voxel (0 outside); `path_mm` the blood's arc length from the
    tree's inflow to the voxel (0 outside).
    """

    fraction: np.ndarray
    radius_mm: np.ndarray
    path_mm: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """The binary vessel mask: voxels at least half filled by blood."""
        return self.fraction >= 0.5


def _voxel_box(points_mm: np.ndarray, margin_mm: float, inverse: np.ndarray, spacing: np.ndarray,
               shape: tuple[int, ...]) -> tuple[slice, ...] | None:
    """Voxel index box covering `points_mm` grown by `margin_mm`, clipped to the grid (None when outside)."""
    voxels = points_mm @ inverse[:3, :3].T + inverse[:3, 3]
    grow = margin_mm / spacing + 1
    lo = np.maximum(np.floor(voxels.min(axis=0) - grow).astype(int), 0)
    hi = np.minimum(np.ceil(voxels.max(axis=0) + grow).astype(int) + 1, shape)
    if np.any(hi <= lo):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def rasterise_tree(tree: VesselTree, shape: tuple[int, int, int], affine: np.ndarray) -> VesselMaps:
    """Draw every segment (a truncated cone) on the grid of `shape` voxels and voxel-to-world `affine` (mm).

    Partial volume: a voxel at distance d from the axis of a vessel of radius r holds
    clip(0.5 + (r - d) / w, 0, 1) blood, w the voxel's mean edge (the box average of a flat wall);
    overlapping segments take the larger share. Radius and path come from the segment with the largest share.
    """
    affine = np.asarray(affine, dtype=np.float64)
    inverse = np.linalg.inv(affine)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    width = float(np.mean(spacing))
    fraction = np.zeros(shape, np.float32)
    radius = np.zeros(shape, np.float32)
    path = np.zeros(shape, np.float32)
    for start, end, (r0, r1), path0 in zip(tree.starts, tree.ends, tree.radii, tree.path_mm, strict=True):
        box = _voxel_box(np.stack([start, end]), max(r0, r1) + width, inverse, spacing, shape)
        if box is None:
            continue
        index = np.stack(np.meshgrid(*[np.arange(s.start, s.stop) for s in box], indexing="ij"), axis=-1)
        world = index @ affine[:3, :3].T + affine[:3, 3]
        axis = end - start
        length_sq = max(float(axis @ axis), 1e-12)
        t = np.clip(((world - start) @ axis) / length_sq, 0.0, 1.0)
        nearest = start + t[..., None] * axis
        distance = np.linalg.norm(world - nearest, axis=-1)
        local_radius = r0 + (r1 - r0) * t
        share = np.clip(0.5 + (local_radius - distance) / width, 0.0, 1.0).astype(np.float32)
        better = share > fraction[box]
        fraction[box] = np.where(better, share, fraction[box])
        radius[box] = np.where(better, local_radius, radius[box])
        path[box] = np.where(better, path0 + t * np.sqrt(length_sq), path[box])
    return VesselMaps(fraction, radius, path)
