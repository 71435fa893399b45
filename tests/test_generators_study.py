"""experiment=generators end to end on a tiny phantom: trained generators land in the results as family
"generated" with utility and robustness Dice and every metric, the report shows them, a diverging
generator is a failed cell with its reason, and a rerun trains nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.cli import run_cli

pytestmark = pytest.mark.slow


def tiny_generators(cache: Path, out: Path) -> list[str]:
    """experiment=generators on 5 phantom subjects at 4 mm, 32x32 slices, a few steps per generator,
    plus one generator whose infinite learning rate makes it diverge after its first budget."""
    return [
        "experiment=generators", f"data.cache_dir={cache}", "data.phantom.n_subjects=5",
        "data.phantom.voxel_size_mm=4", "data.resample_mm=null", "data.size=[32,32]", "data.slices.per_subject=4",
        "data.slices.min_brain_fraction=0.1", "segmentation.training.iterations=4",
        "segmentation.training.val_interval=2", "segmentation.training.batch_size=4", "metrics.max_images=16",
        "generators.regressor.budgets=[2,4]", "generators.pix2pix.budgets=[2,4]",
        "generators.diffusion.budgets=[2,3]", "generators.diffusion.sample_steps=2",
        "+generators.broken={_target_:benchmark.generators.regressor.ConditionalRegressor,"
        "channels:[8,16],strides:[2],budgets:[1,3],batch_size:4,lr:inf}",
        f"output_dir={out}",
    ]


@pytest.fixture(scope="module")
def generator_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path, Path]:
    cache, out = tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("run")
    args = tiny_generators(cache, out)
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    return args, cache, out


def test_generated_sets_have_dice_and_every_metric(generator_run: tuple[list[str], Path, Path]) -> None:
    _, _, out = generator_run
    results = pd.read_parquet(out / "results.parquet")
    ok = results[results["status"] == "ok"]
    generated = ok[ok["family"] == "generated"]
    expected = {"regressor_2", "regressor_4", "pix2pix_2", "pix2pix_4", "diffusion_2", "diffusion_3"}
    assert set(generated["perturbation"]) == expected
    metrics = results[results["stage"] == "metrics"]
    suite = set(metrics[metrics["severity"] == 0]["quantity"])  # every metric of the suite, ok or flagged
    assert {"ssim", "psnr", "fid", "copy_rate", "authenticity"} <= suite
    for name, rows in generated.groupby("perturbation"):
        assert set(metrics[metrics["perturbation"] == name]["quantity"]) == suite, name
        assert {"ssim", "psnr", "fid", "copy_rate", "authenticity"} <= set(rows["quantity"]), name
        assert {"utility/dice_WT", "robustness/dice_WT"} <= set(rows["quantity"]), name
        assert rows["seed"].unique().tolist() == [0] and rows["severity"].unique().tolist() == [1]
    failed = results[results["perturbation"].str.startswith("broken") & (results["status"] == "failed")]
    assert sorted(failed["perturbation"]) == ["broken_1", "broken_3"]
    assert failed["error"].str.contains("diverged at step 1: non-finite weights").all()


def test_report_shows_the_generators(generator_run: tuple[list[str], Path, Path]) -> None:
    _, _, out = generator_run
    summary = json.loads((out / "generators" / "generators.json").read_text())
    assert set(summary) == {"regressor", "pix2pix", "diffusion", "broken"}
    assert summary["broken"]["runs"]["0"]["failures"]["1"].startswith("generator broken diverged")
    assert (out / "figures" / "generator_samples.png").is_file()
    report = (out / "report.md").read_text()
    assert "## Generators" in report and "Agreement with utility Dice across generators" in report


def test_rerun_trains_and_computes_nothing(generator_run: tuple[list[str], Path, Path]) -> None:
    args, cache, out = generator_run
    checkpoints = {p: p.stat().st_mtime_ns for p in cache.rglob("generator-*.pt")}
    assert len(checkpoints) == 6  # 2 budgets x 3 generators, none of the diverged one
    cells = {p.name: p.read_bytes() for p in (out / "store" / "cells").glob("*.json") if "broken" not in p.name}
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert checkpoints == {p: p.stat().st_mtime_ns for p in cache.rglob("generator-*.pt")}
    assert cells == {p.name: p.read_bytes() for p in (out / "store" / "cells").glob("*.json")
                     if "broken" not in p.name}
