"""MetricSuite: Hydra composition of conf/metrics, pairing by reference_index, caching, caps, flags."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from benchmark.data.imageset import ImageSet
from benchmark.errors import BenchmarkError, ConfigError
from benchmark.features import SegmentationEncoderFeatures
from benchmark.metrics import MetricSuite, fid, kid, prdc, psnr, ssim
from benchmark.metrics.entries import (
    CopyRateMetric,
    FrechetMetric,
    ImageMetric,
    InceptionScoreMetric,
    KIDMetric,
    MSSSIMDiversityMetric,
    PRDCMetric,
)

CONF = str(Path(__file__).resolve().parents[1] / "conf")


def _set(n, seed, size=48):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, size, size, generator=generator)
    shape = (n, 1, size, size)
    return ImageSet(
        images, torch.zeros(shape, dtype=torch.long), torch.ones(shape, dtype=torch.bool),
        [f"s{i // 4}" for i in range(n)], list(range(n)), ("flair",), (1.5, 1.5),
    )  # fmt: skip


class CountingEncoder:
    """Stands in for the trained segmenter: deterministic pooled features, counting its calls."""

    def __init__(self):
        self.calls = 0

    def encoder_features(self, images):
        self.calls += images.shape[0]
        return torch.nn.functional.adaptive_avg_pool2d(images, 4).flatten(1)


def _suite(**kwargs):
    encoder = CountingEncoder()
    metrics = {
        "ssim": ImageMetric("ssim"),
        "psnr": ImageMetric("psnr"),
        "fid": FrechetMetric("seg"),
        "kid": KIDMetric("seg", subsets=5, subset_size=1000),
        "prdc": PRDCMetric("seg", k=3),
        "ms_ssim_diversity": MSSSIMDiversityMetric(max_pairs=20),
    }
    suite = MetricSuite(metrics, {"seg": SegmentationEncoderFeatures(encoder)}, **kwargs)
    return suite, encoder


def test_suite_values_equal_the_functions_on_the_same_pairs_and_features():
    reference, train = _set(16, 0), _set(16, 1)
    order = torch.tensor([3, 1, -1, 0, 7, 7, 2, 5, 9, 11, 4, 6])
    candidate = reference.subset(order.clamp_min(0)).with_images(reference.images[order.clamp_min(0)] * 0.9)
    suite, encoder = _suite(max_images=None)
    results = suite.compute(reference, candidate, order, train, "cpu")
    paired = order >= 0
    x, y = candidate.images[paired], reference.images[order[paired]]
    assert results["ssim"] == pytest.approx(ssim(x, y).double().mean().item())
    pooled = ((x.double() - y.double()) ** 2).mean()  # the suite's PSNR pools the MSE over the pairs
    assert results["psnr"] == pytest.approx(10 * torch.log10(1.0 / pooled).item(), rel=1e-6)
    assert psnr(x[:1], y[:1], 1.0).item() == pytest.approx(10 * torch.log10(1.0 / ((x[:1] - y[:1]) ** 2).mean()).item(),
                                                           rel=1e-5)
    pool = lambda s: torch.nn.functional.adaptive_avg_pool2d(s.images, 4).flatten(1)  # noqa: E731
    assert results["fid"] == pytest.approx(fid(pool(candidate), pool(reference)))
    assert results["kid"] == pytest.approx(kid(pool(candidate), pool(reference), subsets=5, subset_size=12)[0])
    assert results["prdc_recall"] == pytest.approx(prdc(pool(candidate), pool(reference), k=3)["recall"])
    assert "12 (configured 1000)" in suite.describe()["kid"]["notes"]
    calls = encoder.calls
    suite.compute(reference, candidate, order, train, "cpu")
    assert encoder.calls == calls and suite.cache.hits >= 2


def test_max_images_caps_feature_metrics_only_and_train_is_capped_separately():
    reference, candidate = _set(20, 0), _set(20, 1)
    suite, encoder = _suite(max_images=8)
    suite.compute(reference, candidate, torch.arange(20), None, "cpu")
    assert encoder.calls == 16
    assert "at most 8 items per set" in suite.describe()["fid"]["notes"]
    train = _set(30, 2)
    copies = train.subset(list(range(30))[-10:])
    extractors = {"seg": SegmentationEncoderFeatures(CountingEncoder())}
    memorising = MetricSuite({"copy_rate": CopyRateMetric("seg")}, extractors, max_images=8)
    assert memorising.compute(reference, copies, torch.full((10,), -1), train, "cpu")["copy_rate"] == 1.0
    assert "training set: all items" in memorising.describe()["copy_rate"]["notes"]


def test_errors_raise_or_flag_with_a_reason():
    reference = _set(3, 0)
    suite, _ = _suite(on_error="raise")
    with pytest.raises(BenchmarkError, match="prdc"):
        suite.compute(reference, reference, torch.arange(3), None, "cpu")
    suite, _ = _suite(on_error="flag")
    results = suite.compute(reference, reference, torch.full((3,), -1), None, "cpu")
    assert results["ssim"] != results["ssim"] and "clean counterpart" in suite.flags["ssim"]
    assert results["prdc_precision"] != results["prdc_precision"]
    assert "FLAGGED" in suite.describe()["prdc_precision"]["notes"]
    assert set(suite.flags) == {k for k, v in results.items() if v != v}
    with pytest.raises(BenchmarkError, match="reference_index"):
        suite.compute(reference, reference, torch.arange(2), None, "cpu")
    with pytest.raises(ConfigError, match="extractor"):
        MetricSuite({"fid": FrechetMetric("inception")}, {})


def test_default_and_full_configs_compose_and_describe():
    with initialize_config_dir(config_dir=CONF, version_base=None):
        default = compose(config_name="config")
        full = compose(config_name="config", overrides=["metrics=full"])
    suite = instantiate(default.metrics)
    described = suite.describe()
    for name in ("ssim", "ms_ssim", "psnr", "mae", "mse", "nmse", "nmi", "lpips", "fid", "kid", "prdc_precision",
                 "prdc_coverage", "authenticity", "copy_rate", "fid_train_gap", "ms_ssim_diversity"):  # fmt: skip
        assert name in described, name
    assert described["authenticity"]["kind"] == "memorisation" and described["fid"]["higher_is_better"] is False
    assert suite.max_images == 128
    full_suite = instantiate(full.metrics)
    assert full_suite.max_images is None
    assert isinstance(full_suite.metrics["inception_score"], InceptionScoreMetric)
    assert {"radimagenet", "segmentation_encoder", "inception"} <= set(full_suite.extractors)


@pytest.mark.slow
def test_default_suite_end_to_end_with_inception():
    with initialize_config_dir(config_dir=CONF, version_base=None):
        cfg = compose(config_name="config", overrides=["metrics.max_images=8"])
    suite = instantiate(cfg.metrics)
    reference, train = _set(10, 0, size=64), _set(10, 1, size=64)
    candidate = reference.with_images((reference.images + 0.05).clamp(0, 1))
    results = suite.compute(reference, candidate, torch.arange(10), train, "cpu")
    assert not suite.flags, suite.flags
    assert all(v == v for v in results.values())
