"""Vessel data through the ordinary data stage: a user's TOF volumes with vessel masks (data=tof), and the
bad inputs refused with one paragraph naming the file (grid mismatch, empty mask, 0/255 and multiclass
masks without a map, soft masks, a 4D TOF); float 0/1 masks are accepted."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from benchmark.data.prepare import prepare_data
from benchmark.data.vessels.anatomy import TISSUES
from benchmark.data.vessels.masks import binary_vessels, read_tof, read_vessel_mask
from benchmark.data.vessels.tof import TofParameters, render_tof
from benchmark.errors import ConfigError, DataError
from tests.cli import run_cli
from tests.test_data_readers import data_config

SHAPE = (32, 32, 16)
SPACING = (0.5, 0.5, 0.8)
SMALL = ["data.size=[32,32]", "data.fov_mm=null", "data.slices.per_subject=3", "data.slices.min_brain_fraction=0.0"]


def _save(array: np.ndarray, path: Path, spacing: tuple[float, ...] = SPACING) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.diag([*spacing, 1.0])), path)
    return path


def vessel_mask(seed: int) -> np.ndarray:
    """A vertical artery with one side branch at a seeded height (bool, SHAPE)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(SHAPE, bool)
    x, y = np.indices(SHAPE[:2])
    centre = rng.integers(12, 20, 2)
    mask[((x - centre[0]) ** 2 + (y - centre[1]) ** 2 <= 6)] = True
    z = int(rng.integers(4, 12))
    mask[centre[0]:, centre[1] - 1:centre[1] + 2, z:z + 2] = True
    return mask


def write_tof_dataset(root: Path, n: int = 3) -> Path:
    """`<subject>/tof.nii.gz` (rendered from the mask: a head of grey matter in air) and
    `<subject>/vessels.nii.gz` (uint8 0/1)."""
    x, y = np.indices(SHAPE[:2]) - 15.5
    head = np.repeat(((x / 15) ** 2 + (y / 14) ** 2 <= 1)[:, :, None], SHAPE[2], axis=2)
    for index in range(n):
        mask = vessel_mask(index) & head
        tissues = {name: np.zeros(SHAPE, np.float32) for name in TISSUES}
        tissues["gm"][head] = 1.0
        tof = render_tof(mask.astype(np.float32), SPACING, tissues, np.random.default_rng(index),
                         params=TofParameters(coil_variation=0.0))
        _save(tof * 800.0, root / f"sub{index}" / "tof.nii.gz")  # scanner units
        _save(mask.astype(np.uint8), root / f"sub{index}" / "vessels.nii.gz")
    return root


