"""The noise floor, the subject bootstrap and the scorecard's verdict logic (issue 10)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.metrics.distribution import fid, kid, low_rank_frechet
from benchmark.metrics.entries import FrechetMetric, KIDMetric
from benchmark.metrics.suite import MetricSuite
from benchmark.study.item_data import ItemData, load, save
from benchmark.study.recompute import evaluate
from benchmark.study.resampling import draw_positions, noise_floor, subject_positions
from reports.scorecard import decide, scorecard
from reports.uncertainty import agreement_intervals


def feature_suite() -> MetricSuite:
    return MetricSuite({"fid": FrechetMetric("x"), "kid": KIDMetric("x", subsets=3, subset_size=1000)},
                       extractors={"x": lambda: None})


def subject_set(rng: np.random.Generator, names: list[str], items: int, d: int, shift: float = 0.0) -> ItemData:
    """Items of subjects with a subject effect: features N(shift + u_s, 1), a per-item statistic likewise."""
    slot = np.repeat(np.asarray(names), items)
    effect = np.repeat(rng.normal(0, 0.3, (len(names), 1)), items, axis=0)
    features = rng.normal(shift, 1.0, (len(slot), d)) + effect
    values = rng.normal(10 + shift, 1.0, len(slot)) + effect[:, 0]
    positions = np.arange(len(slot))
    return ItemData(slot=slot, items={"snr": (values, positions, "mean")}, features={"x": (features, positions)})


def test_fast_frechet_equals_the_library_fid() -> None:
    rng = np.random.default_rng(0)
    a, b = torch.from_numpy(rng.normal(size=(20, 64))), torch.from_numpy(rng.normal(0.3, 1.2, size=(25, 64)))
    assert low_rank_frechet(a, b) == pytest.approx(fid(a, b), rel=1e-6)


def test_evaluate_recomputes_fid_kid_and_item_means_on_chosen_rows(tmp_path) -> None:
    rng = np.random.default_rng(1)
    clean = subject_set(rng, [f"s{i}" for i in range(6)], 4, 8)
    candidate = subject_set(rng, [f"s{i}" for i in range(6)], 4, 8, shift=0.5)
    save(tmp_path / "c.npz", candidate)
    candidate = load(tmp_path / "c.npz")  # the side-file round trip keeps everything evaluate needs
    ref, cand = np.arange(24), np.r_[0:12, 0:12]  # repeats, as a bootstrap draws them
    out = evaluate(feature_suite(), clean, candidate, ref, cand, {})
    a, b = torch.from_numpy(clean.features["x"][0]), torch.from_numpy(candidate.features["x"][0][cand])
    assert out["fid"] == pytest.approx(fid(a, b), rel=1e-6)
    assert out["kid"] == pytest.approx(kid(a, b, subsets=1, subset_size=24)[0], rel=1e-6)
    assert out["snr"] == pytest.approx(candidate.items["snr"][0][cand].mean())


def test_draw_positions_keeps_whole_subjects_with_repeats() -> None:
    slot = np.array(["a", "a", "b", "c", "c", "c", ""])
    groups = subject_positions(slot)
    positions = draw_positions(groups, ["c", "a", "c"], np.random.default_rng(0))
    assert sorted(positions[:8].tolist()) == [0, 1, 3, 3, 4, 4, 5, 5]
    assert positions[-1] == 6  # the unattached item is resampled on its own


def test_floor_of_two_sets_from_one_distribution_and_a_shift_beyond_it() -> None:
    rng = np.random.default_rng(2)
    test = subject_set(rng, [f"t{i}" for i in range(8)], 4, 8)
    held_out = subject_set(rng, [f"h{i}" for i in range(8)], 4, 8)
    floor = noise_floor(feature_suite(), test, held_out, {}, splits=40, seed=0)
    assert set(floor["n_subjects"]) == {8}
    fids = floor.loc[floor["quantity"] == "fid", "value"]
    # real-vs-real FID of 32 vs 32 items in 8-d is biased upwards but small; a shifted set lies far above it
    shifted = subject_set(rng, [f"t{i}" for i in range(8)], 4, 8, shift=1.0)
    shifted_fid = evaluate(feature_suite(), test, shifted, np.arange(32), np.arange(32), {})["fid"]
    assert 0 < fids.mean() < 3
    assert shifted_fid > fids.mean() + 4 * fids.std()
    same = subject_set(rng, [f"t{i}" for i in range(8)], 4, 8)
    same_fid = evaluate(feature_suite(), test, same, np.arange(32), np.arange(32), {})["fid"]
    assert abs(same_fid - fids.mean()) < 4 * fids.std()
    snr = floor.loc[floor["quantity"] == "snr", "value"]
    assert abs(snr.mean() - 10) < 0.3  # the per-item statistic of clean halves sits at its population mean


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row pair (no ties in continuous data)."""
    rx, ry = x.argsort(-1).argsort(-1).astype(float), y.argsort(-1).argsort(-1).astype(float)
    rx -= rx.mean(-1, keepdims=True)
    ry -= ry.mean(-1, keepdims=True)
    return (rx * ry).sum(-1) / np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))


