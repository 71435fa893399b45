"""Real MRI the project did not make (../shared/data, skipped cleanly when absent): the six BRATS 2015
patients in DeepMedic's layout, the BraTS 2023 case in its own naming, and unlabelled scans with oblique
affines, LAS orientation, 5.5 mm slices and uint8 intensities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.data.generated import load_generated_set
from benchmark.data.prepare import load_subject, prepare_data
from benchmark.data.readers import find_brats_cases
from tests.cli import run_cli
from tests.real_data import shared_data
from tests.test_data_readers import data_config

UNLABELLED = {
    "niivue_flair": "unlabelled/niivue-flair/FLAIR.nii.gz",
    "volunteer": "unlabelled/torchio-volunteer/fernando/t2.nii.gz",
    "colin27": "unlabelled/colin27/ch2bet.nii.gz",
    "nibabel": "unlabelled/nibabel-anatomical/anatomical.nii",
}


@pytest.fixture(scope="module")
def brats2015(tmp_path_factory: pytest.TempPathFactory):
    root = shared_data("brats2015-deepmedic")
    cfg = data_config("data=deepmedic", f"data.root={root}", f"data.cache_dir={tmp_path_factory.mktemp('cache')}")
    return cfg, prepare_data(cfg, seed=0)


def test_six_brats2015_patients_load_with_one_preset(brats2015) -> None:
    _, data = brats2015
    subjects = {s for split in (data.train, data.val, data.test) for s in split.subject_ids}
    assert len(subjects) == 6 and all(s.startswith("brats_2013_pat000") for s in subjects)
    assert (len(set(data.train.subject_ids)), len(set(data.val.subject_ids)), len(set(data.test.subject_ids))) == (
        4, 1, 1)
    labels = torch.cat([data.train.labels, data.val.labels, data.test.labels])
    assert set(labels.unique().tolist()) == {0, 1, 2, 3}  # BRATS 2015: 3 joined the core, 4 is enhancing
    for split in (data.train, data.val, data.test):
        assert split.images.shape[1:] == (1, 128, 128) and split.spacing == pytest.approx((1.5, 1.5))
        # z-scored input (negative background) ends in [0, 1] with zero outside the provided brain mask
        assert float(split.images.min()) == 0.0 and float(split.images.max()) == 1.0
        assert not bool((split.images[~split.brain_masks] != 0).any())
        # a 192 mm field of view keeps the whole brain: no brain pixel on the image border
        border = split.brain_masks.clone()
        border[..., 2:-2, 2:-2] = False
        assert not bool(border.any())


def test_brats2023_case_reads_through_its_own_naming() -> None:
    root = shared_data("brats2023-one-case")
    modalities = ("flair", "t1", "t1ce", "t2")
    cases = find_brats_cases(root, modalities)
    assert [c.subject_id for c in cases] == ["BraTS-GLI-00001-000"] and cases[0].label is None
    assert cases[0].images["flair"].name == "BraTS-GLI-00001-000-t2f.nii.gz"
    assert cases[0].images["t1ce"].name == "BraTS-GLI-00001-000-t1c.nii.gz"
    subject = load_subject(cases[0], modalities, data_config("data=brats", f"data.root={root}", "data.size=[128,128]"))
    assert subject.images.shape[:2] == (4, 155) and subject.spacing == pytest.approx((1.0, 1.5, 1.5))
    assert subject.plane_zoom == pytest.approx((1 / 1.5, 1 / 1.5))  # 1 mm in-plane onto 192 mm / 128 px
    # raw int16, skull-stripped: the brain is the non-zero voxels (18.4 % of the 1 mm grid)
    assert 0.15 < float(subject.brain.mean()) < 0.22
    assert float(subject.images.min()) == 0.0 and float(subject.images.max()) == 1.0 and not subject.labels.any()


def unlabelled_manifest(folder: Path) -> Path:
    rows = ["subject,flair"] + [f"{name},{shared_data(rel)}" for name, rel in UNLABELLED.items()]
    manifest = folder / "unlabelled.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def test_unlabelled_scans_through_the_data_stage(tmp_path: Path) -> None:
    """Oblique affines, LAS, 0.75 x 0.75 x 5.5 mm, uint8, MNI space: read as tumour-free subjects."""
    cfg = data_config("data=manifest", f"data.manifest={unlabelled_manifest(tmp_path)}", "data.missing_label=empty",
                      "data.slices.policy=brain", "data.slices.min_brain_fraction=0.05",  # the 66 x 82 mm crop
                      f"data.cache_dir={tmp_path / 'cache'}")
    data = prepare_data(cfg, seed=0)
    assert data.summary["unlabelled_cases"]["count"] == 4
    for split in (data.train, data.val, data.test):
        assert len(split) > 0 and split.images.shape[1:] == (1, 128, 128)
        assert float(split.images.max()) == 1.0 and int(split.labels.sum()) == 0
        brain = split.brain_masks.flatten(1).float().mean(1)
        assert bool((brain > 0.05).all()), f"{split.subject_ids}: empty brain masks {brain.tolist()}"


def test_unlabelled_scans_as_a_generated_set(tmp_path: Path, brats2015, caplog) -> None:
    cfg, data = brats2015
    images = tmp_path / "generated" / "images"
    images.mkdir(parents=True)
    for name, rel in UNLABELLED.items():
        source = shared_data(rel)
        (images / f"{name}{''.join(source.suffixes)}").symlink_to(source)
    with caplog.at_level("WARNING"):
        generated = load_generated_set(tmp_path / "generated", cfg, data.test, seed=0)
    assert not generated.meta["has_labels"] and generated.images.shape[1:] == data.test.images.shape[1:]
    # the 66 x 82 mm nibabel crop covers under 30 % of the 192 mm field of view on every slice: named, not read
    assert set(generated.subject_ids) == set(UNLABELLED) - {"nibabel"}
    assert generated.meta["not_read"]["volumes_without_slices"] == ["nibabel.nii"] and "nibabel.nii" in caplog.text
    assert float(generated.images.max()) == 1.0 and bool(torch.isfinite(generated.images).all())


@pytest.mark.slow
def test_quick_study_on_the_six_patients_has_no_failed_cell(tmp_path: Path) -> None:
    """The default quick experiment end to end on real anatomy (about 25 minutes on 2 loaded cores)."""
    root = shared_data("brats2015-deepmedic")
    out = tmp_path / "out"
    result = run_cli("data=deepmedic", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}",
                     f"output_dir={out}", timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = pd.read_parquet(out / "results.parquet")
    failed = results[results["status"] != "ok"]
    assert failed.empty, failed[["stage", "perturbation", "severity", "quantity", "error"]].to_string()
    assert np.isfinite(results.loc[results["quantity"] == "niqe", "value"]).all()
    info = json.loads((out / "study.json").read_text())
    assert info["data"]["n_subjects"] == {"train": 4, "val": 1, "test": 1}
