"""The synthetic arterial tree and its rasterisation: connected, radii in range, seed-determined, and a
partial-volume share that matches a supersampled reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from benchmark.data.vessels.rasterise import rasterise_tree
from benchmark.data.vessels.tree import TRUNKS, VesselTree, cerebral_arterial_tree


def _grid(spacing: float, low: tuple[float, ...], high: tuple[float, ...]) -> tuple[tuple[int, ...], np.ndarray]:
    shape = tuple(round((h - lo) / spacing) for lo, h in zip(low, high, strict=True))
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = np.array(low) + spacing / 2
    return shape, affine


@pytest.fixture(scope="module")
def tree() -> VesselTree:
    return cerebral_arterial_tree(np.random.default_rng(7), max_segments=600)


def test_same_seed_same_tree_other_seed_other_tree(tree: VesselTree) -> None:
    again = cerebral_arterial_tree(np.random.default_rng(7), max_segments=600)
    other = cerebral_arterial_tree(np.random.default_rng(8), max_segments=600)
    assert np.array_equal(tree.starts, again.starts) and np.array_equal(tree.radii, again.radii)
    assert len(other) != len(tree) or not np.allclose(other.starts, tree.starts)


def test_radii_span_trunks_to_sub_millimetre_branches(tree: VesselTree) -> None:
    assert tree.radii.max() > 1.6  # internal carotids, ~2 mm
    assert tree.radii.max() < 3.0
    assert tree.radii.min() >= 0.1
    assert (tree.radii[:, 1] < 0.5).sum() > 20  # many sub-millimetre-diameter branches
    branch = np.array(["/b" in name for name in tree.names])
    assert branch.any() and tree.radii[branch].max() < tree.radii[~branch].max()


def test_every_segment_continues_from_its_parent(tree: VesselTree) -> None:
    """Topologically connected: each non-root segment starts where its parent ends (side branches) or at
    a point of its parent trunk; the only roots are the four inflow arteries."""
    roots = [tree.names[i] for i in np.flatnonzero(tree.parents < 0)]
    assert sorted(roots) == ["L-ICA", "L-VA", "R-ICA", "R-VA"]
    for index in np.flatnonzero(tree.parents >= 0):
        parent = tree.parents[index]
        assert parent < index
        assert np.linalg.norm(tree.starts[index] - tree.ends[parent]) < 1e-9


def test_rasterised_tree_is_one_component_at_study_resolution(tree: VesselTree) -> None:
    """At the phantom's 0.5 x 0.5 x 0.8 mm the whole vessel mask, branches to 0.15 mm radius included, is one
    26-connected tree (the Circle of Willis joins the carotid and vertebro-basilar inflows)."""
    affine = np.diag([0.5, 0.5, 0.8, 1.0])
    affine[:3, 3] = [-70.0, -90.0, -62.0]
    mask = rasterise_tree(tree, (280, 260, 100), affine).mask
    labels, count = ndimage.label(mask, np.ones((3, 3, 3)))
    assert count == 1, f"{count} components, sizes {sorted(np.bincount(labels.ravel())[1:])[-5:]}"


@pytest.mark.parametrize("offset_mm", [0.0, 0.1, 0.25])
def test_thin_vessel_is_a_connected_line_wherever_it_falls(offset_mm: float) -> None:
    """A 0.15 mm radius vessel holds under half of any 0.5 mm voxel, yet its mask is an unbroken line."""
    tree = VesselTree(np.array([[-4.0, offset_mm, 0.0]]), np.array([[4.0, offset_mm + 1.3, 0.7]]),
                      np.array([[0.15, 0.15]]), np.array([-1]), ["thin"], np.array([0.0]))
    shape, affine = _grid(0.5, (-5, -3, -3), (5, 3, 3))
    maps = rasterise_tree(tree, shape, affine)
    assert maps.fraction.max() < 0.5
    _, count = ndimage.label(maps.mask, np.ones((3, 3, 3)))
    assert count == 1 and maps.mask.sum() >= 16


def test_subtree_is_everything_downstream(tree: VesselTree) -> None:
    first_mca = tree.names.index("R-MCA")
    downstream = tree.subtree(first_mca)
    names = {tree.names[i].split("/")[0] for i in downstream}
    assert {"R-MCA", "R-MCA-sup", "R-MCA-inf"} <= names
    assert not names & {"L-MCA", "R-A2", "BA"}
    children = tree.children()
    assert all(child in downstream for node in downstream for child in children[node])


def test_trunk_table_parents_exist() -> None:
    assert all(parent is None or parent in TRUNKS for parent, _, _ in TRUNKS.values())


def test_partial_volume_matches_supersampled_cylinder() -> None:
    """A straight vessel of radius 0.6 mm across 0.5 mm voxels: the blood share per voxel equals the
    fraction of 8^3 sub-samples inside the cylinder to within 0.2 per voxel, and the total blood volume
    to within 3 %."""
    tree = VesselTree(np.array([[-10.0, 0.1, 0.23]]), np.array([[10.0, 0.1, 0.23]]), np.array([[0.6, 0.6]]),
                      np.array([-1]), ["test"], np.array([0.0]))
    shape, affine = _grid(0.5, (-5, -3, -3), (5, 3, 3))
    share = rasterise_tree(tree, shape, affine).fraction
    sub = (np.arange(8) + 0.5) / 8 - 0.5
    centres = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1) * 0.5 + affine[:3, 3]
    y = centres[..., 1, None, None] + 0.5 * sub[:, None]
    z = centres[..., 2, None, None] + 0.5 * sub[None, :]
    reference = (((y - 0.1) ** 2 + (z - 0.23) ** 2) <= 0.36).mean(axis=(-1, -2))
    assert np.abs(share - reference).max() < 0.2
    assert abs(share.sum() / reference.sum() - 1) < 0.03


def test_tree_json_round_trip(tree: VesselTree) -> None:
    import json

    back = VesselTree.from_json(json.loads(json.dumps(tree.to_json())))
    for name in ("starts", "ends", "radii", "parents", "path_mm"):
        assert np.array_equal(getattr(back, name), getattr(tree, name))
    assert back.names == tree.names
