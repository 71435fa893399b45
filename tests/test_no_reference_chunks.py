"""Per-item no-reference statistics run a few items at a time (flat memory in the number of items): the
values equal those of one whole-set call, and an error still names items by their position in the set."""

from __future__ import annotations

import pytest
import torch

from benchmark.errors import DataError
from benchmark.metrics.no_reference import checks
from benchmark.metrics.no_reference.niqe import NIQE, BRISQUEDistance, patch_features
from benchmark.metrics.no_reference.sharpness import blur_effect, total_variation
from benchmark.metrics.no_reference.snr import snr
from tests.test_no_reference import _images

N = 2 * checks.ITEM_CHUNK + 7  # three chunks, the last one short


@pytest.fixture
def whole_set(monkeypatch: pytest.MonkeyPatch):
    """Run `call()` twice: chunked as configured and with one chunk holding every item."""
    def run(call):
        chunked = call()
        monkeypatch.setattr(checks, "ITEM_CHUNK", 10_000)
        from benchmark.metrics.no_reference import natural_scene
        monkeypatch.setattr(natural_scene, "SLICE_CHUNK", 10_000)
        whole = call()
        monkeypatch.undo()
        return chunked, whole
    return run


@pytest.mark.parametrize("function", [blur_effect, total_variation, snr])
def test_chunked_statistic_equals_whole_set(whole_set, function) -> None:
    images, masks = _images(N, (48, 48), seed=5)
    chunked, whole = whole_set(lambda: checks.in_item_chunks(function, images, masks))
    assert chunked.shape == (N,)
    torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=0)


def test_chunked_niqe_and_brisque_equal_whole_set(whole_set) -> None:
    images, masks = _images(N, (64, 64), seed=6)
    chunked, whole = whole_set(lambda: NIQE(patch_size=16).fit(images[:40], masks[:40])(images[40:], masks[40:]))
    torch.testing.assert_close(chunked, whole, rtol=1e-10, atol=0)
    features, usable, sharpness = patch_features(images, masks, 16, 0.5, "niqe")
    assert features.shape[:2] == usable.shape == sharpness.shape and features.shape[0] == N
    chunked, whole = whole_set(lambda: BRISQUEDistance().fit(images[:40], masks[:40])(images[40:], masks[40:]))
    torch.testing.assert_close(chunked, whole, rtol=1e-10, atol=0)


def test_an_error_in_a_later_chunk_names_the_item_of_the_whole_set() -> None:
    images, masks = _images(N, (32, 32), seed=7)
    masks[N - 2] = False  # an empty brain mask in the last chunk
    with pytest.raises(DataError, match=rf"items \[{N - 2}\]"):
        checks.in_item_chunks(total_variation, images, masks)
