"""Tumour edits, fast and direct: each edit's documented contract on small hand-built 2D items.

The healthy-tissue fill is not under test here: `with_fill` swaps `fill.fill_healthy` for a cheap stand-in (the
region takes the mean of the healthy brain), so an edit on a 48 x 48 slice runs in milliseconds and the voxels it
refilled are recognisable. Checked: the severity schedules and their bounds, the label modes, the random stream
shared by variants, locality within `margin`, the peel order of TumourRemove, the scale of TumourResize, the
distance and path of TumourMove, the amplitude and its cap in TumourDeform, and the texture swap's donor choice,
resampling and blend.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import distance_transform_edt, gaussian_filter
from scipy.ndimage import label as connected_components

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError
from perturbations.morphology import (
    TumourDeform,
    TumourEdit,
    TumourMove,
    TumourRemove,
    TumourResize,
    TumourTextureSwap,
    bounding_box,
    donor_only,
    peel,
    pick_donor,
    resample_texture,
    span,
)

N = 48
HEALTHY = 0.3


def disc(radius: float, centre=(24, 24), n: int = N) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n]
    return (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= radius * radius


def healthy_mean_fill(image, brain, lesion, region):
    """Stand-in for `fill.fill_healthy`: the region (inside the brain) takes the healthy brain's mean, per channel."""
    out = image.copy()
    region = region & brain
    out[:, region] = image[:, brain & ~lesion & ~region].mean(axis=1, keepdims=True)
    return out


def scene(centre=(24, 17), seed: int = 0, halo: float = 0.0, dark_ring: bool = False):
    """(image (1, N, N) float32, label (N, N) uint8, brain): a disc brain of radius 21 with faint noise around
    0.3 and a three-compartment lesion (core 1 of radius 2, enhancing 3 to radius 4, oedema 2 to radius 6) at
    `centre`; optionally an unlabelled bright halo `halo` voxels wide around it, or a dark ring (CSF-like)
    1..2 voxels outside it."""
    rng = np.random.default_rng(seed)
    brain = disc(21)
    image = np.where(brain, HEALTHY + rng.uniform(-0.02, 0.02, (N, N)), 0.0)
    label = np.zeros((N, N), np.uint8)
    label[disc(6, centre)] = 2
    label[disc(4, centre)] = 3
    label[disc(2, centre)] = 1
    if halo:
        image[disc(6 + halo, centre) & ~disc(6, centre)] = 0.8
    if dark_ring:
        image[disc(8, centre) & ~disc(6, centre)] = 0.05
    for value, level in {1: 0.2, 2: 0.7, 3: 0.9}.items():
        image[label == value] = level + rng.uniform(-0.02, 0.02, int((label == value).sum()))
    return image[None].astype(np.float32), label, brain


def cheap(edit: TumourEdit) -> TumourEdit:
    return edit.with_fill(healthy_mean_fill)


def imageset(images, labels, brains, subjects) -> ImageSet:
    images = torch.from_numpy(np.stack(images).astype(np.float32))
    return ImageSet(images=images, labels=torch.from_numpy(np.stack(labels)[:, None].astype(np.uint8)),
                    brain_masks=torch.from_numpy(np.stack(brains)[:, None]), subject_ids=list(subjects),
                    slice_indices=list(range(len(subjects))), modalities=("flair",), spacing=(1.0, 1.0))


def near(region: np.ndarray, reach: float) -> np.ndarray:
    return distance_transform_edt(~region) <= reach


class Plain(TumourEdit):
    """The smallest edit on the base class: its defaults, and an edit that brightens the image by 0.25 and clears
    the label (returned as float64 and int64, whatever the item's types), remembering what it was given."""

    def parameters_at(self, severity):
        return {"level": severity}

    def edit(self, image, label, brain, params, rng):
        self.given = (image, label, brain, params)
        return image.astype(np.float64) + 0.25, np.zeros(label.shape, np.int64)


# configuration


@pytest.mark.parametrize(("make", "key", "at_1", "at_3", "at_5"), [
    (TumourRemove, "fraction_removed", 0.2, 0.6, 1.0),
    (TumourResize, "scale", 0.85, 0.625, 0.4),
    (TumourMove, "distance", 0.05, 0.2, 0.35),
    (TumourDeform, "amplitude", 0.1, 0.35, 0.6),
    (TumourTextureSwap, "strength", 0.2, 0.6, 1.0),
])
def test_defaults_follow_the_label_with_a_six_voxel_margin_and_the_documented_schedule(make, key, at_1, at_3, at_5):
    edit = make()
    assert (edit.label, edit.margin, edit.feather) == ("follow", 6, 3.0)
    assert edit.parameters(0) == {}
    for severity, value in ((1, at_1), (3, at_3), (5, at_5)):
        assert edit.parameters(severity) == {key: pytest.approx(value)}
    other = make(label="keep", margin=4)
    assert (other.label, other.margin, other.feather) == ("keep", 4, 2.0)


def test_the_base_class_defaults_are_follow_and_six():
    edit = Plain()
    assert (edit.label, edit.margin, edit.family) == ("follow", 6, "morphological")


@pytest.mark.parametrize("margin", [1, 0, 2.5, -3])
def test_margin_must_be_an_integer_of_at_least_two(margin):
    with pytest.raises(ConfigError, match="'margin'"):
        TumourRemove(margin=margin)


def test_margin_two_is_allowed():
    assert TumourMove(margin=2).margin == 2 and TumourMove(margin=2).feather == 1.0


def test_bad_label_mode_names_the_choices():
    with pytest.raises(ConfigError, match="'label' must be 'keep' or 'follow', got 'maybe'"):
        TumourResize(label="maybe")
    with pytest.raises(ConfigError, match="'label'"):
        Plain(label=None)


