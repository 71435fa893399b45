"""The resampling helpers: items grouped by subject, whole-subject draws, pooled side data and the real-vs-real
noise floor's halves (disjoint subjects, as many as the test set has, at most half the pool)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.metrics.entries import FrechetMetric, ImageMetric
from benchmark.metrics.suite import MetricSuite
from benchmark.study.item_data import ItemData
from benchmark.study.resampling import _concatenate, curve_sizes, draw_positions, noise_floor, subject_positions


def test_subject_positions_group_items_by_subject() -> None:
    groups = subject_positions(np.array(["b", "a", "b", "", "a"]))
    assert {k: v.tolist() for k, v in groups.items()} == {"": [3], "a": [1, 4], "b": [0, 2]}


def test_draws_keep_whole_subjects_skip_unknown_ones_and_resample_loose_items() -> None:
    groups = subject_positions(np.array(["a", "a", "b", "", ""]))
    drawn = draw_positions(groups, ["b", "zz", "b", "a"], np.random.default_rng(0))
    assert drawn[:4].tolist() == [2, 2, 0, 1]
    loose = np.random.default_rng(0).choice(np.array([3, 4]), 2, replace=True)
    assert drawn[4:].tolist() == loose.tolist()
    none = draw_positions(subject_positions(np.array(["a"])), ["b"], np.random.default_rng(0))
    assert none.dtype == np.int64 and none.size == 0
    only_subjects = draw_positions({"a": np.array([0, 1]), "": np.array([], dtype=np.int64)}, ["a"],
                                   np.random.default_rng(0))
    assert only_subjects.tolist() == [0, 1]


def test_concatenate_shifts_the_second_sets_positions_and_keeps_shared_outputs() -> None:
    first = ItemData(slot=np.array(["a", "b"]),
                     items={"snr": (np.array([1.0, 2.0]), np.array([0, 1]), "mean"),
                            "only_first": (np.array([0.0]), np.array([0]), "mean")},
                     features={"x": (np.ones((2, 3)), np.array([0, 1]))},
                     radiomics={"frd": np.zeros((2, 4)), "frd_first": np.zeros((2, 4))})
    second = ItemData(slot=np.array(["c", "c", "d"]),
                      items={"snr": (np.array([3.0, 4.0]), np.array([0, 2]), "psnr:1.0")},
                      features={"x": (np.zeros((3, 3)), np.array([0, 1, 2])), "y": (np.zeros((3, 1)), np.arange(3))},
                      radiomics={"frd": np.ones((3, 4))})
    pool = _concatenate(first, second)
    assert pool.slot.tolist() == ["a", "b", "c", "c", "d"]
    values, positions, aggregate = pool.items["snr"]
    assert values.tolist() == [1.0, 2.0, 3.0, 4.0] and positions.tolist() == [0, 1, 2, 4] and aggregate == "mean"
    assert set(pool.items) == {"snr"} and set(pool.features) == {"x"} and set(pool.radiomics) == {"frd"}
    assert pool.features["x"][1].tolist() == [0, 1, 2, 3, 4] and pool.features["x"][0].sum() == 6
    assert pool.radiomics["frd"].shape == (5, 4) and pool.radiomics["frd"][2:].all()


def subject_items(names: list[str], items: int, offset: float) -> ItemData:
    """`items` items per subject with per-item value offset + item number and 2-d features."""
    slot = np.repeat(np.asarray(names), items)
    values = offset + np.arange(len(slot), dtype=float)
    features = np.stack([values, values ** 0.5], 1)
    positions = np.arange(len(slot))
    return ItemData(slot=slot, items={"snr": (values, positions, "mean")}, features={"x": (features, positions)})


def suite() -> MetricSuite:
    return MetricSuite({"fid": FrechetMetric("x")}, extractors={"x": lambda: None})


def test_floor_halves_are_disjoint_subject_sets_of_the_test_sets_size() -> None:
    clean = subject_items(["t0", "t1", "t2"], 2, 0.0)
    held_out = subject_items(["h0", "h1", "h2", "h3", "h4"], 2, 100.0)
    floor = noise_floor(suite(), clean, held_out, {}, splits=6, seed=4)
    assert list(floor.columns) == ["seed", "split", "n_subjects", "quantity", "value"]
    assert sorted(set(floor["quantity"])) == ["fid", "snr"] and set(floor["seed"]) == {4}
    assert floor["split"].tolist() == sorted(list(range(6)) * 2) and set(floor["n_subjects"]) == {3}
    pool = _concatenate(clean, held_out)
    groups = subject_positions(pool.slot)
    subjects = sorted(groups)
    rng = np.random.default_rng(4)
    for split in range(6):
        order = rng.permutation(subjects)
        second = np.concatenate([groups[s] for s in order[3:6]])
        snr = floor[(floor["split"] == split) & (floor["quantity"] == "snr")]["value"].item()
        assert snr == pytest.approx(pool.items["snr"][0][second].mean())


def test_floor_halves_are_at_most_half_the_pool_and_need_two_subjects() -> None:
    clean = subject_items(["t0", "t1", "t2", "t3"], 2, 0.0)
    floor = noise_floor(suite(), clean, subject_items(["h0"], 2, 50.0), {}, splits=3, seed=0)
    assert set(floor["n_subjects"]) == {2} and len(floor) == 6  # 5 subjects in the pool: halves of 2
    alone = noise_floor(suite(), subject_items(["t0"], 3, 0.0), subject_items([], 0, 0.0), {}, splits=3, seed=0)
    assert alone.empty and list(alone.columns) == ["seed", "split", "n_subjects", "quantity", "value"]
    loose = ItemData(slot=np.array(["", "", ""]), items={"snr": (np.arange(3.0), np.arange(3), "mean")})
    assert noise_floor(suite(), loose, subject_items(["h0", "h1"], 1, 0.0), {}, splits=2, seed=0).empty


def test_a_pool_of_two_subjects_gives_halves_of_one_subject() -> None:
    clean, held_out = subject_items(["t0"], 2, 0.0), subject_items(["h0"], 3, 10.0)
    floor = noise_floor(suite(), clean, held_out, {}, splits=4, seed=1)
    assert set(floor["n_subjects"]) == {1} and floor["split"].tolist() == sorted(list(range(4)) * 2)
    assert set(floor.loc[floor["quantity"] == "snr", "value"]) <= {0.5, 11.0}  # one whole subject's mean


def test_each_half_carries_a_resample_of_the_unattached_items() -> None:
    clean = subject_items(["t0", "t1"], 2, 0.0)
    clean.slot[:] = ["t0", "t0", "", ""]  # t0's two items and two items of no subject
    held_out = subject_items(["h0", "h1"], 2, 100.0)
    floor = noise_floor(suite(), clean, held_out, {}, splits=5, seed=3)
    assert set(floor["n_subjects"]) == {1}  # one subject in the clean set
    pool = _concatenate(clean, held_out)
    values, loose = pool.items["snr"][0], np.array([2, 3])
    rng = np.random.default_rng(3)
    for split in range(5):
        order = rng.permutation(["h0", "h1", "t0"])
        rng.choice(loose, 2, replace=True)  # the first half's unattached items
        second = np.concatenate([np.flatnonzero(pool.slot == order[1]), rng.choice(loose, 2, replace=True)])
        snr = floor[(floor["split"] == split) & (floor["quantity"] == "snr")]["value"].item()
        assert snr == pytest.approx(values[second].mean())


def test_paired_metrics_have_no_floor() -> None:
    def with_mae(data: ItemData) -> ItemData:
        values, positions, _ = data.items["snr"]
        data.items["mae"] = (values / 10, positions, "mean")
        return data

    paired = MetricSuite({"fid": FrechetMetric("x"), "mae": ImageMetric("mae")}, extractors={"x": lambda: None})
    clean, held_out = with_mae(subject_items(["t0", "t1"], 2, 0.0)), with_mae(subject_items(["h0", "h1"], 2, 5.0))
    floor = noise_floor(paired, clean, held_out, {}, splits=2, seed=0)
    assert sorted(set(floor["quantity"])) == ["fid", "snr"]


def test_curve_sizes_are_the_powers_of_two_from_8_to_2048_below_the_item_count_then_all_items() -> None:
    assert curve_sizes(5) == [5]
    assert curve_sizes(8) == [8]
    assert curve_sizes(9) == [8, 9]
    assert curve_sizes(100) == [8, 16, 32, 64, 100]
    assert curve_sizes(5000) == [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 5000]
