"""The severity figure: effects in noise units on a grid (signs, order, gaps) and the heatmap drawn from it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from benchmark.study.files import StudyInfo
from benchmark.study.schema import normalise_results
from reports.figures import _effect_label, effect_grid, severity_effects
from reports.sensitivity import effect_sizes

# quantity -> (kind, higher_is_better, value per severity 0/1/3 under each perturbation)
VALUES = {
    "robustness/dice_WT": ("dice", True, {"noise_a": (0.8, 0.8, 0.5), "shrink": (0.8, 0.7, 0.2)}),
    "psnr": ("reference", True, {"noise_a": (30.0, 29.0, 25.0), "shrink": (30.0, 30.0, 30.0)}),
    "fid": ("distribution", False, {"noise_a": (10.0, 4.0, 10.0), "shrink": (10.0, 13.0, 16.0)}),
}
FAMILIES = {"noise_a": "noise", "shrink": "morphological", "a_copies": "memorisation"}
NOISE = {"robustness/dice_WT": 0.1, "psnr": 2.0, "fid": 1.0}


def _results() -> pd.DataFrame:
    rows = []
    for quantity, (kind, higher, per_perturbation) in VALUES.items():
        stage = "dice_robustness" if kind == "dice" else "metrics"
        for perturbation, values in per_perturbation.items():
            for severity, value in zip((0, 1, 3), values, strict=True):
                rows.append({"stage": stage, "perturbation": perturbation, "family": FAMILIES[perturbation],
                             "severity": severity, "seed": 0, "quantity": quantity, "value": value, "kind": kind,
                             "higher_is_better": higher, "feature_extractor": "inception" if kind == "distribution"
                             else "", "n_reference": 16, "n_candidate": 16, "config_hash": "h", "elapsed_s": 0.1,
                             "status": "ok", "error": ""})
    # a memorisation perturbation measured by fid only, at one severity, with a negative clean value (ties, sign)
    rows += [{**rows[-1], "perturbation": "a_copies", "family": "memorisation", "severity": s, "value": v}
             for s, v in ((0, -1.0), (5, -1.0))]
    return normalise_results(pd.DataFrame(rows))


def _noise(results: pd.DataFrame) -> pd.DataFrame:
    cells = results[results["severity"] > 0][["quantity", "perturbation", "severity"]].drop_duplicates()
    noise = cells.assign(noise=cells["quantity"].map(NOISE), noise_source="floor")
    noise.loc[(noise.quantity == "psnr") & (noise.perturbation == "shrink") & (noise.severity == 3), "noise"] = np.nan
    return noise.dropna(subset=["noise"])


def test_effect_grid_signs_effects_by_reading_and_orders_dice_first_and_families() -> None:
    results = _results()
    grid = effect_grid(effect_sizes(results, noise=_noise(results)))
    assert list(grid.index) == ["robustness/dice_WT", "fid", "psnr"]
    assert list(grid.columns) == [("noise_a", 1), ("noise_a", 3), ("shrink", 1), ("shrink", 3), ("a_copies", 5)]
    expected = {  # (value − clean) / noise, + when the quantity's own reading says worse
        ("robustness/dice_WT", "noise_a", 3): (0.8 - 0.5) / 0.1,
        ("robustness/dice_WT", "shrink", 1): (0.8 - 0.7) / 0.1,
        ("psnr", "noise_a", 1): (30.0 - 29.0) / 2.0,
        ("psnr", "shrink", 1): 0.0,
        ("fid", "noise_a", 1): -(10.0 - 4.0) / 1.0,  # fid falls: reports better, drawn blue
        ("fid", "noise_a", 3): 0.0,
        ("fid", "shrink", 3): (16.0 - 10.0) / 1.0,
        ("fid", "a_copies", 5): 0.0,
    }
    for (quantity, perturbation, severity), value in expected.items():
        assert grid.loc[quantity, (perturbation, severity)] == pytest.approx(value, rel=1e-12), quantity
    assert np.isnan(grid.loc["psnr", ("shrink", 3)])  # no noise estimate: a gap, not a number
    assert np.isnan(grid.loc["psnr", ("a_copies", 5)])  # never measured there


def test_effect_labels_are_short_and_mark_gaps_and_infinities() -> None:
    cases = {np.nan: "–", np.inf: "∞", -np.inf: "−∞", 0.01: "0", -0.04: "0", 1.26: "1.3", -3.0: "-3.0",
             9.96: "10", 250.4: "250", 1e4: ">999", -1e4: "<−999"}
    for value, label in cases.items():
        assert _effect_label(value) == label, value


def test_heatmap_png_draws_without_warnings_and_names_its_noise(tmp_path: Path) -> None:
    results = _results()
    effects = effect_sizes(results, noise=_noise(results))
    info = StudyInfo(data={"source": "brats", "description": "/home/user/data/BraTS2021_Training_Data"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = severity_effects(effects, info, results, tmp_path / "figures" / "severity_effects.png")
    image = imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 500
    def area(rgb: tuple[float, float, float]) -> int:
        return int((np.abs(image[..., :3] - np.array(rgb)).max(axis=-1) < 0.03).sum())

    assert area((0.84, 0.38, 0.30)) > 2000  # 5-20 noise units worse: Dice and fid at shrink 3
    assert area((0.26, 0.58, 0.76)) > 1000  # 5-20 noise units better: fid at noise_a 1
    assert area((0.74, 0.74, 0.74)) > 2000  # three gaps without a noise estimate
