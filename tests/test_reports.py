"""Report build from stored results: files, columns, self-contained HTML, the rebuild command."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from benchmark.study.files import StudyInfo, read_examples, read_study_info, write_examples, write_study_info
from benchmark.study.schema import normalise_results
from benchmark.study.store import CellKey, ResultsStore
from reports.__main__ import main as reports_main
from reports.build import build_report
from reports.figures import provenance
from tests.synthetic_study import PERTURBATIONS, synthetic_cases, synthetic_results

ROOT = Path(__file__).resolve().parent.parent
STUDY = {
    "title": "Synthetic study",
    "data": {"source": "phantom", "description": "/root/.cache/mri-metric-bench/phantom_0123abcd",
             "modalities": ["FLAIR"], "shape": [64, 64], "spacing_mm": [1.5, 1.5],
             "n_subjects": {"train": 14, "val": 5, "test": 5}},
    "preprocessing": "1st/99th percentile clip, scaled to [0, 1]",
    "feature_extractors": {"inception": "TF-FID InceptionV3 pool3, 2048-d"},
    "seeds": [0, 1, 2],
    "config_hash": "0123456789abcdef",
}


def store_study(output_dir: Path, results: pd.DataFrame, with_examples: bool = True) -> None:
    """Write a synthetic study the way the sweep does: cells into the store, exported tables, metadata."""
    store = ResultsStore(output_dir / "store")
    cases = synthetic_cases(results, n_items=8)
    key_columns = ["stage", "perturbation", "severity", "seed"]
    for (stage, perturbation, severity, seed), rows in results.groupby(key_columns):
        key = CellKey(stage, perturbation, int(severity), int(seed))
        mine = cases[(cases.perturbation == perturbation) & (cases.severity == severity) & (cases.seed == seed)
                     & (cases.stage == stage)]
        payload = rows.drop(columns=[*key_columns, "config_hash", "elapsed_s", "status", "error"])
        store.write_cell(key, "h", payload.to_dict("records"), elapsed_s=0.5,
                         cases=mine[["quantity", "case_id", "value"]].to_dict("records"))
    store.write_cell(CellKey("metrics", "ghosting", 3, 0), "h", [], status="failed",
                     error="RuntimeError: covariance is singular")
    store.export(output_dir)
    write_study_info(output_dir / "study.json", STUDY)
    if with_examples:
        yy, xx = np.mgrid[:32, :32]
        image = np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / 100.0)
        label = ((yy - 14) ** 2 + (xx - 18) ** 2 < 12).astype(int)
        write_examples(output_dir / "examples.npz",
                       {(p, s): (image * (1 - 0.1 * s), label) for p in PERTURBATIONS for s in range(6)})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output_dir = tmp_path_factory.mktemp("study")
    store_study(output_dir, synthetic_results())
    build_report(output_dir, n_boot=200, seed=0)
    return output_dir


def test_report_files_and_columns(built: Path) -> None:
    for name in ("report.html", "report.md", "results.csv", "results.parquet", "cases.parquet", "correlations.csv",
                 "sensitivity.csv", "effect_sizes.csv", "memorisation.csv", "ranking.csv"):
        assert (built / name).is_file(), name
    figures = sorted(p.name for p in (built / "figures").glob("*.png"))
    assert figures == ["correlation_heatmap_robustness_dice_WT.png", "examples.png",
                       "metric_vs_robustness_dice_WT.png", "severity_effects.png"]
    for figure in figures:
        assert imread(built / "figures" / figure).shape[2] in (3, 4)
    correlations = pd.read_csv(built / "correlations.csv")
    for column in ("target", "group", "quantity", "n_cells", "pearson", "pearson_p", "pearson_lo", "pearson_hi",
                   "spearman", "spearman_p", "kendall", "kendall_p", "kendall_lo", "agreement", "note"):
        assert column in correlations.columns
    assert set(correlations["group"]) == {"all", *PERTURBATIONS.values()}
    ranking = pd.read_csv(built / "ranking.csv")
    assert ranking["quantity"].iloc[0] == "psnr"


def test_html_is_self_contained(built: Path) -> None:
    page = (built / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data in images)
    assert not re.search(r'(?:src|href)\s*=\s*["\'](?!data:)', page)  # nothing loaded from elsewhere
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "<table>" in page and "Synthetic study" in page


def test_report_lists_failed_cells_and_states_provenance(built: Path) -> None:
    for name in ("report.md", "report.html"):
        text = (built / name).read_text()
        assert "covariance is singular" in text and "ghosting" in text
        assert "phantom" in text and "1st/99th percentile clip" in text and "TF-FID InceptionV3" in text
        assert "rewards copies" in text and "flags copies" in text
        assert "/root/.cache" not in text and "phantom_0123abcd" not in text  # the data by name, not by cache path
    markdown = (built / "report.md").read_text()
    for link in re.findall(r"\]\((figures/[^)]+)\)", markdown):
        assert (built / link).is_file()


def test_every_figure_footer_names_data_sizes_extractor_and_preprocessing() -> None:
    results = normalise_results(synthetic_results(seeds=(0,)))
    text = provenance(StudyInfo(**STUDY), results)
    for expected in ("phantom", "FLAIR", "40 reference / 40 candidate", "inception (TF-FID InceptionV3 pool3",
                     "Preprocessing: 1st/99th percentile clip", "Seeds: 0"):
        assert expected in text
    assert ".cache" not in text
    folder = StudyInfo(data={"source": "brats", "description": "/data/sets/BraTS2021_Training_Data/"})
    assert folder.data_line() == "brats; BraTS2021_Training_Data"
    assert StudyInfo(data={"source": "folder", "description": "my scans"}).data_line() == "folder; my scans"


def test_rebuild_from_the_command_line_is_deterministic(built: Path) -> None:
    before = (built / "correlations.csv").read_text()
    (built / "report.html").unlink()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "reports", f"output_dir={built}", "n_boot=200"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert (built / "report.html").is_file()
    assert (built / "correlations.csv").read_text() == before


def test_command_line_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "reports", f"output_dir={tmp_path}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "No stored results" in run.stderr and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    for args, message in ((["outdir=x"], "unknown argument"), ([f"output_dir={tmp_path}", "n_boot=many"],
                                                                 "not an integer"),
                          ([f"output_dir={tmp_path / 'missing'}"], "is not a folder")):
        assert reports_main(args) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_report_without_dice_without_metadata_and_with_only_failures(tmp_path: Path) -> None:
    results = synthetic_results(seeds=(0,))
    metrics_only = results[results["kind"] != "dice"]
    store_study(tmp_path / "a", metrics_only, with_examples=False)
    (tmp_path / "a" / "study.json").unlink()
    build_report(tmp_path / "a", n_boot=100)
    text = (tmp_path / "a" / "report.md").read_text()
    assert "No Dice quantity is stored" in text and "study.json was not found" in text
    assert sorted(p.name for p in (tmp_path / "a" / "figures").glob("*.png")) == ["severity_effects.png"]

    store = ResultsStore(tmp_path / "b" / "store")
    store.write_cell(CellKey("metrics", "blur", 1, 0), "h", [], status="failed", error="ValueError: bad input")
    store.export(tmp_path / "b")
    build_report(tmp_path / "b", n_boot=100)
    assert "ValueError: bad input" in (tmp_path / "b" / "report.html").read_text()


def test_examples_round_trip_and_reject_bad_arrays(tmp_path: Path) -> None:
    image, label = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), np.eye(8, dtype=int)
    write_examples(tmp_path / "examples.npz", {("blur", 0): (image[None], label), ("blur", 3): image})
    examples = read_examples(tmp_path / "examples.npz")
    np.testing.assert_array_equal(examples[("blur", 0)][0], image)
    np.testing.assert_array_equal(examples[("blur", 0)][1], label)
    assert examples[("blur", 3)][1] is None
    with pytest.raises(ValueError, match="one 2D slice"):
        write_examples(tmp_path / "x.npz", {("blur", 1): np.zeros((2, 8, 8))})
    with pytest.raises(ValueError, match="non-finite"):
        write_examples(tmp_path / "x.npz", {("blur", 1): np.full((8, 8), np.nan)})
    assert not list(tmp_path.glob("*.part"))


def test_study_json_round_trip_and_validation(tmp_path: Path) -> None:
    write_study_info(tmp_path / "study.json", STUDY)
    info = read_study_info(tmp_path)
    assert info.recorded and info.data["source"] == "phantom" and info.seeds == [0, 1, 2]
    assert "train 14" in info.data_line() and "64x64 at 1.5x1.5 mm" in info.data_line()
    with pytest.raises(ValueError, match=r"data\.source"):
        write_study_info(tmp_path / "study.json", {"data": {}})


def test_generated_sets_enter_the_agreement_but_not_the_severity_analysis(tmp_path: Path) -> None:
    """Generated sets (family 'generated', severity 1 only, no severity 0 of their own) get a table."""
    results = synthetic_results(seeds=(0, 1))
    extra = []
    for model, quality in (("gan", 0.3), ("diffusion", 0.8), ("vae", 0.5)):
        like = results[(results.perturbation == "blur") & (results.severity == 1)].copy()
        like["perturbation"], like["family"] = model, "generated"
        like.loc[like.quantity == "psnr", "value"] = 20 + 15 * quality
        like.loc[like.quantity == "robustness/dice_WT", "value"] = 0.5 + 0.3 * quality
        extra.append(like)
    store_study(tmp_path, pd.concat([results, *extra], ignore_index=True), with_examples=False)
    build_report(tmp_path, n_boot=100)
    sensitivity = pd.read_csv(tmp_path / "sensitivity.csv")
    assert "gan" not in set(sensitivity["perturbation"])
    correlations = pd.read_csv(tmp_path / "correlations.csv")
    generated = correlations[(correlations.group == "generated") & (correlations.quantity == "psnr")]
    assert generated["n_cells"].item() == 4  # three models and the clean cell
    assert generated["spearman"].item() == pytest.approx(1.0)
    text = (tmp_path / "report.md").read_text()
    assert "## Generated sets" in text and "diffusion" in text


@pytest.mark.parametrize("subjects", [10, 1])
def test_scorecard_on_top_in_both_formats_and_small_data_says_so(tmp_path: Path, subjects: int) -> None:
    from tests.synthetic_study import write_synthetic_resampling

    results = synthetic_results(seeds=(0,))
    store_study(tmp_path, results, with_examples=False)
    write_synthetic_resampling(tmp_path, results, n_test_subjects=subjects)
    build_report(tmp_path, n_boot=100, seed=0)
    markdown, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    first = markdown.split("\n\n")[1]
    assert f"rest on {subjects} test subject" in first and "1 seed" in first and "cells" in first
    assert markdown.index("## Scorecard") < markdown.index("## What was measured")
    card = pd.read_csv(tmp_path / "scorecard.csv").set_index("metric")
    assert {"psnr", "fid", "copy_rate", "flat_metric"} <= set(card.index)
    if subjects == 1:
        assert (card[["a", "b", "c_robustness", "d"]] == "inconclusive").all().all()
        assert "Every verdict is inconclusive (only 1 test subject" in markdown
        assert 'class="v-yes"' not in page and 'class="v-inconclusive"' in page
        return
    # psnr falls with the tumour edit and tracks Dice; fid rewards copies; copy_rate flags them
    assert card.loc["psnr", "a"] == "yes" and card.loc["psnr", "c_robustness"] == "yes"
    assert card.loc["fid", "d"] == "no" and card.loc["copy_rate", "d"] == "yes"
    assert card.loc["flat_metric", "a"] == "no"
    assert "🟢 yes" in markdown and "🔴 no" in markdown
    assert 'class="v-yes"' in page and 'class="v-no"' in page
    assert "Flag memorisation: copy_rate" in markdown  # findings generated from the same verdicts