@pytest.mark.parametrize(("make", "name", "good", "bad"), [
    (TumourRemove, "fraction", [(0.0, 1.0)], [(-0.1, 0.5), (0.2, 1.1)]),
    (TumourResize, "scale", [(0.05, 5.0)], [(0.0, 0.5), (0.04, 0.5), (0.85, 5.5)]),
    (TumourMove, "distance", [(0.0, 1.0)], [(-0.1, 0.3), (0.1, 1.5)]),
    (TumourDeform, "amplitude", [(0.0, 5.0)], [(-0.1, 0.5), (0.1, 5.5)]),
    (TumourTextureSwap, "strength", [(0.0, 1.0)], [(-0.1, 0.5), (0.2, 1.5)]),
])
def test_schedule_bounds(make, name, good, bad):
    for value in good:
        edit = make(**{name: value})
        assert getattr(edit, name) == value
    for value in bad:
        with pytest.raises(ConfigError, match=f"'{name}'"):
            make(**{name: value})


def test_describe_records_label_mode_margin_and_parameters():
    described = TumourRemove(label="keep", margin=4).describe(3)
    assert described["label"] == "keep" and described["margin_voxels"] == 4
    assert described["fraction_removed"] == pytest.approx(0.6)
    assert described["severity"] == 3 and described["family"] == "morphological"


def test_keep_follow_and_refilled_variants_share_one_random_stream():
    follow, keep = TumourRemove(label="follow"), TumourRemove(label="keep")
    follow.name, keep.name = "tumour_remove", "tumour_remove_keep"
    assert follow.stream() == keep.stream() == follow.with_fill(healthy_mean_fill).stream()
    swap = TumourTextureSwap()
    assert swap.stream() == swap.with_fill(healthy_mean_fill).stream()
    # the class and every end point count
    assert TumourRemove(fraction=(0.1, 0.5)).stream() != follow.stream()
    assert TumourRemove(margin=4).stream() != follow.stream()

    class Peel(TumourRemove):
        pass

    assert Peel().stream() != TumourRemove().stream()


def brighter_fill(image, brain, lesion, region):
    out = healthy_mean_fill(image, brain, lesion, region)
    out[:, region & brain] += 0.05
    return out


@pytest.mark.parametrize(("edit", "params"), [
    (TumourRemove(margin=4), {"fraction_removed": 0.6}),
    (TumourResize(margin=4), {"scale": 0.6}),
    (TumourMove(margin=4), {"distance": 0.3}),
    (TumourDeform(margin=4), {"amplitude": 0.6}),
])
def test_with_fill_changes_only_the_refilled_tissue(edit, params):
    """The fill decides what replaces the removed tissue; the removed part, the new label and the rest of the image
    stay the same (same random stream)."""
    image, label, brain = scene(centre=(24, 14))
    a = edit.with_fill(healthy_mean_fill).edit(image, label, brain, params, np.random.default_rng(5))
    b = edit.with_fill(brighter_fill).edit(image, label, brain, params, np.random.default_rng(5))
    assert np.array_equal(a[1], b[1])
    differs = a[0][0] != b[0][0]
    assert differs.any()
    assert np.all(b[0][0][differs] > a[0][0][differs])
    assert not (differs & ~near((label > 0) | (a[1] > 0), edit.margin)).any()


# the base class: numpy in, tensors out, label modes, lesion-free items


def item_tensors(label: np.ndarray):
    image, _, brain = scene()
    return (torch.from_numpy(image), torch.from_numpy(label[None]), torch.from_numpy(brain[None]))


def test_perturb_item_hands_numpy_to_the_edit_and_returns_the_items_types():
    _, label, brain = scene()
    image_t, label_t, mask_t = item_tensors(label)
    edit = Plain()
    out_image, out_label = edit.perturb_item(image_t, label_t, mask_t, {"level": 2}, np.random.default_rng(0), (1, 1))
    given_image, given_label, given_brain, params = edit.given
    assert given_image.shape == (1, N, N) and np.array_equal(given_image, image_t.numpy())
    assert given_label.shape == (N, N) and np.array_equal(given_label, label)
    assert given_brain.dtype == bool and np.array_equal(given_brain, brain)
    assert params == {"level": 2}
    assert out_image.dtype == torch.float32 and out_label.dtype == torch.uint8
    assert out_image.shape == image_t.shape and out_label.shape == label_t.shape
    assert torch.allclose(out_image, image_t + 0.25)
    assert not out_label.any()  # follow: the edited label


def test_keep_returns_the_original_label_and_the_same_image():
    _, label, _ = scene()
    tensors = item_tensors(label)
    follow = Plain(label="follow").perturb_item(*tensors, {}, np.random.default_rng(0), (1, 1))
    keep = Plain(label="keep").perturb_item(*tensors, {}, np.random.default_rng(0), (1, 1))
    assert torch.equal(follow[0], keep[0])
    assert torch.equal(keep[1], tensors[1]) and not follow[1].any()


def test_lesion_free_items_are_skipped_and_any_positive_label_is_a_lesion():
    empty = np.zeros((N, N), np.uint8)
    assert Plain().perturb_item(*item_tensors(empty), {}, np.random.default_rng(0), (1, 1)) is None
    core_only = empty.copy()
    core_only[20:23, 20:23] = 1
    assert Plain().perturb_item(*item_tensors(core_only), {}, np.random.default_rng(0), (1, 1)) is not None


# TumourRemove and peel


