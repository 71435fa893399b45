"""Real vessel masks (../shared/data/vessels; skipped without it) and the vessel phantom through the data
stage, and the renderer's calibration against the real TOF crop."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from benchmark.data.prepare import prepare_data
from benchmark.data.vessels.masks import read_vessel_mask
from benchmark.data.vessels.rasterise import rasterise_tree
from benchmark.data.vessels.sources import RenderedMasks, find_vessel_cases, phantom_tree
from benchmark.errors import DataError
from tests.real_data import shared_data
from tests.test_data_readers import data_config

TOPCOW_MAP = {value: int(value > 0) for value in range(16)}


def _vessels_config(tmp_path: Path, *overrides: str):
    return data_config("data=vessels", f"data.root={shared_data('vessels')}", f"data.cache_dir={tmp_path / 'c'}",
                       *overrides)


def test_same_subject_groups_leave_one_mask_per_person(tmp_path: Path) -> None:
    cfg = _vessels_config(tmp_path)
    source = RenderedMasks(masks=list(cfg.vessels.masks), same_subject=[list(g) for g in cfg.vessels.same_subject])
    files = source.mask_files(Path(str(cfg.root)))
    names = [p.relative_to(Path(str(cfg.root))).as_posix() for p in files]
    assert len(files) == 29  # 39 masks, 10 of them further masks of a person already in
    assert "xunfei2022-kdxf/KDXF_001.nii.gz" in names and not any("TubeTK" in n for n in names)
    assert sum("topcow_mr_whole_001" in n for n in names) == 1
    assert all_masks_count(cfg) == 39


def all_masks_count(cfg) -> int:
    return len(RenderedMasks(masks=list(cfg.vessels.masks)).mask_files(Path(str(cfg.root))))


def test_topcow_multiclass_roi_needs_the_map() -> None:
    path = shared_data("vessels", "topcow-eval-roi", "topcow_mr_roi_014.nii.gz")
    with pytest.raises(DataError) as error:
        read_vessel_mask(path)
    assert str(path) in str(error.value) and "15: 1" in str(error.value)
    mask = read_vessel_mask(path, TOPCOW_MAP)
    assert mask.data.dtype == bool and mask.data.sum() == 27290  # every artery class (SOURCE.txt)


def test_float64_manual_mask_reads_as_binary() -> None:
    """VesselVerse's manual IXI020 mask is stored as float64 0/1: accepted, voxel count as SOURCE.txt says."""
    mask = read_vessel_mask(shared_data("vessels", "vesselverse", "IXI_manual", "IXI020-Guys-0700-MRA-TOT.nii.gz"))
    assert mask.data.sum() == 81114
    assert np.allclose(mask.spacing, (0.4688, 0.4687, 0.8), atol=1e-3)


@pytest.mark.slow
def test_real_circle_of_willis_masks_flow_through_prepare(tmp_path: Path) -> None:
    cfg = _vessels_config(tmp_path, "data.vessels.masks=[topcow-eval-roi/*.nii.gz]", "data.size=[96,96]",
                          "data.fov_mm=null", "data.slices.per_subject=4")
    data = prepare_data(cfg, seed=0)
    ids = sorted(data.train.subject_ids[:1] + data.val.subject_ids[:1] + data.test.subject_ids[:1])
    assert ids == [f"topcow-eval-roi_topcow_mr_roi_{n}" for n in ("003", "014", "023")]
    for split in (data.train, data.test):
        assert set(split.labels.unique().tolist()) == {0, 1} and split.spacing == pytest.approx((0.2969, 0.2969),
                                                                                                abs=1e-3)
        vessel = split.images[split.labels.bool()].median()
        tissue = split.images[~split.labels.bool() & split.brain_masks].median()
        assert vessel > 3 * tissue


@pytest.mark.slow
def test_vessel_phantom_flows_through_prepare_and_is_seeded(tmp_path: Path) -> None:
    small = ["data.vessels.n_subjects=3", "data.vessels.box_mm=[[-30,30],[-40,20],[-34,-10]]", "data.size=[96,96]",
             "data.fov_mm=null", "data.slices.per_subject=4", f"data.cache_dir={tmp_path / 'c'}"]
    data = prepare_data(data_config("data=vessel_phantom", *small), seed=0)
    again = prepare_data(data_config("data=vessel_phantom", *small, "data.prepared_cache=false"), seed=0)
    other = prepare_data(data_config("data=vessel_phantom", *small, "seed=1", "data.vessels.seed=1"), seed=0)
    assert data.fingerprint == again.fingerprint != other.fingerprint
    _, cases = find_vessel_cases(data_config("data=vessel_phantom", *small), ("tof",))
    mask = nib.load(cases[0].label)
    tree = phantom_tree(cases[0])
    drawn = rasterise_tree(tree, mask.shape, mask.affine).mask
    assert np.array_equal(drawn, np.asarray(mask.dataobj) > 0)  # the stored tree is the one in the label
    assert data.test.modalities == ("tof",) and data.test.spacing == (0.5, 0.5)
    assert set(data.train.labels.unique().tolist()) == {0, 1}
    assert data.train.labels.flatten(1).any(dim=1).all()


@pytest.mark.slow
def test_calibration_within_a_factor_1_5(tmp_path: Path) -> None:
    from benchmark.data.vessels.calibrate import TOLERANCE, calibrate

    rows = calibrate(tmp_path, shared_data("vessels", "topcow-tof-crop", "example_input_dummy_mra.mha"),
                     shared_data("vessels", "topcow-eval-roi"), n_phantom=2)
    assert {row["figure"] for row in rows} == {"contrast", "noise", "edge_width_mm"}
    assert all(1 / TOLERANCE <= float(row["ratio"]) <= TOLERANCE for row in rows), rows
    assert (tmp_path / "calibration.png").stat().st_size > 10_000
