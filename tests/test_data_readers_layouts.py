"""The dataset readers on small real files: which files make a case in the BraTS, MSD and folder layouts, the
errors that name the file and the fix, and `load_case` (channels of 4D files, labels onto ours, brain masks)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark.data.labels import PRESETS
from benchmark.data.readers import (
    CaseFiles,
    find_brats_cases,
    find_folder_cases,
    find_msd_cases,
    load_case,
    strip_nifti_suffix,
    strip_volume_suffix,
)
from benchmark.errors import DataError
from tests import niftis

SHAPE = (4, 5, 3)


def volume(path: Path, value: float = 1.0, shape: tuple[int, ...] = SHAPE, dtype=np.float32) -> Path:
    data = (np.arange(np.prod(shape)).reshape(shape) % 7 + value).astype(dtype)
    return niftis.save(data, path)


def touch(path: Path) -> Path:
    """An empty file: the finders look at names only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


def test_suffixes_are_stripped_only_from_volume_files() -> None:
    assert strip_nifti_suffix("case_flair.nii.gz") == "case_flair"
    assert strip_nifti_suffix("case_flair.nii") == "case_flair"
    assert strip_nifti_suffix("case_flair.mha") is None
    assert strip_volume_suffix("Case_T1.NII.GZ") == "Case_T1"
    assert strip_volume_suffix("case.nii") == "case" and strip_volume_suffix("case.nrrd") == "case"
    assert strip_volume_suffix("case.mhd") == "case" and strip_volume_suffix("case.raw") is None


def test_brats_cases_in_2021_and_2023_names(tmp_path: Path) -> None:
    old, new = tmp_path / "Case_1", tmp_path / "BraTS-GLI-00002-000"
    volume(old / "Case_1_flair.nii.gz"), volume(old / "Case_1_T1ce.nii.gz"), volume(old / "Case_1_seg.nii.gz")
    volume(new / "BraTS-GLI-00002-000-t2f.nii.gz"), touch(new / "BraTS-GLI-00002-000-t1c.mha")
    (old / "notes.txt").write_text("not a volume")
    (tmp_path / "0-empty").mkdir()  # no volume files: not a case (listed first: the others are still read)
    (tmp_path / "stray.nii.gz").write_text("")  # files beside the case folders are ignored
    cases = find_brats_cases(tmp_path, ["flair", "t1ce"])
    assert [c.subject_id for c in cases] == ["BraTS-GLI-00002-000", "Case_1"]
    assert cases[1].images == {"flair": old / "Case_1_flair.nii.gz", "t1ce": old / "Case_1_T1ce.nii.gz"}
    assert cases[1].label == old / "Case_1_seg.nii.gz" and cases[0].label is None
    assert cases[0].images["t1ce"].name.endswith("-t1c.mha")
    assert cases[0].channels == {} and cases[0].label_map is None


def test_a_modality_outside_the_brats_names_is_looked_up_as_itself(tmp_path: Path) -> None:
    volume(tmp_path / "c" / "c_adc.nii.gz")
    assert find_brats_cases(tmp_path, ["adc"])[0].images == {"adc": tmp_path / "c" / "c_adc.nii.gz"}
    with pytest.raises(DataError, match=r"c: no dwi image \(expected a file ending in _dwi.nii.gz\)"):
        find_brats_cases(tmp_path, ["dwi"])


@pytest.mark.parametrize("files, message", [
    (["c_flair.nii.gz", "c_flair.nii"], r"c: two files for 'flair': c_flair.nii and c_flair.nii.gz; keep one"),
    (["c_flair.nii.gz", "c_t2f.nii.gz"], r"c: two flair images, c_flair.nii.gz and c_t2f.nii.gz \(BraTS 2021 and "
                                         r"2023 names of one modality\)"),
    (["c_t1.nii.gz"], r"c: no flair image \(expected a file ending in _flair.nii.gz or _t2f.nii.gz\)"),
])
def test_brats_folders_that_cannot_be_read_are_refused(tmp_path: Path, files: list[str], message: str) -> None:
    for name in files:
        volume(tmp_path / "c" / name)
    with pytest.raises(DataError, match=message):
        find_brats_cases(tmp_path, ["flair"])


