"""Real vessel masks rendered as TOF-MRA: the mask's grid gets the MNI head's tissue, placed by the vessels'
extent, and the same renderer as the phantom."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.data.vessels.anatomy import CIRCLE_OF_WILLIS_MNI, head_mask, head_tissues
from benchmark.data.vessels.masks import read_vessel_mask
from benchmark.data.vessels.phantom import RenderedSubject
from benchmark.data.vessels.tof import TofParameters, render_tof

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


def render_mask_file(path: Path, label_map: dict[int, int] | None, rng: np.random.Generator,
                     params: TofParameters | None = None) -> RenderedSubject:
    """Read a vessel mask (see `masks.read_vessel_mask` for what is refused) and render it as TOF-MRA on its
    own grid, inflow from its inferior face."""
    volume = read_vessel_mask(path, label_map)
    vessels = volume.data
    spacing = volume.spacing
    offset = mni_offset(vessels, volume.affine)
    tissues = head_tissues(vessels.shape, volume.affine, offset)
    tof = render_tof(vessels.astype(np.float32), spacing, tissues, rng, params=params)
    facts = {"source": str(path), "shape": list(vessels.shape), "spacing_mm": [round(s, 4) for s in spacing],
             "vessel_voxels": int(vessels.sum()), "mni_offset_mm": [round(float(v), 1) for v in offset]}
    return RenderedSubject(tof, vessels, head_mask(tissues) | vessels, volume.affine, facts)
