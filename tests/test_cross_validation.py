"""Subject-level k-fold cross-validation on the phantom at tiny size: every subject tested once, Dice from
each subject's own fold, distribution metrics on the union of the folds' items, resume per fold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from benchmark.config_schema import MetricsConfig
from benchmark.data.folds import check_folds, fold_subjects
from benchmark.errors import ConfigError
from benchmark.pipeline import run_pipeline
from benchmark.study import item_data
from benchmark.study.store import CellKey
from tests.cli import REPO

TINY_SUITE = {
    "_target_": "benchmark.metrics.suite.MetricSuite", "max_images": None, "max_train_images": None, "seed": 0,
    "on_error": "flag", "cache_entries": 20000,
    "extractors": {"pooled": {"_target_": "tests.test_study_item_features.PooledSlices", "_partial_": True}},
    "metrics": {
        "ssim": {"_target_": "benchmark.metrics.entries.ImageMetric", "function": "ssim", "data_range": 1.0},
        "mse": {"_target_": "benchmark.metrics.entries.ImageMetric", "function": "mse"},
        "fid": {"_target_": "benchmark.metrics.entries.FrechetMetric", "extractor": "pooled"},
        "copy_rate": {"_target_": "benchmark.metrics.entries.CopyRateMetric", "extractor": "pooled", "threshold": 0.2},
        "authenticity": {"_target_": "benchmark.metrics.entries.AuthenticityMetric", "extractor": "pooled"},
        "fid_train_gap": {"_target_": "benchmark.metrics.entries.FIDTrainGapMetric", "extractor": "pooled"},
    },
}


def cv_config(cache: Path, out: Path, *extra: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[
            f"data.cache_dir={cache}", "data.phantom.n_subjects=6", "data.phantom.voxel_size_mm=4",
            "data.phantom.tumour_free_fraction=0", "data.size=[48,48]", "data.slices.per_subject=4",
            "data.slices.min_brain_fraction=0.1", "data.workers=1", "perturbation=[gaussian_noise,tumour_remove_keep]",
            "study.severities=[0,3]", "study.utility_severities=[0]", "segmentation.training.iterations=3",
            "segmentation.training.val_interval=3", "segmentation.training.batch_size=4",
            "study.resampling.n_boot=4", "study.resampling.floor_splits=3", "study.cv.folds=3",
            f"output_dir={out}", "stages=[data,study]", *extra])
    cfg.metrics = MetricsConfig(**TINY_SUITE)
    return cfg


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cache, out = tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("cv")
    run_pipeline(cv_config(cache, out))
    return cache, out


def test_every_subject_is_a_test_subject_exactly_once(cv_run: tuple[Path, Path]) -> None:
    _, out = cv_run
    folds = json.loads((out / "cv.json").read_text())["test_subjects"]
    tested = [s for fold in folds for s in fold]
    assert len(tested) == len(set(tested)) == 6 and len(folds) == 3
    for f, subjects in enumerate(folds):
        fold_cases = pd.read_parquet(out / "folds" / f"fold{f}" / "cases.parquet")
        assert set(fold_cases["case_id"]) == set(subjects)  # a fold scores only its own test subjects
    summary = json.loads((out / "data_summary.json").read_text())
    assert [sorted(f) for f in summary["cross_validation"]["test_subjects"]] == [sorted(f) for f in folds]


def test_dice_of_each_subject_comes_from_its_own_fold(cv_run: tuple[Path, Path]) -> None:
    _, out = cv_run
    pooled = pd.read_parquet(out / "cases.parquet")
    folds = pd.concat([pd.read_parquet(out / "folds" / f"fold{f}" / "cases.parquet") for f in range(3)])
    key = ["stage", "perturbation", "severity", "quantity", "case_id"]
    merged = pooled.merge(folds, on=key, suffixes=("", "_fold"))
    assert len(merged) == len(pooled) == len(folds) > 0
    np.testing.assert_array_equal(merged["value"], merged["value_fold"])
    results = pd.read_parquet(out / "results.parquet")
    row = results[(results["stage"] == "dice_robustness") & (results["perturbation"] == "gaussian_noise")
                  & (results["severity"] == 3) & (results["quantity"] == "robustness/dice_WT")]
    subjects = pooled[(pooled["stage"] == "dice_robustness") & (pooled["perturbation"] == "gaussian_noise")
                      & (pooled["severity"] == 3) & (pooled["quantity"] == "robustness/dice_WT")]
    assert subjects["case_id"].nunique() == 6
    assert float(row["value"].iloc[0]) == pytest.approx(subjects["value"].mean(), abs=1e-12)


def test_metrics_are_pooled_over_all_test_items(cv_run: tuple[Path, Path]) -> None:
    _, out = cv_run
    results = pd.read_parquet(out / "results.parquet").set_index(["stage", "perturbation", "severity", "quantity"])
    folds = [pd.read_parquet(out / "folds" / f"fold{f}" / "results.parquet").set_index(results.index.names)
             for f in range(3)]
    key = ("metrics", "gaussian_noise", 3)
    mse = [fold.loc[(*key, "mse")] for fold in folds]
    expected = sum(r["value"] * r["n_candidate"] for r in mse) / sum(r["n_candidate"] for r in mse)
    assert results.loc[(*key, "mse"), "value"] == pytest.approx(expected, rel=1e-6)  # an item mean: exact
    assert results.loc[(*key, "mse"), "n_candidate"] == sum(r["n_candidate"] for r in mse)
    # FID on the union of every fold's items, checked with scipy's matrix square root on the stored features
    def union(severity: int) -> np.ndarray:
        cell = CellKey("metrics", "gaussian_noise", severity, 0).file_name()
        parts = [item_data.load(item_data.item_path(out / "folds" / f"fold{f}" / "store", cell)) for f in range(3)]
        return np.concatenate([p.features["pooled"][0] for p in parts])
    clean, noisy = union(0), union(3)
    mean_term = np.sum((clean.mean(0) - noisy.mean(0)) ** 2)
    c1, c2 = np.cov(clean, rowvar=False), np.cov(noisy, rowvar=False)
    fid = mean_term + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert results.loc[(*key, "fid"), "value"] == pytest.approx(fid, rel=1e-3, abs=1e-6)
    fold_mean = np.mean([fold.loc[(*key, "fid"), "value"] for fold in folds])
    assert abs(results.loc[(*key, "fid"), "value"] - fold_mean) > 1e-6  # not an average of small-sample FIDs
    pooling = json.loads((out / "cv.json").read_text())["pooling"]
    assert pooling["fid"] == ["union of all folds' test items"]
    assert pooling["fid_train_gap"] == ["mean of the folds' values, weighted by test items"]  # own training set
    floor = pd.read_csv(out / "floor.csv")
    assert set(floor["n_subjects"]) == {3}  # halves of all six subjects


def test_memorisation_is_judged_per_fold_and_resampled_over_all_subjects(cv_run: tuple[Path, Path]) -> None:
    """Authenticity and copy rate: each item against its own fold's training set, pooled as the share over
    all test items (= the folds' values weighted by their items), with a floor and bootstrap draws; the
    FID train gap (a whole-set statistic per fold) keeps the weighted mean and no floor."""
    _, out = cv_run
    results = pd.read_parquet(out / "results.parquet").set_index(["stage", "perturbation", "severity", "quantity"])
    folds = [pd.read_parquet(out / "folds" / f"fold{f}" / "results.parquet").set_index(results.index.names)
             for f in range(3)]
    pooling = json.loads((out / "cv.json").read_text())["pooling"]
    for quantity in ("copy_rate", "authenticity"):
        assert pooling[quantity] == ["union of all folds' test items"]
        for perturbation, severity in (("gaussian_noise", 3), ("tumour_remove_keep", 3), ("gaussian_noise", 0)):
            rows = [fold.loc[("metrics", perturbation, severity, quantity)] for fold in folds]
            expected = sum(r["value"] * r["n_candidate"] for r in rows) / sum(r["n_candidate"] for r in rows)
            pooled = results.loc[("metrics", perturbation, severity, quantity), "value"]
            assert pooled == pytest.approx(expected, abs=1e-12)
    floor = pd.read_csv(out / "floor.csv").groupby("quantity")["value"]
    assert floor.count()["copy_rate"] == floor.count()["authenticity"] == 3  # one value per real-vs-real split
    assert floor.count().get("fid_train_gap", 0) == 0
    draws = pd.read_parquet(out / "resamples.parquet")
    authenticity = draws[(draws["quantity"] == "authenticity") & (draws["severity"] == 3)]["value"]
    assert len(authenticity) and np.isfinite(authenticity).all()
    assert authenticity.between(0, 1).all() and authenticity.nunique() > 1  # resampled, not one value repeated


def test_a_rerun_resumes_every_fold(cv_run: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    cache, out = cv_run
    before = (out / "results.parquet").read_bytes()
    with caplog.at_level("INFO", logger="benchmark.study"):
        run_pipeline(cv_config(cache, out))
    assert caplog.text.count("0 to compute") == 3
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet").drop(columns="elapsed_s"),
                                  pd.read_parquet(pd.io.common.BytesIO(before)).drop(columns="elapsed_s"))


def test_folds_are_stratified_and_refused_when_a_source_cannot_fill_them() -> None:
    ids = [f"a{i}" for i in range(9)] + [f"b{i}" for i in range(3)]
    sources = ["a"] * 9 + ["b"] * 3
    folds = fold_subjects(ids, sources, 3, seed=0)
    assert sorted(s for fold in folds for s in fold) == sorted(ids)
    assert all(sum(s.startswith("b") for s in fold) == 1 for fold in folds)
    with pytest.raises(ConfigError, match=r"study.cv.folds=4 exceeds the 3 subjects of source 'b'"):
        check_folds(4, ids, sources)
    with pytest.raises(ConfigError, match=r"study.cv.folds=13 exceeds the 12 subjects"):
        check_folds(13, ids, sources)
    with pytest.raises(ConfigError, match=r"study.cv.folds=2 must be a whole number >= 3"):
        check_folds(2, ids, sources)


def test_site_shift_separates_two_sites_and_not_one_site_split_in_two() -> None:
    from hydra.utils import instantiate

    from benchmark.study.item_data import ItemData
    from benchmark.study.site_shift import site_shift

    suite = instantiate(OmegaConf.create(TINY_SUITE))
    rng = np.random.default_rng(0)
    subjects = [f"a{i}" for i in range(6)] + [f"b{i}" for i in range(12)]
    slot = np.repeat(subjects, 5)
    features = rng.normal(size=(len(slot), 16))
    shifted = features + np.where(np.char.startswith(slot.astype(str), "a"), 1.5, 0.0)[:, None]

    def shift_of(feats: np.ndarray) -> pd.DataFrame:
        data = ItemData(slot=slot, features={"pooled": (feats, np.arange(len(slot)))})
        frame = site_shift(suite, data, {s: s[0] for s in subjects}, draws=8, seed=0)
        return frame.set_index("quantity").loc["fid"]

    real, none = shift_of(shifted), shift_of(features)
    assert (real["source_a"], real["source_b"], real["n_subjects"]) == ("a", "b", 6)
    assert real["z"] > 10  # a mean shift of 1.5 per feature is far outside the within-site spread
    assert abs(none["z"]) < 3
    assert real["floor"] == pytest.approx(none["floor"])  # the floor is within site b only, unchanged


TINY_CV_CLI = [
    "data.phantom.n_subjects=6", "data.phantom.voxel_size_mm=4", "data.phantom.tumour_free_fraction=0",
    "data.size=[48,48]", "data.slices.per_subject=4", "data.slices.min_brain_fraction=0.1", "data.workers=1",
    "perturbation=[gaussian_noise,tumour_remove_keep]", "study.severities=[0,3]", "study.utility_severities=[0]",
    "segmentation.training.iterations=3", "segmentation.training.val_interval=3", "segmentation.training.batch_size=4",
    "study.resampling.n_boot=4", "study.resampling.floor_splits=3", "study.cv.folds=3", "stages=[data,study]",
    "metrics=tiny_cv",
]


@pytest.mark.slow
def test_submitit_and_joblib_fold_jobs_fill_the_store_of_a_plain_run(tmp_path: Path) -> None:
    from tests.cli import run_cli

    conf = tmp_path / "conf" / "metrics"
    conf.mkdir(parents=True)
    (conf / "tiny_cv.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(TINY_SUITE)))
    common = ["--config-dir", str(tmp_path / "conf"), f"data.cache_dir={tmp_path / 'cache'}", *TINY_CV_CLI]
    plain, jobs = tmp_path / "plain", tmp_path / "jobs"
    result = run_cli(*common, f"output_dir={plain}")
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_cli(*common[:2], "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *common[2:],
                     f"output_dir={jobs}", "study.cv.only_fold=0,1")
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_cli(*common[:2], "-m", "hydra/launcher=submitit_local", *common[2:], f"output_dir={jobs}",
                     "study.cv.only_fold=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (jobs / "results.parquet").exists()  # fold jobs write their folds only; nothing is pooled yet
    assert list((jobs / "multirun").glob("**/.submitit")) or list((jobs / "multirun").glob("**/*submitit*"))
    result = run_cli(*common, f"output_dir={jobs}")  # every fold cell is done: this only pools
    assert result.returncode == 0, result.stderr[-3000:]
    assert (result.stdout + result.stderr).count("0 to compute") == 3
    columns = ["stage", "perturbation", "severity", "seed", "quantity", "value"]
    pooled = pd.read_parquet(jobs / "results.parquet")[columns].sort_values(columns[:5], ignore_index=True)
    whole = pd.read_parquet(plain / "results.parquet")[columns].sort_values(columns[:5], ignore_index=True)
    pd.testing.assert_frame_equal(pooled, whole)
