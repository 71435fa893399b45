"""No-reference statistics on MRI-like images (zero background, bright lesion, dark ventricles; 2D and 3D; z-scored
with negative values) against scikit-image, scipy and torchmetrics, including the masked variants.

Total variation with a mask: inside a box-shaped mask, the masked sum equals torchmetrics' total variation of
the cropped box (a 3D volume's TV is half the sum of torchmetrics' 2D TV over its three channel orderings);
for masks with holes and isolated voxels, a brute-force loop over neighbour pairs. Tolerance 1e-10 relative
(float64 sums of a few thousand terms).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from skimage.measure import blur_effect as skimage_blur_effect
from torchmetrics.functional.image import total_variation as tm_total_variation

from benchmark.errors import BenchmarkError, DataError
from benchmark.metrics.no_reference import blur_effect, total_variation, variance_of_laplacian
from tests.mri_like import pair, z_scored

SHAPES = {"2d": (48, 40), "3d": (14, 20, 16)}


def mri(dims: str, z: bool = False, n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    _, images, masks = pair(SHAPES[dims], n=n, seed=5)
    if z:
        images = z_scored(images, masks)
    return torch.from_numpy(images), torch.from_numpy(masks)


def torchmetrics_tv(volume: torch.Tensor) -> float:
    """Anisotropic TV of one (H, W) or (D, H, W) array with torchmetrics (2D only: 3D via channel orderings)."""
    if volume.ndim == 2:
        return float(tm_total_variation(volume[None, None], reduction="sum"))
    orderings = [volume, volume.permute(1, 0, 2), volume.permute(2, 0, 1)]
    return sum(float(tm_total_variation(v[None], reduction="sum")) for v in orderings) / 2


def brute_force_tv(image: np.ndarray, mask: np.ndarray) -> float:
    """Sum of |x_p - x_q| over face-neighbour pairs p, q both inside the mask, one pair at a time."""
    total = 0.0
    for p in itertools.product(*[range(s) for s in image.shape]):
        for axis in range(image.ndim):
            q = list(p)
            q[axis] += 1
            q = tuple(q)
            if q[axis] < image.shape[axis] and mask[p] and mask[q]:
                total += abs(image[p] - image[q])
    return total


@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_masked_total_variation_in_a_box_equals_torchmetrics_on_the_crop(dims):
    images, _ = mri(dims, z=True)
    box = tuple(slice(3, s - 4) for s in SHAPES[dims])
    masks = torch.zeros_like(images, dtype=torch.bool)
    masks[(slice(None), 0, *box)] = True
    ours = total_variation(images, masks, reduction="sum")
    for k in range(2):
        assert ours[k].item() == pytest.approx(torchmetrics_tv(images[(k, 0, *box)]), rel=1e-10)
    per_voxel = total_variation(images, masks)
    torch.testing.assert_close(per_voxel, ours / masks.flatten(1).sum(1), rtol=1e-12, atol=0)
    unmasked = total_variation(images, reduction="sum")
    for k in range(2):
        assert unmasked[k].item() == pytest.approx(torchmetrics_tv(images[k, 0]), rel=1e-10)


@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_masked_total_variation_with_holes_and_isolated_voxels_matches_brute_force(dims):
    images, brain = mri(dims, z=True, n=1)
    shape = SHAPES[dims]
    holes = torch.from_numpy(np.random.default_rng(2).random(shape) < 0.15)
    mask = brain[0, 0] & ~holes
    mask[(0,) * len(shape)] = True  # an isolated voxel in the corner: no neighbour inside, adds nothing
    expected = brute_force_tv(images[0, 0].numpy(), mask.numpy())
    ours = total_variation(images, mask[None, None], reduction="sum")
    assert ours.item() == pytest.approx(expected, rel=1e-10)
    assert total_variation(images, mask[None, None]).item() == pytest.approx(expected / mask.sum().item(), rel=1e-10)
    with pytest.raises(BenchmarkError, match=r"^total_variation: reduction must be 'mean' or 'sum', got 'none'$"):
        total_variation(images, reduction="none")


@pytest.mark.parametrize("h_size", [11, 5])
@pytest.mark.parametrize(("dims", "z"), [("2d", False), ("3d", False), ("2d", True)], ids=["2d", "3d", "2d-z"])
def test_blur_effect_matches_scikit_image_on_mri_like_images(dims, z, h_size):
    images, _ = mri(dims, z=z)
    ours = blur_effect(images, h_size=h_size)
    expected = [skimage_blur_effect(images[k, 0].numpy(), h_size=h_size) for k in range(2)]
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-10)
    full = torch.ones_like(images, dtype=torch.bool)
    np.testing.assert_allclose(blur_effect(images, full, h_size=h_size).numpy(), expected, rtol=1e-10)


def test_blur_effect_with_a_mask_is_the_masked_gradient_ratio():
    """The masked variant against the same construction in numpy/scipy (Crete et al.: per axis
    |sum(|Sobel x|) - sum(max(|Sobel x| - |Sobel blur(x)|, 0))| / sum(|Sobel x|), maximum over axes)."""
    images, masks = mri("2d")
    ours = blur_effect(images, masks)
    for k in range(2):
        x, m = images[k, 0].numpy(), masks[k, 0].numpy().copy()
        m[:2], m[-1:], m[:, :2], m[:, -1:] = False, False, False, False  # scikit-image's crop of the borders
        scores = []
        for axis in range(2):
            blurred = ndi.uniform_filter1d(x, 11, axis=axis)
            sharp = np.abs(ndi.sobel(x, axis=axis)) / 8  # scipy's Sobel is 8x a [1,0,-1] x [1,2,1]/4 kernel
            soft = np.abs(ndi.sobel(blurred, axis=axis)) / 8
            residual = np.maximum(sharp - soft, 0)
            scores.append(abs(sharp[m].sum() - residual[m].sum()) / sharp[m].sum())
        assert ours[k].item() == pytest.approx(max(scores), rel=1e-9)
    with pytest.raises(BenchmarkError, match=r"^blur_effect: h_size must be >= 1, got 0$"):
        blur_effect(images, h_size=0)


@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_variance_of_laplacian_matches_scipy_on_z_scored_volumes(dims):
    images, masks = mri(dims, z=True)
    ours = variance_of_laplacian(images, masks)
    for k in range(2):
        lap = ndi.laplace(images[k, 0].numpy())
        assert ours[k].item() == pytest.approx(lap[masks[k, 0].numpy()].var(), rel=1e-10)
    single = torch.zeros_like(masks)
    single[(slice(None), 0, *[5] * len(SHAPES[dims]))] = True
    with pytest.raises(DataError, match=r"^variance_of_laplacian: mask of items \[0, 1\] has fewer than 2 voxels"):
        variance_of_laplacian(images, single)


def test_input_checks_name_the_metric_and_the_fix():
    images, masks = mri("2d")
    with pytest.raises(DataError, match=r"^total_variation: images must be a torch.Tensor, got ndarray$"):
        total_variation(images.numpy())
    shapes = r"\(N, 1, H, W\) or \(N, 1, D, H, W\)"
    with pytest.raises(DataError, match=rf"^blur_effect: images must be {shapes} with N >= 1, got \(2, 2, 48, 40\)$"):
        blur_effect(images.repeat(1, 2, 1, 1))
    with pytest.raises(DataError, match=r"got \(0, 1, 48, 40\)$"):
        blur_effect(images[:0])
    with pytest.raises(DataError, match=r"^total_variation: images contain NaN or Inf$"):
        total_variation(images.masked_fill(masks, float("inf")))
    with pytest.raises(DataError, match=r"^total_variation: mask shape \(2, 1, 48, 39\) does not match images"):
        total_variation(images, masks[..., :-1])
    empty = masks.clone()
    empty[1] = False
    with pytest.raises(DataError, match=r"^total_variation: mask of items \[1\] has fewer than 1 voxels; select items"):
        total_variation(images, empty)
    integer = (images * 4095).round().short()
    torch.testing.assert_close(total_variation(integer, masks), total_variation(integer.double(), masks))