def test_subject_bootstrap_covers_a_known_correlation_about_95_percent() -> None:
    """A simulated study: 10 cells share 20 subjects, whose effects shift the metric and Dice of every cell
    alike (the dependence the cell bootstrap ignores); the population Spearman ρ of the cell means is known."""
    rng = np.random.default_rng(0)
    cells, subjects, boots, repeats = 10, 20, 200, 100
    m = np.linspace(0, 1, cells)
    d = m + 0.35 * np.sin(np.arange(cells) * 2.0)
    truth = _spearman_rows(m[None], d[None])[0]
    covered = 0
    for _ in range(repeats):
        metric = m[:, None] + rng.normal(0, 0.5, subjects) + rng.normal(0, 0.3, (cells, subjects))
        dice = d[:, None] + rng.normal(0, 0.5, subjects) + rng.normal(0, 0.3, (cells, subjects))
        drawn = rng.integers(0, subjects, (boots, subjects))  # whole subjects, as draw_positions does
        rho = _spearman_rows(metric[:, drawn].mean(-1).T, dice[:, drawn].mean(-1).T)
        lo, hi = np.percentile(rho, [2.5, 97.5])
        covered += lo <= truth <= hi
    assert 0.88 <= covered / repeats <= 0.995


def test_rank_interval_and_top_three_probability() -> None:
    draws = pd.DataFrame({"good": [0.9, 0.8, 0.85, 0.9], "mid": [0.5, 0.9, 0.6, 0.5], "bad": [0.1, 0.2, 0.1, 0.0],
                          "worse": [-0.5, -0.2, np.nan, -0.4]})
    table = agreement_intervals(draws).set_index("quantity")
    assert table.loc["good", "rank_lo"] == 1 and table.loc["good", "rank_hi"] == 2
    assert table.loc["worse", "rank_lo"] == 4 and table.loc["worse", "p_top3"] == 0.0
    assert table.loc["good", "p_top3"] == 1.0


def test_decide_needs_the_whole_interval_on_one_side() -> None:
    assert decide(2.5, 9.0, 2.0) == "yes"
    assert decide(-1.0, 1.5, 2.0) == "no"
    assert decide(1.0, 3.0, 2.0) == "inconclusive"
    assert decide(np.nan, 3.0, 2.0) == "inconclusive"


def constructed(n_test_subjects: int) -> pd.DataFrame:
    """A scorecard on constructed evidence: 'tracker' detects the tumour edit, stays calm under noise, tracks
    Dice and flags copies; 'alarmist' does the opposite."""
    effects = pd.DataFrame.from_records([
        ("tracker", "tumour_remove_keep", 5, 12.0, 8.0, 15.0), ("alarmist", "tumour_remove_keep", 5, 0.5, -0.5, 1.2),
        ("tracker", "gaussian_noise", 5, 0.3, -0.4, 1.0), ("alarmist", "gaussian_noise", 5, 30.0, 25.0, 35.0),
        ("tracker", "memorisation_copies", 5, 6.0, 4.0, 9.0), ("alarmist", "memorisation_copies", 5, -5.0, -7.0, -3.0),
    ], columns=["quantity", "perturbation", "severity", "effect", "effect_lo", "effect_hi"])
    harm = pd.DataFrame({"perturbation": ["tumour_remove_keep", "gaussian_noise"], "severity": [5, 5],
                         "family": ["morphological", "noise"], "harmed": [True, False], "unharmed": [False, True]})
    agreement = {"robustness/dice_WT": pd.DataFrame({
        "quantity": ["tracker", "alarmist"], "agreement": [0.8, 0.1], "subject_lo": [0.6, -0.3],
        "subject_hi": [0.9, 0.4], "n_cells": [25, 25], "note": ["", ""]})}
    results = pd.DataFrame({"perturbation": ["tumour_remove_keep", "gaussian_noise", "memorisation_copies"],
                            "family": ["morphological", "noise", "memorisation"]})
    return scorecard({"tracker": True, "alarmist": False}, {"tracker": "no_reference", "alarmist": "distribution"},
                     effects, harm, agreement, results, n_test_subjects, has_bootstrap=True).set_index("metric")


