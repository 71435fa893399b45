"""What StudyResampler writes for a user to read: resampling.json, floor.csv, resamples.parquet, curves.csv and the
held-out side file, on a small finished study with memorisation metrics (they need the training features) whose
suite raises on any error. The study's cells are computed once per module; every test resamples a fresh copy of
it itself, so each test exercises the resampler (not a fixture run before it)."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from benchmark.metrics import memorisation
from benchmark.metrics.distribution import fid
from benchmark.metrics.entries import AuthenticityMetric, FIDTrainGapMetric, FrechetMetric, ImageMetric
from benchmark.metrics.suite import MetricSuite
from benchmark.study import item_data
from benchmark.study.resampling import StudyResampler
from benchmark.study.store import CellKey, ResultsStore, cell_checksum
from tests.test_study_resampler import SUBJECTS, Pooling, Runner, image_set, noisy

CURVE_SETS = ["clean (held-out subjects)", "gaussian_noise sev 3 (noise)", "tumour_remove sev 3 (morphological)",
              "memorisation_copies sev 3 (memorisation)"]
DICE = {"t0": 0.9, "t1": 0.8, "t2": 0.7, "t3": 0.6, "t4": 0.5}
UTILITY = {"t0": 0.1, "t1": 0.2, "t2": 0.3, "t3": 0.4, "t4": 0.5}


def make_suite(extractor: Pooling | None = None) -> MetricSuite:
    """FID, a paired MAE and two memorisation entries; the training set is capped at 6 of its 12 items."""
    return MetricSuite({"fid": FrechetMetric("pool"), "mae": ImageMetric("mae"), "auth": AuthenticityMetric("pool"),
                        "gap": FIDTrainGapMetric("pool")}, {"pool": extractor or Pooling()}, max_train_images=6,
                       on_error="raise")


def write_reader_minimal_cell(store: ResultsStore, key: CellKey, cases: list[dict] | None) -> None:
    """A checksummed cell with only the fields the store's reader requires (no `cases` when None, and cases
    without `case_kind`)."""
    cell = {"format": 2, "key": asdict(key), "config_hash": "h", "status": "ok", "rows": []}
    if cases is not None:
        cell["cases"] = cases
    cell["checksum"] = cell_checksum(cell)
    store.path(key).write_text(json.dumps(cell))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The finished cells of seeds 0 and 1, listed after a Dice cell and another seed's cell, and the Dice cases."""
    runner = Runner(tmp_path_factory.mktemp("template"), seeds=[0])
    runner.suite = make_suite()
    test, train = runner.data.test, runner.data.train
    runner.listed.append(SimpleNamespace(key=CellKey("dice_robustness", "gaussian_noise", 3, 0), config_hash="h"))
    runner.metrics_cell("gaussian_noise", 3, 1, noisy(test, 0.3, 5))
    runner.metrics_cell("gaussian_noise", 0, 1, test)
    side = {"clean": runner.metrics_cell("gaussian_noise", 0, 0, test),
            "noise": runner.metrics_cell("gaussian_noise", 3, 0, noisy(test, 0.3, 0)),
            "noise sev 2": runner.metrics_cell("gaussian_noise", 2, 0, noisy(test, 0.2, 1)),
            "remove": runner.metrics_cell("tumour_remove", 3, 0, noisy(test, 0.1, 2)),
            "keep": runner.metrics_cell("tumour_remove_keep", 3, 0, noisy(test, 0.05, 3)),
            "copies": runner.metrics_cell("memorisation_copies", 3, 0, test.with_images(train.images[:10]))}
    runner.store.write_cell(CellKey("dice_robustness", "gaussian_noise", 3, 0), "h", [], cases=[
        *({"quantity": "robustness/dice_WT", "case_id": s, "value": v} for s, v in DICE.items()),
        {"quantity": "robustness/hd95_WT", "case_id": "t0", "value": 7.0}])
    write_reader_minimal_cell(runner.store, CellKey("dice_utility", "gaussian_noise", 3, 0), [
        {"quantity": "utility/dice_WT", "case_id": s, "value": v} for s, v in UTILITY.items()])
    write_reader_minimal_cell(runner.store, CellKey("dice_robustness", "tumour_remove", 3, 0), None)
    train_features = make_suite().features_of("pool", train, "train").double()
    return SimpleNamespace(root=runner.output_dir, listed=runner.listed, side=side, train=train_features)


