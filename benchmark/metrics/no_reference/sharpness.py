"""Sharpness and smoothness per image: variance of the Laplacian, the blur effect, total variation (2D and 3D).

- Variance of the Laplacian (Pech-Pacheco et al. 2000): population variance, over the mask, of the
  discrete Laplacian sum_axes (x[i-1] - 2 x[i] + x[i+1]) with mirrored borders (scipy.ndimage.laplace).
  Higher = sharper.
- Blur effect (Crété-Roffet et al. 2007), as `skimage.measure.blur_effect` (h_size 11, maximum over
  axes): per axis, how much of the Sobel gradient survives re-blurring with a 1 x h_size box filter.
  0 = sharp, 1 = maximally blurred. An optional mask restricts the gradient sums to the mask.
- Total variation (anisotropic): sum over axes of |x[i+1] - x[i]| over neighbour pairs inside the mask;
  reduction "sum" (as torchmetrics' TotalVariation) or "mean" per mask voxel (default, comparable across
  image and mask sizes). Lower = smoother.
"""

from __future__ import annotations

import torch

from benchmark.errors import BenchmarkError, DataError
from benchmark.metrics.no_reference.checks import check_images, check_mask

EPSILON = torch.finfo(torch.float64).eps


def _symmetric_pad(x: torch.Tensor, axis: int, left: int, right: int) -> torch.Tensor:
    """Pad one axis by mirroring with the edge repeated (scipy mode 'reflect': d c b a | a b c d), repeating
    the reflection when the pad is longer than the axis (a 3D volume of a few slices under an 11-box)."""
    length = x.shape[axis]
    index = torch.arange(-left, length + right, device=x.device) % (2 * length)
    return x.index_select(axis, torch.where(index >= length, 2 * length - 1 - index, index))


def _correlate1d(x: torch.Tensor, weights: list[float], axis: int) -> torch.Tensor:
    """Correlate along `axis` with an odd- or even-length kernel centred like scipy.ndimage, mirrored borders."""
    size = len(weights)
    left = size // 2
    padded = _symmetric_pad(x, axis, left, size - 1 - left)
    length = x.shape[axis]
    return sum(w * padded.narrow(axis, k, length) for k, w in enumerate(weights) if w != 0)


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """Discrete Laplacian of (N, *spatial) float64 images, mirrored borders (equals scipy.ndimage.laplace)."""
    return sum(_correlate1d(x, [1.0, -2.0, 1.0], axis) for axis in range(1, x.ndim))


def variance_of_laplacian(images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) population variance of the Laplacian over each mask (whole image if None); higher = sharper."""
    x = check_images(images, "variance_of_laplacian")
    m = check_mask(masks, images, "variance_of_laplacian", min_voxels=2).flatten(1).double()
    values = laplacian(x).flatten(1)
    mean = (values * m).sum(1) / m.sum(1)
    return (((values - mean[:, None]) ** 2) * m).sum(1) / m.sum(1)


def blur_effect(images: torch.Tensor, masks: torch.Tensor | None = None, h_size: int = 11) -> torch.Tensor:
    """(N,) blur effect in [0, 1] (skimage.measure.blur_effect with reduce_func=max); higher = blurrier."""
    if h_size < 1:
        raise BenchmarkError(f"blur_effect: h_size must be >= 1, got {h_size}")
    x = check_images(images, "blur_effect")
    m = check_mask(masks, images, "blur_effect")
    if min(x.shape[1:]) < 4:
        raise DataError(
            f"blur_effect: every spatial axis needs at least 4 voxels (the gradient sums skip 2 at the start and 1 "
            f"at the end, as scikit-image does, which returns NaN here), got images {tuple(images.shape)}"
        )
    interior = torch.zeros_like(m)
    interior[(slice(None), *[slice(2, s - 1) for s in x.shape[1:]])] = True
    weight = (m & interior).flatten(1).double()
    scores = []
    for axis in range(1, x.ndim):
        box = _correlate1d(x, [1.0 / h_size] * h_size, axis)
        sharp, blurred = _sobel(x, axis).abs().clamp_min(EPSILON), _sobel(box, axis).abs().clamp_min(EPSILON)
        residual = (sharp - blurred).clamp_min(0)
        m1 = (sharp.flatten(1) * weight).sum(1)
        m2 = (residual.flatten(1) * weight).sum(1)
        scores.append((m1 - m2).abs() / m1)
    return torch.stack(scores, 1).amax(1)


def _sobel(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Sobel derivative along `axis` ([1, 0, -1]) smoothed by [1, 2, 1] / 4 along the other axes."""
    out = _correlate1d(x, [1.0, 0.0, -1.0], axis)
    for other in range(1, x.ndim):
        if other != axis:
            out = _correlate1d(out, [0.25, 0.5, 0.25], other)
    return out


def total_variation(images: torch.Tensor, masks: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """(N,) anisotropic total variation over neighbour pairs inside the mask; reduction "mean" or "sum"."""
    if reduction not in ("mean", "sum"):
        raise BenchmarkError(f"total_variation: reduction must be 'mean' or 'sum', got {reduction!r}")
    x = check_images(images, "total_variation")
    m = check_mask(masks, images, "total_variation")
    total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for axis in range(1, x.ndim):
        length = x.shape[axis] - 1
        diff = (x.narrow(axis, 1, length) - x.narrow(axis, 0, length)).abs()
        pair = m.narrow(axis, 1, length) & m.narrow(axis, 0, length)
        total += (diff * pair).flatten(1).sum(1)
    return total / m.flatten(1).sum(1) if reduction == "mean" else total
