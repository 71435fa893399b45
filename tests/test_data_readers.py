"""Readers and preprocessing on small NIfTI datasets in each layout, read through prepare_data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from benchmark.cli import CONFIG_DIR
from benchmark.data.prepare import prepare_data
from benchmark.data.readers import find_brats_cases, load_case
from benchmark.errors import DataError
from tests import niftis


def data_config(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides)).data


SMALL = ["data.size=[24,24]", "data.fov_mm=null", "data.slices.per_subject=4", "data.slices.min_brain_fraction=0.05"]


@pytest.mark.parametrize("version", [2021, 2023])
def test_brats_labels_map_onto_our_convention(tmp_path: Path, version: int) -> None:
    root = niftis.write_brats(tmp_path, n_cases=1, version=version)
    case = find_brats_cases(root, ["flair", "t1ce"])[0]
    image, labels, spacing, brain = load_case(case, ["flair", "t1ce"])
    assert brain is None  # no brain mask file: derived later
    expected_image, expected_labels = niftis.synthetic_case(0)
    assert image.shape == (2, *niftis.SHAPE)
    np.testing.assert_allclose(image[0], expected_image * 1.3, rtol=1e-6)  # flair is the 4th file
    np.testing.assert_array_equal(labels, expected_labels)
    assert spacing == pytest.approx(niftis.SPACING)


@pytest.mark.parametrize(
    ("source", "writer"),
    [("brats", niftis.write_brats), ("msd", niftis.write_msd), ("folder", niftis.write_folder)],
)
def test_every_layout_prepares_the_same_data(tmp_path: Path, source: str, writer) -> None:
    root = writer(tmp_path / source, n_cases=5)
    modality = "image" if source == "folder" else "flair"
    cfg = data_config(f"data={source}", f"data.root={root}", f"data.modality={modality}", *SMALL)
    data = prepare_data(cfg, seed=3)
    subjects = [set(s.subject_ids) for s in (data.train, data.val, data.test)]
    assert sum(len(s) for s in subjects) == 5 and not (subjects[0] & subjects[1] or subjects[1] & subjects[2])
    for split in (data.train, data.val, data.test):
        assert split.images.shape[1:] == (1, 24, 24)
        assert float(split.images.min()) >= 0.0 and float(split.images.max()) <= 1.0
        assert set(split.labels.unique().tolist()) <= {0, 1, 2, 3}
        assert not (split.labels > 0)[~split.brain_masks].any()
    # the labels survive reading in every layout: all three compartments present somewhere
    assert set(data.train.labels.unique().tolist()) == {0, 1, 2, 3}


def test_split_and_slices_are_deterministic_from_the_seed(tmp_path: Path) -> None:
    root = niftis.write_brats(tmp_path, n_cases=6)
    cfg = data_config("data=brats", f"data.root={root}", *SMALL)
    first, again, other = prepare_data(cfg, seed=1), prepare_data(cfg, seed=1), prepare_data(cfg, seed=2)
    assert first.test.subject_ids == again.test.subject_ids
    assert torch.equal(first.train.images, again.train.images)
    assert (first.test.subject_ids, first.train.slice_indices) != (other.test.subject_ids, other.train.slice_indices)


def test_3d_mode_keeps_volumes(tmp_path: Path) -> None:
    root = niftis.write_brats(tmp_path, n_cases=3)
    data = prepare_data(data_config("data=brats", f"data.root={root}", "data.mode=3d", "data.size=[16,24,24]",
                                     "data.fov_mm=null"), 0)
    assert data.train.images.shape[1:] == (1, 16, 24, 24) and data.train.spatial_dims == 3
    assert data.train.slice_indices == [-1] * len(data.train)
    assert data.train.spacing == pytest.approx((2.0, 1.5, 1.5))


def test_resampling_changes_the_grid(tmp_path: Path) -> None:
    root = niftis.write_brats(tmp_path, n_cases=3)
    cfg = data_config("data=brats", f"data.root={root}", "data.resample_mm=3.0", "data.mode=3d", "data.size=[8,8,8]",
                      "data.fov_mm=null")
    data = prepare_data(cfg, 0)
    assert data.train.spacing == (3.0, 3.0, 3.0)


def test_tumour_policy_takes_only_tumour_slices(tmp_path: Path) -> None:
    root = niftis.write_brats(tmp_path, n_cases=3)
    data = prepare_data(data_config("data=brats", f"data.root={root}", "data.slices.policy=tumour", *SMALL), 0)
    assert bool(data.train.tumour_present.all())


def test_too_few_subjects_is_an_error(tmp_path: Path) -> None:
    root = niftis.write_brats(tmp_path, n_cases=2)
    with pytest.raises(DataError, match="3 at least"):
        prepare_data(data_config("data=brats", f"data.root={root}", *SMALL), 0)