def fresh_copy(template: SimpleNamespace, root: Path, seeds: list[int], extractor: Pooling | None = None) -> Runner:
    shutil.copytree(template.root, root)
    runner = Runner(root, seeds=seeds)
    runner.suite = make_suite(extractor)
    runner.listed = list(template.listed)
    return runner


@pytest.fixture
def study(template: SimpleNamespace, tmp_path: Path) -> Runner:
    return fresh_copy(template, tmp_path / "study", [0])


def features(data: item_data.ItemData, rows: np.ndarray | slice = slice(None)) -> torch.Tensor:
    return torch.from_numpy(data.features["pool"][0][rows].astype(np.float64))


def test_resampling_json_names_the_subjects_the_settings_and_the_time_of_each_stage(study: Runner) -> None:
    start = time.perf_counter()
    StudyResampler(study, n_boot=3, floor_splits=2, curve_repeats=2).run()
    wall = time.perf_counter() - start
    text = (study.output_dir / "resampling.json").read_text()
    info = json.loads(text)
    assert {k: v for k, v in info.items() if k != "elapsed_s"} == {
        "n_test_subjects": 5, "test_subjects": SUBJECTS, "n_held_out_subjects": 4, "n_test_items": 10,
        "n_boot": 3, "floor_splits": 2, "curve_repeats": 2, "seeds": [0]}
    elapsed = info["elapsed_s"]
    assert set(elapsed) == {"floor", "bootstrap", "curves"}
    assert all(isinstance(v, float) and v >= 0 for v in elapsed.values()) and sum(elapsed.values()) <= wall
    assert len(text.splitlines()) > len(info)  # indented: one key per line, for a reader


