"""The study end to end on a tiny configuration: artefacts and their columns, resume after a kill,
report rebuild, and a Hydra joblib multirun writing into one store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from benchmark.study.schema import RESULT_COLUMNS
from tests.cli import REPO, run_cli
from tests.test_perturbations_config import USER_MODULE


def tiny(cache: Path, out: Path) -> list[str]:
    """A study that runs in well under a minute: 5 phantom subjects at 4 mm, 48x48 slices, two
    perturbations at severities 0 and 3, a few training iterations, a capped metric suite."""
    return [
        f"data.cache_dir={cache}", "data.phantom.n_subjects=5", "data.phantom.voxel_size_mm=4",
        "data.size=[48,48]", "data.slices.per_subject=4", "data.slices.min_brain_fraction=0.1",
        "perturbation=[gaussian_noise,tumour_remove_keep]", "study.severities=[0,3]",
        "segmentation.training.iterations=4", "segmentation.training.val_interval=2",
        "segmentation.training.batch_size=4", "metrics.max_images=16", f"output_dir={out}",
    ]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("run")
    result = run_cli(*tiny(cache, out))
    assert result.returncode == 0, result.stderr[-3000:]
    return cache, out


def test_study_writes_every_artefact(finished_run: tuple[Path, Path]) -> None:
    _, out = finished_run
    for name in ("report.html", "report.md", "results.csv", "results.parquet", "cases.parquet",
                 "correlations.csv", "study.json", "examples.npz", "data_summary.json", "data_montage.png"):
        assert (out / name).is_file(), name
    assert list((out / "figures").glob("*.png"))
    results = pd.read_parquet(out / "results.parquet")
    assert list(results.columns) == list(RESULT_COLUMNS)
    assert set(results["stage"]) == {"metrics", "dice_robustness", "dice_utility"}
    assert set(results["perturbation"]) == {"gaussian_noise", "tumour_remove_keep"}
    assert set(results["severity"]) == {0, 3}
    # utility Dice is run for the morphological edit only (utility_families), robustness for both
    utility = results[results["stage"] == "dice_utility"]
    assert set(utility["perturbation"]) == {"tumour_remove_keep"}
    assert {"robustness/dice_WT", "utility/dice_WT"} <= set(results["quantity"])
    assert {"ssim", "psnr", "fid"} <= set(results["quantity"])
    ok = results[results["status"] == "ok"]
    assert ok["value"].notna().all()
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "http://" not in html and "https://" not in html
    info = json.loads((out / "study.json").read_text())
    assert info["data"]["source"] == "phantom" and info["seeds"] == [0]
    assert info["software"]["torch"] == torch.__version__
    assert int(info["software"]["torch threads"]) >= 1


def test_report_rebuilds_without_recomputing(finished_run: tuple[Path, Path]) -> None:
    _, out = finished_run
    before = (out / "correlations.csv").read_text()
    cells_before = {p.name: p.stat().st_mtime_ns for p in (out / "store" / "cells").glob("*.json")}
    (out / "report.html").unlink()
    result = run_cli(f"output_dir={out}", module="reports")
    assert result.returncode == 0, result.stderr
    assert (out / "report.html").is_file() and (out / "correlations.csv").read_text() == before
    assert cells_before == {p.name: p.stat().st_mtime_ns for p in (out / "store" / "cells").glob("*.json")}


def test_rerun_recomputes_nothing(finished_run: tuple[Path, Path]) -> None:
    cache, out = finished_run
    cells_before = {p.name: p.read_bytes() for p in (out / "store" / "cells").glob("*.json")}
    result = run_cli(*tiny(cache, out))
    assert result.returncode == 0
    assert "0 to compute" in result.stdout + result.stderr
    assert cells_before == {p.name: p.read_bytes() for p in (out / "store" / "cells").glob("*.json")}


def test_changed_metric_config_recomputes_only_metric_cells(finished_run: tuple[Path, Path], tmp_path: Path) -> None:
    cache, out = finished_run
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    before = {p.name: p.read_bytes() for p in (copy / "store" / "cells").glob("*.json")}
    result = run_cli(*tiny(cache, copy), "metrics.max_images=12")
    assert result.returncode == 0, result.stderr[-2000:]
    after = {p.name: p.read_bytes() for p in (copy / "store" / "cells").glob("*.json")}
    changed = {name for name in before if before[name] != after[name]}
    assert changed and all(name.startswith("metrics-") for name in changed)


@pytest.mark.slow
def test_rerun_with_other_data_leaves_the_earlier_cells_out_of_the_outputs(finished_run: tuple[Path, Path],
                                                                          tmp_path: Path) -> None:
    """Other data and a shorter perturbation list into the same output_dir: results, cases, analysis and report
    hold only the new study's cells; the earlier cells stay in the store and the log and report count them."""
    cache, out = finished_run
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    before = {p.name for p in (copy / "store" / "cells").glob("*.json")}
    args = [a for a in tiny(cache, copy) if not a.startswith(("perturbation=", "data.phantom.n_subjects="))]
    result = run_cli(*args, "data.phantom.n_subjects=6", "perturbation=[gaussian_noise]")
    assert result.returncode == 0, result.stderr[-2000:]
    scope = json.loads((copy / "store" / "scope.json").read_text())
    results = pd.read_csv(copy / "results.csv")
    assert set(results["perturbation"]) == {"gaussian_noise"}
    assert set(results["config_hash"]) <= set(scope["cells"].values())
    assert set(pd.read_parquet(copy / "cases.parquet")["perturbation"]) <= {"gaussian_noise"}
    clean = results[(results["severity"] == 0) & (results["quantity"] == "ssim")]
    assert len(clean) == 1  # one clean baseline, of the new data
    after = {p.name for p in (copy / "store" / "cells").glob("*.json")}
    left = before - {name for name in after if name in scope["cells"]}
    assert before <= after and left  # the earlier study's cells are still on disk
    log = result.stdout + result.stderr
    assert f"{len(left)} stored cell(s)" in log and f"({len(left)} of other data)" in log
    assert f"{len(left)} stored cell(s)" in (copy / "report.md").read_text()
    assert "tumour_remove_keep" not in (copy / "sensitivity.csv").read_text()


