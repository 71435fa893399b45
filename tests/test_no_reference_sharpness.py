"""Sharpness metrics where the smooth-ellipse tests are blind: short axes (3D volumes of a few slices), content
up to the image edge (no zero background), negative intensities, masks of exactly the minimum size, the
smallest box, and errors that name the metric, the input and the items.

References: scikit-image's `blur_effect`, scipy.ndimage's Laplacian, torchmetrics' total variation, numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from skimage.measure import blur_effect as skimage_blur_effect

from benchmark.errors import BenchmarkError, DataError
from benchmark.metrics.no_reference import blur_effect, total_variation, variance_of_laplacian


def _edge_to_edge(shape: tuple[int, ...], n: int = 2, seed: int = 0) -> torch.Tensor:
    """(n, 1, *shape) smoothed z-scored noise that fills the image, edges included (negative values too)."""
    rng = np.random.default_rng(seed)
    images = ndi.gaussian_filter(rng.normal(size=(n, *shape)), (0, *[1.0] * len(shape)))
    return torch.from_numpy((images - images.mean()) / images.std())[:, None]


@pytest.mark.parametrize("shape", [(4, 12, 20), (5, 12, 20), (6, 16, 9), (5, 40)])
def test_blur_effect_matches_skimage_on_axes_shorter_than_the_box(shape):
    images = _edge_to_edge(shape, seed=len(shape))
    expected = [skimage_blur_effect(im[0].numpy()) for im in images]
    np.testing.assert_allclose(blur_effect(images).numpy(), expected, rtol=1e-10)


def test_blur_effect_refuses_axes_with_no_interior_instead_of_returning_nan():
    with pytest.raises(DataError, match=r"^blur_effect: every spatial axis needs at least 4 voxels .* got images "
                                        r"\(2, 1, 3, 12, 20\)$"):
        blur_effect(_edge_to_edge((3, 12, 20)))


def test_blur_effect_accepts_the_smallest_box_and_refuses_an_empty_one():
    images = _edge_to_edge((24, 20), seed=1)
    expected = [skimage_blur_effect(im[0].numpy(), h_size=1) for im in images]
    np.testing.assert_allclose(blur_effect(images, h_size=1).numpy(), expected, rtol=1e-10)
    with pytest.raises(BenchmarkError, match=r"^blur_effect: h_size must be >= 1, got 0$"):
        blur_effect(images, h_size=0)
    with pytest.raises(DataError, match=r"^blur_effect: mask shape \(2, 1, 24, 19\) does not match images"):
        blur_effect(images, torch.ones(2, 1, 24, 19, dtype=torch.bool))


@pytest.mark.parametrize("shape", [(16, 14), (4, 10, 12)])
def test_total_variation_counts_the_pairs_at_the_image_edge(shape):
    images = _edge_to_edge(shape, seed=2)
    x = images[:, 0].numpy()
    expected = [sum(np.abs(np.diff(x[k], axis=a)).sum() for a in range(len(shape))) for k in range(2)]
    np.testing.assert_allclose(total_variation(images, reduction="sum").numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(total_variation(images).numpy(), np.array(expected) / np.prod(shape), rtol=1e-12)
    if len(shape) == 2:
        from torchmetrics.functional.image import total_variation as tm_total_variation

        torch.testing.assert_close(total_variation(images, reduction="sum"),
                                   tm_total_variation(images, reduction="none"), rtol=1e-12, atol=0)


def test_masks_of_exactly_the_minimum_size_are_accepted_and_short_ones_named():
    images = _edge_to_edge((10, 10), seed=3)
    masks = torch.zeros(2, 1, 10, 10, dtype=torch.bool)
    masks[:, 0, 4, 4:6] = True  # two voxels: the variance of the Laplacian needs at least two
    lap = ndi.laplace(images[0, 0].numpy())[4, 4:6]
    assert variance_of_laplacian(images, masks)[0].item() == pytest.approx(lap.var(), rel=1e-12)
    masks[1, 0, 4, 5] = False
    with pytest.raises(DataError, match=r"^variance_of_laplacian: mask of items \[1\] has fewer than 2 voxels; "
                                        r"select items where the region exists or pass a larger mask$"):
        variance_of_laplacian(images, masks)
    one = torch.zeros_like(masks)
    one[:, 0, 2, 2] = True  # one voxel: no neighbour pair, total variation 0
    assert total_variation(images, one).tolist() == [0.0, 0.0]


def test_errors_name_the_metric_and_list_the_first_ten_items():
    images = _edge_to_edge((8, 8), n=12)
    with pytest.raises(DataError, match=r"^total_variation: mask of items \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\] has"):
        total_variation(images, torch.zeros(12, 1, 8, 8, dtype=torch.bool))
    with pytest.raises(DataError, match=r"^variance_of_laplacian: images contain NaN or Inf$"):
        variance_of_laplacian(torch.full_like(images, float("inf")))
    with pytest.raises(DataError, match=r"^blur_effect: images contain NaN or Inf$"):
        blur_effect(torch.full_like(images, float("nan")))


@pytest.mark.gpu
def test_sharpness_on_cuda_equals_the_cpu_values():
    """Padding indices, default masks and accumulators follow the images' device."""
    images = _edge_to_edge((5, 12, 20))
    masks = images > 0
    for metric in (blur_effect, total_variation, variance_of_laplacian):
        for mask in (None, masks):
            torch.testing.assert_close(metric(images.cuda(), None if mask is None else mask.cuda()).cpu(),
                                       metric(images, mask), rtol=1e-10, atol=1e-12)


def test_each_item_is_scored_alone_whatever_the_rest_of_the_batch():
    """A batch of identical images must not look 'blurred along the batch': every axis is spatial."""
    image = _edge_to_edge((24, 20), n=1, seed=4)
    alone = skimage_blur_effect(image[0, 0].numpy())
    np.testing.assert_allclose(blur_effect(image.expand(4, -1, -1, -1)).numpy(), [alone] * 4, rtol=1e-10)
