"""Inputs that used to change or drop data without a word, or end in a traceback: two files for one modality,
blank images and masks, one scan under two ids, 2D NIfTI with a flipped affine, sizes beyond memory, glob
patterns, header-only manifests, segmentations that are images, folders with NIfTI names. Each is a
one-paragraph DataError or ConfigError naming the file or key, or is read correctly."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from omegaconf import OmegaConf

from benchmark.data.config_checks import check_memory
from benchmark.data.nifti import load_volume
from benchmark.data.prepare import prepare_data
from benchmark.errors import ConfigError, DataError
from tests import niftis
from tests.test_data_readers import SMALL, data_config


def brats(tmp_path: Path, n_cases: int = 3) -> Path:
    return niftis.write_brats(tmp_path / "brats", n_cases=n_cases)


def prepare(tmp_path: Path, *overrides: str):
    return prepare_data(data_config(*overrides, f"data.cache_dir={tmp_path / 'cache'}", *SMALL), seed=0)


def test_two_files_for_one_modality_in_a_brats_case_are_named(tmp_path: Path) -> None:
    root = brats(tmp_path)
    flair = root / "BraTS-001" / "BraTS-001_flair.nii.gz"
    shutil.copy(flair, flair.with_name("BraTS-001_flair.nii"))
    with pytest.raises(DataError, match=r"BraTS-001: two files for 'flair': BraTS-001_flair.nii and "
                                        r"BraTS-001_flair.nii.gz"):
        prepare(tmp_path, "data=brats", f"data.root={root}")


def test_brats_2021_and_2023_names_of_one_modality_are_named(tmp_path: Path) -> None:
    root = brats(tmp_path)
    flair = root / "BraTS-001" / "BraTS-001_flair.nii.gz"
    shutil.copy(flair, flair.with_name("BraTS-001_t2f.nii.gz"))
    with pytest.raises(DataError, match=r"two flair images, BraTS-001_flair.nii.gz and BraTS-001_t2f.nii.gz"):
        prepare(tmp_path, "data=brats", f"data.root={root}")


def test_folder_layout_with_nii_and_nii_gz_of_one_name_is_refused(tmp_path: Path) -> None:
    root = niftis.write_folder(tmp_path / "folder", n_cases=3)
    image, _ = niftis.synthetic_case(9)
    niftis.save(image, root / "images" / "case1.nii")  # now 4 files, 3 names
    with pytest.raises(DataError, match=r"two files for 'case1': case1.nii and case1.nii.gz"):
        prepare(tmp_path, "data=folder", f"data.root={root}", "data.modality=image")


@pytest.mark.parametrize("blank, message", [
    ("zero", r"BraTS-001_flair.nii.gz: the flair image is blank \(every voxel is 0\)"),
    ("constant", r"BraTS-001_flair.nii.gz: the flair image is constant \(3\) inside the brain"),
])
def test_blank_images_are_refused_naming_the_file(tmp_path: Path, blank: str, message: str) -> None:
    root = brats(tmp_path)
    path = root / "BraTS-001" / "BraTS-001_flair.nii.gz"
    data = np.asarray(nib.load(path).dataobj)
    niftis.save(np.zeros_like(data) if blank == "zero" else np.where(data > 0, 3.0, 0.0).astype(np.float32), path)
    with pytest.raises(DataError, match=message):
        prepare(tmp_path, "data=brats", f"data.root={root}")


def plain_cases(tmp_path: Path) -> Path:
    """The BraTS cases as <root>/<case>/{flair,seg}.nii.gz: one `{subject}` per pattern."""
    root = tmp_path / "plain"
    for case in sorted(brats(tmp_path).iterdir()):
        (root / case.name).mkdir(parents=True)
        for kind in ("flair", "seg"):
            shutil.copy(case / f"{case.name}_{kind}.nii.gz", root / case.name / f"{kind}.nii.gz")
    return root


PLAIN = ["data=pattern", "data.patterns.flair='{subject}/flair.nii.gz'", "data.patterns.label='{subject}/seg.nii.gz'"]


def test_an_empty_provided_brain_mask_is_refused(tmp_path: Path) -> None:
    root = plain_cases(tmp_path)
    for case in sorted(root.iterdir()):
        mask = np.asarray(nib.load(case / "seg.nii.gz").dataobj) >= 0
        niftis.save(mask.astype(np.uint8) * (case.name != "BraTS-002"), case / "brainmask.nii.gz")
    with pytest.raises(DataError, match=r"BraTS-002/brainmask.nii.gz: the brain mask is empty"):
        prepare(tmp_path, *PLAIN, f"data.root={root}", "data.patterns.brain_mask='{subject}/brainmask.nii.gz'")


def test_one_scan_under_two_subject_ids_is_refused(tmp_path: Path) -> None:
    root = brats(tmp_path, n_cases=4)
    rows = ["subject,flair,label", *(f"s{i},BraTS-{i:03d}/BraTS-{i:03d}_flair.nii.gz,BraTS-{i:03d}/BraTS-{i:03d}_seg"
                                     ".nii.gz" for i in range(4))]
    rows.append("again,BraTS-002/BraTS-002_flair.nii.gz,BraTS-002/BraTS-002_seg.nii.gz")
    (root / "cases.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"subjects s2 and again read the same scan .*Refused, not merged"):
        prepare(tmp_path, "data=manifest", f"data.manifest={root / 'cases.csv'}")
    copy = root / "copy.nii.gz"  # the same bytes under another name
    shutil.copy(root / "BraTS-002" / "BraTS-002_flair.nii.gz", copy)
    (root / "cases.csv").write_text("\n".join([*rows[:-1], "again,copy.nii.gz,BraTS-002/BraTS-002_seg.nii.gz"]) + "\n")
    with pytest.raises(DataError, match=r"subjects s2 and again read the same scan"):
        prepare(tmp_path, "data=manifest", f"data.manifest={root / 'cases.csv'}")
    allowed = prepare(tmp_path, "data=manifest", f"data.manifest={root / 'cases.csv'}", "data.duplicate_scans=allow")
    assert len({*allowed.train.subject_ids, *allowed.val.subject_ids, *allowed.test.subject_ids}) == 5


@pytest.mark.parametrize("flip", [np.diag([-1.0, 1.0, 1.0, 1.0]), np.diag([1.0, -1.0, 1.0, 1.0])])
def test_a_2d_nifti_with_a_non_ras_affine_reads_as_one_slice(tmp_path: Path, flip: np.ndarray) -> None:
    plane = np.arange(12, dtype=np.float32).reshape(3, 4)
    nib.save(nib.Nifti1Image(plane, flip), tmp_path / "slice.nii.gz")
    volume = load_volume(tmp_path / "slice.nii.gz")
    axis = 0 if flip[0, 0] < 0 else 1
    np.testing.assert_array_equal(volume.data[..., 0], np.flip(plane, axis=axis))  # reoriented to RAS+


def test_2d_nifti_cases_with_a_non_ras_affine_prepare_as_one_slice_each(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    for i in range(3):
        image, labels = niftis.synthetic_case(i, shape=(24, 24, 3))
        for folder, plane in (("images", image[..., 1]), ("labels", labels[..., 1])):
            (root / folder).mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(plane, np.diag([-1.5, 1.5, 2.0, 1.0])), root / folder / f"case{i}.nii.gz")
    data = prepare(tmp_path, "data=folder", f"data.root={root}", "data.modality=image")
    for split in (data.train, data.val, data.test):
        assert len(split) == 1 and split.slice_indices == [0] and bool(split.tumour_present.all())


def test_sizes_beyond_memory_are_a_config_error_before_any_compute(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.size=\[20000, 20000\]: .* GiB for the prepared data alone, more than "
                                          r"half of this machine's"):
        prepare_data(data_config("data.size=[20000,20000]", f"data.cache_dir={tmp_path}"), seed=0)
    assert not any(tmp_path.iterdir())  # nothing generated
    cfg = OmegaConf.create({"size": [128, 128], "mode": "2d", "slices": {"per_subject": 8}})
    check_memory(cfg, 1000, 2, memory=16 * 2**30)  # 1000 subjects x 8 slices x 128 x 128: 1.2 GiB of 16
    with pytest.raises(ConfigError, match=r"8000 slices \(1000 subjects\)"):
        check_memory(cfg, 1000, 2, memory=2 * 2**30)


def test_a_double_star_pattern_matches_zero_folders_as_the_glob_does(tmp_path: Path) -> None:
    root = plain_cases(tmp_path)
    data = prepare(tmp_path, *PLAIN, f"data.root={root}", "data.patterns.flair='**/{subject}/flair.nii.gz'",
                   "data.patterns.label='**/{subject}/seg.nii.gz'")
    assert sorted({*data.train.subject_ids, *data.val.subject_ids, *data.test.subject_ids}) == [
        "BraTS-000", "BraTS-001", "BraTS-002"]


def test_files_that_match_the_glob_but_not_the_pattern_are_explained(tmp_path: Path) -> None:
    root = plain_cases(tmp_path)  # <case>/flair.nii.gz: nothing left for {subject} before "flair"
    with pytest.raises(DataError, match=r"3 files match the glob '\*/\*flair.nii.gz' \(e.g. BraTS-000/flair.nii.gz\) "
                                        r"but none fits data.patterns.flair='\*/{subject}flair.nii.gz': {subject} "
                                        "stands for a non-empty part of one folder or file name"):
        prepare(tmp_path, *PLAIN, f"data.root={root}", "data.patterns.flair='*/{subject}flair.nii.gz'")
    with pytest.raises(DataError, match=r"no file matches data.patterns.flair='{subject}/t1.nii.gz'"):
        prepare(tmp_path, *PLAIN, f"data.root={root}", "data.patterns.flair='{subject}/t1.nii.gz'")


def test_a_double_star_inside_a_name_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`\*\*` must be a whole path component"):
        prepare(tmp_path, "data=pattern", f"data.root={brats(tmp_path)}", "data.patterns.flair='a**/{subject}.nii.gz'")


def test_a_header_only_manifest_says_it_lists_no_subject(tmp_path: Path) -> None:
    (tmp_path / "cases.csv").write_text("subject,flair,label\n")
    with pytest.raises(DataError, match=r"cases.csv: the manifest has its header \(subject, flair, label\) but lists "
                                        "no subject"):
        prepare(tmp_path, "data=manifest", f"data.manifest={tmp_path / 'cases.csv'}")


def test_a_segmentation_that_is_an_image_is_named_briefly(tmp_path: Path) -> None:
    root = brats(tmp_path)
    image = np.asarray(nib.load(root / "BraTS-001" / "BraTS-001_flair.nii.gz").dataobj)
    niftis.save((image * 1000).astype(np.int16), root / "BraTS-001" / "BraTS-001_seg.nii.gz")
    with pytest.raises(DataError, match=r"BraTS-001_seg.nii.gz: holds \d+ distinct values from 0 to \d+, not a few "
                                        r"labels .*looks like an image rather than a label map") as error:
        prepare(tmp_path, "data=brats", f"data.root={root}")
    assert len(str(error.value)) < 600
    with pytest.raises(DataError, match="looks like an image rather than a label map"):
        prepare(tmp_path, "data=brats", f"data.root={root}", "data.label_map=brats2021")


def test_a_folder_with_a_nifti_name_is_named_as_a_folder(tmp_path: Path) -> None:
    root = brats(tmp_path)
    flair = root / "BraTS-001" / "BraTS-001_flair.nii.gz"
    flair.unlink()
    flair.mkdir()
    with pytest.raises(DataError, match=r"BraTS-001_flair.nii.gz: a folder with a volume file's name"):
        prepare(tmp_path, "data=brats", f"data.root={root}")
    manifest = tmp_path / "cases.csv"
    manifest.write_text("subject,flair,label\n" + "".join(
        f"s{i},{root}/BraTS-{i:03d}/BraTS-{i:03d}_flair.nii.gz,{root}/BraTS-{i:03d}/BraTS-{i:03d}_seg.nii.gz\n"
        for i in range(3)))
    with pytest.raises(DataError, match=r"BraTS-001_flair.nii.gz: a folder where the image file should be"):
        prepare(tmp_path, "data=manifest", f"data.manifest={manifest}")
