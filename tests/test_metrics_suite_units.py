"""MetricSuite's parts on small sets: the feature caches (LRU, per item, fingerprints), the configuration checks,
the seeded caps, per-item values and their positions, flagged errors and `describe`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.data.imageset import ImageSet
from benchmark.errors import BenchmarkError, ConfigError
from benchmark.features.base import FeatureExtractor
from benchmark.metrics.entries import CopyRateMetric, FrechetMetric, ImageMetric, ItemValues, SuiteMetric
from benchmark.metrics.suite import FeatureCache, ItemFeatureCache, MetricSuite


def image_set(n: int, seed: int, size: int = 16) -> ImageSet:
    images = torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))
    shape = (n, 1, size, size)
    return ImageSet(images, torch.zeros(shape, dtype=torch.long), torch.ones(shape, dtype=torch.bool),
                    [f"s{i // 2}" for i in range(n)], list(range(n)), ("flair",), (1.0, 1.0))


class Pooling(FeatureExtractor):
    """A real (parameter-free) extractor: 2x2 average pooling, counting the samples it sees."""

    name, dim = "pool", 4

    def __init__(self) -> None:
        super().__init__(batch_size=3)
        self.seen = 0
        self.attached = None
        self.devices: list = []

    def extract(self, images: torch.Tensor, device=None) -> torch.Tensor:
        self.devices.append(device)
        return super().extract(images, device)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.seen += images.shape[0]
        return torch.nn.functional.adaptive_avg_pool2d(images, 2).flatten(1)

    def attach(self, segmenter) -> None:
        self.attached = segmenter


class Brightness(SuiteMetric):
    """A no-reference entry whose per-item values cover only the candidate items brighter than 0.5 on average."""

    kind = "no_reference"

    def compute(self, context) -> dict[str, float]:
        means = context.candidate_images.flatten(1).mean(1)
        positions = torch.nonzero(means > 0.5).flatten()
        self.items = {self.name: ItemValues(means[positions].float(), positions)}
        return {self.name: float(means[positions].mean())}


def test_feature_cache_is_an_lru_of_fingerprints() -> None:
    cache = FeatureCache(max_entries=2)
    a, b, c = (torch.full((2, 3), float(v)) for v in (1, 2, 3))
    calls = []
    def get(name, images):
        return cache.get(name, images, lambda: calls.append(name) or images.sum(1))
    get("x", a), get("x", b), get("x", a), get("x", c)  # b is the least recently used: evicted
    assert (cache.hits, cache.misses) == (1, 3) and len(calls) == 3
    assert torch.equal(get("x", c), c.sum(1))  # a hit returns the stored value
    get("x", a)
    assert cache.hits == 3
    get("x", b)
    assert cache.misses == 4 and len(cache.entries) == 2
    get("y", a)
    cache.forget("x")
    assert [key[0] for key in cache.entries] == ["y"]
    off = FeatureCache(max_entries=0)
    off.get("x", a, lambda: a)
    assert off.entries == {}


def test_fingerprint_depends_on_bytes_shape_and_dtype_not_on_layout() -> None:
    zeros = torch.zeros(4, dtype=torch.float32)
    assert FeatureCache.fingerprint(zeros) != FeatureCache.fingerprint(torch.zeros(4, dtype=torch.int32))
    assert FeatureCache.fingerprint(zeros) != FeatureCache.fingerprint(zeros.view(2, 2))
    grid = torch.arange(12.0).view(3, 4)
    assert FeatureCache.fingerprint(grid.t()) == FeatureCache.fingerprint(grid.t().contiguous())
    assert FeatureCache.fingerprint(grid) != FeatureCache.fingerprint(grid + 1)


def test_item_cache_runs_the_network_once_per_new_item_and_keeps_item_order() -> None:
    cache = ItemFeatureCache(max_entries=3)
    items = torch.arange(4.0).view(4, 1).repeat(1, 2)  # four distinct items
    batches = []
    def compute(subset):
        batches.append(subset.clone())
        return torch.cat([subset, -subset], 1).repeat_interleave(2, 0)  # two rows per item
    first = cache.get_items("x", items[[0, 1, 0]], compute)
    assert batches[0].tolist() == [[0.0, 0.0], [1.0, 1.0]]  # each new item once, in first-seen order
    assert first[:, 0].tolist() == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    assert (cache.misses, cache.hits) == (3, 0)
    first[0, 0] = 99.0  # the result is a copy, not the cached rows
    again = cache.get_items("x", items[[1, 2, 0]], compute)
    assert batches[1].tolist() == [[2.0, 2.0]] and (cache.misses, cache.hits) == (4, 2)
    assert again[:, 0].tolist() == [1.0, 1.0, 2.0, 2.0, 0.0, 0.0]
    cache.get_items("x", items[[3]], compute)  # item 1 was used least recently: evicted
    assert len(cache.entries) == 3
    cache.get_items("x", items[[1]], compute)
    assert batches[-1].tolist() == [[1.0, 1.0]]
    assert cache.get_items("x", items[[2]], compute)[0].tolist() == [2.0, 2.0, -2.0, -2.0]
    assert len(batches) == 4 and cache.hits == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"on_error": "warn"}, r"metrics.on_error must be 'raise' or 'flag', got 'warn'"),
    ({"max_images": 1}, r"metrics.max_images must be >= 2 or null, got 1"),
    ({"max_train_images": 1}, r"metrics.max_train_images must be >= 2 or null, got 1"),
])
def test_bad_suite_settings_are_config_errors(kwargs, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MetricSuite({"mae": ImageMetric("mae")}, **kwargs)


def test_entries_must_be_suite_metrics_with_known_extractors() -> None:
    with pytest.raises(ConfigError, match=r"metrics.mae is function, not a benchmark.metrics.entries entry"):
        MetricSuite({"mae": lambda: 0})
    with pytest.raises(ConfigError, match=r"metrics.fid uses extractor 'pool', which is not one of "
                                          r"metrics.extractors \(\['other'\]\)"):
        MetricSuite({"fid": FrechetMetric("pool")}, {"other": Pooling()})
    suite = MetricSuite({"my_mae": ImageMetric("mae")}, max_images=2, max_train_images=2)
    assert suite.metrics["my_mae"].name == "my_mae" and suite.max_images == suite.max_train_images == 2


def test_factories_are_built_once_and_a_segmenter_resets_their_cache() -> None:
    built = []
    def factory():
        built.append(Pooling())
        return built[-1]
    suite = MetricSuite({"fid": FrechetMetric("pool")}, {"pool": factory})
    assert suite.describe()["fid"]["notes"].endswith("; features: loaded on first use; all items (seed 0)")
    assert suite.extractor("pool") is suite.extractor("pool") and len(built) == 1
    reference = image_set(6, 0)
    suite.features_of("pool", reference)
    assert len(suite.cache.entries) == 6
    suite.attach_segmenter("model")
    assert built[0].attached == "model" and len(suite.cache.entries) == 0
    assert "features: pool; all items" in suite.describe()["fid"]["notes"]


def test_caps_pick_the_same_seeded_items_for_positions_and_features() -> None:
    suite = MetricSuite({"fid": FrechetMetric("pool")}, {"pool": Pooling()}, max_images=4, max_train_images=6, seed=3)
    assert suite.capped_positions(4).tolist() == [0, 1, 2, 3]
    chosen = suite.capped_positions(10)
    expected = np.sort(np.random.default_rng(3).choice(10, 4, replace=False))
    assert chosen.tolist() == expected.tolist() and len(set(chosen.tolist())) == 4
    assert suite.capped_positions(10, "train").tolist() == np.sort(
        np.random.default_rng(3).choice(10, 6, replace=False)).tolist()
    assert suite.capped_positions(10, "reference").tolist() == chosen.tolist()
    images = image_set(10, 1)
    features = suite.features_of("pool", images)
    pooled = torch.nn.functional.adaptive_avg_pool2d(images.images[torch.from_numpy(expected)], 2).flatten(1)
    torch.testing.assert_close(features, pooled)
    assert suite.extractor("pool").devices == [torch.device("cpu")]
    train = suite.features_of("pool", images, which="train")
    assert train.shape == (6, 4)
    uncapped = MetricSuite({"fid": FrechetMetric("pool")}, {"pool": Pooling()})
    assert uncapped.capped_positions(10, "train").tolist() == list(range(10))
    assert uncapped.features_of("pool", images).shape == (10, 4)


def test_per_item_values_carry_their_candidate_positions() -> None:
    reference = image_set(6, 0)
    candidate = reference.with_images(torch.cat([reference.images[:3] * 0.1, reference.images[3:] * 0 + 0.9]))
    index = torch.tensor([0, -1, 2, 3, -1, 5])
    metrics = {"mae": ImageMetric("mae"), "bright": Brightness(), "fid": FrechetMetric("pool")}
    suite = MetricSuite(metrics, {"pool": Pooling()})
    results = suite.compute(reference, candidate, index, None)
    assert suite.items["mae"].positions.tolist() == [0, 2, 3, 5]  # reference entries: the paired items
    assert suite.items["bright"].positions.tolist() == [3, 4, 5]  # the entry's own positions
    assert suite.items["bright"].values.dtype == torch.float64
    assert suite.items["mae"].aggregate == suite.items["bright"].aggregate == "mean"
    assert metrics["fid"].feature_extractor == "pool" and suite.extractor("pool").devices == [torch.device("cpu")] * 2
    paired = (candidate.images[[0, 2, 3, 5]] - reference.images[[0, 2, 3, 5]]).abs().flatten(1).mean(1)
    assert results["mae"] == pytest.approx(paired.double().mean().item())
    torch.testing.assert_close(suite.items["mae"].values, paired.double())
    skipped = suite.compute(reference, candidate, index, None, skip_kinds=("reference", "distribution"))
    assert set(skipped) == {"bright"} and set(suite.items) == {"bright"}


def test_no_reference_entries_without_positions_cover_every_candidate_item() -> None:
    class Means(SuiteMetric):
        kind = "no_reference"

        def compute(self, context):
            means = context.candidate_images.flatten(1).mean(1)
            self.items = {self.name: ItemValues(means)}
            return {self.name: float(means.mean())}

    suite = MetricSuite({"means": Means()})
    suite.compute(image_set(4, 0), image_set(5, 1), torch.full((5,), -1), None)
    assert suite.items["means"].positions.tolist() == [0, 1, 2, 3, 4]


def test_flagged_errors_are_nan_with_their_reason_and_others_still_run() -> None:
    reference, candidate = image_set(4, 0), image_set(4, 1)
    metrics = {"mae": ImageMetric("mae"), "bright": Brightness(), "copy_rate": CopyRateMetric("pool")}
    suite = MetricSuite(metrics, {"pool": Pooling()}, on_error="flag", max_images=3)
    results = suite.compute(reference, candidate, torch.full((4,), -1), None)
    assert np.isnan(results["mae"]) and np.isnan(results["copy_rate"]) and np.isfinite(results["bright"])
    assert suite.flags["mae"] == "no candidate item has a clean counterpart (reference_index is -1 everywhere)"
    assert suite.flags["copy_rate"] == ("this metric needs the train set, and none was given to "
                                        "MetricSuite.compute.")
    described = suite.describe()
    assert described["mae"]["notes"].endswith("; FLAGGED NaN: " + suite.flags["mae"])
    assert "FLAGGED" not in described["bright"]["notes"]
    assert described["copy_rate"]["notes"].endswith(
        "; features: pool; at most 3 items per set, training set: all items (seed 0); FLAGGED NaN: "
        + suite.flags["copy_rate"])
    assert described["copy_rate"]["kind"] == "memorisation" and described["copy_rate"]["feature_extractor"] == "pool"
    assert described["mae"]["higher_is_better"] is False
    assert described["bright"]["notes"] == "" and described["bright"]["feature_extractor"] is None
    suite.compute(reference, candidate, torch.arange(4), image_set(4, 2))
    assert suite.flags == {} and set(suite.items) >= {"mae", "bright"}
    raising = MetricSuite({"mae": ImageMetric("mae")})
    with pytest.raises(BenchmarkError, match="clean counterpart"):
        raising.compute(reference, candidate, torch.full((4,), -1), None)


def test_reference_index_is_checked_against_both_sets() -> None:
    suite = MetricSuite({"mae": ImageMetric("mae")}, on_error="flag")
    reference, candidate = image_set(3, 0), image_set(4, 1)
    with pytest.raises(BenchmarkError, match=r"reference_index has shape \(3,\), expected \(4,\)"):
        suite.compute(reference, candidate, torch.arange(3), None)
    with pytest.raises(BenchmarkError, match="reference_index points past the 3 reference items"):
        suite.compute(reference, candidate, torch.tensor([0, 1, 2, 3]), None)
    results = suite.compute(reference, candidate, [2, -1, 0, 2], None)
    assert suite.compute(reference, candidate, torch.tensor([2.0, -1.0, 0.0, 2.0]), None) == results
    pairs = (candidate.images[[0, 2, 3]] - reference.images[[2, 0, 2]]).abs().flatten(1).mean(1)
    assert results["mae"] == pytest.approx(pairs.double().mean().item())


def test_logits_need_an_extractor_that_has_them() -> None:
    class Scores(SuiteMetric):
        kind = "no_reference"
        feature_extractor = "pool"

        def compute(self, context):
            return {self.name: float(context.logits("pool", "candidate").sum())}

    suite = MetricSuite({"scores": Scores()}, {"pool": Pooling()}, on_error="flag")
    assert np.isnan(suite.compute(image_set(3, 0), image_set(3, 1), torch.arange(3), None)["scores"])
    assert suite.flags["scores"] == "extractor 'pool' has no classifier logits; the Inception Score needs one."

    class WithLogits(Pooling):
        def logits(self, images, device):
            self.devices.append(device)
            return images.flatten(1)[:, :2]

    with_logits = WithLogits()
    suite = MetricSuite({"scores": Scores()}, {"pool": with_logits}, max_images=2)
    candidate = image_set(3, 1)
    value = suite.compute(image_set(3, 0), candidate, torch.arange(3), None)["scores"]
    chosen = torch.from_numpy(suite.capped_positions(3))
    assert value == pytest.approx(float(candidate.images[chosen].flatten(1)[:, :2].sum()))
    assert ("pool:logits", FeatureCache.fingerprint(candidate.images[chosen[0]])) in suite.cache.entries
    assert with_logits.devices == [torch.device("cpu")]


def test_entries_see_the_suites_sets_device_and_empty_pairs_when_none_exist() -> None:
    seen = {}

    class Probe(SuiteMetric):
        kind = "no_reference"

        def compute(self, context):
            seen.update(device=context.device, sets=context.sets, pairs=context.paired_candidate.numel(),
                        reference_pairs=context.paired_reference.numel())
            return {self.name: 0.0}

    reference, candidate = image_set(3, 0), image_set(3, 1)
    suite = MetricSuite({"probe": Probe(), "psnr": ImageMetric("psnr")}, on_error="flag")
    suite.compute(reference, candidate, torch.full((3,), -1), None)
    assert seen["device"] == torch.device("cpu") and seen["pairs"] == seen["reference_pairs"] == 0
    assert seen["sets"]["reference"] is reference and seen["sets"]["candidate"] is candidate
    assert seen["sets"]["train"] is None
    suite.compute(reference, candidate, torch.arange(3), None)
    assert suite.items["psnr"].aggregate == "psnr:1.0"
