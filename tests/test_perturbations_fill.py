"""Healthy-tissue fill and the tumour edits' geometry: symmetry plane, seamless textured fill, severity as removed
volume, brain containment, determinism; and a slow realism check on the real patients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_dilation, distance_transform_edt, gaussian_filter, map_coordinates

from perturbations.fill import fill_healthy, local_std
from perturbations.morphology import TumourMove, TumourRemove, TumourResize, peel
from perturbations.symmetry import MirrorLine, estimate_mirror_line, rotation
from perturbations.synthetic import synthetic_imageset


def symmetric_brain(n: int = 112, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured ellipse 'brain' mirror-symmetric about column (n - 1) / 2, with a bright symmetric structure."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n].astype(float)
    c = (n - 1) / 2
    texture = gaussian_filter(rng.standard_normal((n, n)), 1.5)
    texture = (texture + texture[:, ::-1]) / 2
    brain = ((y - c) / (0.45 * n)) ** 2 + ((x - c) / (0.36 * n)) ** 2 < 1
    blob = 0.3 * np.exp(-((y - 0.3 * n) ** 2 + (np.abs(x - c) - 0.15 * n) ** 2) / (0.05 * n) ** 2)
    image = np.where(brain, 0.45 + 0.15 * texture / texture.std() * 0.3 + blob, 0.0)
    return image, brain


def moved(array: np.ndarray, angle: float, shift: np.ndarray, order: int) -> np.ndarray:
    """array(centre + R^T (q - centre - shift)): rotated by `angle` about the centre, then shifted."""
    n = array.shape[0]
    grid = np.stack(np.mgrid[0:n, 0:n].astype(float))
    centre = np.full(2, (n - 1) / 2)
    coords = np.tensordot(rotation(angle).T, grid - (centre + shift)[:, None, None], axes=1) + centre[:, None, None]
    return map_coordinates(array.astype(float), coords, order=order)


@pytest.mark.parametrize(("angle", "shift"), [(0.0, (0.0, 0.0)), (9.0, (4.0, -7.0)), (-13.0, (-3.0, 6.5))])
def test_mirror_line_is_found_on_a_rotated_and_shifted_symmetric_image(angle, shift):
    image, brain = symmetric_brain()
    shift = np.array(shift)
    tilted, tilted_brain = moved(image, angle, shift, 1), moved(brain, angle, shift, 0) > 0.5
    lesion = np.zeros_like(tilted_brain)
    lesion[40:55, 30:45] = True  # a lesion on one side must not bias the estimate
    tilted[lesion] = 1.0
    estimate = estimate_mirror_line(tilted, tilted_brain, lesion)
    centre = np.full(2, (image.shape[0] - 1) / 2)
    truth = MirrorLine(centre + shift, rotation(angle) @ np.array([1.0, 0.0]))
    points = np.argwhere(tilted_brain).astype(float)
    assert np.abs(estimate.reflect(points) - truth.reflect(points)).max() < 1.5
    assert abs(estimate.angle_degrees - angle) <= 0.5


def test_fill_of_a_symmetric_brain_restores_the_hidden_tissue_and_changes_nothing_else():
    clean, brain = symmetric_brain()
    lesion = np.zeros_like(brain)
    lesion[45:65, 25:42] = True
    image = np.where(lesion, 0.95, clean)[None].astype(np.float32)
    region = lesion.copy()
    out = fill_healthy(image, brain, lesion, region)[0]
    assert np.array_equal(out[~region], image[0][~region])
    assert np.abs(out[region] - clean[region]).mean() < 0.02  # the mirror is exact here; blend and gain barely move it
    assert local_std(out)[region].mean() > 0.7 * local_std(clean)[region].mean()


def test_fill_where_the_mirror_is_lesion_too_is_textured_not_flat():
    clean, brain = symmetric_brain(seed=1)
    lesion = np.zeros_like(brain)
    lesion[50:64, 40:72] = True  # across the midline: the mirror lands in the lesion
    image = np.where(lesion, 0.95, clean)[None].astype(np.float32)
    out = fill_healthy(image, brain, lesion, lesion)[0]
    healthy = brain & (distance_transform_edt(~lesion) > 4) & (distance_transform_edt(brain) > 3)
    assert abs(out[lesion].mean() - clean[healthy].mean()) < 2 * clean[healthy].std()
    assert np.median(local_std(out)[lesion]) > 0.7 * np.median(local_std(clean)[healthy])
    assert out[lesion].max() < 0.9  # no lesion copied in


def test_removal_severity_is_the_removed_volume_fraction_taken_from_the_border():
    data = synthetic_imageset(n=3, size=64, seed=2)
    edit = TumourRemove(fraction=(0.2, 1.0))
    edit.name = "remove"
    for severity in range(1, 6):
        out = edit.apply(data, severity, seed=0)
        for i in range(len(data)):
            before = data.labels[i, 0].numpy() > 0
            after = out.data.labels[i, 0].numpy() > 0
            wanted = edit.parameters(severity)["fraction_removed"]
            assert (before & ~after).sum() == round(wanted * before.sum())
            assert not (after & ~before).any()
            if 0 < after.sum() < before.sum():  # the part kept is the inside, not a slab
                depth = distance_transform_edt(before)
                assert depth[after].mean() > depth[before & ~after].mean() + 1


def test_peel_is_exact_and_ordered_by_depth():
    lesion = np.zeros((40, 40), bool)
    lesion[8:32, 10:30] = True
    rng = np.random.default_rng(0)
    for fraction in (0.0, 0.3, 0.7, 1.0):
        removed = peel(lesion, fraction, np.random.default_rng(0))
        assert removed.sum() == round(fraction * lesion.sum()) and not (removed & ~lesion).any()
    assert np.array_equal(peel(lesion, 0.5, rng), peel(lesion, 0.5, np.random.default_rng(0)))


def brain_edge_set():
    """Synthetic items whose lesion touches the brain's edge (the tumour is moved out to the rim)."""
    data = synthetic_imageset(n=3, size=64, seed=4)
    labels = data.labels.clone()
    labels = torch.roll(labels, shifts=14, dims=-1)
    labels &= data.brain_masks.long()
    return data.with_images(data.images, labels)