def test_a_folder_named_like_a_volume_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c" / "c_flair.nii.gz").mkdir(parents=True)
    with pytest.raises(DataError, match=r"c_flair.nii.gz: a folder with a volume file's name; it must be a file "
                                        r"\(.nii, .nii.gz, .mha, .mhd, .nrrd or .nhdr; move the file out of it, or "
                                        r"rename the folder\)\.$"):
        find_brats_cases(tmp_path, ["flair"])
    (tmp_path / "images" / "a.mha").mkdir(parents=True)
    with pytest.raises(DataError, match=r"a.mha: a folder with a volume file's name"):
        find_folder_cases(tmp_path, ["flair"], ["flair"], None)


def test_a_missing_root_names_the_folder_and_the_key(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"absent: the BraTS folder does not exist \(set data.root"):
        find_brats_cases(tmp_path / "absent", ["flair"])
    with pytest.raises(DataError, match=r"absent: the MSD Task01_BrainTumour folder does not exist"):
        find_msd_cases(tmp_path / "absent", ["flair"])
    with pytest.raises(DataError, match=r"images: the images folder does not exist"):
        find_folder_cases(tmp_path, ["flair"], ["flair"], None)
    with pytest.raises(DataError, match=r"absent: the dataset folder does not exist \(set data.root to the "
                                        r"dataset's folder\)\.$"):
        find_folder_cases(tmp_path / "absent", ["flair"], ["flair"], None)


