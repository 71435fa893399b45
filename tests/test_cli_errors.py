"""Bad input through the command line: one clear paragraph naming the file and the problem, exit 2,
no traceback (unless debug=true)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests import niftis
from tests.cli import run_cli

SMALL = ["data=brats", "data.size=[24,24]", "data.fov_mm=null", "data.slices.per_subject=3",
         "data.slices.min_brain_fraction=0.05"]


def case_file(root: Path, kind: str) -> Path:
    return root / "BraTS-001" / f"BraTS-001_{kind}.nii.gz"


def garbage(root: Path) -> Path:
    path = case_file(root, "flair")
    path.write_bytes(b"this is not a nifti file")
    return path


def truncated(root: Path) -> Path:
    path = case_file(root, "flair")
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    return path


def shape_mismatch(root: Path) -> Path:
    return niftis.save(np.ones((10, 10, 10), np.float32), case_file(root, "flair"))


def affine_mismatch(root: Path) -> Path:
    image, _ = niftis.synthetic_case(1)
    return niftis.save(image, case_file(root, "flair"), spacing=(1.0, 1.0, 1.0))


def bad_labels(root: Path) -> Path:
    _, labels = niftis.synthetic_case(1)
    labels[labels == 2] = 7
    return niftis.save(labels, case_file(root, "seg"))


def nan_voxels(root: Path) -> Path:
    image, _ = niftis.synthetic_case(1)
    image[3, 3, 3] = np.nan
    return niftis.save(image, case_file(root, "flair"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (garbage, "cannot read this image as NIfTI"),
        (truncated, "cannot read this image as NIfTI"),
        (shape_mismatch, "does not match"),
        (affine_mismatch, "affine"),
        (bad_labels, "label values [7] are outside"),
        (nan_voxels, "NaN or Inf voxels"),
    ],
)
def test_bad_file_names_the_file_and_problem(tmp_path: Path, damage: Callable[[Path], Path], message: str) -> None:
    root = niftis.write_brats(tmp_path / "data", n_cases=4)
    bad = damage(root)
    result = run_cli(*SMALL, f"data.root={root}", f"output_dir={tmp_path / 'out'}")
    assert result.returncode == 2, result.stderr
    assert str(bad) in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_directory(tmp_path: Path) -> None:
    result = run_cli(*SMALL, f"data.root={tmp_path / 'nowhere'}", f"output_dir={tmp_path / 'out'}")
    assert result.returncode == 2
    assert "nowhere: the BraTS folder does not exist" in result.stderr and "Traceback" not in result.stderr


def test_empty_after_filtering(tmp_path: Path) -> None:
    root = niftis.write_brats(tmp_path / "data", n_cases=4)
    result = run_cli(*SMALL, f"data.root={root}", "data.slices.min_brain_fraction=1.0", "data.slices.policy=brain",
                     f"output_dir={tmp_path / 'out'}")
    assert result.returncode == 2 and "split is empty after slice selection" in result.stderr


def test_debug_flag_shows_the_traceback(tmp_path: Path) -> None:
    result = run_cli(*SMALL, f"data.root={tmp_path / 'nowhere'}", "debug=true", f"output_dir={tmp_path / 'out'}")
    assert result.returncode != 0 and "Traceback" in result.stderr and "DataError" in result.stderr


def test_cuda_requested_without_a_gpu(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    result = run_cli(*SMALL, "device=cuda", f"output_dir={tmp_path / 'out'}")
    assert result.returncode == 2 and "device=cuda was requested but no CUDA device" in result.stderr


def test_data_stage_writes_summary_and_montage(tmp_path: Path) -> None:
    root = niftis.write_brats(tmp_path / "data", n_cases=4)
    out = tmp_path / "out"
    result = run_cli(*SMALL, f"data.root={root}", f"output_dir={out}", "stages=[data]")
    assert result.returncode == 0, result.stderr
    assert (out / "data_summary.json").is_file() and (out / "data_montage.png").stat().st_size > 1000