@pytest.mark.parametrize("edit", [TumourResize(scale=(1.15, 1.6)), TumourMove(distance=(0.05, 0.35)),
                                  TumourRemove(), TumourResize(scale=(0.85, 0.4))], ids=["grow", "move", "remove",
                                                                                         "shrink"])
def test_edits_stay_inside_the_brain_and_are_deterministic(edit):
    edit.name = type(edit).__name__
    data = brain_edge_set()
    for severity in (1, 5):
        first, second = edit.apply(data, severity, seed=3), edit.apply(data, severity, seed=3)
        assert torch.equal(first.data.images, second.data.images)
        assert torch.equal(first.data.labels, second.data.labels)
        outside = ~data.brain_masks
        assert not (first.data.labels.gt(0) & outside).any()
        assert torch.equal(first.data.images[outside], data.images[outside])


def test_grown_tumour_keeps_its_compartments_nested():
    data = synthetic_imageset(n=3, size=64, seed=6)
    grow = TumourResize(scale=(1.15, 1.6))
    grow.name = "grow"
    labels = grow.apply(data, 5, seed=0).data.labels[:, 0].numpy()
    for label in labels:
        if (label > 0).any():
            core, enhancing = label == 1, label == 3
            outer = distance_transform_edt(label > 0)
            # the necrotic core lies deeper in the lesion than the enhancing rim, and the rim deeper than oedema
            assert outer[core].mean() > outer[enhancing].mean() > outer[label == 2].mean()


def test_texture_swap_takes_another_subjects_tumour_texture_at_the_items_own_brightness():
    from perturbations.morphology import TumourTextureSwap

    data = synthetic_imageset(n=2, size=64, seed=8)
    images = data.images.clone()
    oedema = data.labels[1, 0] == 2
    checker = torch.from_numpy((np.indices((64, 64)).sum(0) % 2).astype(np.float32))
    images[1, 0] = torch.where(oedema, 0.5 + 0.3 * checker, images[1, 0])  # a donor texture nothing else has
    data = data.with_images(images, data.labels)
    swap = TumourTextureSwap()
    swap.name = "texture"
    out = swap.apply(data, 5, seed=0).data.images[0, 0].numpy()
    region = data.labels[0, 0].numpy() == 2
    before = data.images[0, 0].numpy()
    pairs = region[:, 1:] & region[:, :-1]  # horizontal neighbours both in the oedema: the checker's signature
    jump = lambda image: np.abs(np.diff(image, axis=1))[pairs].mean()  # noqa: E731
    assert jump(out) > 0.1 > 3 * jump(before)
    assert abs(np.median(out[region]) - np.median(before[region])) < 0.05
    assert torch.equal(swap.apply(data, 5, seed=0).data.labels, data.labels)


