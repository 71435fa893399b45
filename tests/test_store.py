"""The results store: atomic cells, resume, changed configs, concurrent writers, export."""

from __future__ import annotations

import math
import multiprocessing
from pathlib import Path

import pandas as pd
import pytest

from benchmark.errors import DataError
from benchmark.study.schema import CASE_COLUMNS, RESULT_COLUMNS, load_results
from benchmark.study.store import CellKey, ResultsStore, hash_config


def metric_rows(value: float) -> list[dict]:
    return [
        {"quantity": "ssim", "value": value, "kind": "reference", "higher_is_better": True, "family": "noise",
         "n_reference": 10, "n_candidate": 10},
        {"quantity": "fid", "value": 10 * value, "kind": "distribution", "higher_is_better": False,
         "family": "noise", "feature_extractor": "inception", "n_reference": 10, "n_candidate": 10},
    ]


def test_written_cell_is_done_and_in_the_table(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    key = CellKey("metrics", "gaussian_noise", 2, 0)
    assert not store.done(key, "abc")
    store.write_cell(key, "abc", metric_rows(0.5), elapsed_s=1.25,
                     cases=[{"quantity": "ssim", "case_id": i, "value": 0.5} for i in range(3)])
    assert store.done(key, "abc")
    table = store.table()
    assert list(table.columns) == list(RESULT_COLUMNS)
    assert table["quantity"].tolist() == ["fid", "ssim"]
    row = table.set_index("quantity").loc["fid"]
    assert (row["perturbation"], row["severity"], row["seed"], row["stage"]) == ("gaussian_noise", 2, 0, "metrics")
    assert row["value"] == 5.0 and row["elapsed_s"] == 1.25 and row["config_hash"] == "abc"
    assert row["status"] == "ok" and row["error"] == "" and row["feature_extractor"] == "inception"
    cases = store.cases()
    assert list(cases.columns) == list(CASE_COLUMNS) and len(cases) == 3
    assert set(cases["case_kind"]) == {"item"}


def test_changed_config_hash_recomputes_only_that_cell(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    first, second = CellKey("metrics", "blur", 1, 0), CellKey("metrics", "blur", 2, 0)
    store.write_cell(first, hash_config({"sigma": 0.2}), metric_rows(0.9))
    store.write_cell(second, hash_config({"sigma": 0.5}), metric_rows(0.8))
    assert not store.done(first, hash_config({"sigma": 0.3}))  # parameters of level 1 changed
    assert store.done(second, hash_config({"sigma": 0.5}))
    store.write_cell(first, hash_config({"sigma": 0.3}), metric_rows(0.7))  # recomputed: replaces
    table = store.table()
    assert len(table) == 4
    assert table[(table.severity == 1) & (table.quantity == "ssim")]["value"].item() == 0.7


def test_hash_config_is_stable_and_order_free() -> None:
    assert hash_config({"a": 1, "b": [1, 2]}) == hash_config({"b": [1, 2], "a": 1})
    assert hash_config({"a": 1}) != hash_config({"a": 2})
    assert len(hash_config("x")) == 16


def test_interrupted_write_leaves_nothing_that_counts_as_done(tmp_path: Path) -> None:
    """A writer killed before the rename leaves only its temporary .part file: not a cell, not done."""
    store = ResultsStore(tmp_path)
    key = CellKey("metrics", "blur", 3, 0)
    partial = store.cells_dir / f".{key.file_name()}.crashed.part"
    partial.write_text('{"format": 1, "key": {"stage": "metrics"}, "config_hash": "abc", "status": "ok", "rows": [')
    assert not store.done(key, "abc")
    assert store.cells() == [] and store.table().empty
    store.write_cell(key, "abc", metric_rows(0.1))
    assert store.done(key, "abc") and len(store.table()) == 2


def test_hand_corrupted_cell_is_a_clear_error(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    key = CellKey("metrics", "blur", 3, 0)
    store.path(key).write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        store.table()


def test_failed_cell_is_recorded_and_retried_by_default(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    key = CellKey("metrics", "ghosting", 4, 1)
    store.write_cell(key, "h", [], status="failed", error="RuntimeError: singular covariance")
    table = store.table()
    assert len(table) == 1 and table["status"].item() == "failed"
    assert math.isnan(table["value"].item()) and "singular" in table["error"].item()
    assert not store.done(key, "h")  # resumed sweeps try failed cells again ...
    assert store.done(key, "h", retry_failed=False)  # ... unless told not to
    assert store.failed()["error"].tolist() == ["RuntimeError: singular covariance"]
    with pytest.raises(ValueError, match="without an error"):
        store.write_cell(key, "h", [], status="failed")


def test_nan_marked_ok_is_refused(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    with pytest.raises(ValueError, match="NaN but marked ok"):
        store.write_cell(CellKey("metrics", "blur", 1, 0), "h", metric_rows(float("nan")))
    with pytest.raises(ValueError, match="lacks"):
        store.write_cell(CellKey("metrics", "blur", 1, 0), "h", [{"quantity": "ssim", "value": 1.0}])


def _write_cells(args: tuple[str, int]) -> None:
    root, worker = args
    store = ResultsStore(Path(root), export_dir=Path(root) / "out")
    for severity in range(6):
        store.write_cell(CellKey("metrics", f"pert{worker}", severity, 0), "h", metric_rows(severity / 10))


def test_concurrent_writers_from_several_processes_all_land(tmp_path: Path) -> None:
    """Four processes write 6 cells each into one store and re-export after every cell."""
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_write_cells, [(str(tmp_path), worker) for worker in range(4)])
    store = ResultsStore(tmp_path)
    assert len(store.cells()) == 24
    assert len(store.table()) == 48
    assert not list(store.cells_dir.glob("*.part"))
    store.export(tmp_path / "out")  # the aggregation step: the exported tables hold every cell
    exported = load_results(tmp_path / "out")
    assert len(exported) == 48 and set(exported["perturbation"]) == {f"pert{w}" for w in range(4)}


def test_export_round_trips_through_csv_and_parquet(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "store")
    store.write_cell(CellKey("metrics", "blur", 0, 0), "h", metric_rows(1.0))
    store.write_cell(CellKey("metrics", "blur", 1, 0), "h", [], status="failed", error="boom")
    store.export(tmp_path / "out")
    from_parquet = load_results(tmp_path / "out")
    (tmp_path / "out" / "results.parquet").unlink()
    from_csv = load_results(tmp_path / "out")
    pd.testing.assert_frame_equal(from_parquet, from_csv, check_dtype=False)
    assert from_csv["higher_is_better"].tolist()[:2] == [False, True]
    assert (tmp_path / "out" / "cases.parquet").is_file()


def test_a_cell_rewritten_by_another_process_is_read_again(tmp_path: Path) -> None:
    reader, writer = ResultsStore(tmp_path), ResultsStore(tmp_path)
    key = CellKey("metrics", "blur", 1, 0)
    writer.write_cell(key, "h1", metric_rows(0.25))
    assert reader.table()["value"].tolist() == [2.5, 0.25]
    writer.write_cell(key, "h2", metric_rows(0.75))  # same size, possibly the same mtime tick: a new inode
    assert reader.table()["value"].tolist() == [7.5, 0.75]
    assert reader.done(key, "h2") and not reader.done(key, "h1")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"null", "not a cell of this tool"),
        (b"[]", "not a cell of this tool"),
        (b'{"format": 1, "key": {}}', "missing ['config_hash', 'status', 'rows']"),
        (b'{"format": 99, "key": {}, "config_hash": "h", "status": "ok", "rows": []}', "format 99"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
    ],
)
def test_foreign_null_or_binary_cell_file_is_an_error_naming_it(tmp_path: Path, content: bytes, message: str) -> None:
    """Such a file never counts as absent: the report step would otherwise rewrite results.csv without it."""
    store = ResultsStore(tmp_path, export_dir=tmp_path)
    good, bad = CellKey("metrics", "blur", 1, 0), CellKey("metrics", "blur", 3, 0)
    store.write_cell(good, "abc", metric_rows(0.1))
    store.path(bad).write_bytes(content)
    with pytest.raises(DataError, match="delete it") as error:
        store.table()
    assert str(store.path(bad)) in str(error.value) and message in str(error.value)
    with pytest.raises(DataError):
        store.done(bad, "abc")
    with pytest.raises(DataError):
        store.write_cell(good, "abc", metric_rows(0.2))  # the export re-reads every cell
    assert len(load_results(tmp_path)) == 2  # the table on disk kept its rows


def test_unwritable_cells_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    store = ResultsStore(tmp_path)
    store.cells_dir.chmod(0o500)
    try:
        with pytest.raises(DataError, match="cannot write the results store file") as error:
            store.write_cell(CellKey("metrics", "blur", 1, 0), "abc", metric_rows(0.1))
        assert str(store.cells_dir) in str(error.value)
    finally:
        store.cells_dir.chmod(0o700)


def test_study_json_keeps_the_perturbations_of_earlier_writers(tmp_path: Path) -> None:
    """Two runs with different perturbation lists into one folder: study.json describes both."""
    from benchmark.pipeline import previous_perturbations
    from benchmark.study.files import read_study_info, write_study_info

    path = tmp_path / "study.json"
    assert previous_perturbations(path) == {}
    write_study_info(path, {"data": {"source": "phantom"}, "perturbations": {"ghosting": {"family": "artifact"}}})
    merged = {**previous_perturbations(path), "gaussian_noise": {"family": "noise"}}
    write_study_info(path, {"data": {"source": "phantom"}, "perturbations": merged})
    assert set(read_study_info(tmp_path).perturbations) == {"ghosting", "gaussian_noise"}
