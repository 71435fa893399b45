"""Tumour edits: locality, both label modes, lesion-free items skipped, and that each edit does what it says."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.ndimage import distance_transform_edt
from scipy.ndimage import label as connected_components

from perturbations.morphology import TumourDeform, TumourMove, TumourRemove, TumourResize, TumourTextureSwap
from perturbations.synthetic import synthetic_imageset

EDITS = {
    "remove": lambda label: TumourRemove(label=label),
    "shrink": lambda label: TumourResize(scale=(0.85, 0.4), label=label),
    "grow": lambda label: TumourResize(scale=(1.15, 1.6), label=label),
    "move": lambda label: TumourMove(label=label),
    "deform": lambda label: TumourDeform(label=label),
    "texture": lambda label: TumourTextureSwap(label=label),
}


def named(edit, name: str):
    edit.name = name
    return edit


@pytest.fixture(scope="module", params=[2, 3], ids=["2d", "3d"])
def clean(request):
    if request.param == 2:
        return synthetic_imageset(n=6, size=48, seed=5, tumour_free=(2,))
    return synthetic_imageset(n=2, size=24, spatial_dims=3, seed=5)


def near(region: np.ndarray, margin: float) -> np.ndarray:
    """Voxels within `margin` (Euclidean) of a region."""
    return distance_transform_edt(~region) <= margin if region.any() else region


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_edit_is_local_and_label_modes_differ_only_in_the_label(kind, clean):
    follow = named(EDITS[kind]("follow"), kind)
    keep = named(EDITS[kind]("keep"), f"{kind}_keep")  # other name, same random stream
    for severity in (1, 3, 5):
        out_follow = follow.apply(clean, severity, seed=0)
        out_keep = keep.apply(clean, severity, seed=0)
        assert torch.equal(out_follow.data.images, out_keep.data.images)  # the mode changes the label only
        assert torch.equal(out_keep.data.labels, clean.labels)
        for i in range(len(clean)):
            before = clean.labels[i, 0].numpy() > 0
            after = out_follow.data.labels[i, 0].numpy() > 0
            changed = (out_follow.data.images[i] != clean.images[i]).any(0).numpy()
            allowed = near(before | after, follow.margin)
            assert not (changed & ~allowed).any(), (kind, severity, i)
            if before.any():
                assert changed.any(), (kind, severity, i)


@pytest.mark.parametrize("kind", sorted(EDITS))
def test_lesion_free_items_are_passed_through_and_recorded(kind):
    data = synthetic_imageset(n=4, size=32, seed=3, tumour_free=(1, 3))
    out = named(EDITS[kind]("follow"), kind).apply(data, 4, seed=0)
    assert out.skipped == [1, 3]
    for i in (1, 3):
        assert torch.equal(out.data.images[i], data.images[i]) and torch.equal(out.data.labels[i], data.labels[i])


def lesion_sizes(labels: torch.Tensor) -> list[int]:
    return labels.flatten(1).gt(0).sum(1).tolist()


def test_shrink_and_grow_change_the_lesion_volume_monotonically_and_keep_compartments(clean):
    shrink = named(EDITS["shrink"]("follow"), "shrink")
    grow = named(EDITS["grow"]("follow"), "grow")
    with_lesion = [i for i, n in enumerate(lesion_sizes(clean.labels)) if n > 0]
    small = [lesion_sizes(shrink.apply(clean, s, seed=0).data.labels) for s in range(6)]
    large = [lesion_sizes(grow.apply(clean, s, seed=0).data.labels) for s in range(6)]
    for i in with_lesion:
        assert all(small[s + 1][i] < small[s][i] for s in range(5)), [v[i] for v in small]
        assert all(large[s + 1][i] > large[s][i] for s in range(5)), [v[i] for v in large]
    labels = shrink.apply(clean, 3, seed=0).data.labels
    for i in with_lesion:
        assert set(torch.unique(labels[i]).tolist()) == set(torch.unique(clean.labels[i]).tolist())


def test_remove_erases_a_growing_share_and_all_of_it_at_severity_5(clean):
    remove = named(EDITS["remove"]("follow"), "remove")
    sizes = [lesion_sizes(remove.apply(clean, s, seed=0).data.labels) for s in range(6)]
    for i, n in enumerate(sizes[0]):
        if n:
            assert all(sizes[s + 1][i] < sizes[s][i] for s in range(4)), [v[i] for v in sizes]
            assert sizes[5][i] == 0
            assert abs(sizes[1][i] / n - 0.8) < 0.05
    # the filled tissue resembles the healthy brain, not the lesion: its mean lies within the healthy range
    out = remove.apply(clean, 5, seed=0).data.images
    for i, n in enumerate(sizes[0]):
        if n:
            lesion = clean.labels[i, 0] > 0
            healthy = clean.images[i, 0][clean.brain_masks[i, 0] & ~lesion]
            filled = out[i, 0][lesion]
            assert abs(float(filled.mean()) - float(healthy.mean())) < 2 * float(healthy.std())


def centroids(labels: torch.Tensor) -> list[np.ndarray | None]:
    return [np.argwhere(lab[0].numpy() > 0).mean(0) if (lab > 0).any() else None for lab in labels]


def test_move_displacement_grows_with_severity_and_keeps_the_lesion_size(clean):
    move = named(EDITS["move"]("follow"), "move")
    start = centroids(clean.labels)
    steps = [centroids(move.apply(clean, s, seed=0).data.labels) for s in range(1, 6)]
    for i, c0 in enumerate(start):
        if c0 is None:
            continue
        distances = [float(np.linalg.norm(step[i] - c0)) for step in steps]
        assert all(b > a for a, b in itertools.pairwise(distances)), distances
    moved = move.apply(clean, 2, seed=0).data.labels
    for i, n in enumerate(lesion_sizes(clean.labels)):
        if n:
            assert abs(lesion_sizes(moved[i : i + 1])[0] / n - 1) < 0.1


def test_deform_changes_the_shape_and_texture_swap_keeps_it(clean):
    deform = named(EDITS["deform"]("follow"), "deform")
    texture = named(EDITS["texture"]("follow"), "texture")
    deformed = deform.apply(clean, 5, seed=0).data.labels
    swapped = texture.apply(clean, 5, seed=0)
    assert torch.equal(swapped.data.labels, clean.labels)
    for i, n in enumerate(lesion_sizes(clean.labels)):
        if n:
            assert (deformed[i] != clean.labels[i]).any()
            assert connected_components(deformed[i, 0].numpy() > 0)[1] >= 1
            inside = clean.labels[i, 0] > 0
            assert (swapped.data.images[i, 0][inside] != clean.images[i, 0][inside]).any()


def test_bad_label_mode_is_a_config_error():
    from benchmark.errors import ConfigError

    with pytest.raises(ConfigError, match="'keep' or 'follow'"):
        TumourRemove(label="maybe")
