"""Faults of the machine, not of the code: a full disk while writing a cell, a cache file or the report
(one paragraph naming the file, exit 2, nothing half-written), and truncated cache files (recomputed with a
warning). The full disk is injected at the OS boundary: every temporary `.part` file opened for writing
accepts a few bytes, then fails with ENOSPC, as a real file system does."""

from __future__ import annotations

import builtins
import errno
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from benchmark.errors import DiskFullError
from benchmark.study.store import CellKey, ResultsStore
from tests import niftis
from tests.test_bad_config import call
from tests.test_cli_errors import SMALL
from tests.test_data_readers import data_config
from tests.test_store import metric_rows


class FullDiskFile:
    """A writable file on a full disk: the first `room` bytes land, the next write fails with ENOSPC."""

    def __init__(self, handle: Any, room: int) -> None:
        self._handle, self._room = handle, room

    def write(self, data: Any) -> int:
        size = len(data)
        if size > self._room:
            self._handle.write(data[: self._room])
            self._room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= size
        return self._handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> FullDiskFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the disk is full for the tool's temporary files (`*.part`), opened by any Python writer."""
    real_open = builtins.open

    def open_on_full_disk(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        writes = any(flag in mode for flag in "wax+")
        return FullDiskFile(handle, room=64) if writes and str(file).endswith(".part") else handle

    monkeypatch.setattr(builtins, "open", open_on_full_disk)
    monkeypatch.setattr(io, "open", open_on_full_disk)


def no_temporary_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*.part")]


def test_full_disk_while_writing_a_cell_keeps_the_earlier_cell(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    store = ResultsStore(tmp_path / "store", export_dir=tmp_path)
    key = CellKey("metrics", "blur", 1, 0)
    store.write_cell(key, "h", metric_rows(0.5))
    before = store.path(key).read_bytes()
    request.getfixturevalue("full_disk")
    with pytest.raises(DiskFullError, match="no space left on the device while writing") as error:
        store.write_cell(key, "h2", metric_rows(0.25))
    assert str(store.path(key)) in str(error.value) and "run again" in str(error.value)
    assert store.path(key).read_bytes() == before and no_temporary_files(tmp_path)


def test_full_disk_while_writing_the_report_leaves_the_earlier_report(tmp_path: Path,
                                                                       request: pytest.FixtureRequest) -> None:
    from reports.build import build_report
    from tests.synthetic_study import synthetic_results
    from tests.test_reports import store_study

    store_study(tmp_path, synthetic_results(seeds=(0, 1)), with_examples=False)
    build_report(tmp_path, n_boot=100)
    before = {name: (tmp_path / name).read_bytes() for name in ("report.md", "report.html", "correlations.csv")}
    request.getfixturevalue("full_disk")
    with pytest.raises(DiskFullError, match="no space left on the device while writing"):
        build_report(tmp_path, n_boot=100)
    assert before == {name: (tmp_path / name).read_bytes() for name in before}
    assert no_temporary_files(tmp_path)


def test_full_disk_while_caching_a_subject_is_one_paragraph_and_exit_2(tmp_path: Path,
                                                                      request: pytest.FixtureRequest) -> None:
    root = niftis.write_brats(tmp_path / "data", n_cases=4)
    cache = tmp_path / "cache"
    request.getfixturevalue("full_disk")
    code, err = call(*SMALL, f"data.root={root}", "data.workers=1", f"data.cache_dir={cache}", "stages=[data]",
                     f"output_dir={tmp_path / 'out'}")
    assert code == 2, err
    assert err.startswith("error: no space left on the device while writing ") and err.count("\n") == 1, err
    assert str(cache / "prepared") in err and "Traceback" not in err
    assert no_temporary_files(cache) and not list((cache / "prepared").rglob("*.npz"))


def test_truncated_subject_cache_entry_is_prepared_again_with_a_warning(tmp_path: Path, caplog) -> None:
    from benchmark.data.prepare import prepare_data

    root = niftis.write_brats(tmp_path / "data", n_cases=4)
    cfg = data_config("data=brats", f"data.root={root}", "data.workers=1", f"data.cache_dir={tmp_path / 'c'}",
                      *SMALL[1:])
    first = prepare_data(cfg, seed=0)
    entries = sorted((tmp_path / "c" / "prepared").rglob("*.npz"))
    damaged = entries[1]
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])  # a copy cut short
    with caplog.at_level(logging.WARNING):
        again = prepare_data(cfg, seed=0)
    assert again.fingerprint == first.fingerprint
    assert str(damaged) in caplog.text and "preparing the subject again" in caplog.text
    with np.load(damaged) as repaired:  # rewritten whole
        assert set(repaired.files) >= {"images", "labels", "brain", "indices", "spacing"}


def test_truncated_or_foreign_segmentation_checkpoint_is_retrained(tmp_path: Path, caplog) -> None:
    from segmentation import train_segmenter
    from tests.segmentation_data import synthetic_slices
    from tests.test_segmentation_training import tiny_config

    train, val = synthetic_slices(2, 3, size=32, seed=1), synthetic_slices(1, 3, size=32, seed=2)
    cfg = tiny_config(iterations=2, val_interval=1)
    first = train_segmenter(train, val, cfg, seed=0, device=torch.device("cpu"), cache_dir=tmp_path)
    path = Path(first.info["checkpoint"])
    whole = path.read_bytes()
    for damage in (whole[: len(whole) // 2], None):
        if damage is None:
            torch.save({"key": first.info["cache_key"]}, path)  # readable, but not a checkpoint
        else:
            path.write_bytes(damage)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            again = train_segmenter(train, val, cfg, seed=0, device=torch.device("cpu"), cache_dir=tmp_path)
        assert again.info["cache_hit"] is False and str(path) in caplog.text
        for name, tensor in first.network.state_dict().items():
            torch.testing.assert_close(again.network.state_dict()[name], tensor)
        assert train_segmenter(train, val, cfg, 0, torch.device("cpu"), tmp_path).info["cache_hit"] is True
