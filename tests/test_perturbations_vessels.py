"""Vessel edits on hand-made arterial trees: locality, label modes, each edit does what it says, occlusion removes
exactly the distal subtree, no bright residue where a vessel left, and the other families apply to TOF images."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from scipy.ndimage import distance_transform_edt
from scipy.ndimage import label as connected_components

from perturbations import instantiate_perturbations
from perturbations.vessels.edits import (
    SmallVesselDropout,
    VesselAneurysm,
    VesselCalibre,
    VesselOcclusion,
    VesselStenosis,
    VesselTortuosity,
    cut_and_beyond,
)
from perturbations.vessels.tree import vessel_tree
from tests.vessel_trees import CONF, vessel_imageset, y_tree

EDITS = {
    "occlusion": VesselOcclusion, "stenosis": VesselStenosis, "aneurysm": VesselAneurysm,
    "dropout": SmallVesselDropout, "tortuosity": VesselTortuosity, "calibre": VesselCalibre,
}


def named(edit, name):
    edit.name = name
    return edit


@pytest.fixture(scope="module", params=[3, 2], ids=["3d", "2d"])
def trees(request):
    return vessel_imageset(n=2, size=48 if request.param == 3 else 64, spatial_dims=request.param)


def components(mask):
    return connected_components(mask, structure=np.ones((3,) * mask.ndim))[1]


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_edit_is_local_and_label_modes_differ_only_in_the_label(kind, trees):
    follow = named(EDITS[kind](label="follow"), kind)
    keep = named(EDITS[kind](label="keep"), f"{kind}_keep")
    for severity in (1, 5):
        out_follow, out_keep = follow.apply(trees, severity, seed=0), keep.apply(trees, severity, seed=0)
        assert out_follow.skipped == []
        assert torch.equal(out_follow.data.images, out_keep.data.images)
        assert torch.equal(out_keep.data.labels, trees.labels)
        for i in range(len(trees)):
            before, after = trees.labels[i, 0].numpy() > 0, out_follow.data.labels[i, 0].numpy() > 0
            changed = (out_follow.data.images[i] != trees.images[i]).any(0).numpy()
            assert (before != after).any(), (kind, severity, i)
            allowed = distance_transform_edt(~(before ^ after)) <= follow.margin
            assert changed.any() and not (changed & ~allowed).any(), (kind, severity, i)


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_edit_is_seeded_per_item_and_skips_items_without_vessels(kind):
    data = vessel_imageset(n=3, size=40, spatial_dims=3)
    data.labels[1] = 0
    edit = named(EDITS[kind](), kind)
    whole = edit.apply(data, 4, seed=7)
    assert whole.skipped == [1] and torch.equal(whole.data.images[1], data.images[1])
    alone = edit.apply(data.subset([2]), 4, seed=7)
    assert torch.equal(alone.data.images[0], whole.data.images[2])
    assert not torch.equal(edit.apply(data, 4, seed=8).data.images[0], whole.data.images[0])


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_change_grows_with_severity(kind):
    data = vessel_imageset(n=1, size=40, spatial_dims=3)
    edit = named(EDITS[kind](), kind)
    errors = [float(((edit.apply(data, s, seed=0).data.images - data.images) ** 2).mean()) for s in range(6)]
    assert errors[0] == 0 and errors[1] > 0 and errors[5] > errors[1], errors
    assert all(b >= a * 0.9 for a, b in itertools.pairwise(errors)), errors  # no real step back


def test_occlusion_removes_exactly_the_distal_subtree():
    label, parts = y_tree(48, 3)
    tree = vessel_tree(label > 0, (0.5,) * 3)
    narrow_axis = np.argwhere(parts["narrow"])
    fork = np.array([24, 24, 24])
    # the centreline voxel of the narrow branch halfway along it
    on_narrow = np.flatnonzero(parts["narrow"][tuple(tree.nodes.T)] & ~parts["wide"][tuple(tree.nodes.T)]
                               & ~parts["trunk"][tuple(tree.nodes.T)])
    reach = np.linalg.norm(tree.nodes[on_narrow] - fork, axis=1)
    node = on_narrow[np.argmin(np.abs(reach - np.linalg.norm(narrow_axis - fork, axis=1).max() / 2))]
    removed = tree.territory(cut_and_beyond(tree, node))
    depth = np.linalg.norm(np.argwhere(label > 0) - fork, axis=1)
    cut_depth = np.linalg.norm(tree.nodes[node] - fork)
    voxels = np.argwhere(label > 0)
    beyond = parts["narrow"][tuple(voxels.T)] & (depth > cut_depth + 3)
    before = parts["narrow"][tuple(voxels.T)] & (depth < cut_depth - 3)
    gone = removed[tuple(voxels.T)]
    assert gone[beyond].all()  # everything distal to the cut
    assert not gone[before].any()  # nothing proximal on the same branch
    others = (parts["trunk"] | parts["wide"] | parts["twig"]) & ~parts["narrow"]
    assert not (removed & others).any()  # no other branch
    remaining = (label > 0) & ~removed
    assert components(remaining) == 1


def test_occlusion_leaves_tissue_without_bright_residue():
    data = vessel_imageset(n=1, size=48, spatial_dims=3)
    out = named(VesselOcclusion(share=0.4), "occlusion").apply(data, 5, seed=0)
    old, new = data.labels[0, 0].numpy() > 0, out.data.labels[0, 0].numpy() > 0
    image = out.data.images[0, 0].numpy()
    clean = data.images[0, 0].numpy()
    gone = old & ~new & (distance_transform_edt(~new) > 3)
    tissue = distance_transform_edt(~old) > 3
    assert gone.sum() > 200
    mean, std = clean[tissue].mean(), clean[tissue].std()
    assert abs(image[gone].mean() - mean) < 0.3 * std  # tissue brightness, not blood (blood is ~18 std above)
    assert 0.7 < image[gone].std() / std < 1.4  # tissue's noise: neither flat nor noisier
    assert np.percentile(image[gone], 99.5) < mean + 4 * std


def test_stenosis_narrows_without_cutting_the_vessel():
    data = vessel_imageset(n=1, size=48, spatial_dims=3)
    old = data.labels[0, 0].numpy() > 0
    removed = []
    for severity in (1, 3, 5):
        new = named(VesselStenosis(count=1), "s").apply(data, severity, seed=0).data.labels[0, 0].numpy() > 0
        assert not (new & ~old).any() and components(new) == 1
        removed.append(int((old & ~new).sum()))
    assert 0 < removed[0] < removed[1] < removed[2]


def test_aneurysm_adds_a_sac_of_the_scheduled_size_at_the_fork():
    data = vessel_imageset(n=1, size=48, spatial_dims=3)
    old = data.labels[0, 0].numpy() > 0
    new = named(VesselAneurysm(diameter_mm=(2.0, 6.0), neck=0.6), "a").apply(data, 5, seed=0).data.labels[0, 0]
    added = new.numpy().astype(bool) & ~old
    sphere = 4 / 3 * np.pi * (3.0 / 0.5) ** 3  # voxels of a 6 mm sac at 0.5 mm
    assert not (old & ~new.numpy().astype(bool)).any()
    assert 0.5 * sphere < added.sum() < 1.2 * sphere  # part of the sac overlaps the vessels it sits on
    forks = np.array([[24, 24, 24], [24, 33, 17]])  # trunk -> wide + narrow, wide -> twig
    assert np.linalg.norm(np.argwhere(added).mean(0) - forks, axis=1).min() < 10  # at a bifurcation


def test_dropout_removes_the_thin_branches_first_and_keeps_the_trunk():
    data = vessel_imageset(n=1, size=48, spatial_dims=3)
    _, parts = y_tree(48, 3)
    edit = named(SmallVesselDropout(radius_mm=(0.6, 1.4)), "d")
    low = edit.apply(data, 1, seed=0).data.labels[0, 0].numpy() > 0
    high = edit.apply(data, 5, seed=0).data.labels[0, 0].numpy() > 0
    twig = parts["twig"] & ~parts["wide"]
    assert low[twig].mean() < 0.2 and low[parts["wide"]].mean() > 0.9  # radius 1 voxel (0.5 mm) goes first
    assert high[parts["narrow"] & ~parts["trunk"]].mean() < 0.2 and high[parts["trunk"]].mean() > 0.8


def test_calibre_scales_one_branch():
    data = vessel_imageset(n=1, size=48, spatial_dims=3)
    old = data.labels[0, 0].numpy() > 0
    thin = named(VesselCalibre(factor=0.5), "c").apply(data, 5, seed=0).data.labels[0, 0].numpy() > 0
    wide = named(VesselCalibre(factor=1.5), "c").apply(data, 5, seed=0).data.labels[0, 0].numpy() > 0
    assert thin.sum() < 0.95 * old.sum() and wide.sum() > 1.05 * old.sum()


def test_tortuosity_moves_a_segment_and_keeps_it_whole():
    data = vessel_imageset(n=1, size=48, spatial_dims=3)
    old = data.labels[0, 0].numpy() > 0
    new = named(VesselTortuosity(), "t").apply(data, 5, seed=0).data.labels[0, 0].numpy() > 0
    assert (new & ~old).sum() > 50 and (old & ~new).sum() > 50
    assert 0.7 < new.sum() / old.sum() < 1.3


def test_bad_parameters_are_config_errors():
    from benchmark.errors import ConfigError

    for build in (lambda: VesselOcclusion(share=(0.1, 1.5)), lambda: VesselStenosis(narrowing=(-0.1, 0.5)),
                  lambda: VesselAneurysm(label="both"), lambda: VesselStenosis(count=0)):
        with pytest.raises(ConfigError):
            build()


def test_yaml_files_build_and_other_families_apply_to_tof_images():
    names = ["vessel_occlusion", "vessel_stenosis_keep", "vessel_aneurysm", "vessel_dropout", "vessel_tortuosity",
             "vessel_calibre_keep", "gaussian_noise", "rician_noise", "ghosting", "bias_field", "gamma_high",
             "intensity_shift", "memorisation_copies"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"perturbation=[{','.join(names)}]"])
    built = instantiate_perturbations(cfg.perturbation)
    data = vessel_imageset(n=2, size=32, spatial_dims=3)
    for name, perturbation in built.items():
        out = perturbation.apply(data, 3, seed=0, train=data)
        assert out.data.images.shape == data.images.shape and torch.isfinite(out.data.images).all(), name
        assert not torch.equal(out.data.images, data.images) or name.startswith("memorisation"), name
    assert built["vessel_stenosis_keep"].label == "keep" and built["vessel_occlusion"].label == "follow"