def test_elapsed_times_add_up_over_seeds_and_the_log_line_reports_them(
        template: SimpleNamespace, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runner = fresh_copy(template, tmp_path / "study", [0, 1])
    resampler = StudyResampler(runner, n_boot=40, floor_splits=80, curve_repeats=50)  # each stage ~0.1 s
    with caplog.at_level(logging.INFO, logger="benchmark.study"):
        start = time.perf_counter()
        resampler.run()
        wall = time.perf_counter() - start
    elapsed = json.loads((runner.output_dir / "resampling.json").read_text())["elapsed_s"]
    # the three stages are most of the run, for both seeds together (seed 1's alone, 2 of the 8 cells, are not)
    assert 0.5 * wall <= sum(elapsed.values()) <= wall
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resampling: floor")]
    assert summary == ["resampling: floor {:.1f} s, bootstrap {:.1f} s, curves {:.1f} s".format(
        elapsed["floor"], elapsed["bootstrap"], elapsed["curves"])]


def test_a_study_without_a_clean_cell_logs_zero_times(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runner = Runner(tmp_path, seeds=[0])
    runner.metrics_cell("gaussian_noise", 3, 0, runner.data.test)
    with caplog.at_level(logging.INFO, logger="benchmark.study"):
        StudyResampler(runner, n_boot=2, floor_splits=2, curve_repeats=1).run()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[-1] == "resampling: floor 0.0 s, bootstrap 0.0 s, curves 0.0 s"


def test_a_seed_without_clean_cell_is_skipped_with_a_warning_and_later_seeds_still_run(
        template: SimpleNamespace, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runner = fresh_copy(template, tmp_path / "study", [5, 0])
    with caplog.at_level(logging.WARNING, logger="benchmark.study"):
        StudyResampler(runner, n_boot=2, floor_splits=2, curve_repeats=1).run()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["resampling: no clean metrics cell for seed 5; no floor or bootstrap"]
    for name in ("floor.csv", "curves.csv"):
        assert set(pd.read_csv(runner.output_dir / name)["seed"]) == {0}
    assert set(pd.read_parquet(runner.output_dir / "resamples.parquet")["seed"]) == {0}


def test_floor_csv_holds_every_split_of_every_unpaired_metric(study: Runner) -> None:
    StudyResampler(study, n_boot=1, floor_splits=3, curve_repeats=1).run()
    floor = pd.read_csv(study.output_dir / "floor.csv")
    assert list(floor.columns) == ["seed", "split", "n_subjects", "quantity", "value"]
    assert set(floor["seed"]) == {0} and set(floor["n_subjects"]) == {4}  # 9 pooled subjects: halves of 4
    assert sorted(set(floor["quantity"])) == ["auth", "fid", "gap"]  # the paired MAE has no real-vs-real value
    assert floor.groupby("quantity")["split"].apply(list).to_dict() == {q: [0, 1, 2] for q in ("auth", "fid", "gap")}
    assert np.isfinite(floor["value"]).all()


def test_the_bootstrap_recomputes_every_metric_and_dice_on_the_drawn_subjects(
        template: SimpleNamespace, study: Runner) -> None:
    StudyResampler(study, n_boot=4, floor_splits=1, curve_repeats=1).run()
    path = study.output_dir / "resamples.parquet"
    columns = ["resample", "stage", "perturbation", "severity", "seed", "quantity", "value"]
    assert pq.read_schema(path).names == columns  # no index column for readers other than pandas
    boot = pd.read_parquet(path)
    side, clean = template.side, template.side["clean"]
    cells = {"noise": ("gaussian_noise", 3), "noise sev 2": ("gaussian_noise", 2), "remove": ("tumour_remove", 3),
             "keep": ("tumour_remove_keep", 3), "copies": ("memorisation_copies", 3)}
    groups = {s: np.flatnonzero(clean.slot == s) for s in SUBJECTS}  # every cell's items stand for the test items
    rng = np.random.default_rng(1)  # seed 0's bootstrap stream
    for b in range(4):
        drawn = rng.choice(SUBJECTS, len(SUBJECTS), replace=True)
        rows = np.concatenate([groups[s] for s in drawn])
        got = boot[boot["resample"] == b].set_index(["stage", "perturbation", "severity", "quantity"])["value"]
        for name, (perturbation, severity) in cells.items():
            candidate, reference = features(side[name], rows), features(clean, rows)
            assert got[("metrics", perturbation, severity, "fid")] == pytest.approx(fid(candidate, reference), rel=1e-6)
            assert got[("metrics", perturbation, severity, "gap")] == pytest.approx(
                fid(candidate, template.train) - fid(candidate, reference), rel=1e-6, abs=1e-9)
            assert got[("metrics", perturbation, severity, "auth")] == pytest.approx(
                memorisation.authenticity(candidate, template.train))
        assert got[("dice_robustness", "gaussian_noise", 3, "robustness/dice_WT")] == pytest.approx(
            np.mean([DICE[s] for s in drawn]))
        assert got[("dice_utility", "gaussian_noise", 3, "utility/dice_WT")] == pytest.approx(
            np.mean([UTILITY[s] for s in drawn]))
    dice = boot[boot["stage"] != "metrics"]
    assert set(zip(dice["stage"], dice["perturbation"], dice["quantity"], strict=True)) == {
        ("dice_robustness", "gaussian_noise", "robustness/dice_WT"),
        ("dice_utility", "gaussian_noise", "utility/dice_WT")}
    assert set(boot["seed"]) == {0} and len(boot) == 4 * (6 * 4 + 2)  # 6 cells x (fid, mae, auth, gap), 2 Dice


def test_unattached_items_are_resampled_in_the_floor_and_the_bootstrap(study: Runner) -> None:
    for key in (CellKey("metrics", "gaussian_noise", 0, 0), CellKey("metrics", "gaussian_noise", 3, 0)):
        path = item_data.item_path(study.store.root, key.file_name())
        data = item_data.load(path)
        data.slot = np.where(data.slot == "t4", "", data.slot)  # t4's items stand for no subject
        item_data.save(path, data)
    StudyResampler(study, n_boot=3, floor_splits=2, curve_repeats=1).run()
    boot = pd.read_parquet(study.output_dir / "resamples.parquet")
    noise = boot[(boot["perturbation"] == "gaussian_noise") & (boot["severity"] == 3) & (boot["stage"] == "metrics")]
    assert noise.groupby("resample")["quantity"].apply(sorted).to_dict() == {
        b: ["auth", "fid", "gap", "mae"] for b in range(3)}
    assert np.isfinite(noise["value"]).all()
    floor = pd.read_csv(study.output_dir / "floor.csv")
    assert set(floor["n_subjects"]) == {4} and np.isfinite(floor["value"]).all()  # t0-t3 in the clean cell


def test_curves_csv_draws_subsets_of_each_size_from_the_held_out_set_and_one_cell_per_family(
        template: SimpleNamespace, study: Runner) -> None:
    StudyResampler(study, n_boot=1, floor_splits=1, curve_repeats=3).run()
    curves = pd.read_csv(study.output_dir / "curves.csv")
    assert list(curves.columns) == ["seed", "set", "n", "repeat", "quantity", "value"]
    assert set(curves["seed"]) == {0} and sorted(set(curves["set"])) == sorted(CURVE_SETS)
    assert set(curves["quantity"]) == {"fid", "auth"}  # the curve entries only
    draws = curves.groupby(["set", "quantity", "n"])["repeat"].apply(list).to_dict()
    assert draws == {(s, q, n): ([0, 1, 2] if n == 8 else [0]) for s in CURVE_SETS for q in ("fid", "auth")
                     for n in (8, 10)}  # 8, then all 10 clean items once
    side = template.side
    val = study.data.val
    held_out = Pooling().extract(val.images).double()
    sets = dict(zip(CURVE_SETS, [held_out, *(features(side[k]) for k in ("noise", "remove", "copies"))], strict=True))
    clean = features(side["clean"])
    value = curves.set_index(["set", "n", "repeat", "quantity"])["value"]
    rng = np.random.default_rng(2)  # seed 0's curve stream
    for label, candidate in sets.items():
        for n, repeats in ((8, 3), (10, 1)):
            for repeat in range(repeats):
                ref = rng.choice(10, n, replace=False)
                cand = rng.choice(len(candidate), min(n, len(candidate)), replace=False)
                assert value[(label, n, repeat, "fid")] == pytest.approx(
                    fid(candidate[cand], clean[ref]), rel=1e-5)
                assert value[(label, n, repeat, "auth")] == pytest.approx(
                    memorisation.authenticity(candidate[cand], template.train))
        whole = value[(label, 10, 0, "fid")]  # every item, whatever their order: the full sets' FID
        assert whole == pytest.approx(fid(candidate, clean), rel=1e-5)


def test_the_held_out_side_file_holds_the_validation_features_without_paired_metrics(study: Runner) -> None:
    StudyResampler(study, n_boot=1, floor_splits=1, curve_repeats=1).run()
    path = study.store.root / "items" / "held_out-seed0.npz"
    held_out = item_data.load(path)
    assert held_out.slot.tolist() == ["h0", "h0", "h1", "h1", "h2", "h2", "h3", "h3"]
    expected = Pooling().extract(study.data.val.images).double()
    assert torch.allclose(features(held_out), expected, atol=1e-6)
    assert "mae" not in held_out.items
    item_data.save(path, item_data.ItemData(slot=held_out.slot[:5]))  # another length: computed again
    StudyResampler(study, n_boot=1, floor_splits=1, curve_repeats=1).run()
    again = item_data.load(path)
    assert len(again) == 8 and torch.allclose(features(again), expected, atol=1e-6)


def test_a_one_item_test_set_resamples_with_nan_for_the_distribution_metrics(tmp_path: Path) -> None:
    runner = Runner(tmp_path, seeds=[0])
    runner.data.test = image_set(["t0"], 1, 3)
    runner.metrics_cell("gaussian_noise", 0, 0, runner.data.test)
    StudyResampler(runner, n_boot=2, floor_splits=2, curve_repeats=1).run()
    assert len(item_data.load(runner.store.root / "items" / "held_out-seed0.npz")) == 8
    floor, curves = (pd.read_csv(tmp_path / name) for name in ("floor.csv", "curves.csv"))
    assert set(floor["n_subjects"]) == {1} and floor["value"].isna().all()  # FID needs two items per set
    assert curves[["set", "n"]].values.tolist() == [["clean (held-out subjects)", 1]]
    boot = pd.read_parquet(tmp_path / "resamples.parquet").set_index(["resample", "quantity"])["value"]
    assert boot.to_dict() == pytest.approx({(0, "mae"): 0.0, (0, "fid"): np.nan, (1, "mae"): 0.0,
                                           (1, "fid"): np.nan}, nan_ok=True)


class ThreadsSeen(Pooling):
    """Pooling that notes torch's thread count at every call."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.threads.append(torch.get_num_threads())
        return super().forward(images)


def test_the_run_is_single_threaded_and_restores_the_thread_count(template: SimpleNamespace, tmp_path: Path) -> None:
    extractor = ThreadsSeen()
    runner = fresh_copy(template, tmp_path / "study", [0], extractor)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        StudyResampler(runner, n_boot=1, floor_splits=1, curve_repeats=1).run()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert extractor.threads and set(extractor.threads) == {1}  # the held-out and training features
