"""Slice selection (2D): the brain fraction is measured on the study's field of view, `policy: mix` gives the
asked share of healthy slices, and `data_summary.json` says what was asked and taken and why a policy
could not be met; a subject that gives no slice is named, not counted."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy import ndimage

from benchmark.data.prepare import prepare_data
from benchmark.data.slices import field_of_view_brain, select_slices
from benchmark.errors import DataError
from tests import niftis
from tests.real_data import shared_data
from tests.test_data_readers import data_config

GRID = (96, 96, 20)  # a stored in-plane grid much wider than the brain, as BraTS' 240 x 240 at 1 mm
BRAIN_RADIUS = 20  # voxels: 14 % of the stored 96 x 96 slice, 55 % of a 48 x 48 field of view
VIEW = ["data.size=[48,48]", "data.fov_mm=null", "data.slices.per_subject=8", "data.slices.min_brain_fraction=0.3"]


def write_wide_cases(root: Path, tumour_slices: list[range]) -> Path:
    """BraTS 2023 cases on the wide grid: a cylinder of brain through every slice, tumour in `tumour_slices`
    (one range per case; an empty range is a tumour-free subject)."""
    x, y = np.indices(GRID[:2]) - (np.array(GRID[:2])[:, None, None] - 1) / 2
    disc = x**2 + y**2 <= BRAIN_RADIUS**2
    core = x**2 + (y - 6) ** 2 <= 25
    rng = np.random.default_rng(0)
    for i, slices in enumerate(tumour_slices):
        image = np.zeros(GRID, np.float32)
        image[disc] = 1.0
        image += 0.05 * rng.random(GRID, dtype=np.float32) * disc[..., None]
        labels = np.zeros(GRID, np.uint8)
        for z in slices:
            labels[core, z] = 2
        image[labels > 0] += 0.5
        case = root / f"case{i}"
        niftis.save(image, case / f"case{i}-t2f.nii.gz", spacing=(1.0, 1.0, 1.0))
        niftis.save(labels, case / f"case{i}-seg.nii.gz", spacing=(1.0, 1.0, 1.0))
    return root


def test_field_of_view_brain_is_the_crop_the_slices_get() -> None:
    brain = np.zeros((3, 40, 50), bool)
    brain[:, 5:25, 10:45] = True
    centre = np.array([15.0, 27.5]) * 1.5
    seen = field_of_view_brain(brain, (1.5, 1.5), (32, 32), centre)
    zoomed = ndimage.zoom(brain.astype(np.uint8), (1, 1.5, 1.5), order=0, mode="nearest", grid_mode=True)
    expected = zoomed[:, 7:39, 25:57].astype(bool)  # 32 pixels from round(centre - 16): centre (22.5, 41.25)
    assert seen.shape == (3, 32, 32)
    np.testing.assert_array_equal(seen, expected)
    padded = field_of_view_brain(brain, (1.0, 1.0), (64, 64), np.array([15.0, 27.5]))
    assert padded.sum() == brain.sum() and padded.shape == (3, 64, 64)  # padding adds no brain


def test_mix_takes_half_healthy_slices_when_the_brain_fills_the_view(tmp_path: Path) -> None:
    root = write_wide_cases(tmp_path / "wide", [range(0, 10)] * 3)
    cfg = data_config("data=brats", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", *VIEW)
    data = prepare_data(cfg, seed=0)
    for split in (data.train, data.val, data.test):
        assert len(split) == 8 and int(split.tumour_present.sum()) == 4
    report = data.summary["slice_selection"]
    assert report["min_brain_fraction"] == 0.3 and "48x48" in report["brain_fraction_measured_on"]
    assert report["splits"]["train"] == {"asked": {"tumour": 4, "healthy": 4}, "taken": {"tumour": 4, "healthy": 4},
                                         "policy_met": True, "shortfalls": [], "subjects_without_slices": []}


def test_too_few_healthy_slices_are_reported_with_the_reason(tmp_path: Path, caplog) -> None:
    root = write_wide_cases(tmp_path / "wide", [range(0, 18)] * 3)  # 2 tumour-free slices per subject
    cfg = data_config("data=brats", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", *VIEW)
    with caplog.at_level(logging.WARNING):
        data = prepare_data(cfg, seed=0)
    train = data.summary["slice_selection"]["splits"]["train"]
    assert train["asked"] == {"tumour": 4, "healthy": 4} and train["taken"] == {"tumour": 6, "healthy": 2}
    assert not train["policy_met"]
    assert train["shortfalls"] == [f"{data.train.subject_ids[0]}: 2 of 4 healthy slices (only 2 tumour-free slices "
                                   "have >= 30% brain in the field of view)"]
    assert "asked {'tumour': 4, 'healthy': 4} slices and took {'tumour': 6, 'healthy': 2}" in caplog.text


def test_a_tumour_free_subject_without_slices_is_named_and_not_counted(tmp_path: Path, caplog) -> None:
    root = write_wide_cases(tmp_path / "wide", [range(0, 10)] * 5 + [range(0)])
    cfg = data_config("data=brats", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", *VIEW,
                      "data.slices.policy=tumour", "data.split={train: 1, val: 1, test: 1}")
    with caplog.at_level(logging.WARNING):
        data = prepare_data(cfg, seed=0)
    report = data.summary["slice_selection"]["splits"]
    empty = [(split, entry) for split, entry in report.items() if entry["subjects_without_slices"]]
    assert [entry["subjects_without_slices"] for _, entry in empty] == [["case5"]]
    split = empty[0][0]
    assert "case5" not in data.summary["splits"][split]["subject_ids"]
    assert data.summary["splits"][split]["subjects"] == len(set(getattr(data, split).subject_ids))
    assert any(s == "case5: 0 of 8 tumour slices (only 0 slices hold tumour)" for s in report[split]["shortfalls"])
    assert "gave no slice" in caplog.text and "case5" in caplog.text


def test_an_empty_split_names_why_each_subject_gave_no_slice(tmp_path: Path) -> None:
    root = write_wide_cases(tmp_path / "wide", [range(0)] * 3)
    cfg = data_config("data=brats", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", *VIEW,
                      "data.slices.policy=tumour")
    with pytest.raises(DataError, match=r"the train split is empty after slice selection \(data.slices.policy=tumour"
                       r".*case\d: 0 of 8 tumour slices \(only 0 slices hold tumour\)"):
        prepare_data(cfg, seed=0)


@pytest.mark.parametrize("policy, asked", [("brain", {"brain": 5}), ("tumour", {"tumour": 5}),
                                           ("mix", {"tumour": 2, "healthy": 3})])
def test_selection_counts_follow_the_pools(policy: str, asked: dict[str, int]) -> None:
    fraction = np.array([0.0, 0.1, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.2, 0.0])
    tumour = np.array([0, 0, 0, 1, 1, 1, 0, 0, 1, 0], bool)  # slice 8 holds tumour with little brain
    cfg = OmegaConf.create({"policy": policy, "per_subject": 5, "tumour_fraction": 0.4, "min_brain_fraction": 0.3})
    chosen = select_slices(fraction, tumour, cfg, np.random.default_rng(0))
    assert chosen.asked == asked and chosen.available == {"tumour": 4, "healthy": 3, "brain": 6}
    assert chosen.taken["tumour"] == int(tumour[chosen.indices].sum())
    assert chosen.indices == sorted(set(chosen.indices))
    if policy == "brain":
        assert set(chosen.indices) <= {2, 3, 4, 5, 6, 7}
    if policy == "mix":
        assert chosen.taken == {"tumour": 2, "healthy": 3} and set(chosen.indices) >= {2, 6, 7}


@pytest.mark.slow
def test_real_brats_2015_mix_takes_half_healthy_slices(tmp_path: Path) -> None:
    root = shared_data("brats2015-deepmedic")
    cfg = data_config("data=deepmedic", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}")
    data = prepare_data(cfg, seed=0)
    report = data.summary["slice_selection"]["splits"]
    for name, split in (("train", data.train), ("val", data.val), ("test", data.test)):
        assert int(split.tumour_present.sum()) == len(split) // 2, name
        assert report[name]["policy_met"] and report[name]["taken"] == report[name]["asked"]
