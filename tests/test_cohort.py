"""A multi-source cohort (data=cohort): sources with their own readers, label maps and formats in one
study; MetaImage / NRRD volumes read like NIfTI; regions a source cannot contain are never scored."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from benchmark.data.cohort import stratified_order
from benchmark.data.config_checks import check_data_config
from benchmark.data.labels import PRESETS, map_labels, scored_structures, source_regions
from benchmark.data.nifti import load_volume
from benchmark.data.prepare import prepare_data
from benchmark.errors import ConfigError, DataError
from benchmark.study.runner import SubjectSources, dice_rows
from tests import niftis
from tests.cli import run_cli
from tests.real_data import shared_data
from tests.test_data_readers import SMALL, data_config
from tests.test_data_sources import write_deepmedic

OBLIQUE_FLIPPED = np.array([[0.0, -1.5, 0.0, 20.0], [-1.5, 0.0, 0.0, 30.0], [0.0, 0.0, 2.0, -5.0], [0, 0, 0, 1]])


def as_itk(nifti: Path, suffix: str) -> Path:
    """The same volume written by SimpleITK (its own NIfTI reader and LPS frame) as .mha or .nrrd."""
    target = nifti.with_name(nifti.name.replace(".nii.gz", suffix))
    sitk.WriteImage(sitk.ReadImage(str(nifti)), str(target))
    return target


def write_brats2012(root: Path, n_cases: int = 3, first: int = 20) -> Path:
    """BRATS 2012 as MetaImage: <root>/BRATS_HG<id>_{FLAIR,truth}.mha, labels 1 oedema, 2 active core."""
    for i in range(first, first + n_cases):
        image, labels = niftis.synthetic_case(i)
        brats2012 = np.select([labels == 2, labels > 0], [1, 2], 0).astype(np.int16)
        for name, array in (("FLAIR", (image * 1000).astype(np.int16)), ("truth", brats2012)):
            nifti = niftis.save(array, root / f"BRATS_HG{i:04d}_{name}.nii.gz")
            as_itk(nifti, ".mha")
            nifti.unlink()
    return root


def cohort_overrides(tmp_path: Path) -> list[str]:
    niftis.write_brats(tmp_path / "b18", n_cases=5)
    write_deepmedic(tmp_path / "dm", n_cases=4)
    write_brats2012(tmp_path / "b12", n_cases=3)
    return ["data=cohort", f"data.root={tmp_path}", "data.sources.brats2015.root=dm", "data.sources.brats2018.root=b18",
            "+data.sources.brats2012={source: pattern, root: b12, label_map: brats2012, patterns: "
            "{flair: 'BRATS_{subject}_FLAIR.mha', label: 'BRATS_{subject}_truth.mha'}}",
            "data.modality=flair", "~data.sources.brats2015.patterns.t1ce", *SMALL]


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_metaimage_and_nrrd_read_like_nifti(tmp_path: Path, suffix: str) -> None:
    image, _ = niftis.synthetic_case(3)
    image[0, :, :] = -7.0  # a marked face, so a flip or swap of any axis shows
    nifti = tmp_path / "case.nii.gz"
    nib.save(nib.Nifti1Image(image, OBLIQUE_FLIPPED), str(nifti))
    itk = load_volume(as_itk(nifti, suffix))
    reference = load_volume(nifti)
    np.testing.assert_array_equal(itk.data, reference.data)
    np.testing.assert_allclose(itk.affine, reference.affine, atol=1e-5)
    assert itk.spacing == pytest.approx(reference.spacing)


def test_one_case_as_nifti_and_as_metaimage_gives_the_same_prepared_array(tmp_path: Path) -> None:
    niftis.write_brats(tmp_path / "nii", n_cases=3)
    for nifti in (tmp_path / "nii").glob("*/*.nii.gz"):
        target = tmp_path / "mha" / nifti.parent.name / nifti.name
        target.parent.mkdir(parents=True, exist_ok=True)
        as_itk(nifti, ".mha").rename(target.with_name(target.name.replace(".nii.gz", ".mha")))
    runs = [prepare_data(data_config("data=brats", f"data.root={tmp_path / kind}", "data.prepared_cache=false",
                                     *SMALL), seed=0) for kind in ("nii", "mha")]
    for split in ("train", "val", "test"):
        a, b = getattr(runs[0], split), getattr(runs[1], split)
        assert a.subject_ids == b.subject_ids and len(a) > 0
        np.testing.assert_array_equal(a.images.numpy(), b.images.numpy())
        np.testing.assert_array_equal(a.labels.numpy(), b.labels.numpy())


def test_brats2012_preset_has_no_enhancing_region_and_no_separate_necrosis() -> None:
    truth = np.array([[[0, 1, 2, 2]]], dtype=np.int64)
    assert map_labels(truth, PRESETS["brats2012"], Path("t.mha")).tolist() == [[[0, 2, 1, 1]]]
    assert source_regions(PRESETS["brats2012"]) == ["WT", "TC"]
    assert scored_structures(PRESETS["brats2012"]) == ["WT", "TC"]
    assert scored_structures(PRESETS["brats2021"]) == ["WT", "TC", "ET", "NCR", "ED"]
    assert scored_structures(None) == ["WT", "TC", "ET", "NCR", "ED"]
    assert scored_structures(PRESETS["binary"]) == ["WT", "TC"]


def test_a_region_the_source_cannot_contain_is_never_scored() -> None:
    per_case = pd.DataFrame({"subject_id": ["a2012", "b2018", "c2018"], "dice_WT": [0.8, 0.6, 0.7],
                             "dice_ET": [0.0, 0.5, 0.9], "hd95_ET": [30.0, 4.0, 2.0]})
    sources = SubjectSources({"a2012": "brats2012", "b2018": "brats2018", "c2018": "brats2018"},
                             {"brats2012": frozenset({"WT", "TC"}),
                              "brats2018": frozenset({"WT", "TC", "ET", "NCR", "ED"})})
    rows, cases = dice_rows(per_case, "robustness", 3, 3, sources)
    values = {row["quantity"]: row["value"] for row in rows}
    assert values["robustness/dice_WT"] == pytest.approx(0.7)
    assert values["robustness/dice_ET"] == pytest.approx(0.7)  # a2012's 0 is n/a, not a failure
    assert values["robustness/hd95_ET"] == pytest.approx(3.0)
    et_cases = {c["case_id"] for c in cases if c["quantity"] == "robustness/dice_ET"}
    assert et_cases == {"b2018", "c2018"}
    assert {c["source"] for c in cases if c["case_id"] == "a2012"} == {"brats2012"}
    unmasked, _ = dice_rows(per_case, "robustness", 3, 3)
    assert {r["quantity"]: r["value"] for r in unmasked}["robustness/dice_ET"] == pytest.approx(1.4 / 3)


def test_cohort_of_three_sources_and_formats_is_one_stratified_study(tmp_path: Path) -> None:
    cfg = data_config(*cohort_overrides(tmp_path))
    data = prepare_data(cfg, seed=0)
    sources = data.summary["sources"]
    assert set(sources) == {"brats2015", "brats2018", "brats2012"}
    counts = {name: sum(len(ids) for ids in entry["subjects"].values()) for name, entry in sources.items()}
    assert counts == {"brats2015": 4, "brats2018": 5, "brats2012": 3}
    for name, entry in sources.items():
        assert entry["subjects"]["train"], name  # stratified: no source is left out of training
    assert sources["brats2012"]["not_scored"] == ["ET", "NCR", "ED"]
    assert sources["brats2018"]["not_scored"] == []
    subjects_2012 = {s for ids in sources["brats2012"]["subjects"].values() for s in ids}
    labels = {int(v) for split in (data.train, data.val, data.test)
              for i, s in enumerate(split.subject_ids) if s in subjects_2012 for v in split.labels[i].unique()}
    assert labels <= {0, 1, 2} and {1, 2} <= labels  # read from .mha, mapped; never an enhancing voxel
    assert sum(data.summary["splits"][s]["subjects"] for s in ("train", "val", "test")) == 12


def test_stratified_order_spreads_every_source_over_the_split() -> None:
    ids = [f"a{i}" for i in range(12)] + [f"b{i}" for i in range(6)]
    order = stratified_order(ids, ["a"] * 12 + ["b"] * 6, seed=3)
    assert sorted(order) == sorted(ids)
    for start in range(0, 18, 6):  # every third of the order holds 4 of a and 2 of b
        block = order[start:start + 6]
        assert sum(s.startswith("a") for s in block) == 4
    assert order != stratified_order(ids, ["a"] * 12 + ["b"] * 6, seed=4)


def test_clashing_ids_name_both_files(tmp_path: Path) -> None:
    niftis.write_brats(tmp_path / "one", n_cases=3)
    niftis.write_brats(tmp_path / "two", n_cases=3)
    cfg = data_config("data=cohort", f"data.root={tmp_path}", "~data.sources.brats2015",
                      "data.sources.brats2018.root=one", "+data.sources.copy={source: brats, root: two}", *SMALL)
    with pytest.raises(DataError, match=r"BraTS-000.*two sources.*one/BraTS-000.*two/BraTS-000"):
        prepare_data(cfg, seed=0)


@pytest.mark.parametrize(("override", "error", "message"), [
    ("data.sources.brats2018.root=nowhere", DataError, r"source 'brats2018'.*does not exist.*data.root"),
    ("data.sources.brats2018.label_map=brats1999", ConfigError, r"data.sources.brats2018: data.label_map=brats1999"),
    ("data.sources.brats2018.source=cohort", ConfigError, r"data.sources.brats2018.source=cohort is not a reader"),
    ("+data.sources.brats2018.size=[8,8]", ConfigError, r"data.sources.brats2018 has unknown keys \['size'\]"),
])
def test_bad_source_is_refused_before_any_file_is_read(tmp_path: Path, override: str, error: type,
                                                       message: str) -> None:
    niftis.write_brats(tmp_path / "b18", n_cases=3)
    write_deepmedic(tmp_path / "dm", n_cases=3)
    cfg = data_config("data=cohort", f"data.root={tmp_path}", "data.sources.brats2015.root=dm",
                      "data.sources.brats2018.root=b18", override, *SMALL)
    with pytest.raises(error, match=message):
        check_data_config(cfg)


def test_source_without_the_requested_modality_is_named(tmp_path: Path) -> None:
    niftis.write_brats(tmp_path / "b18", n_cases=3)
    write_deepmedic(tmp_path / "dm", n_cases=3)  # FLAIR only: no T1c file
    cfg = data_config("data=cohort", f"data.root={tmp_path}", "data.sources.brats2015.root=dm",
                      "data.sources.brats2018.root=b18", "data.modality=[flair,t1ce]", *SMALL)
    with pytest.raises(DataError, match=r"source 'brats2015' \(data.sources.brats2015, reader pattern\).*t1ce"):
        prepare_data(cfg, seed=0)


def test_real_brats2012_metaimage_case_reads_with_its_preset() -> None:
    folder = shared_data("brats2012-one-case-mha")
    flair, truth = load_volume(folder / "BRATS_HG0015_FLAIR.mha"), load_volume(folder / "BRATS_HG0015_truth.mha",
                                                                               kind="label")
    assert flair.data.shape == truth.data.shape == (160, 216, 176)
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "BRATS_HG0015_truth.mha")))  # (z, y, x) LPS
    ras = np.flip(np.transpose(reference, (2, 1, 0)), axis=(0, 1))  # identity direction: x, y flip to RAS
    np.testing.assert_array_equal(truth.data, ras)
    mapped = map_labels(truth.data, PRESETS["brats2012"], folder)
    assert np.count_nonzero(mapped == 2) == 108706 and np.count_nonzero(mapped == 1) == 72310  # SOURCE.txt counts
    assert not (mapped == 3).any()


@pytest.mark.parametrize(("overrides", "message"), [
    (["data.sources.brats2018.root=nowhere"], "source 'brats2018'"),
    (["study.cv.folds=4"], "study.cv.folds=4 exceeds the 3 subjects of source 'brats2015'"),
])
def test_cohort_errors_exit_2_with_one_paragraph_before_any_compute(tmp_path: Path, overrides: list[str],
                                                                    message: str) -> None:
    niftis.write_brats(tmp_path / "b18", n_cases=4)
    write_deepmedic(tmp_path / "dm", n_cases=3)
    result = run_cli("experiment=cohort", f"data.root={tmp_path}", "data.sources.brats2015.root=dm",
                     "data.sources.brats2018.root=b18", f"data.cache_dir={tmp_path / 'cache'}",
                     f"output_dir={tmp_path / 'out'}", "data.prepared_cache=false", *SMALL, *overrides)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "store").exists()  # refused before any cell


def test_a_manifest_names_source_and_label_map_per_row(tmp_path: Path) -> None:
    niftis.write_brats(tmp_path / "b18", n_cases=4)
    write_brats2012(tmp_path / "b12", n_cases=3)
    lines = ["subject\tflair\tlabel\tsource\tlabel_map"]
    for i in range(4):
        case = f"BraTS-{i:03d}"
        lines.append(f"{case}\tb18/{case}/{case}_flair.nii.gz\tb18/{case}/{case}_seg.nii.gz\tbrats2018\tbrats2021")
    for i in range(20, 23):
        lines.append(f"HG{i:04d}\tb12/BRATS_HG{i:04d}_FLAIR.mha\tb12/BRATS_HG{i:04d}_truth.mha\tbrats2012\tbrats2012")
    (tmp_path / "cases.tsv").write_text("\n".join(lines) + "\n")
    data = prepare_data(data_config("data=manifest", f"data.manifest={tmp_path / 'cases.tsv'}",
                                    "data.modality=flair", *SMALL), seed=0)
    sources = data.summary["sources"]
    assert set(sources) == {"brats2018", "brats2012"}
    assert sources["brats2012"]["not_scored"] == ["ET", "NCR", "ED"] and sources["brats2018"]["not_scored"] == []
    assert all(entry["subjects"]["train"] for entry in sources.values())  # stratified by the source column
    (tmp_path / "cases.tsv").write_text("\n".join([*lines[:2], lines[2].replace("brats2021", "brats1999")]) + "\n")
    with pytest.raises(DataError, match=r"cases.tsv, line 3: subject BraTS-001: data.label_map=brats1999"):
        prepare_data(data_config("data=manifest", f"data.manifest={tmp_path / 'cases.tsv'}", "data.modality=flair",
                                 *SMALL), seed=0)


def test_replication_table_relates_phantom_and_patient_verdicts() -> None:
    from benchmark.lab.speed.cohort import replication

    phantom = pd.DataFrame({"metric": ["fid", "ssim"], "a": ["yes", "inconclusive"], "b": ["no", "no"],
                            "c_robustness": ["no", "yes"], "c_utility": ["yes", "yes"], "d": ["yes", "no"]})
    real = pd.DataFrame({"metric": ["fid", "ssim", "snr"], "a": ["yes", "yes", "no"], "b": ["yes", "no", "no"],
                         "c_robustness": ["inconclusive", "yes", "no"], "c_utility": ["yes", "no", "no"],
                         "d": ["yes", "no", "no"]})
    table = replication(phantom, real).set_index(["metric", "question"])["relation"]
    assert len(table) == 10  # snr is not in the phantom scorecard
    assert table[("fid", "a")] == "agree" and table[("fid", "b")] == "disagree"
    assert table[("fid", "c_robustness")] == "undecided" and table[("ssim", "a")] == "undecided"
    assert table[("ssim", "c_utility")] == "disagree" and table[("ssim", "d")] == "agree"
