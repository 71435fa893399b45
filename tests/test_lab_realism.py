"""Realism of the tumour edits: the measurement itself on a made-up case, and (slow) the targets on real patients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.lab.realism import detector_auc, local_std, measure, slice_numbers
from perturbations.synthetic import synthetic_imageset


def test_local_std_matches_a_direct_window_computation():
    image = np.random.default_rng(0).random((20, 20))
    direct = np.std(image[5:10, 7:12])
    assert abs(local_std(image)[7, 9] - direct) < 1e-9


def test_a_flat_fill_is_caught_and_a_copied_texture_is_not():
    data = synthetic_imageset(n=1, size=64, seed=1)
    image, label = data.images[0, 0].numpy().astype(float), data.labels[0, 0].numpy()
    brain = data.brain_masks[0, 0].numpy()
    noisy = image + 0.05 * np.random.default_rng(0).standard_normal(image.shape) * brain
    lesion = label > 0
    flat = np.where(lesion, np.median(noisy[brain & ~lesion]), noisy)
    healthy_copy = np.where(lesion, np.roll(noisy, 20, axis=0), noisy)  # tissue from elsewhere, same texture
    empty = np.zeros_like(label)
    flat_ratio = slice_numbers(flat, label, empty, brain, 6)["local_std"]
    copy_ratio = slice_numbers(healthy_copy, label, empty, brain, 6)["local_std"]
    assert flat_ratio < 0.5 and copy_ratio > 0.8, (flat_ratio, copy_ratio)


def test_detector_auc_is_half_for_identical_classes_and_one_for_separable_ones():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 3))
    groups = [f"p{i % 6}" for i in range(120)]
    same = detector_auc(list(x), [i % 2 for i in range(120)], groups)
    apart = detector_auc(list(x + np.arange(120)[:, None] % 2 * 5), [i % 2 for i in range(120)], groups)
    assert abs(same - 0.5) < 0.15 and apart > 0.99


@pytest.mark.slow
def test_real_patients_meet_the_realism_targets_for_removal():
    from perturbations.morphology import TumourRemove
    from perturbations.real_patients import real_tumour_slices
    from tests.real_data import shared_data

    slices = real_tumour_slices(shared_data("brats2015-deepmedic"), per_patient=3)
    edit = TumourRemove()
    edit.name = "tumour_remove"
    for severity in (3, 5):
        numbers = measure(edit, slices, severity)
        assert numbers["outside_brain"] == 0
        assert numbers["local_std_p10"] >= 0.7 and numbers["seam_p90"] <= 1.8, numbers
    assert torch.equal(edit.apply(slices, 3, seed=0).data.images, edit.apply(slices, 3, seed=0).data.images)


def test_depth_matched_controls_lie_as_deep_below_the_brains_edge_as_the_filled_centres():
    from scipy.ndimage import distance_transform_edt

    from benchmark.lab.realism import matched_centres

    brain = np.zeros((80, 80), bool)
    brain[5:75, 5:75] = True
    depth = distance_transform_edt(brain)
    pool = brain & (np.arange(80)[None, :] > 45)  # controls only on the right
    centres = [np.array([40, 8]), np.array([40, 20]), np.array([12, 30])]
    picked = matched_centres(centres, pool, depth, np.random.default_rng(0))
    assert len(picked) == 3 and all(pool[tuple(p)] for p in picked)
    assert all(abs(depth[tuple(p)] - depth[tuple(c)]) <= 2 for p, c in zip(picked, centres, strict=True))
    assert matched_centres(centres, np.zeros_like(pool), depth) == []