def test_peel_removes_exactly_the_rounded_fraction_and_nests_across_fractions():
    lesion = disc(9)
    n = int(lesion.sum())
    previous = np.zeros_like(lesion)
    for fraction in (0.0, 0.1, 0.25, 0.5, 0.77, 1.0):
        removed = peel(lesion, fraction, np.random.default_rng(3))
        assert removed.dtype == bool and removed.shape == lesion.shape
        assert int(removed.sum()) == round(fraction * n)
        assert not (removed & ~lesion).any()
        assert not (previous & ~removed).any()  # the item's fixed jitter: a larger fraction contains a smaller one
        previous = removed


def test_peel_takes_the_border_first_with_a_jitter_of_about_a_voxel():
    """The removed half lies nearer the border than the kept half, up to an irregular seam of a few voxels: the
    deepest removed voxel is deeper than the shallowest kept one (jitter), but not by much (about a voxel)."""
    lesion = disc(12)
    depth = distance_transform_edt(lesion)
    overlaps = []
    for seed in range(10):
        removed = peel(lesion, 0.5, np.random.default_rng(seed))
        kept = lesion & ~removed
        assert depth[removed].mean() < depth[kept].mean() - 3
        overlaps.append(depth[removed].max() - depth[kept].min())
    assert min(overlaps) > 0  # irregular, not a clean ring
    assert 1.0 < np.mean(overlaps) < 4.0


def test_remove_peels_the_oedema_before_the_core_and_zeroes_the_removed_labels():
    image, label, brain = scene()
    lesion = label > 0
    edit = cheap(TumourRemove(margin=4))
    out, new_label = edit.edit(image, label, brain, {"fraction_removed": 0.3}, np.random.default_rng(0))
    removed = lesion & (new_label == 0)
    assert int(removed.sum()) == round(0.3 * lesion.sum())
    assert set(np.unique(label[removed])) == {2}  # the outer shell first: compartments stay nested
    assert np.array_equal(new_label[~removed], label[~removed])
    fill_value = image[0][brain & ~near(lesion, 3)].mean()
    assert np.allclose(out[0][removed], fill_value, atol=0.03)
    assert np.array_equal(out[0][lesion & ~removed], image[0][lesion & ~removed])  # what stays is untouched
    assert out.dtype == image.dtype


def test_remove_everything_refills_the_lesion_and_its_halo_within_margin_minus_one():
    """All of it at fraction 1; the unlabelled bright halo goes with it out to margin - 1 voxels, the rest of the
    halo (and everything farther) is unchanged."""
    image, label, brain = scene(halo=5, centre=(24, 20))
    lesion = label > 0
    for margin in (4, 5):
        edit = cheap(TumourRemove(margin=margin))
        out, new_label = edit.edit(image, label, brain, {"fraction_removed": 1.0}, np.random.default_rng(0))
        assert not new_label.any()
        changed = out[0] != image[0]
        assert np.array_equal(changed, near(lesion, margin - 1)), margin


def test_remove_keeps_everything_beyond_the_margin():
    image, label, brain = scene()
    out, _ = cheap(TumourRemove(margin=3)).edit(image, label, brain, {"fraction_removed": 0.6},
                                                np.random.default_rng(1))
    changed = out[0] != image[0]
    assert changed.any() and not (changed & ~near(label > 0, 3)).any()


# TumourResize


