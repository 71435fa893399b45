"""A MetaImage header's voxels live in another file: the cache's content digest covers both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from benchmark.data.cache import FileDigests, companion_files, file_digest


def write_mhd(path: Path, values: np.ndarray) -> None:
    sitk.WriteImage(sitk.GetImageFromArray(values), str(path), useCompression=False)


def test_changing_only_the_raw_file_changes_the_digest(tmp_path: Path) -> None:
    header = tmp_path / "case.mhd"
    write_mhd(header, np.zeros((3, 4, 5), np.int16))
    assert companion_files(header) == [tmp_path / "case.raw"]
    digests = FileDigests(tmp_path / "index.json")
    before, remembered = file_digest(header), digests.digest(header)
    assert before == remembered
    header_bytes = header.read_bytes()
    write_mhd(header, np.ones((3, 4, 5), np.int16))  # same header text, other voxels
    assert header.read_bytes() == header_bytes
    assert file_digest(header) != before
    assert digests.digest(header) != remembered  # the remembered digest is not reused: the .raw's stamp moved


def test_a_local_mha_and_a_nifti_have_no_companions(tmp_path: Path) -> None:
    write_mhd(tmp_path / "case.mha", np.zeros((2, 2, 2), np.int16))
    (tmp_path / "x.nii.gz").write_bytes(b"\0" * 10)
    assert companion_files(tmp_path / "case.mha") == []
    assert companion_files(tmp_path / "x.nii.gz") == []
    (tmp_path / "pair.hdr").write_bytes(b"h")
    (tmp_path / "pair.img").write_bytes(b"i")
    assert companion_files(tmp_path / "pair.hdr") == [tmp_path / "pair.img"]