def test_resume_after_kill_gives_identical_results(finished_run: tuple[Path, Path], tmp_path: Path) -> None:
    cache, reference = finished_run
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "benchmark", *tiny(cache, out)], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    cells = out / "store" / "cells"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(cells.glob("*.json"))) < 3 and process.poll() is None:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    survivors = {p.name: p.read_bytes() for p in cells.glob("*.json")}
    assert len(survivors) >= 3
    result = run_cli(*tiny(cache, out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{len(survivors)} already done" in result.stdout + result.stderr
    for name, content in survivors.items():  # nothing that finished was recomputed
        assert (cells / name).read_bytes() == content
    columns = ["stage", "perturbation", "severity", "seed", "quantity", "value", "status"]
    resumed = pd.read_parquet(out / "results.parquet")[columns].sort_values(columns[:5], ignore_index=True)
    whole = pd.read_parquet(reference / "results.parquet")[columns].sort_values(columns[:5], ignore_index=True)
    pd.testing.assert_frame_equal(resumed, whole)


def test_unknown_perturbation_fails_before_compute(tmp_path: Path) -> None:
    result = run_cli(*tiny(tmp_path / "cache", tmp_path / "out"), "perturbation=[no_such_thing]")
    assert result.returncode != 0 and "no_such_thing" in result.stderr
    assert not (tmp_path / "cache").exists()  # nothing was generated


def test_joblib_multirun_fills_one_store(finished_run: tuple[Path, Path], tmp_path: Path) -> None:
    cache, reference = finished_run
    out = tmp_path / "multirun"
    result = run_cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *tiny(cache, out),
                     "stages=[data,study]", "study.only_perturbation=gaussian_noise,tumour_remove_keep")
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_cli(f"output_dir={out}", module="reports")
    assert result.returncode == 0, result.stderr
    columns = ["stage", "perturbation", "severity", "seed", "quantity", "value"]
    jobs = pd.read_parquet(out / "results.parquet")[columns].sort_values(columns[:5], ignore_index=True)
    whole = pd.read_parquet(reference / "results.parquet")[columns].sort_values(columns[:5], ignore_index=True)
    pd.testing.assert_frame_equal(jobs, whole)


def test_a_user_perturbation_from_outside_the_package_runs_in_the_study(finished_run, tmp_path: Path) -> None:
    cache, _ = finished_run
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "my_lab_perturbations.py").write_text(USER_MODULE)
    (tmp_path / "conf" / "perturbation").mkdir(parents=True)
    (tmp_path / "conf" / "perturbation" / "my_new.yaml").write_text(
        "# @package perturbation.my_new\n_target_: my_lab_perturbations.SaltAndPepper\nfraction: [0.02, 0.2]\n")
    out = tmp_path / "out"
    result = run_cli("--config-dir", str(tmp_path / "conf"), *tiny(cache, out), "perturbation=[my_new]",
                     "stages=[data,study]", python_path=(tmp_path / "code",))
    assert result.returncode == 0, result.stderr[-3000:]
    results = pd.read_parquet(out / "results.parquet")
    ssim = results[(results.perturbation == "my_new") & (results.quantity == "ssim")].set_index("severity")["value"]
    assert ssim[0] == pytest.approx(1.0) and ssim[3] < 0.9
    assert json.loads((out / "study.json").read_text())["perturbations"]["my_new"]["parameters"]["3"] == {
        "fraction": pytest.approx(0.02 + (0.2 - 0.02) * 2 / 4)}


def test_a_folder_of_generated_images_is_scored_like_a_perturbed_set(finished_run, tmp_path: Path) -> None:
    """PNG slices with their masks (here: clean test slices with noise, standing in for a model's output)
    get every metric against the real test set and both Dice protocols, as family 'generated'."""
    import numpy as np
    from skimage.io import imsave

    cache, reference = finished_run
    examples = np.load(reference / "examples.npz")
    folder = tmp_path / "generator_a"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    rng = np.random.default_rng(0)
    for k in range(6):
        image = np.clip(examples["gaussian_noise__sev0"] + rng.normal(0, 0.02 * (k + 1), (48, 48)), 0, 1)
        imsave(folder / "images" / f"s{k}.png", (image * 255).astype(np.uint8), check_contrast=False)
        imsave(folder / "labels" / f"s{k}.png", examples["gaussian_noise__sev0__label"].astype(np.uint8),
               check_contrast=False)
    out = tmp_path / "out"
    result = run_cli(*tiny(cache, out), "perturbation=[gaussian_noise]", f"+study.generated.generator_a={folder}")
    assert result.returncode == 0, result.stderr[-3000:]
    results = pd.read_parquet(out / "results.parquet")
    generated = results[results.perturbation == "generator_a"]
    assert set(generated["family"]) == {"generated"} and set(generated["severity"]) == {1}
    assert {"fid", "niqe", "robustness/dice_WT", "utility/dice_WT"} <= set(generated["quantity"])
    assert generated[generated.quantity == "ssim"]["status"].eq("failed").all()  # unpaired: no clean counterpart
    assert (out / "report.html").is_file()