def test_msd_cases_from_dataset_json(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text(json.dumps({"training": [
        {"image": "./imagesTr/BRATS_001.nii.gz", "label": "./labelsTr/BRATS_001.nii.gz"},
        {"image": "./imagesTr/BRATS_002.mha", "label": "./labelsTr/BRATS_002.mha"}]}))
    cases = find_msd_cases(tmp_path, ["t2", "flair"])
    assert [c.subject_id for c in cases] == ["BRATS_001", "BRATS_002.mha"]
    first = tmp_path / "imagesTr/BRATS_001.nii.gz"
    assert cases[0].images == {"t2": first, "flair": first}
    assert cases[0].label == tmp_path / "labelsTr/BRATS_001.nii.gz"
    assert cases[0].channels == {"t2": 3, "flair": 0} and cases[0].label_map == {0: 0, 1: 2, 2: 1, 3: 3}
    with pytest.raises(DataError, match=r"dataset.json: modalities \['dwi'\] are not in MSD Task01 \(have \['flair', "
                                        r"'t1', 't1ce', 't2'\]\)"):
        find_msd_cases(tmp_path, ["flair", "dwi"])


@pytest.mark.parametrize("text", ["{not json", '{"test": []}', '["training"]'])
def test_a_broken_msd_manifest_is_one_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(DataError, match=r"dataset.json: missing; an MSD task folder holds dataset.json"):
        find_msd_cases(tmp_path, ["flair"])
    (tmp_path / "dataset.json").write_text(text)
    with pytest.raises(DataError, match=r"dataset.json: not a valid MSD dataset.json \("):
        find_msd_cases(tmp_path, ["flair"])


def test_folder_cases_pair_images_with_labels_by_name(tmp_path: Path) -> None:
    volume(tmp_path / "images" / "b.nii.gz"), touch(tmp_path / "images" / "a.mha"), touch(tmp_path / "images" / "c.nii")
    volume(tmp_path / "labels" / "a.nii.gz"), (tmp_path / "images" / "readme.md").write_text("")
    (tmp_path / "images" / "0-notes.txt").write_text("")  # a non-volume file listed first is skipped too
    cases = find_folder_cases(tmp_path, ["flair"], ["flair"], None)
    assert [(c.subject_id, c.label) for c in cases] == [("a", tmp_path / "labels" / "a.nii.gz"), ("b", None),
                                                        ("c", None)]
    assert cases[0].label_map == PRESETS["brats2023"] and cases[0].channels == {}
    four_d = find_folder_cases(tmp_path, ["t2", "flair"], ["flair", "t1", "t2"], {0: 0, 1: 2})
    assert four_d[0].channels == {"t2": 2, "flair": 0} and four_d[0].label_map == {0: 0, 1: 2}
    assert four_d[0].images == {"t2": tmp_path / "images" / "a.mha", "flair": tmp_path / "images" / "a.mha"}
    two = find_folder_cases(tmp_path, ["t1"], ["flair", "t1"], None)
    assert two[0].channels == {"t1": 1}  # a 4D file of two channels
    with pytest.raises(DataError, match=r"modalities \['t1ce'\] are not among data.channel_names \['flair', 't1'\]"):
        find_folder_cases(tmp_path, ["t1ce"], ["flair", "t1"], None)
    no_labels = tmp_path / "unlabelled"
    volume(no_labels / "images" / "x.nii.gz")
    assert find_folder_cases(no_labels, ["flair"], ["flair"], None)[0].label is None


def test_two_files_of_one_name_in_a_folder_layout_are_refused(tmp_path: Path) -> None:
    touch(tmp_path / "images" / "a.nii.gz"), touch(tmp_path / "images" / "a.nrrd")
    with pytest.raises(DataError, match=r"images: two files for 'a': a.nii.gz and a.nrrd; keep one of them \(they "
                                        r"would be read as one case\)\.$"):
        find_folder_cases(tmp_path, ["flair"], ["flair"], None)


def test_case_files_are_listed_once_in_a_stable_order(tmp_path: Path) -> None:
    case = CaseFiles("s", {"t2": tmp_path / "b.nii", "flair": tmp_path / "b.nii"}, tmp_path / "a.nii",
                     brain_mask=tmp_path / "c.nii")
    assert case.files() == [tmp_path / "a.nii", tmp_path / "b.nii", tmp_path / "c.nii"]
    assert CaseFiles("s", {"flair": tmp_path / "b.nii"}, None).files() == [tmp_path / "b.nii"]
    nested = CaseFiles("s", {"flair": tmp_path / "x" / "b.nii"}, tmp_path / "x-c.nii")
    assert nested.files() == [tmp_path / "x-c.nii", tmp_path / "x" / "b.nii"]  # in text order


def test_load_case_reads_channels_labels_spacing_and_mask(tmp_path: Path) -> None:
    four = np.stack([np.full(SHAPE, float(k), np.float32) for k in range(4)], axis=-1)
    image = niftis.save(four, tmp_path / "img.nii.gz")
    label = niftis.save(np.tile(np.array([0, 1, 2], np.uint8), (4, 5, 1)), tmp_path / "seg.nii.gz")
    mask_values = np.where(np.arange(60).reshape(SHAPE) % 2 == 0, 0.99999997, 0.4).astype(np.float32)
    mask_values[0, 0, 1] = 0.5  # exactly the threshold: not brain
    mask = niftis.save(mask_values, tmp_path / "mask.nii.gz")
    case = CaseFiles("s", {"t2": image, "flair": image}, label, {"t2": 3, "flair": 0}, PRESETS["msd"], mask)
    data, labels, spacing, brain = load_case(case, ["t2", "flair"])
    assert data.shape == (2, *SHAPE) and data.dtype == np.float32
    assert np.all(data[0] == 3.0) and np.all(data[1] == 0.0)
    assert labels.dtype == np.uint8 and labels[0, 0].tolist() == [0, 2, 1]  # MSD 1 oedema -> 2, 2 core -> 1
    assert spacing == pytest.approx(niftis.SPACING)
    assert brain.dtype == bool and brain.sum() == 30 and bool(brain.ravel()[0]) and not brain[0, 0, 1]
    unlabelled = load_case(CaseFiles("s", {"flair": image}, None, {"flair": 1}), ["flair"])
    assert np.all(unlabelled[0] == 1.0) and unlabelled[1].shape == SHAPE and not unlabelled[1].any()
    assert unlabelled[1].dtype == np.uint8
    assert unlabelled[3] is None


def test_load_case_detects_brats_labels_when_no_map_is_given(tmp_path: Path) -> None:
    image = volume(tmp_path / "img.nii.gz")
    label = niftis.save(np.tile(np.array([0, 4, 2], np.uint8), (4, 5, 1)), tmp_path / "seg.nii.gz")
    assert load_case(CaseFiles("s", {"flair": image}, label), ["flair"])[1][0, 0].tolist() == [0, 3, 2]


def test_load_case_refuses_wrong_dimensions_and_grids(tmp_path: Path) -> None:
    three = volume(tmp_path / "three.nii.gz")
    four = niftis.save(np.zeros((*SHAPE, 2), np.float32), tmp_path / "four.nii.gz")
    with pytest.raises(DataError, match=r"four.nii.gz: expected a 4D image with channel 2 \(t2\), got shape "
                                        r"\(4, 5, 3, 2\)"):
        load_case(CaseFiles("s", {"t2": four}, None, {"t2": 2}), ["t2"])
    with pytest.raises(DataError, match=r"three.nii.gz: expected a 4D image with channel 0 \(t2\)"):
        load_case(CaseFiles("s", {"t2": three}, None, {"t2": 0}), ["t2"])
    with pytest.raises(DataError, match=r"four.nii.gz: expected a 3D image, got shape \(4, 5, 3, 2\)"):
        load_case(CaseFiles("s", {"flair": four}, None), ["flair"])
    with pytest.raises(DataError, match=r"seg.nii.gz: a label map must be 3D, got shape \(4, 5, 3, 2\)"):
        load_case(CaseFiles("s", {"flair": three}, niftis.save(np.zeros((*SHAPE, 2), np.uint8),
                                                                 tmp_path / "seg.nii.gz")), ["flair"])
    other = volume(tmp_path / "other.nii.gz", shape=(4, 5, 4))
    with pytest.raises(DataError, match=r"other.nii.gz: shape \(4, 5, 4\) does not match"):
        load_case(CaseFiles("s", {"flair": three, "t2": other}, None), ["flair", "t2"])
    with pytest.raises(DataError, match=r"other.nii.gz: shape \(4, 5, 4\) does not match"):
        load_case(CaseFiles("s", {"flair": three}, other), ["flair"])
    with pytest.raises(DataError, match=r"other.nii.gz: shape \(4, 5, 4\) does not match"):
        load_case(CaseFiles("s", {"flair": three}, None, brain_mask=other), ["flair"])


def test_a_4d_brain_mask_with_one_channel_is_squeezed(tmp_path: Path) -> None:
    image = volume(tmp_path / "img.nii.gz")
    mask = niftis.save(np.ones((*SHAPE, 1), np.uint8), tmp_path / "mask.nii.gz")
    brain = load_case(CaseFiles("s", {"flair": image}, None, brain_mask=mask), ["flair"])[3]
    assert brain.shape == SHAPE and brain.all()


def test_a_thin_volume_keeps_its_single_slice_axis_and_a_missing_mask_is_named(tmp_path: Path) -> None:
    thin = (1, 5, 4)
    image = volume(tmp_path / "img.nii.gz", shape=thin)
    mask = niftis.save(np.ones(thin, np.uint8), tmp_path / "mask.nii.gz")
    brain = load_case(CaseFiles("s", {"flair": image}, None, brain_mask=mask), ["flair"])[3]
    assert brain.shape == thin and brain.all()
    with pytest.raises(DataError, match=r"gone.nii.gz: the brain mask file does not exist"):
        load_case(CaseFiles("s", {"flair": image}, None, brain_mask=tmp_path / "gone.nii.gz"), ["flair"])


def test_label_values_outside_the_map_name_the_label_file(tmp_path: Path) -> None:
    image = volume(tmp_path / "img.nii.gz")
    label = niftis.save(np.full(SHAPE, 5, np.uint8), tmp_path / "odd_seg.nii.gz")
    with pytest.raises(DataError, match=r"odd_seg.nii.gz: label values \[5\] are outside"):
        load_case(CaseFiles("s", {"flair": image}, label, label_map=PRESETS["brats2023"]), ["flair"])
