"""One vessel-phantom subject: its arterial tree drawn in the MNI head and rendered as a TOF-MRA slab."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.data.vessels.anatomy import head_mask, head_tissues
from benchmark.data.vessels.rasterise import rasterise_tree
from benchmark.data.vessels.tof import render_tof
from benchmark.data.vessels.tree import VesselTree, cerebral_arterial_tree

if TYPE_CHECKING:
    from benchmark.data.vessels.sources import VesselPhantom


@dataclass
class RenderedSubject:
    """A rendered subject on one RAS+ grid: TOF (X, Y, Z) float32 (fresh blood ~1), vessel and head masks
    (bool), the voxel-to-world affine (mm) and facts for the dataset's json."""

    tof: np.ndarray
    vessels: np.ndarray
    head: np.ndarray
    affine: np.ndarray
    facts: dict[str, Any] = field(default_factory=dict)
    tree: VesselTree | None = None


def subject_rng(seed: int, index: int) -> np.random.Generator:
    """Subject `index`'s own random stream (independent of the order subjects are made in)."""
    return np.random.default_rng([int(seed), 23, int(index)])


def _inside_brain() -> Any:
    """A point test for the MNI brain mask (1 mm grid), bounding the side branches."""
    from benchmark.data.phantom import load_mni_template

    template = load_mni_template(1.0)
    brain = template.maps[2].numpy() > 0.5
    origin = template.origin_mm

    def inside(point: np.ndarray) -> bool:
        index = np.round(point - origin).astype(int)
        return bool(np.all(index >= 0) and np.all(index < brain.shape) and brain[tuple(index)])

    return inside


@lru_cache(maxsize=1)
def _slab_tissues(shape: tuple[int, int, int], affine: tuple[float, ...]) -> dict[str, np.ndarray]:
    """The head's tissue maps on the phantom's slab, shared by its subjects (sampled once per process)."""
    return head_tissues(shape, np.array(affine).reshape(4, 4), np.zeros(3))


def render_phantom_subject(settings: VesselPhantom, index: int) -> RenderedSubject:
    """Subject `index` of the phantom `settings`: the same seed and index give the same subject."""
    rng = subject_rng(settings.seed, index)
    tree = cerebral_arterial_tree(rng, _inside_brain(), min_radius_mm=float(settings.min_radius_mm),
                                  max_segments=int(settings.max_segments))
    shape, affine = settings.grid()
    maps = rasterise_tree(tree, shape, affine)
    tissues = _slab_tissues(shape, tuple(affine.ravel().tolist()))
    spacing = tuple(float(v) for v in settings.voxel_mm)
    tof = render_tof(maps.fraction, spacing, tissues, rng, radius_mm=maps.radius_mm)
    vessels = maps.mask
    facts = {"segments": len(tree), "vessel_voxels": int(vessels.sum()),
             "radius_mm": [round(float(tree.radii.min()), 3), round(float(tree.radii.max()), 3)],
             "trunks": sorted({name.split("/")[0] for name in tree.names})}
    return RenderedSubject(tof, vessels, head_mask(tissues) | vessels, affine, facts, tree)
