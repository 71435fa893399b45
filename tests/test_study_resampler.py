"""StudyResampler on a small finished study written through the real store and side files: which cells it reads,
the subject bootstrap of metrics and Dice, the sample-size curves, the held-out features and the files it writes."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.data.imageset import ImageSet
from benchmark.features.base import FeatureExtractor
from benchmark.metrics.distribution import fid
from benchmark.metrics.entries import FrechetMetric, ImageMetric
from benchmark.metrics.suite import MetricSuite
from benchmark.study import item_data
from benchmark.study.resampling import StudyResampler, draw_positions, subject_positions
from benchmark.study.store import CellKey, ResultsStore

SUBJECTS = ["t0", "t1", "t2", "t3", "t4"]


class Pooling(FeatureExtractor):
    """A parameter-free extractor: 2x2 average pooling (4 features per item)."""

    name, dim = "pool", 4

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(images, 2).flatten(1)


def image_set(subjects: list[str], per_subject: int, seed: int) -> ImageSet:
    n = len(subjects) * per_subject
    images = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    shape = (n, 1, 8, 8)
    return ImageSet(images, torch.zeros(shape, dtype=torch.long), torch.ones(shape, dtype=torch.bool),
                    [s for s in subjects for _ in range(per_subject)], list(range(n)), ("flair",), (1.0, 1.0))


class Runner:
    """What StudyResampler reads of a finished runner: suite, data, store, config, its cells."""

    def __init__(self, root: Path, seeds: list[int]) -> None:
        self.suite = MetricSuite({"fid": FrechetMetric("pool"), "mae": ImageMetric("mae")}, {"pool": Pooling()},
                                 on_error="flag")
        self.data = SimpleNamespace(train=image_set([f"r{i}" for i in range(6)], 2, 1),
                                    val=image_set(["h0", "h1", "h2", "h3"], 2, 2), test=image_set(SUBJECTS, 2, 3))
        self.store = ResultsStore(root / "store")
        self.output_dir, self.device = root, "cpu"
        self.cfg = SimpleNamespace(study=SimpleNamespace(seeds=seeds))
        self.listed: list[SimpleNamespace] = []

    def cells(self) -> list[SimpleNamespace]:
        return self.listed

    def metrics_cell(self, perturbation: str, severity: int, seed: int, candidate: ImageSet, hash_: str = "h",
                     written: str = "h") -> item_data.ItemData:
        """Compute the suite on `candidate` (paired item by item with the test set), store the cell and its side
        file as the study does."""
        key = CellKey("metrics", perturbation, severity, seed)
        test = self.data.test
        self.suite.compute(test, candidate, torch.arange(len(test)), self.data.train)
        data = item_data.capture(self.suite, candidate, np.asarray(test.subject_ids, dtype=str), "cpu")
        self.store.write_cell(key, written, [{"quantity": "mae", "value": 0.0, "kind": "reference",
                                              "higher_is_better": False}])
        item_data.save(item_data.item_path(self.store.root, key.file_name()), data)
        self.listed.append(SimpleNamespace(key=key, config_hash=hash_))
        return data


def noisy(images: ImageSet, amount: float, seed: int) -> ImageSet:
    noise = torch.randn(images.images.shape, generator=torch.Generator().manual_seed(seed)) * amount
    return images.with_images((images.images + noise).clamp(0, 1))


def finished_study(root: Path) -> tuple[Runner, dict]:
    """A finished seed-0 study (and a stray seed-1 cell; seed 5 listed but never run), resampled once."""
    runner = Runner(root, seeds=[0, 5])
    test = runner.data.test
    cells = {"clean": runner.metrics_cell("gaussian_noise", 0, 0, test),
             "noise": runner.metrics_cell("gaussian_noise", 3, 0, noisy(test, 0.3, 0)),
             "remove": runner.metrics_cell("tumour_remove", 3, 0, noisy(test, 0.1, 1))}
    runner.metrics_cell("blur", 3, 0, noisy(test, 0.05, 2), hash_="old")  # finished under another config
    runner.metrics_cell("tumour_remove_keep", 3, 0, noisy(test, 0.05, 3))  # a second morphological cell
    runner.metrics_cell("gaussian_noise", 2, 1, noisy(test, 0.2, 4))  # another seed
    runner.listed.append(SimpleNamespace(key=CellKey("metrics", "shift", 3, 0), config_hash="h"))  # not run
    runner.listed.append(SimpleNamespace(key=CellKey("dice_robustness", "gaussian_noise", 3, 0), config_hash="h"))
    dice = {"t0": 0.9, "t1": 0.8, "t2": 0.7, "t3": 0.6, "t4": 0.5}
    runner.store.write_cell(CellKey("dice_robustness", "gaussian_noise", 3, 0), "h", [], cases=[
        *({"quantity": "robustness/dice_WT", "case_id": s, "value": v} for s, v in dice.items()),
        {"quantity": "robustness/dice_WT", "case_id": "copy-1", "value": 0.1},
        {"quantity": "robustness/dice_WT", "case_id": "0", "value": 0.2, "case_kind": "replicate"},
        {"quantity": "robustness/hd95_WT", "case_id": "t0", "value": 7.0},
        *({"quantity": "robustness/cldice_vessel", "case_id": s, "value": v / 2} for s, v in dice.items())])
    runner.store.write_cell(CellKey("dice_robustness", "tumour_remove", 3, 0), "h", [], status="failed",
                            error="no model", cases=[{"quantity": "robustness/dice_WT", "case_id": "t0", "value": 0.0}])
    runner.store.write_cell(CellKey("dice_robustness", "gaussian_noise", 2, 1), "h", [],
                            cases=[{"quantity": "robustness/dice_WT", "case_id": "t0", "value": 0.3}])
    runner.store.write_cell(CellKey("dice_utility", "gaussian_noise", 3, 0), "h", [],
                            cases=[{"quantity": "utility/dice_WT", "case_id": "t1", "value": 0.4}])
    StudyResampler(runner, n_boot=6, floor_splits=4, curve_repeats=3).run()
    return runner, {**cells, "dice": dice}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Runner, dict]:
    return finished_study(tmp_path_factory.mktemp("resampler"))


def test_the_bootstrap_redraws_subjects_for_every_cell_alike(study: tuple[Runner, dict]) -> None:
    runner, cells = study
    boot = pd.read_parquet(runner.output_dir / "resamples.parquet")
    assert list(boot.columns) == ["resample", "stage", "perturbation", "severity", "seed", "quantity", "value"]
    metrics = boot[boot["stage"] == "metrics"]
    assert set(zip(metrics["perturbation"], metrics["severity"], strict=True)) == {
        ("gaussian_noise", 0), ("gaussian_noise", 3), ("tumour_remove", 3), ("tumour_remove_keep", 3)}
    assert set(boot["seed"]) == {0} and sorted(set(boot["resample"])) == list(range(6))
    rng = np.random.default_rng(1)
    groups = subject_positions(cells["noise"].slot)
    values = cells["noise"].items["mae"][0]
    for b in range(6):
        drawn = rng.choice(SUBJECTS, len(SUBJECTS), replace=True)
        rows = boot[boot["resample"] == b].set_index(["stage", "perturbation", "severity", "quantity"])["value"]
        positions = draw_positions(groups, drawn, rng)
        assert rows[("metrics", "gaussian_noise", 3, "mae")] == pytest.approx(values[positions].mean())
        expected_dice = np.mean([cells["dice"][s] for s in drawn] + [0.1])  # the copy's case is always kept
        assert rows[("dice_robustness", "gaussian_noise", 3, "robustness/dice_WT")] == pytest.approx(expected_dice)
        assert rows[("dice_robustness", "gaussian_noise", 3, "robustness/cldice_vessel")] == pytest.approx(
            np.mean([cells["dice"][s] / 2 for s in drawn]))
        assert ("dice_utility", "gaussian_noise", 3, "utility/dice_WT") in rows.index or "t1" not in drawn
    dice_rows = boot[boot["stage"] != "metrics"]
    assert set(dice_rows["quantity"]) <= {"robustness/dice_WT", "robustness/cldice_vessel", "utility/dice_WT"}
    assert set(dice_rows["perturbation"]) == {"gaussian_noise"} and set(dice_rows["severity"]) == {3}
    assert {"fid", "mae"} <= set(metrics["quantity"])


def test_curves_cover_the_held_out_set_and_one_cell_per_family(study: tuple[Runner, dict]) -> None:
    runner, cells = study
    curves = pd.read_csv(runner.output_dir / "curves.csv")
    assert sorted(set(curves["set"])) == ["clean (held-out subjects)", "gaussian_noise sev 3 (noise)",
                                          "tumour_remove sev 3 (morphological)"]
    assert set(curves["quantity"]) == {"fid"} and set(curves["n"]) == {8, 10}  # 8, then all 10 clean items
    per = curves.groupby(["set", "n"]).size()
    assert per.loc[("gaussian_noise sev 3 (noise)", 8)] == 3 and per.loc[("gaussian_noise sev 3 (noise)", 10)] == 1
    whole = curves[(curves["set"] == "gaussian_noise sev 3 (noise)") & (curves["n"] == 10)]["value"].item()
    noise, clean = (torch.from_numpy(cells[name].features["pool"][0]) for name in ("noise", "clean"))
    expected = fid(noise, clean)
    assert whole == pytest.approx(float(expected), rel=1e-6)


def test_floor_and_the_summary_of_the_run(study: tuple[Runner, dict]) -> None:
    runner, _ = study
    floor = pd.read_csv(runner.output_dir / "floor.csv")
    assert list(floor.columns) == ["seed", "split", "n_subjects", "quantity", "value"]
    assert set(floor["quantity"]) == {"fid"} and floor["split"].tolist() == [0, 1, 2, 3]
    assert set(floor["n_subjects"]) == {4}  # 9 pooled subjects: halves of at most 4
    info = json.loads((runner.output_dir / "resampling.json").read_text())
    assert {k: v for k, v in info.items() if k != "elapsed_s"} == {
        "n_test_subjects": 5, "test_subjects": SUBJECTS, "n_held_out_subjects": 4, "n_test_items": 10,
        "n_boot": 6, "floor_splits": 4, "curve_repeats": 3, "seeds": [0, 5]}
    assert set(info["elapsed_s"]) == {"floor", "bootstrap", "curves"} and all(v > 0 for v in info["elapsed_s"].values())
    held_out = item_data.load(runner.store.root / "items" / "held_out-seed0.npz")
    assert held_out.slot.tolist() == ["h0", "h0", "h1", "h1", "h2", "h2", "h3", "h3"]
    assert held_out.features["pool"][0].shape == (8, 4)
    assert "mae" not in held_out.items  # the held-out subjects have no clean counterparts


def test_the_held_out_side_file_is_reused_and_a_seed_without_clean_cell_is_skipped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runner, _ = finished_study(tmp_path)
    path = runner.store.root / "items" / "held_out-seed0.npz"
    stored = item_data.load(path)
    marked = item_data.ItemData(slot=stored.slot, features={"pool": (stored.features["pool"][0] + 1000.0,
                                                                     stored.features["pool"][1])})
    item_data.save(path, marked)
    threads = torch.get_num_threads()
    with caplog.at_level(logging.WARNING, logger="benchmark.study"):
        StudyResampler(runner, n_boot=1, floor_splits=2, curve_repeats=1).run()
    assert torch.get_num_threads() == threads
    assert "no clean metrics cell for seed 5; no floor or bootstrap" in caplog.text
    floor = pd.read_csv(runner.output_dir / "floor.csv")
    assert floor["value"].min() > 1e5  # the reused (marked) held-out features entered the floor
    item_data.save(path, item_data.ItemData(slot=stored.slot[:3], features={}))  # wrong size: computed again
    StudyResampler(runner, n_boot=1, floor_splits=2, curve_repeats=1).run()
    assert len(item_data.load(path)) == 8
    assert pd.read_csv(runner.output_dir / "floor.csv")["value"].max() < 1e5


def test_a_study_without_clean_cells_writes_empty_tables(tmp_path: Path) -> None:
    runner = Runner(tmp_path, seeds=[0])
    runner.metrics_cell("gaussian_noise", 3, 0, runner.data.test)
    StudyResampler(runner, n_boot=2, floor_splits=2, curve_repeats=1).run()
    for name in ("floor.csv", "curves.csv"):
        assert (tmp_path / name).read_text().strip() == ""
    assert pd.read_parquet(tmp_path / "resamples.parquet").empty
    assert json.loads((tmp_path / "resampling.json").read_text())["elapsed_s"] == {}