def test_mirror_of_cortex_is_moved_to_the_same_depth_below_the_brains_edge():
    from perturbations.fill import depth_matched

    n = 96
    y, x = np.mgrid[0:n, 0:n].astype(float)
    c = (n - 1) / 2
    half = np.where(x > c, 0.30 * n, 0.40 * n)  # the left hemisphere is wider (a tumour pushes its side out)
    brain = ((y - c) / (0.45 * n)) ** 2 + ((x - c) / half) ** 2 < 1
    depth = distance_transform_edt(brain)
    points = np.argwhere(brain & (x > c) & (depth >= 1) & (depth <= 4) & (np.abs(y - c) < 20))
    mirrored = points.astype(float).copy()
    mirrored[:, 1] = 2 * c - mirrored[:, 1]  # the plain mirror lands deep inside the wider side
    plain = map_coordinates(depth, mirrored.T, order=1)
    matched = map_coordinates(depth, depth_matched(points, mirrored, brain).T, order=1)
    wanted = depth[tuple(points.T)]
    assert np.median(np.abs(plain - wanted)) > 5
    assert np.median(np.abs(matched - wanted)) < 1.0 and np.abs(matched - wanted).max() < 2.5
    deep = np.argwhere(brain & (depth > 20))[:50]
    assert np.allclose(depth_matched(deep, deep.astype(float), brain), deep)  # deep tissue: the mirror as is


def test_a_moved_lesion_brings_its_halo_but_not_the_csf_or_air_beside_it():
    from perturbations.fill import lesion_support

    brain = np.zeros((64, 64), bool)
    brain[8:56, 8:56] = True
    image = np.full((64, 64), 0.45)
    lesion = np.zeros_like(brain)
    lesion[20:30, 20:30] = True
    image[lesion] = 0.9
    image[18:20, 20:30] = 0.75  # unlabelled bright halo above the lesion
    image[30:33, 20:30] = 0.05  # CSF below it
    image += 0.01 * np.random.default_rng(0).standard_normal(image.shape)
    support = lesion_support(image[None], brain, lesion, reach=5)
    assert support[lesion].min() == 1.0 and support[18:20, 22:28].min() == 1.0
    assert support[31:33, 20:30].max() == 0.0 and support[~brain].max() == 0.0
    assert support[40:, :].max() == 0.0


def test_deform_refills_the_part_the_tumour_vacates_with_healthy_tissue_not_stretched_halo():
    from perturbations.morphology import TumourDeform

    data = synthetic_imageset(n=3, size=64, seed=7)
    images = data.images.clone()
    halo = torch.zeros_like(data.labels, dtype=torch.bool)
    for i in range(len(data)):
        lesion = data.labels[i, 0].numpy() > 0
        ring = (distance_transform_edt(~lesion) <= 3) & ~lesion & data.brain_masks[i, 0].numpy()
        halo[i, 0] = torch.from_numpy(ring)
    images = torch.where(halo, torch.tensor(0.8), images)  # an unlabelled bright halo round every lesion
    data = data.with_images(images, data.labels)
    deform = TumourDeform(amplitude=(0.1, 2.0), margin=10)
    deform.name = "deform"
    out = deform.apply(data, 5, seed=1).data
    checked = 0
    for i in range(len(data)):
        before, after = data.labels[i, 0].numpy() > 0, out.labels[i, 0].numpy() > 0
        brain = data.brain_masks[i, 0].numpy()
        vacated = before & ~after & (distance_transform_edt(~after) > 2) & brain
        healthy = data.images[i, 0].numpy()[brain & ~before & ~halo[i, 0].numpy()]
        if vacated.sum() >= 3:
            checked += 1
            assert out.images[i, 0].numpy()[vacated].mean() < np.percentile(healthy, 95) + 0.05, i
    assert checked


def test_fill_texture_follows_the_tissue_nearest_each_part_of_the_hole():
    """The mirrored side has one texture; around the hole the tissue is busy above and smooth below. One gain for
    the whole hole (the old fill) gave both parts the same texture (top / bottom 0.8); the gain now follows the
    nearest tissue."""
    n = 112
    c = (n - 1) / 2
    y, x = np.mgrid[0:n, 0:n].astype(float)
    brain = ((y - c) / (0.45 * n)) ** 2 + ((x - c) / (0.36 * n)) ** 2 < 1
    texture = gaussian_filter(np.random.default_rng(0).standard_normal((n, n)), 1.0)
    amplitude = np.where(x < c, 0.05, np.where(y < c, 0.10, 0.025)) / texture.std()
    image = np.where(brain, 0.45 + amplitude * texture, 0.0)
    lesion = np.zeros_like(brain)
    m = int(c)
    lesion[m - 20:m + 20, m + 10:m + 30] = True
    out = fill_healthy(np.where(lesion, 0.95, image)[None], brain, lesion, lesion)[0]
    top = np.median(local_std(out)[m - 17:m - 5, m + 13:m + 27])
    bottom = np.median(local_std(out)[m + 5:m + 17, m + 13:m + 27])
    smooth_tissue = np.median(local_std(image)[m + 5:m + 17, m + 33:m + 38])
    assert top > 1.3 * bottom, (top, bottom)
    assert bottom < 2.0 * smooth_tissue, (bottom, smooth_tissue)
    assert np.array_equal(out[~lesion], image[~lesion])


