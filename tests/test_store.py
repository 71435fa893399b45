"""The results store: atomic cells, resume, changed configs, concurrent writers, export."""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
from pathlib import Path

import pandas as pd
import pytest

from benchmark.errors import DataError
from benchmark.study.schema import CASE_COLUMNS, RESULT_COLUMNS, load_results
from benchmark.study.scope import StudyScope, hash_config
from benchmark.study.store import CellKey, ResultsStore


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


def _scope(data: str, metrics_config: str = "m", cells: dict[str, str] | None = None) -> StudyScope:
    return StudyScope(data, {"metrics": f"{data}-{metrics_config}", "dice_robustness": f"{data}-seg"}, cells or {})


def test_hand_edited_cell_is_not_trusted_but_recomputed_with_a_warning(tmp_path: Path, caplog) -> None:
    """A value changed by hand no longer matches the cell's checksum: the cell counts as absent (so the sweep
    recomputes it) and stays out of the results, with a warning naming the file."""
    store = ResultsStore(tmp_path, export_dir=tmp_path)
    edited, kept = CellKey("metrics", "blur", 1, 0), CellKey("metrics", "blur", 2, 0)
    store.write_cell(edited, "h", metric_rows(0.5))
    store.write_cell(kept, "h", metric_rows(0.25))
    cell = json.loads(store.path(edited).read_text())
    cell["rows"][0]["value"] = 0.99  # checksum left as it was
    store.path(edited).write_text(json.dumps(cell))
    reader = ResultsStore(tmp_path)
    with caplog.at_level(logging.WARNING, logger="benchmark.study"):
        assert not reader.done(edited, "h") and reader.done(kept, "h")
        table = reader.table()
    assert sorted(table["value"]) == [0.25, 2.5] and 0.99 not in table["value"].tolist()
    assert reader.left_out == {"checksum mismatch": 1}
    assert str(store.path(edited)) in caplog.text and "does not match its checksum" in caplog.text
    reader.write_cell(edited, "h", metric_rows(0.5))  # the recomputation replaces it
    assert reader.done(edited, "h") and sorted(reader.table()["value"]) == [0.25, 0.5, 2.5, 5.0]


def test_checksum_covers_every_field_and_survives_nan_and_inf(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    key = CellKey("metrics", "blur", 1, 0)
    rows = [*metric_rows(0.5), {"quantity": "psnr", "value": math.inf, "kind": "reference", "higher_is_better": True},
            {"quantity": "kid", "value": math.nan, "kind": "distribution", "higher_is_better": False,
             "status": "failed", "error": "too few"}]
    store.write_cell(key, "h", rows)
    assert store.done(key, "h")
    original = store.path(key).read_text()
    for old, new in (('"config_hash": "h"', '"config_hash": "g"'), ('"status": "failed"', '"status": "ok"'),
                     ('"quantity": "fid"', '"quantity": "fidd"')):
        assert old in original
        store.path(key).write_text(original.replace(old, new, 1))
        assert ResultsStore(tmp_path).read_cell(key) is None, new


def test_cells_of_other_data_or_config_are_left_out_but_kept_on_disk(tmp_path: Path) -> None:
    """A rerun into the same output_dir with other data (or another metric config) declares its scope: the
    earlier study's cells stay on disk but enter neither the table, the cases nor the exported files."""
    first = ResultsStore(tmp_path / "store", export_dir=tmp_path, scope=_scope("data-a"))
    first.declare(first.scope)
    for severity in (0, 3):
        first.write_cell(CellKey("metrics", "blur", severity, 0), "a", metric_rows(0.9),
                         cases=[{"quantity": "ssim", "case_id": 0, "value": 0.9}])
    first.write_cell(CellKey("metrics", "ghosting", 3, 0), "a", metric_rows(0.7))
    assert len(load_results(tmp_path)) == 6

    second = ResultsStore(tmp_path / "store", export_dir=tmp_path, scope=_scope("data-b"))
    second.declare(second.scope)
    second.write_cell(CellKey("metrics", "blur", 0, 0), "b", metric_rows(0.8))
    results = load_results(tmp_path)
    assert set(results["config_hash"]) == {"b"} and len(results) == 2
    assert set(pd.read_parquet(tmp_path / "cases.parquet")["config_hash"]) <= {"b"}
    assert second.left_out == {"other data": 2} and len(list(second.cells_dir.glob("*.json"))) == 3
    assert "2 stored cell(s)" in second.left_out_line() and "2 of other data" in second.left_out_line()

    reader = ResultsStore(tmp_path / "store")  # the report step: no config, reads the declared scope
    assert reader.scope == second.scope and len(reader.table()) == 2

    third = ResultsStore(tmp_path / "store", scope=_scope("data-b", metrics_config="other"))
    assert third.table().empty and third.left_out == {"another configuration": 1, "other data": 2}


def test_cell_of_the_study_with_an_old_config_hash_is_left_out(tmp_path: Path) -> None:
    """A cell the current study defines, still holding the result of earlier perturbation parameters (an
    interrupted rerun), is not part of the current results before it is recomputed."""
    key = CellKey("metrics", "blur", 3, 0)
    store = ResultsStore(tmp_path, scope=_scope("d"))
    store.write_cell(key, "old-parameters", metric_rows(0.9))
    store.write_cell(CellKey("metrics", "ghosting", 3, 0), "g", metric_rows(0.5))
    current = ResultsStore(tmp_path, scope=_scope("d", cells={key.file_name(): "new-parameters"}))
    assert set(current.table()["perturbation"]) == {"ghosting"}  # not in this study's list: same data, kept
    assert current.left_out == {"another configuration": 1}