def test_scorecard_verdicts_on_constructed_results() -> None:
    card = constructed(n_test_subjects=10)
    assert card.loc["tracker", ["a", "b", "c_robustness", "d"]].tolist() == ["yes", "yes", "yes", "yes"]
    assert card.loc["alarmist", ["a", "b", "c_robustness", "d"]].tolist() == ["no", "no", "no", "no"]
    assert card.loc["tracker", "c_utility"] == "inconclusive"  # no utility target stored
    assert "rewards copies" in card.loc["alarmist", "d_evidence"]
    assert "12.0 [8.0, 15.0]" in card.loc["tracker", "a_evidence"]


def test_memorisation_without_a_noise_floor_is_inconclusive_and_undefined_on_copies_is_no() -> None:
    from reports.scorecard import _memorisation

    family = pd.Series({"memorisation_copies": "memorisation", "gaussian_noise": "noise"})
    columns = ["quantity", "perturbation", "severity", "effect", "effect_lo", "effect_hi", "value"]
    no_floor = pd.DataFrame({c: pd.Series(dtype=str if c in ("quantity", "perturbation") else float)
                             for c in columns})  # worse_effects writes no row for a metric without a floor
    verdict, evidence = _memorisation(no_floor, family, unmeasured={"memorisation_copies"})
    assert verdict == "inconclusive" and "noise floor" in evidence
    assert _memorisation(no_floor, family) == ("no", "memorisation_copies: undefined on copies")  # e.g. SSIM
    undefined = pd.DataFrame([("gap", "memorisation_copies", 5, np.nan, np.nan, np.nan, np.nan)], columns=columns)
    assert _memorisation(undefined, family) == ("no", "memorisation_copies: undefined on copies")
    flagged = pd.DataFrame([("gap", "memorisation_copies", 5, 9.0, 6.0, 12.0, 0.0)], columns=columns)
    assert _memorisation(flagged, family)[0] == "yes"


def test_only_an_unpaired_metric_with_values_but_no_floor_is_unmeasured() -> None:
    from reports.scorecard import _unmeasured

    family = pd.Series({"memorisation_copies": "memorisation", "gaussian_noise": "noise"})
    results = pd.DataFrame({
        "quantity": ["gap", "gap", "ssim", "ssim", "fid"],
        "perturbation": ["memorisation_copies"] * 4 + ["gaussian_noise"],
        "severity": [0, 5, 3, 5, 5], "value": [1.0, -3.0, 1.0, np.nan, 9.0],
        "status": ["ok", "ok", "ok", "failed", "ok"]})
    assert _unmeasured(results, "gap", "memorisation", family) == {"memorisation_copies"}
    assert _unmeasured(results, "ssim", "reference", family) == set()  # paired: undefined or unmoved, never unmeasured
    assert _unmeasured(results, "fid", "distribution", family) == set()  # no value at a memorisation cell
    undefined = results.assign(value=[1.0, np.nan, 1.0, np.nan, 9.0], status=["ok", "failed", "ok", "failed", "ok"])
    assert _unmeasured(undefined, "gap", "memorisation", family) == set()  # severity 0 does not count


def test_one_test_subject_makes_every_verdict_inconclusive() -> None:
    card = constructed(n_test_subjects=1)
    assert (card[["a", "b", "c_robustness", "c_utility", "d"]] == "inconclusive").all().all()