def test_a_large_hole_the_mirror_covers_only_in_part_gets_exemplar_copies_everywhere():
    """Where the mirror lands in the lesion, exemplar copies fill in; their shortest shift follows the part still
    to fill (the old one, the whole hole's diameter, left 725 voxels of this hole to a flat nearest-value patch)."""
    from perturbations.fill import fill_sources

    image, brain = symmetric_brain()
    lesion = np.zeros_like(brain)
    lesion[20:92, 18:56] = True
    lesion[45:70, 56:70] = True  # across the midline: part of the mirror is lesion
    lesion &= brain
    data = np.where(lesion, 0.95, image)[None]
    _, ids = fill_sources(data, brain, lesion, lesion)
    assert (ids[lesion] == 0).mean() > 0.6 and (ids[lesion] >= 0).all()
    out = fill_healthy(data, brain, lesion, lesion)[0]
    copied = lesion & (ids > 0) & (distance_transform_edt(lesion) > 3)
    healthy = brain & ~lesion & (distance_transform_edt(brain) > 3)
    assert np.median(local_std(out)[copied]) > 0.6 * np.median(local_std(image)[healthy])


def test_exemplar_copies_leave_unlabelled_hyperintensities_behind():
    """Bright unlabelled spots in healthy tissue (periventricular caps, small FLAIR lesions) are not copied into the
    fill: a copied one reads as a new lesion. Spots every 14 voxels: any large copy of the old fill held some."""
    from perturbations.fill import fill_sources

    image, brain = symmetric_brain(seed=3)
    spots = np.zeros_like(brain)
    spots[5::14, 5::14] = True
    spots = binary_dilation(spots) & brain
    lesion = np.zeros_like(brain)
    lesion[40:72, 38:74] = True  # across the midline: exemplar copies fill it
    spots &= ~binary_dilation(lesion, iterations=3)
    data = np.where(lesion, 0.95, np.where(spots, 0.9, image))[None]
    source, ids = fill_sources(data, brain, lesion, lesion)
    assert (ids[lesion] > 0).all()
    assert source[0][lesion].max() < np.median(image[brain]) + 0.15  # the old fill copied spots in at 0.75


def test_lesion_like_brightness_needs_every_channel_where_the_lesion_is_bright():
    """A cap bright in both channels is lesion-like; CSF bright only in a T2-like channel, dark in FLAIR, is not."""
    from perturbations.fill import brighter_than_typical

    rng = np.random.default_rng(0)
    flair, t2 = 0.45 + 0.02 * rng.standard_normal((2, 40, 40))
    lesion = np.zeros((40, 40), bool)
    lesion[5:10, 5:10] = True
    flair[lesion], t2[lesion] = 0.9, 0.9
    flair[20:23, 20:23], t2[20:23, 20:23] = 0.85, 0.85  # periventricular cap
    flair[30:33, 10:13], t2[30:33, 10:13] = 0.05, 0.95  # CSF
    healthy = ~binary_dilation(lesion, iterations=2)
    found = brighter_than_typical(np.stack([flair, t2]), healthy, lesion, grow=0)
    assert found[20:23, 20:23].all() and not found[30:33, 10:13].any()
    assert not brighter_than_typical(np.stack([flair, t2]), healthy, np.zeros_like(lesion)).any()


def test_exemplar_copies_take_sulci_but_not_ventricles():
    """A copied ventricle reads as a new cavity in white matter: fluid wider than a sulcus is not copied, thin sulci
    are (the texture of cortex needs them)."""
    from perturbations.fill import fill_sources, wide_csf

    image, brain = symmetric_brain(seed=4)
    fluid = np.zeros_like(brain)
    fluid[8::16, 8::16] = True
    fluid = binary_dilation(fluid, iterations=2) & brain  # 5x5 ventricles every 16 voxels
    lesion = np.zeros_like(brain)
    lesion[40:72, 38:74] = True
    fluid &= ~binary_dilation(lesion, iterations=3)
    sulcus = np.zeros_like(brain)
    sulcus[20:30, 80] = True
    data = np.where(lesion, 0.95, np.where(fluid | sulcus, 0.02, image))[None]
    healthy = brain & ~binary_dilation(lesion, iterations=2)
    wide = wide_csf(data, healthy, lesion)
    assert wide[fluid].all() and not wide[sulcus].any()
    source, ids = fill_sources(data, brain, lesion, lesion)
    assert (ids[lesion] > 0).all()
    assert source[0][lesion].min() > np.median(image[brain]) - 0.2  # the old fill copied ventricles in