def _prepare(root: Path, tmp_path: Path, *overrides: str):
    cfg = data_config("data=tof", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", *SMALL, *overrides)
    return prepare_data(cfg, seed=0)


def test_user_tof_with_masks_flows_through_prepare(tmp_path: Path) -> None:
    data = _prepare(write_tof_dataset(tmp_path / "d"), tmp_path)
    for split in (data.train, data.val, data.test):
        assert split.modalities == ("tof",)
        assert set(split.labels.unique().tolist()) == {0, 1}
        assert split.labels.flatten(1).any(dim=1).all()  # slices hold vessel (policy: tumour)
        vessel = split.images[split.labels.bool()].mean()
        tissue = split.images[~split.labels.bool() & split.brain_masks].mean()
        assert vessel > 2 * tissue  # the TOF contrast survives normalisation
    assert data.summary["source"] == "vessels"


def test_float_zero_one_masks_are_accepted(tmp_path: Path) -> None:
    root = write_tof_dataset(tmp_path / "d")
    for index in range(3):
        path = root / f"sub{index}" / "vessels.nii.gz"
        _save(np.asarray(nib.load(path).dataobj).astype(np.float64), path)
    data = _prepare(root, tmp_path)
    assert set(data.test.labels.unique().tolist()) == {0, 1}


@pytest.mark.parametrize("values, message", [
    ((0, 255), "data.label_map='{0: 0, 255: 1}'"),
    ((0, 4, 6, 11), "data.label_map='{0: 0, 4: 1, 6: 1, 11: 1}'"),
])
def test_masks_other_than_zero_one_need_a_map(tmp_path: Path, values: tuple[int, ...], message: str) -> None:
    root = write_tof_dataset(tmp_path / "d")
    mask = vessel_mask(1)
    labelled = np.zeros(SHAPE, np.uint8)
    for k, value in enumerate(values[1:]):
        labelled[mask & (np.indices(SHAPE)[2] % len(values[1:]) == k)] = value
    bad = _save(labelled, root / "sub1" / "vessels.nii.gz")
    with pytest.raises(DataError) as error:
        _prepare(root, tmp_path)
    assert str(bad) in str(error.value) and message in str(error.value)
    mapping = "{" + ", ".join(f"{v}: {int(v > 0)}" for v in sorted({*values, 1})) + "}"  # the other masks hold 1
    data = _prepare(root, tmp_path, f"data.label_map={mapping}")
    assert set(data.train.labels.unique().tolist()) | set(data.test.labels.unique().tolist()) == {0, 1}


def test_map_missing_a_value_is_refused(tmp_path: Path) -> None:
    root = write_tof_dataset(tmp_path / "d")
    _save(vessel_mask(2).astype(np.uint8) * 7, root / "sub2" / "vessels.nii.gz")
    with pytest.raises(DataError, match=r"values \[7\], which data.label_map"):
        _prepare(root, tmp_path, "data.label_map={0: 0, 1: 1}")


@pytest.mark.parametrize("damage, message", [
    ("empty", "the vessel mask is empty"),
    ("soft", "non-integer values (e.g. 0.3)"),
    ("grid", "does not match"),
    ("affine", "affine"),
    ("tof4d", "a TOF image must be a 3D volume, got shape (32, 32, 16, 2)"),
])
def test_bad_input_names_the_file(tmp_path: Path, damage: str, message: str) -> None:
    root = write_tof_dataset(tmp_path / "d")
    case = root / "sub0"
    if damage == "empty":
        bad = _save(np.zeros(SHAPE, np.uint8), case / "vessels.nii.gz")
    elif damage == "soft":
        bad = _save(vessel_mask(0) * np.float32(0.3), case / "vessels.nii.gz")
    elif damage == "grid":
        bad = _save(np.ones((30, 32, 16), np.uint8), case / "vessels.nii.gz")
    elif damage == "affine":
        bad = _save(vessel_mask(0).astype(np.uint8), case / "vessels.nii.gz", spacing=(0.6, 0.5, 0.8))
    else:
        tof = np.asarray(nib.load(case / "tof.nii.gz").dataobj)
        bad = _save(np.stack([tof, tof], axis=-1), case / "tof.nii.gz")
    with pytest.raises(DataError) as error:
        _prepare(root, tmp_path)
    assert str(bad) in str(error.value) and message in str(error.value)


@pytest.mark.slow
def test_cli_refuses_a_4d_tof_with_one_paragraph_and_exit_2(tmp_path: Path) -> None:
    root = write_tof_dataset(tmp_path / "d")
    tof = np.asarray(nib.load(root / "sub1" / "tof.nii.gz").dataobj)
    bad = _save(np.stack([tof] * 3, axis=-1), root / "sub1" / "tof.nii.gz")
    result = run_cli("data=tof", f"data.root={root}", *SMALL, f"data.cache_dir={tmp_path / 'c'}",
                     f"output_dir={tmp_path / 'out'}", "stages=[data]", timeout=300)
    assert result.returncode == 2, result.stderr
    assert str(bad) in result.stderr and "4D file" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_modality_other_than_tof_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.modality=tof"):
        _prepare(write_tof_dataset(tmp_path / "d"), tmp_path, "data.modality=flair")


def test_binary_vessels_reads_multiclass_topcow_labels_through_a_map() -> None:
    labels = np.array([[[0, 1, 4], [15, 0, 10]]], np.uint8)
    vessels = binary_vessels(labels, {v: int(v > 0) for v in range(16)}, Path("roi.nii.gz"))
    assert vessels.tolist() == [[[False, True, True], [True, False, True]]]
    with pytest.raises(DataError, match="TopCoW"):
        binary_vessels(labels, None, Path("roi.nii.gz"))


def test_metaimage_mask_and_tof_read_in_ras(tmp_path: Path) -> None:
    """A .mha file (LPS physical space) reads into the same RAS+ voxel order and world grid as NIfTI."""
    import SimpleITK as sitk

    mask = vessel_mask(0).astype(np.uint8)
    nifti = _save(mask, tmp_path / "m.nii.gz")
    image = sitk.GetImageFromArray(np.transpose(mask[::-1, ::-1, :], (2, 1, 0)))  # RAS voxels -> LPS (z, y, x)
    image.SetSpacing(SPACING)
    image.SetOrigin((-(SHAPE[0] - 1) * SPACING[0], -(SHAPE[1] - 1) * SPACING[1], 0.0))
    sitk.WriteImage(image, str(tmp_path / "m.mha"))
    from_mha, from_nifti = read_vessel_mask(tmp_path / "m.mha"), read_vessel_mask(nifti)
    assert np.array_equal(from_mha.data, from_nifti.data)
    assert np.allclose(from_mha.affine, from_nifti.affine)
    sitk.WriteImage(sitk.Cast(image, sitk.sitkFloat32), str(tmp_path / "t.mha"))
    assert read_tof(tmp_path / "t.mha").data.shape == SHAPE


def test_rendered_dataset_manifest_lists_its_files(tmp_path: Path) -> None:
    """The render cache is reused only when complete: a file listed in vessels.json with its size."""
    from benchmark.data.vessels.sources import MANIFEST, _complete, write_case

    root = tmp_path / "r"
    write_case(root, "a", np.zeros(SHAPE, np.float32), vessel_mask(0), np.ones(SHAPE, bool), np.eye(4))
    files = {p.relative_to(root).as_posix(): p.stat().st_size for p in root.glob("*/*.nii.gz")}
    (root / MANIFEST).write_text(json.dumps({"files": files}))
    assert _complete(root)
    (root / "a" / "a_tof.nii.gz").write_bytes(b"x")
    assert not _complete(root)


def test_user_tof_by_manifest(tmp_path: Path) -> None:
    root = write_tof_dataset(tmp_path / "d")
    rows = ["subject,tof,label"] + [f"s{i},sub{i}/tof.nii.gz,sub{i}/vessels.nii.gz" for i in range(3)]
    (root / "cases.csv").write_text("\n".join(rows) + "\n")
    cfg = data_config("data=tof", "data.vessels.layout=manifest", f"data.manifest={root / 'cases.csv'}",
                      f"data.cache_dir={tmp_path / 'cache'}", *SMALL)
    data = prepare_data(cfg, seed=0)
    assert sorted(data.train.subject_ids[:1] + data.val.subject_ids[:1] + data.test.subject_ids[:1]) == \
        ["s0", "s1", "s2"]
    assert set(data.test.labels.unique().tolist()) == {0, 1}


def test_head_from_tof_keeps_the_head_where_linear_otsu_keeps_the_vessels() -> None:
    from benchmark.data.preprocess import brain_mask_from_image
    from benchmark.data.vessels.masks import head_from_tof

    x, y, z = np.indices((48, 48, 20)) - np.array([23.5, 23.5, 9.5])[:, None, None, None]
    head = (x / 22) ** 2 + (y / 20) ** 2 + (z / 30) ** 2 <= 1
    vessels = ((x - 3) ** 2 + y**2 <= 9) | ((x + 8) ** 2 + (y - 5) ** 2 <= 4)
    rng = np.random.default_rng(0)
    image = np.hypot(np.where(vessels, 800.0, np.where(head, 130.0, 0.0)) + rng.normal(0, 6, head.shape),
                     rng.normal(0, 6, head.shape)).astype(np.float32)
    found = head_from_tof(image)
    dice = 2 * (found & head).sum() / (found.sum() + head.sum())
    assert dice > 0.97
    linear = brain_mask_from_image(image[None])
    assert (linear & head).sum() < 0.2 * head.sum()  # the tumour data's rule finds the vessels, not the head
