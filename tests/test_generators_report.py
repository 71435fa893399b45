"""The report's generator analysis on hand-made results: the agreement of each metric with utility Dice is
oriented by the metric's direction, and metrics without spread across the sets are named, not ranked."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, spearmanr

from reports.generators import agreement_with_utility, unranked_metrics

UTILITY = [0.30, 0.45, 0.62, 0.58, 0.10]
SETS = [f"gen_{i}" for i in range(len(UTILITY))]


def rows(quantity: str, values: list[float], higher_is_better: bool, kind: str = "quality") -> list[dict]:
    return [{"perturbation": name, "family": "generated", "severity": 1, "seed": 0, "stage": "metrics",
             "quantity": quantity, "value": value, "kind": kind, "higher_is_better": higher_is_better,
             "status": "ok"} for name, value in zip(SETS, values, strict=True)]


def results() -> pd.DataFrame:
    fid = [300.0, 250.0, 120.0, 180.0, 400.0]  # lower is better, ranks the sets exactly like utility Dice
    ssim = [0.2, 0.5, 0.4, 0.6, 0.1]            # higher is better, one swapped pair
    table = [*rows("utility/dice_WT", UTILITY, True, kind="dice"), *rows("fid", fid, False),
             *rows("ssim", ssim, True), *rows("copy_rate", [0.0] * 5, False),
             *rows("prdc_coverage", [0.0, 0.1, np.nan, np.nan, np.nan], True)]
    frame = pd.DataFrame(table)
    frame.loc[frame["value"].isna(), "status"] = "failed"  # as the runner stores an undefined metric
    clean = pd.DataFrame(rows("ssim", [1.0] * 5, True)).assign(family="memorisation", severity=0)
    return pd.concat([frame, clean], ignore_index=True)


def test_agreement_is_oriented_and_matches_scipy() -> None:
    agreement = agreement_with_utility(results()).set_index("quantity")
    assert set(agreement.index) == {"fid", "ssim"}  # Dice itself, constant and undefined metrics are not ranked
    assert np.allclose(agreement.loc["fid", ["agreement_spearman", "agreement_kendall"]], 1.0, atol=1e-12)
    ssim = [0.2, 0.5, 0.4, 0.6, 0.1]
    assert np.isclose(agreement.loc["ssim", "agreement_spearman"], spearmanr(ssim, UTILITY)[0], atol=1e-12)
    assert np.isclose(agreement.loc["ssim", "agreement_kendall"], kendalltau(ssim, UTILITY)[0], atol=1e-12)
    assert agreement["n_generators"].tolist() == [5, 5]
    assert agreement.index[0] == "fid"  # sorted best agreement first


def test_metrics_without_spread_are_named_with_the_reason() -> None:
    unranked = unranked_metrics(results())
    assert unranked == {"copy_rate": "0 for every set", "prdc_coverage": "defined on 2 of 5 sets"}
    assert "fid" not in unranked and "utility/dice_WT" not in unranked
