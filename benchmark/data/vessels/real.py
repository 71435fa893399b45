"""Real vessel masks rendered as TOF-MRA: the mask's grid gets the MNI head's tissue, placed by the vessels'
extent, and the same renderer as the phantom. A study that looks at a field of view around the head's centre
gets only that column rendered (`extent_mm`): a whole-brain mask costs a fraction of its full render."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.data.vessels.anatomy import CIRCLE_OF_WILLIS_MNI, coarse_grid, head_mask, head_tissues
from benchmark.data.vessels.masks import read_vessel_mask
from benchmark.data.vessels.phantom import RenderedSubject
from benchmark.data.vessels.tof import TofParameters, inflow_path_mm, render_tof

ROI_EXTENT_MM = 70.0  # masks whose vessels span less than this in-plane are Circle-of-Willis crops
TREE_CENTRE_MNI = np.array([0.0, -15.0])  # in-plane centre of a whole-brain arterial tree (x, y)
INFLOW_Z_MNI = -50.0  # where the arteries of a whole-brain slab enter it (skull base), MNI z


def vessel_extent_mm(vessels: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World (RAS mm) low and high corners of the vessels' bounding box."""
    index = np.argwhere(vessels)
    corners = np.stack([index.min(axis=0), index.max(axis=0)])
    world = corners @ affine[:3, :3].T + affine[:3, 3]
    return world.min(axis=0), world.max(axis=0)


def mni_offset(vessels: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The translation (mm) that puts the mask's vessels where they sit in the MNI head: a Circle-of-Willis
    crop centred on the Circle of Willis, a larger tree centred in-plane with its lowest vessel at the
    skull base. Heads are not scaled (adult heads differ by ~10 %)."""
    low, high = vessel_extent_mm(vessels, affine)
    centre = (low + high) / 2
    if np.max(high[:2] - low[:2]) < ROI_EXTENT_MM:
        return CIRCLE_OF_WILLIS_MNI - centre
    return np.array([TREE_CENTRE_MNI[0] - centre[0], TREE_CENTRE_MNI[1] - centre[1], INFLOW_Z_MNI - low[2]])


def head_column(head_coarse: np.ndarray, coarse_affine: np.ndarray, affine: np.ndarray, shape: tuple[int, ...],
                extent_mm: float | None) -> tuple[slice, slice, slice]:
    """Index ranges of the (X, Y) square of side `extent_mm` around the centre of the head's in-plane bounding
    box, every Z: the column a study cropping `extent_mm` around the head's centre looks at (clipped to the
    grid; the whole grid for None). `head_coarse` is the head on the coarse grid `coarse_affine`."""
    full = (slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2]))
    if extent_mm is None or not head_coarse.any():
        return full
    present = np.argwhere(head_coarse.any(axis=2))
    corners = np.stack([present.min(axis=0) - 0.5, present.max(axis=0) + 0.5])  # coarse voxel edges (X, Y)
    spacing = np.linalg.norm(np.asarray(affine, np.float64)[:3, :3], axis=0)
    factor = np.linalg.norm(np.asarray(coarse_affine, np.float64)[:3, :3], axis=0) / spacing
    centre = ((corners.mean(axis=0) + 0.5) * factor[:2]) - 0.5  # fine voxel index of the box centre
    half = extent_mm / 2 / spacing[:2]
    low = np.clip(np.floor(centre - half), 0, np.array(shape[:2])).astype(int)
    high = np.clip(np.ceil(centre + half) + 1, 0, np.array(shape[:2])).astype(int)
    return slice(int(low[0]), int(high[0])), slice(int(low[1]), int(high[1])), full[2]


def render_mask_file(path: Path, label_map: dict[int, int] | None, rng: np.random.Generator,
                     params: TofParameters | None = None, extent_mm: float | None = None) -> RenderedSubject:
    """Read a vessel mask (see `masks.read_vessel_mask` for what is refused) and render it as TOF-MRA on its
    own grid, inflow from its inferior face. With `extent_mm` only the in-plane square of that side around
    the head's centre is rendered (every slice; the inflow path is still traced through the whole mask), and
    the subject's grid is that column (its affine shifted to it)."""
    volume = read_vessel_mask(path, label_map)
    vessels = volume.data
    spacing = volume.spacing
    offset = mni_offset(vessels, volume.affine)
    coarse_shape, coarse_affine = coarse_grid(vessels.shape, volume.affine)
    tissues = head_tissues(coarse_shape, coarse_affine, offset)
    box = head_column(head_mask(tissues), coarse_affine, volume.affine, vessels.shape, extent_mm)
    affine = np.array(volume.affine, np.float64)
    path_mm = None
    if tuple(b.stop - b.start for b in box) != vessels.shape:
        path_mm = inflow_path_mm(vessels, spacing)[box]
        affine[:3, 3] += affine[:3, :3] @ np.array([b.start for b in box], np.float64)
        vessels = vessels[box]
        tissues = head_tissues(*coarse_grid(vessels.shape, affine), offset)
    tof = render_tof(vessels.astype(np.float32), spacing, tissues, rng, path_mm=path_mm, params=params)
    facts = {"source": str(path), "shape": list(volume.data.shape), "spacing_mm": [round(s, 4) for s in spacing],
             "vessel_voxels": int(volume.data.sum()), "mni_offset_mm": [round(float(v), 1) for v in offset],
             "rendered_box": [[b.start, b.stop] for b in box], "rendered_vessel_voxels": int(vessels.sum())}
    return RenderedSubject(tof, vessels, head_mask(tissues, vessels.shape) | vessels, affine, facts)