def test_suite_keeps_per_item_values_that_reproduce_its_outputs() -> None:
    from benchmark.metrics.entries import ImageMetric
    from benchmark.metrics.image_statistics import ImageStatistic
    from benchmark.study.item_data import capture, slot_subjects
    from benchmark.study.recompute import item_outputs
    from tests.test_metrics_suite import _set

    reference = _set(8, 0)
    candidate = reference.with_images((reference.images + 0.05 * torch.rand_like(reference.images)).clamp(0, 1),
                                      reference.labels)
    index = torch.tensor([0, 1, 2, 3, -1, 5, 6, 7])  # one item without a clean counterpart
    suite = MetricSuite({"ssim": ImageMetric("ssim"), "psnr": ImageMetric("psnr"), "snr": ImageStatistic("snr")})
    values = suite.compute(reference, candidate, index, None)
    data = capture(suite, candidate, slot_subjects(candidate, reference, index), "cpu")
    assert data.slot.tolist() == ["s0"] * 4 + ["s1"] * 4  # same-size set: the unpaired slot keeps its subject
    assert data.items["ssim"][1].tolist() == [0, 1, 2, 3, 5, 6, 7]
    again = item_outputs(data, np.arange(8))
    for name in ("ssim", "psnr", "snr"):
        assert again[name] == pytest.approx(values[name], rel=1e-9)


def test_fast_memorisation_metrics_equal_the_library() -> None:
    from benchmark.metrics.entries import AuthenticityMetric, CopyRateMetric
    from benchmark.metrics.memorisation import authenticity, copy_rate

    rng = np.random.default_rng(3)
    train = rng.normal(size=(30, 16))
    candidate = np.concatenate([train[:5] + 1e-3, rng.normal(size=(10, 16))])  # five near-copies
    positions = np.arange(len(candidate))
    data = ItemData(slot=np.array([""] * len(candidate)), features={"x": (candidate, positions)})
    suite = MetricSuite({"authenticity": AuthenticityMetric("x"), "copy_rate": CopyRateMetric("x", 0.2)},
                        extractors={"x": lambda: None})
    out = evaluate(suite, data, data, positions, positions, {"x": train})
    t, c = torch.from_numpy(train), torch.from_numpy(candidate)
    assert out["authenticity"] == authenticity(c, t)
    assert out["copy_rate"] == copy_rate(c, t, 0.2)
    assert 0 < out["authenticity"] < 1


def test_fast_prdc_and_memorisation_on_resamples_with_repeats_equal_the_library() -> None:
    """The bootstrap reads PRDC and the memorisation metrics off distance matrices computed once per
    cell; on a draw with repeated items and exact copies (ties) they must equal the library on those rows."""
    from benchmark.metrics.distribution import prdc
    from benchmark.metrics.entries import AuthenticityMetric, CopyRateMetric, PRDCMetric
    from benchmark.metrics.memorisation import authenticity, copy_rate

    rng = np.random.default_rng(4)
    train = rng.normal(size=(30, 16))
    reference = rng.normal(size=(24, 16))
    candidate = np.concatenate([train[:6], reference[:4], rng.normal(0.4, 1.0, size=(14, 16))])  # copies: ties
    slot = np.array([""] * 24)
    ref_data = ItemData(slot=slot, features={"x": (reference, np.arange(24))})
    cand_data = ItemData(slot=slot, features={"x": (candidate, np.arange(24))})
    suite = MetricSuite({"prdc": PRDCMetric("x", k=3), "authenticity": AuthenticityMetric("x"),
                         "copy_rate": CopyRateMetric("x", 0.2)}, extractors={"x": lambda: None})
    for draw in range(3):
        ref_pos, cand_pos = rng.integers(0, 24, 24), rng.integers(0, 24, 24)  # with repeats
        out = evaluate(suite, ref_data, cand_data, ref_pos, cand_pos, {"x": train})
        r, c, t = (torch.from_numpy(a) for a in (reference[ref_pos], candidate[cand_pos], train))
        expected = prdc(c, r, k=3)
        for part in ("precision", "recall", "density", "coverage"):
            assert out[f"prdc_{part}"] == expected[part], (draw, part)
        assert out["authenticity"] == authenticity(c, t)
        assert out["copy_rate"] == copy_rate(c, t, 0.2)