def lesion_centroid(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(0)


@pytest.mark.parametrize("scale", [0.5, 1.4])
def test_resize_scales_the_area_about_the_centroid_and_keeps_the_compartments_in_place(scale):
    image, label, brain = scene(centre=(24, 20))
    edit = cheap(TumourResize(margin=4))
    out, new_label = edit.edit(image, label, brain, {"scale": scale}, np.random.default_rng(0))
    old, new = label > 0, new_label > 0
    assert new.sum() == pytest.approx(scale**2 * old.sum(), rel=0.15)
    assert np.allclose(lesion_centroid(new), lesion_centroid(old), atol=0.5)
    for value in (1, 2, 3):  # nested compartments keep their order and proportions
        assert (new_label == value).sum() == pytest.approx(scale**2 * (label == value).sum(), rel=0.35, abs=3)
    assert np.allclose(lesion_centroid(new_label == 1), lesion_centroid(label == 1), atol=0.5)
    changed = out[0] != image[0]
    assert changed.any() and not (changed & ~near(old | new, 4)).any()
    assert out.dtype == image.dtype and new_label.dtype == label.dtype


def test_resize_keeps_an_off_centre_compartment_on_its_side():
    """A core off to one side stays on that side after shrinking: the lesion is scaled, not mirrored."""
    image, label, brain = scene(centre=(24, 20))
    label[label == 1] = 3
    label[disc(2, (24, 23))] = 1  # the core on the right of the lesion's centre
    new_label = cheap(TumourResize(margin=4)).edit(image, label, brain, {"scale": 0.6}, np.random.default_rng(0))[1]
    offset = lesion_centroid(new_label == 1) - lesion_centroid(new_label > 0)
    assert offset[1] > 1 and abs(offset[0]) < 1
    assert np.allclose(lesion_centroid(new_label > 0), lesion_centroid(label > 0), atol=0.5)  # the whole lesion's


def test_resize_scales_each_tumour_about_its_own_centre():
    image, label, brain = scene(centre=(24, 12))
    second = disc(4, (24, 34))
    label[second] = 1  # a tumour of core alone
    image[0][second] = 0.2
    edit = cheap(TumourResize(margin=3))
    out, new_label = edit.edit(image, label, brain, {"scale": 0.6}, np.random.default_rng(0))
    parts, count = connected_components(new_label > 0)
    assert count == 2
    before = sorted(lesion_centroid(connected_components(label > 0)[0] == k)[1] for k in (1, 2))
    after = sorted(lesion_centroid(parts == k)[1] for k in (1, 2))
    assert np.allclose(before, after, atol=0.6)
    assert set(np.unique(new_label)) == {0, 1, 2, 3}
    old = label > 0
    far_from_new = old & ~near(new_label > 0, 1.5)  # vacated: refilled with healthy tissue
    deep_core = (new_label == 1) & ~near(new_label != 1, 1)  # the redrawn core-only tumour keeps its intensity
    assert deep_core.any() and np.allclose(out[0][deep_core], 0.2, atol=0.03)
    assert far_from_new.any() and (far_from_new & second).any()
    assert np.ptp(out[0][far_from_new]) < 1e-6  # the stand-in fill's one value
    assert out[0][far_from_new][0] == pytest.approx(HEALTHY, abs=0.01)


def test_resize_vacates_the_halo_within_margin_minus_one():
    image, label, brain = scene(halo=5, centre=(24, 20))
    old = label > 0
    out, new_label = cheap(TumourResize(margin=4)).edit(image, label, brain, {"scale": 0.4},
                                                       np.random.default_rng(0))
    away = ~near(new_label > 0, 2.5)  # beyond the feathered redraw of the small new lesion
    changed = out[0] != image[0]
    assert np.array_equal(changed & away, near(old, 3) & away)


def test_resize_does_not_drag_the_dark_tissue_beside_the_lesion_along():
    """Only the lesion and its halo come along with the redrawn lesion: dark CSF beside the lesion is refilled,
    and no dark band appears around the grown lesion."""
    image, label, brain = scene(centre=(24, 22), dark_ring=True)  # ring 0.05, tissue 0.3
    for scale in (0.6, 1.4):
        out, new_label = cheap(TumourResize(margin=4)).edit(image, label, brain, {"scale": scale},
                                                           np.random.default_rng(0))
        assert out[0][brain & (new_label == 0)].min() > 0.2, scale


# TumourMove


def move_scene():
    return scene(centre=(24, 11))


def test_move_shifts_by_the_fraction_of_the_brains_diameter_along_one_path():
    image, label, brain = move_scene()
    diameter = 2 * np.sqrt(brain.sum() / np.pi)
    edit = cheap(TumourMove(margin=4))
    start = lesion_centroid(label > 0)
    steps = []
    for severity in range(1, 6):
        params = edit.parameters(severity)
        out, new_label = edit.edit(image, label, brain, params, np.random.default_rng(7))
        assert (new_label > 0).sum() == (label > 0).sum()  # the same lesion, whole
        step = lesion_centroid(new_label > 0) - start
        assert np.linalg.norm(step) == pytest.approx(params["distance"] * diameter, abs=0.75)
        steps.append(step / np.linalg.norm(step))
        changed = out[0] != image[0]
        assert not (changed & ~near((label > 0) | (new_label > 0), 4)).any()
    assert all(float(a @ steps[-1]) > 0.98 for a in steps)  # one path for every level


@pytest.mark.parametrize("seed", range(6))
def test_move_keeps_the_lesion_inside_the_brain_at_the_longest_distance(seed):
    """The lesion sits near the brain's edge, so about half the directions would push it out at 0.35 of the brain's
    diameter: the one chosen keeps all of it, with its compartments."""
    image, label, brain = move_scene()
    edit = cheap(TumourMove(distance=(0.1, 0.35), margin=4))
    for severity in (1, 5):
        _, new_label = edit.edit(image, label, brain, edit.parameters(severity), np.random.default_rng(seed))
        for value in (1, 2, 3):
            assert (new_label == value).sum() == (label == value).sum(), (seed, severity, value)


@pytest.mark.parametrize("seed", range(6))
def test_move_never_counts_voxels_off_the_image_as_inside(seed):
    """A brain filling the whole image (cropped tight): directions that push the lesion off the image are outside,
    wherever the edge is."""
    image, label, _ = scene(centre=(24, 9))
    brain = np.ones((N, N), bool)
    image[0][image[0] == 0] = HEALTHY
    edit = cheap(TumourMove(distance=(0.1, 0.35), margin=4))
    _, new_label = edit.edit(image, label, brain, edit.parameters(5), np.random.default_rng(seed))
    assert (new_label > 0).sum() == (label > 0).sum(), seed


def test_move_keeps_most_of_the_lesion_when_no_direction_keeps_all_of_it():
    """A large lesion in a brain filling the image, moved by 0.45 of its diameter: every direction pushes part of it
    off the image. The chosen one (the best of 16 random directions) keeps more of it than three quarters of all
    directions would (worked out here over 720 directions)."""
    rng = np.random.default_rng(0)
    image = (HEALTHY + rng.uniform(-0.02, 0.02, (N, N)))[None].astype(np.float32)
    label = np.zeros((N, N), np.uint8)
    label[disc(10)], label[disc(6)], label[disc(3)] = 2, 3, 1
    image[0][label > 0] = 0.8
    brain = np.ones((N, N), bool)
    shift = 0.45 * 2 * np.sqrt(brain.sum() / np.pi)
    points = np.argwhere(label > 0)
    angles = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    moved = [points + np.round(shift * np.array([np.cos(a), np.sin(a)])) for a in angles]
    shares = [np.all((m >= 0) & (m < N), axis=1).mean() for m in moved]
    assert max(shares) < 1
    edit = cheap(TumourMove(distance=(0.1, 0.45), margin=4))
    for seed in range(8):
        new_label = edit.edit(image, label, brain, edit.parameters(5), np.random.default_rng(seed))[1]
        assert (new_label > 0).sum() / (label > 0).sum() >= np.quantile(shares, 0.75), seed


@pytest.mark.parametrize("seed", range(6))
def test_move_keeps_every_part_of_a_multifocal_tumour_inside(seed):
    """Oedema at the brain's centre and a separate core near its edge move together: the direction is checked for
    every lesion voxel, so the core is not pushed out of the brain."""
    image, label, brain = scene(centre=(24, 24))
    label[label == 1] = 3
    focus = disc(3, (24, 8))
    label[focus] = 1
    image[0][focus] = 0.2
    edit = cheap(TumourMove(distance=(0.1, 0.35), margin=4))
    _, new_label = edit.edit(image, label, brain, edit.parameters(5), np.random.default_rng(seed))
    assert (new_label == 1).sum() == focus.sum(), seed


def test_move_vacates_the_old_place():
    image, label, brain = move_scene()
    old = label > 0
    out, new_label = cheap(TumourMove(margin=4)).edit(image, label, brain, {"distance": 0.35},
                                                     np.random.default_rng(0))
    assert not (old & (new_label > 0)).any()
    vacated = old & ~near(new_label > 0, 2)
    assert np.ptp(out[0][vacated]) < 1e-6 and out[0][vacated][0] == pytest.approx(HEALTHY, abs=0.01)


# TumourDeform


def test_deform_with_zero_amplitude_keeps_the_shape_and_larger_amplitudes_change_more():
    image, label, brain = scene(centre=(24, 20))
    edit = cheap(TumourDeform(amplitude=(0.0, 0.6), margin=6))
    changes = []
    for severity in (1, 3, 5):
        out, new_label = edit.edit(image, label, brain, edit.parameters(severity), np.random.default_rng(2))
        changes.append(int((new_label != label).sum()))
        changed = out[0] != image[0]
        assert not (changed & ~near((label > 0) | (new_label > 0), 6)).any()
    assert changes[0] == 0 and 0 < changes[1] < changes[2]


def test_deform_displaces_at_most_the_capped_amplitude():
    """Peak displacement amplitude x radius, capped at 0.9 x margin voxels: the label changes only within that
    distance (per axis, so times sqrt 2 in 2D) of the old border, and amplitudes beyond the cap all give the same
    result."""
    image, label, brain = scene(centre=(24, 20))
    lesion = label > 0
    radius = np.sqrt(lesion.sum() / np.pi)
    edit = cheap(TumourDeform(amplitude=(1.02 * 4.5 / radius, 5.0), margin=5))  # just beyond the cap at level 1
    first = edit.edit(image, label, brain, edit.parameters(1), np.random.default_rng(4))
    last = edit.edit(image, label, brain, edit.parameters(5), np.random.default_rng(4))
    assert np.array_equal(first[0], last[0]) and np.array_equal(first[1], last[1])
    moved = first[1] != label
    assert moved.any()
    border = distance_transform_edt(lesion) + distance_transform_edt(~lesion)
    assert border[moved].max() <= 0.9 * 5 * np.sqrt(2) + 1
    below = cheap(TumourDeform(amplitude=(0.3, 0.6), margin=5))  # 0.6 x radius < 4.5: not capped, so it differs
    assert 0.6 * radius < 4.5
    low = below.edit(image, label, brain, below.parameters(1), np.random.default_rng(4))[1]
    high = below.edit(image, label, brain, below.parameters(5), np.random.default_rng(4))[1]
    assert (low != high).any()


@pytest.mark.parametrize("seed", range(4))
def test_deform_changes_the_shape_not_just_the_position_and_keeps_the_size(seed):
    image, label, brain = scene(centre=(24, 20))
    old = label > 0
    new = cheap(TumourDeform(margin=6)).edit(image, label, brain, {"amplitude": 0.6}, np.random.default_rng(seed))[1]
    assert (new > 0).sum() == pytest.approx(old.sum(), rel=0.4)  # 0.84 .. 1.14 over 30 seeds
    mismatch = min(int(((np.roll(old, (dy, dx), (0, 1))) != (new > 0)).sum())
                   for dy in range(-6, 7) for dx in range(-6, 7))
    assert mismatch > 8  # no translation of the old lesion is the new one (9 .. 25 voxels over 30 seeds)


# TumourTextureSwap: pick_donor, span, bounding_box, resample_texture, donor_only


def donor_pool(specs, subjects) -> ImageSet:
    """Items whose image is their index everywhere and whose label holds the given (compartment, mask) pairs."""
    labels = []
    for parts in specs:
        label = np.zeros((N, N), np.uint8)
        for value, mask in parts:
            label[mask] = value
        labels.append(label)
    images = [np.full((1, N, N), float(i), np.float32) for i in range(len(specs))]
    return imageset(images, labels, [disc(21)] * len(specs), subjects)


def block(y0, x0, h, w) -> np.ndarray:
    mask = np.zeros((N, N), bool)
    mask[y0 : y0 + h, x0 : x0 + w] = True
    return mask


def chosen(found) -> int:
    image, region = found
    assert image.dtype == np.float64 and region.dtype == bool
    return int(image[0, 0, 0])


def test_pick_donor_skips_the_item_itself_and_prefers_another_subject():
    pool = donor_pool([[(2, block(5, 5, 6, 6))]] * 3, ["a", "a", "b"])
    for seed in range(6):
        found = pick_donor([(pool, 0)], "a", 2, np.random.default_rng(seed))
        assert chosen(found) == 2
        assert np.array_equal(found[1], block(5, 5, 6, 6))
    # another slice of the same subject when no other subject has the compartment; never the item itself
    pool = donor_pool([[(2, block(5, 5, 6, 6))], [(2, block(5, 5, 6, 6))], [(1, block(5, 5, 6, 6))]], ["a", "a", "b"])
    for seed in range(4):
        assert chosen(pick_donor([(pool, 0)], "a", 2, np.random.default_rng(seed))) == 1
    assert pick_donor([(pool, 0)], "a", 3, np.random.default_rng(0)) is None


def test_pick_donor_needs_min_voxels_inclusive_default_twenty():
    twenty, nineteen = block(5, 5, 4, 5), block(5, 5, 1, 19)
    pool = donor_pool([[(2, nineteen)], [(2, twenty)]], ["a", "b"])
    assert chosen(pick_donor([(pool, None)], "c", 2, np.random.default_rng(0))) == 1
    assert chosen(pick_donor([(pool, None)], "c", 2, np.random.default_rng(0), min_voxels=19)) in (0, 1)
    assert pick_donor([(pool, None)], "c", 2, np.random.default_rng(0), min_voxels=21) is None
    small = donor_pool([[(2, nineteen)]], ["a"])
    assert pick_donor([(small, None)], "c", 2, np.random.default_rng(0)) is None


def test_pick_donor_prefers_a_donor_as_large_as_the_target_then_the_set_before_the_training_set():
    target_extent = np.array([8.0, 8.0])
    pool = donor_pool([[(2, block(5, 5, 5, 5))], [(2, block(20, 20, 9, 8))], [(2, block(5, 30, 6, 6))]],
                      ["b", "c", "d"])
    for seed in range(6):
        assert chosen(pick_donor([(pool, None)], "a", 2, np.random.default_rng(seed), extent=target_extent)) == 1
    # exactly the target's extent is large enough, and beats a larger donor in the training set
    exact = donor_pool([[(2, block(5, 5, 8, 8))]], ["b"])
    train = donor_pool([[(2, block(5, 5, 12, 12))]], ["c"])
    found = pick_donor([(exact, None), (train, None)], "a", 2, np.random.default_rng(0), extent=target_extent)
    assert np.array_equal(found[1], block(5, 5, 8, 8))
    # a small donor in the set gives way to a large one in the training set; a missing pool is skipped
    small = donor_pool([[(2, block(5, 5, 5, 5))]], ["b"])
    found = pick_donor([(small, None), (train, None)], "a", 2, np.random.default_rng(0), extent=target_extent)
    assert np.array_equal(found[1], block(5, 5, 12, 12))
    found = pick_donor([(None, None), (small, None)], "a", 2, np.random.default_rng(0))
    assert np.array_equal(found[1], block(5, 5, 5, 5))
    # without a target extent: the first in the random order among equals (each of them for some seed)
    picks = {chosen(pick_donor([(pool, None)], "a", 2, np.random.default_rng(seed))) for seed in range(12)}
    assert picks == {0, 1, 2}


def test_span_and_bounding_box():
    mask = np.zeros((6, 9), bool)
    mask[2, 5] = mask[4, 3] = mask[3, 7] = True
    low, high = bounding_box(mask)
    assert np.array_equal(low, [2, 3]) and np.array_equal(high, [4, 7])
    assert low.dtype == float and high.dtype == float
    assert np.array_equal(span(mask), [3, 5])
    assert np.array_equal(span(block(10, 20, 1, 1)), [1, 1])


def test_resample_texture_copies_an_equal_donor_exactly_translated():
    rng = np.random.default_rng(0)
    donor = rng.uniform(0, 1, (2, N, N))
    donor_region, region = block(4, 30, 7, 5), block(20, 6, 7, 5)
    values = resample_texture(donor, donor_region, region)
    assert values.shape == (2, int(region.sum()))
    assert np.allclose(values, donor[:, donor_region])  # same shape: same voxels, in the same order


def test_resample_texture_never_shrinks_a_larger_donor_and_centres_it():
    donor = np.random.default_rng(1).uniform(0, 1, (1, N, N))
    donor_region, region = block(4, 4, 13, 15), block(30, 30, 5, 7)
    values = resample_texture(donor, donor_region, region)
    centre = block(8, 8, 5, 7)  # the donor box's centre (10, 11) onto the target's (32, 33)
    assert np.allclose(values, donor[:, centre])


def test_resample_texture_magnifies_a_smaller_donor_isotropically_to_cover_the_region():
    """A linear ramp sampled linearly stays a ramp: at a third of a donor voxel per target voxel (the donor's 3
    rows spread over the target's 9), its steps are a third of the donor's along both axes."""
    y, x = np.mgrid[0:N, 0:N]
    donor = (0.03 * y + 0.01 * x)[None]
    donor_region, region = block(10, 10, 6, 3), block(25, 25, 9, 9)
    values = resample_texture(donor, donor_region, region).reshape(9, 9)
    inner = values[3:6, 3:6]  # well inside the donor box
    assert np.allclose(np.diff(inner, axis=0), 0.03 / 3) and np.allclose(np.diff(inner, axis=1), 0.01 / 3)
    assert values.min() >= donor[0][donor_region].min() - 1e-9 and values.max() <= donor[0][donor_region].max() + 1e-9


def test_resample_texture_samples_only_the_donor_compartment_even_at_the_image_edge():
    rng = np.random.default_rng(2)
    donor = np.full((1, N, N), 5.0)
    donor_region = block(N - 4, N - 5, 4, 5)  # in the image's corner
    donor[0][donor_region] = rng.uniform(0.4, 0.6, int(donor_region.sum()))
    region = disc(7) & ~disc(3)
    values = resample_texture(donor, donor_region, region)
    assert values.shape == (1, int(region.sum()))
    assert values.min() >= 0.4 and values.max() <= 0.6


def test_resample_texture_samples_where_asked_with_the_regions_mapping():
    donor = np.random.default_rng(3).uniform(0, 1, (1, N, N))
    donor_region, region = block(4, 30, 7, 5), block(20, 6, 7, 5)
    where = block(19, 5, 9, 7)  # the region and a ring around it
    values = resample_texture(donor, donor_region, region, where)
    assert values.shape == (1, int(where.sum()))
    assert np.allclose(values.reshape(9, 7)[1:-1, 1:-1], donor[:, donor_region].reshape(7, 5))


def test_donor_only_keeps_the_region_and_refills_the_rest_from_it_alone():
    rng = np.random.default_rng(4)
    donor = rng.uniform(0, 1, (2, N, N))
    region = block(10, 10, 6, 8)
    out = donor_only(donor, region)
    assert out.shape == donor.shape
    assert np.array_equal(out[:, region], donor[:, region])
    # near the region: the normalised Gaussian (sigma 1.5) convolution of the region's own voxels
    weight = region.astype(float)
    close = near(region, 2) & ~region
    for c in range(2):
        expected = gaussian_filter(donor[c] * weight, 1.5)[close] / gaussian_filter(weight, 1.5)[close]
        assert np.allclose(out[c][close], expected)
    # far from it: the nearest region voxel's value
    assert out[0, 40, 12] == donor[0, 15, 12] and out[1, 13, 40] == donor[1, 13, 17]
    assert out[0, 2, 2] == donor[0, 10, 10]


# TumourTextureSwap.edit and apply


def swap_item(seed: int = 0):
    """(image, label, brain) with a large lesion at the brain's centre, compartments wide enough to have an inside:
    core 1 to radius 5, enhancing 3 to radius 8, oedema 2 to radius 13, each with faint texture."""
    rng = np.random.default_rng(seed)
    brain = disc(21)
    image = np.where(brain, HEALTHY + rng.uniform(-0.02, 0.02, (N, N)), 0.0)
    label = np.zeros((N, N), np.uint8)
    label[disc(13)] = 2
    label[disc(8)] = 3
    label[disc(5)] = 1
    for value, level in {1: 0.2, 2: 0.7, 3: 0.9}.items():
        image[label == value] = level + rng.uniform(-0.03, 0.03, int((label == value).sum()))
    return image[None].astype(np.float32), label, brain


def constant_donor_set(n_extra_subjects=1):
    """Item 0: the scene's three-compartment lesion with faint texture; item 1 (another subject): the same layout
    with flat compartments, so the swapped texture is flat and every compartment takes its own median."""
    image, label, brain = swap_item()
    donor = np.where(brain, HEALTHY, 0.0)[None].astype(np.float32)
    for value, level in {1: 0.1, 2: 0.5, 3: 0.6}.items():
        donor[0][label == value] = level
    return imageset([image, donor], [label, label], [brain, brain], ["a", "b"])


def swapped(data: ImageSet, severity: int, train: ImageSet | None = None, seed: int = 0) -> np.ndarray:
    swap = TumourTextureSwap()
    swap.name = "texture"
    return swap.apply(data, severity, seed=seed, train=train).data.images[0, 0].numpy().astype(np.float64)


def test_flat_donor_texture_takes_each_compartments_median_blended_by_strength_with_a_soft_edge():
    data = constant_donor_set()
    before = data.images[0, 0].numpy().astype(np.float64)
    label = data.labels[0, 0].numpy()
    lesion = label > 0
    depth = distance_transform_edt(lesion)
    full = swapped(data, 5)
    medians = {v: np.median(before[label == v]) for v in (1, 2, 3)}
    for value, median in medians.items():
        deep = (label == value) & (depth >= 2)
        # well inside a compartment (3 voxels from the others) it takes that compartment's own median
        pure = deep & (distance_transform_edt(label == value) >= 3)
        assert pure.any() or value == 3
        assert np.allclose(full[pure], median, atol=2e-3), value
    edge = lesion & (depth == 1)  # half the strength on the lesion's outermost voxels
    assert np.allclose(full[edge], 0.5 * before[edge] + 0.5 * medians[2], atol=2e-3)
    assert np.array_equal(full[~lesion], before[~lesion])
    for severity, strength in ((1, 0.2), (3, 0.6)):
        part = swapped(data, severity)
        assert np.allclose(part, strength * full + (1 - strength) * before, atol=1e-5)


def test_compartments_meet_over_about_a_voxel():
    data = constant_donor_set()
    before = data.images[0, 0].numpy().astype(np.float64)
    label = data.labels[0, 0].numpy()
    full = swapped(data, 5)
    enhancing, oedema = np.median(before[label == 3]), np.median(before[label == 2])
    boundary = (label == 2) & near(label == 3, 1)
    assert np.all(np.abs(full[boundary] - oedema) > 0.01)  # softly mixed right at the boundary
    two_away = (label == 2) & ~near(label == 3, 1.9) & near(label == 3, 2.5)
    assert two_away.any()
    assert np.allclose(full[two_away], oedema, atol=0.08 * abs(enhancing - oedema))


def test_swap_keeps_the_label_and_changes_only_the_lesion():
    data = constant_donor_set()
    swap = TumourTextureSwap(label="follow")
    swap.name = "texture"
    out = swap.apply(data, 4, seed=0)
    assert torch.equal(out.data.labels, data.labels)
    lesion = data.labels[0, 0] > 0
    assert torch.equal(out.data.images[0][:, ~lesion], data.images[0][:, ~lesion])
    assert (out.data.images[0][:, lesion] != data.images[0][:, lesion]).any()


def test_swap_leaves_a_compartment_nobody_else_has_and_works_standalone():
    data = constant_donor_set()
    labels = data.labels.clone()
    labels[1][labels[1] == 1] = 3  # the donor has no core
    data = ImageSet(images=data.images, labels=labels, brain_masks=data.brain_masks, subject_ids=data.subject_ids,
                    slice_indices=data.slice_indices, modalities=data.modalities, spacing=data.spacing)
    before = data.images[0, 0].numpy().astype(np.float64)
    core = (data.labels[0, 0] == 1).numpy() & ~near((data.labels[0, 0] > 1).numpy(), 3)
    assert core.any()
    assert np.allclose(swapped(data, 5)[core], before[core], atol=1e-3)
    swap = TumourTextureSwap()
    swap.name = "texture"
    swap.apply(data, 5, seed=0)
    # outside `apply` there is no donor pool: the item is passed through as it is
    image, label, mask = data.images[0], data.labels[0], data.brain_masks[0]
    again = swap.perturb_item(image, label, mask, swap.parameters(5), np.random.default_rng(0), (1.0, 1.0))
    assert torch.equal(again[0], image) and torch.equal(again[1], label)
    fresh = TumourTextureSwap().perturb_item(image, label, mask, {"strength": 1.0}, np.random.default_rng(0), (1, 1))
    assert torch.equal(fresh[0], image)


def test_swap_takes_a_small_donor_compartment_of_twenty_voxels():
    data = constant_donor_set()
    labels = data.labels.clone()
    images = data.images.clone()
    donor_core = torch.from_numpy(block(22, 18, 4, 5))  # exactly 20 voxels
    labels[1][labels[1] == 1] = 3
    labels[1, 0][donor_core] = 1
    images[1, 0][donor_core] = torch.linspace(0.0, 0.4, 20)  # a texture: the item's flat-ish core takes it
    data = ImageSet(images=images, labels=labels, brain_masks=data.brain_masks, subject_ids=data.subject_ids,
                    slice_indices=data.slice_indices, modalities=data.modalities, spacing=data.spacing)
    before = data.images[0, 0].numpy().astype(np.float64)
    core = (data.labels[0, 0] == 1).numpy() & ~near((data.labels[0, 0] > 1).numpy(), 2)
    assert core.any()
    assert not np.allclose(swapped(data, 5)[core], before[core], atol=1e-3)


def striped(vertical: bool, label: np.ndarray, brain: np.ndarray) -> np.ndarray:
    y, x = np.mgrid[0:N, 0:N]
    stripes = 0.5 + 0.1 * np.sign(np.sin((x if vertical else y) * np.pi / 2 + 0.3))
    return np.where(label > 0, stripes, np.where(brain, HEALTHY, 0.0))[None].astype(np.float32)


def stripe_direction(values: np.ndarray, mask: np.ndarray) -> str:
    """'vertical' when the texture changes along x (columns differ), 'horizontal' when it changes along y."""
    along_x = np.abs(np.diff(values, axis=1))[mask[:, 1:] & mask[:, :-1]].mean()
    along_y = np.abs(np.diff(values, axis=0))[mask[1:] & mask[:-1]].mean()
    return "vertical" if along_x > along_y else "horizontal"


def test_swap_prefers_another_subject_and_a_donor_large_enough():
    """The same subject's other slice (horizontal stripes, as large as the item's lesion) gives way to another
    subject's smaller tumour (vertical stripes); a small donor in the set gives way to a large one in the training
    set."""
    image, label, brain = swap_item()
    label = np.where(label > 0, 2, 0).astype(np.uint8)  # one compartment: oedema of radius 6
    small = np.where(disc(5, (24, 20)), 2, 0).astype(np.uint8)
    same_subject = striped(False, label, brain)
    other_small = striped(True, small, brain)
    data = imageset([image, same_subject, other_small], [label, label, small], [brain] * 3, ["a", "a", "b"])
    inside = (label > 0) & (distance_transform_edt(label > 0) >= 2)
    assert stripe_direction(swapped(data, 5), inside) == "vertical"
    # a small donor of another subject in the set, a large one of another subject in the training set
    data = imageset([image, other_small], [label, small], [brain] * 2, ["a", "b"])
    train = imageset([striped(False, label, brain)], [label], [brain], ["c"])
    assert stripe_direction(swapped(data, 5, train=train), inside) == "horizontal"
    assert stripe_direction(swapped(data, 5), inside) == "vertical"


def test_each_compartment_takes_its_donor_compartment_scaled_to_its_own_box():
    """The core takes the donor's core at the core's own scale (equal boxes: one donor voxel per voxel), not
    stretched over the whole lesion's box: fine vertical stripes stay fine."""
    image, label, brain = swap_item()
    x = np.mgrid[0:N, 0:N][1]
    donor = np.where(brain, HEALTHY, 0.0)
    for value, level in {2: 0.5, 3: 0.6}.items():
        donor[label == value] = level
    stripes = 0.5 + 0.1 * np.sign(np.sin(x * np.pi / 2 + 0.3))  # period 4 along x
    donor[label == 1] = stripes[label == 1]
    data = imageset([image, donor[None]], [label, label], [brain, brain], ["a", "b"])
    out = swapped(data, 5)
    core = (label == 1) & ~near(label > 1, 2)
    rows = [out[row][core[row]] for row in range(N) if core[row].sum() >= 5]
    steps = np.mean([np.abs(np.diff(values)).mean() for values in rows])
    spread = out[core].std()
    assert steps > 0.85 * spread  # the donor's stripes: a step of about one spread every other voxel