def test_every_memorisation_perturbation_is_judged_and_an_unmeasured_one_keeps_the_verdict_open() -> None:
    """The other perturbation's effect rows do not hide that 'memorisation_copies' has none; both are reported."""
    from reports.scorecard import _memorisation

    family = pd.Series({"memorisation_copies": "memorisation", "memorisation_near": "memorisation"})
    columns = ["quantity", "perturbation", "severity", "effect", "effect_lo", "effect_hi"]
    effects = pd.DataFrame([("gap", "memorisation_near", 5, 9.0, 6.0, 12.0)], columns=columns)
    verdict, evidence = _memorisation(effects, family, unmeasured={"memorisation_copies"})
    assert verdict == "inconclusive"
    assert evidence == ("memorisation_copies: no real-vs-real noise floor to measure the change against; "
                        "memorisation_near sev 5: 9.0 [6.0, 12.0]")
    assert _memorisation(effects, family, unmeasured={"memorisation_near"})[0] == "no"  # it has an effect row


@pytest.mark.parametrize(("low", "high"), [(np.nan, 0.9), (0.6, np.nan), (np.nan, np.nan)])
def test_a_correlation_without_a_bootstrap_interval_says_so_and_stays_inconclusive(low: float, high: float) -> None:
    from reports.scorecard import _tracks

    table = pd.DataFrame({"quantity": ["snr"], "agreement": [0.8], "subject_lo": [low], "subject_hi": [high],
                          "n_cells": [25], "note": [""]})
    assert _tracks(table, "snr") == ("inconclusive", "ρ +0.80 (no bootstrap interval), 25 cells")


def test_unmeasured_counts_severity_1_and_needs_an_ok_finite_value() -> None:
    from reports.scorecard import _unmeasured

    family = pd.Series({"memorisation_copies": "memorisation", "memorisation_near": "memorisation"})
    results = pd.DataFrame({"quantity": ["gap", "gap"], "perturbation": ["memorisation_copies", "memorisation_near"],
                            "severity": [1, 5], "value": [2.0, 3.0], "status": ["ok", "failed"]})
    assert _unmeasured(results, "gap", "memorisation", family) == {"memorisation_copies"}
    assert _unmeasured(results.assign(status="ok", value=[np.nan, 3.0]), "gap", "memorisation",
                       family) == {"memorisation_near"}
    assert _unmeasured(results.drop(columns="status"), "gap", "memorisation",
                       family) == {"memorisation_copies", "memorisation_near"}  # a table without statuses


def test_scorecard_asks_an_unpaired_metric_without_a_floor_for_more_data_but_not_a_paired_one() -> None:
    family = {"memorisation_copies": "memorisation", "gaussian_noise": "noise"}
    results = pd.DataFrame({"quantity": ["gap", "ssim", "gap", "ssim"],
                            "perturbation": ["memorisation_copies", "memorisation_copies", "gaussian_noise",
                                             "gaussian_noise"],
                            "severity": [5, 5, 5, 5], "value": [-3.0, 0.9, 1.0, 0.8], "status": ["ok"] * 4})
    results["family"] = results["perturbation"].map(family)
    effects = pd.DataFrame({c: pd.Series(dtype=str if c in ("quantity", "perturbation") else float)
                            for c in ["quantity", "perturbation", "severity", "effect", "effect_lo", "effect_hi"]})
    harm = pd.DataFrame({"perturbation": ["gaussian_noise"], "severity": [5], "family": ["noise"],
                         "harmed": [False], "unharmed": [True]})
    card = scorecard({"gap": False, "ssim": True}, {"gap": "memorisation", "ssim": "reference"}, effects, harm, {},
                     results, n_test_subjects=10, has_bootstrap=True).set_index("metric")
    assert card.loc["gap", "d"] == "inconclusive"
    assert card.loc["gap", "d_evidence"] == ("memorisation_copies: no real-vs-real noise floor to measure the "
                                             "change against")
    assert card.loc["ssim", ["d", "d_evidence"]].tolist() == ["no", "memorisation_copies: undefined on copies"]
