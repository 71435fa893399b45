"""Full-reference image metrics, one value per item: SSIM, MS-SSIM, PSNR, MAE, MSE, NMSE, NMI.

Every function takes a `candidate` batch and its `reference` of identical shape, (N, C, H, W) for
slices or (N, C, D, H, W) for volumes (x and y in the formulas); the spatial dimensions follow from the
tensor rank. Channels are averaged. Values are computed on the tensors' device (CUDA when the caller put them there).

SSIM convention (Wang et al. 2004; scikit-image `gaussian_weights=True, use_sample_covariance=False`;
MONAI `SSIMMetric`): Gaussian window sigma = 1.5 truncated at 3.5 sigma (11 taps), K1 = 0.01,
K2 = 0.03, population (co)variances, averaged over the positions where the whole window fits ("valid"
region, which is what scikit-image keeps after cropping and what MONAI computes). The Gaussian filter is
separable, so it is applied as one banded matrix product per axis, which is what makes 3D SSIM fast.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from benchmark.metrics.checks import MetricInputError, check_image_pair

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _gaussian_taps(sigma: float, truncate: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Normalised 1D Gaussian of 2 * int(truncate * sigma + 0.5) + 1 taps (scipy.ndimage's size)."""
    radius = int(truncate * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-(offsets**2) / (2 * sigma**2))
    return (taps / taps.sum()).to(dtype=dtype, device=device)


def _banded(taps: torch.Tensor, length: int) -> torch.Tensor:
    """(length - k + 1, length) matrix whose product with a signal is its valid correlation with `taps`."""
    k = taps.numel()
    out = length - k + 1
    rows = torch.arange(out, device=taps.device).unsqueeze(1)
    cols = rows + torch.arange(k, device=taps.device)
    matrix = torch.zeros(out, length, dtype=taps.dtype, device=taps.device)
    matrix[rows.expand(-1, k), cols] = taps.expand(out, -1)
    return matrix


def _filter_valid(maps: torch.Tensor, taps: torch.Tensor, spatial_dims: int) -> torch.Tensor:
    """Separable Gaussian filtering of the last `spatial_dims` axes, keeping the valid region only.

    Each axis is one matrix product with a banded matrix, arranged so that no transposed copy is made:
    the last axis as `x @ B^T`, every other axis as `B @ x` on a (before, axis, after) view.
    """
    maps = maps.contiguous()
    for axis in range(maps.ndim - spatial_dims, maps.ndim):
        shape = list(maps.shape)
        band = _banded(taps, shape[axis])
        if axis == maps.ndim - 1:
            maps = maps @ band.T
        else:
            before, after = math.prod(shape[:axis]), math.prod(shape[axis + 1 :])
            maps = torch.matmul(band, maps.view(before, shape[axis], after))
            shape[axis] = band.shape[0]
            maps = maps.view(shape)
    return maps


def _ssim_and_cs(
    x: torch.Tensor, y: torch.Tensor, data_range: float, sigma: float, k1: float, k2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-item mean SSIM and mean contrast-structure term over the valid region (N,), (N,)."""
    spatial_dims = x.ndim - 2
    taps = _gaussian_taps(sigma, 3.5, x.dtype, x.device)
    smallest = min(x.shape[2:])
    if smallest < taps.numel():
        raise MetricInputError(
            f"ssim: images of spatial shape {tuple(x.shape[2:])} are smaller than the {taps.numel()}-voxel "
            f"Gaussian window (sigma={sigma}); SSIM is undefined for them."
        )
    # SSIM needs only var_x + var_y, so E[x^2] + E[y^2] is filtered as one map: four maps, not five.
    stacked = torch.empty((4, *x.shape), dtype=x.dtype, device=x.device)
    stacked[0].copy_(x)
    stacked[1].copy_(y)
    torch.mul(x, x, out=stacked[2]).addcmul_(y, y)
    torch.mul(x, y, out=stacked[3])
    mu_x, mu_y, squares, xy = _filter_valid(stacked, taps, spatial_dims).unbind(0)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    # In place on the filtered maps (fresh tensors): 2 cov + C2 over var_x + var_y + C2, then luminance.
    mu_xy = mu_x * mu_y
    mu_squares = mu_x.mul_(mu_x).addcmul_(mu_y, mu_y)
    cs_map = xy.sub_(mu_xy).mul_(2).add_(c2).div_(squares.sub_(mu_squares).add_(c2))
    ssim_map = mu_xy.mul_(2).add_(c1).div_(mu_squares.add_(c1)).mul_(cs_map)
    return ssim_map.flatten(1).mean(1), cs_map.flatten(1).mean(1)


def ssim(
    candidate: torch.Tensor,
    reference: torch.Tensor,
    data_range: float = 1.0,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity per item (N,), in [-1, 1], 1 for identical images.

    data_range: the span of the intensity scale (1.0 for images in [0, 1]); it sets the stabilising
    constants C1 = (K1 * data_range)^2, C2 = (K2 * data_range)^2. Spatial sides must be >= 11.
    """
    x, y = check_image_pair(candidate, reference, "ssim")
    return _ssim_and_cs(x, y, data_range, sigma, k1, k2)[0]


def ms_ssim_scales(spatial_shape: tuple[int, ...], window: int = 11, max_scales: int = 5) -> int:
    """How many MS-SSIM scales fit: the coarsest scale (side // 2^(s-1)) must still hold one window."""
    smallest = min(spatial_shape)
    scales = 0
    while scales < max_scales and smallest // 2**scales >= window:
        scales += 1
    return scales


def ms_ssim(
    candidate: torch.Tensor,
    reference: torch.Tensor,
    data_range: float = 1.0,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
    return_scales: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, int]:
    """Multi-scale SSIM per item (N,) (Wang et al. 2003), adapting the number of scales to the image size.

    The standard five scales need sides >= 176 px (11 * 2^4). For smaller images the number of scales
    is reduced to the largest that fits (`ms_ssim_scales`; 4 for 128 px, 3 for 64 px) and the first
    weights are renormalised to sum to 1. Contrast-structure terms are clamped at 0 as in MONAI.
    With `return_scales=True`, returns (values, number of scales used).
    """
    x, y = check_image_pair(candidate, reference, "ms_ssim")
    scales = ms_ssim_scales(tuple(x.shape[2:]), max_scales=len(weights))
    if scales == 0:
        raise MetricInputError(
            f"ms_ssim: images of spatial shape {tuple(x.shape[2:])} are smaller than the 11-voxel window."
        )
    w = torch.tensor(weights[:scales], dtype=x.dtype, device=x.device)
    w = w / w.sum()
    pool = getattr(F, f"avg_pool{x.ndim - 2}d")
    factors = []
    for scale in range(scales):
        ssim_value, cs_value = _ssim_and_cs(x, y, data_range, 1.5, 0.01, 0.03)
        factors.append(torch.relu(ssim_value if scale == scales - 1 else cs_value))
        if scale < scales - 1:
            x, y = pool(x, kernel_size=2), pool(y, kernel_size=2)
    values = torch.prod(torch.stack(factors) ** w.unsqueeze(1), dim=0)
    return (values, scales) if return_scales else values


def mse(candidate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean squared error per item (N,), in squared intensity units."""
    x, y = check_image_pair(candidate, reference, "mse")
    return (x - y).pow(2).flatten(1).mean(1)


def mae(candidate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per item (N,), in intensity units."""
    x, y = check_image_pair(candidate, reference, "mae")
    return (x - y).abs().flatten(1).mean(1)


def nmse(candidate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Normalised MSE per item (N,): ||x - y||^2 / ||y||^2 with `y` the reference (0 = identical).

    A reference item that is all zeros has no energy to normalise by: refused rather than returning Inf.
    """
    x, y = check_image_pair(candidate, reference, "nmse")
    energy = y.pow(2).flatten(1).sum(1)
    if (energy == 0).any():
        bad = torch.nonzero(energy == 0).flatten().tolist()
        raise MetricInputError(f"nmse: reference item(s) {bad[:10]} are all zero; NMSE is undefined for them.")
    return (x - y).pow(2).flatten(1).sum(1) / energy


def psnr(candidate: torch.Tensor, reference: torch.Tensor, data_range: float) -> torch.Tensor:
    """Peak signal-to-noise ratio per item (N,) in dB: 10 log10(data_range^2 / MSE).

    data_range: the peak value assumed for the intensity scale (1.0 for images in [0, 1]); the number
    depends on it, so reports must state it. Identical images give +inf (as scikit-image does).
    """
    if not data_range > 0:
        raise MetricInputError(f"psnr: data_range must be positive, got {data_range}.")
    error = mse(candidate, reference)
    return 10 * torch.log10(data_range**2 / error)


def nmi(candidate: torch.Tensor, reference: torch.Tensor, bins: int = 100) -> torch.Tensor:
    """Normalised mutual information per item (N,): (H(X) + H(Y)) / H(X, Y), in [1, 2].

    Studholme et al. 1999; the scikit-image `normalized_mutual_information` convention: a joint
    histogram of `bins` x `bins` over each item's own intensity range (all channels together). Two constant
    items (an empty slice against an empty slice) determine each other: 2, where scikit-image gives 0/0 = NaN.
    """
    x, y = check_image_pair(candidate, reference, "nmi")
    n = x.shape[0]
    flat_x, flat_y = x.flatten(1), y.flatten(1)
    bx, by = _bin_index(flat_x, bins), _bin_index(flat_y, bins)
    joint_index = (torch.arange(n, device=x.device).unsqueeze(1) * bins + bx) * bins + by
    joint = torch.bincount(joint_index.flatten(), minlength=n * bins * bins).view(n, bins, bins)
    joint = joint.to(torch.float64) / flat_x.shape[1]
    entropy_joint = _entropy(joint.flatten(1))
    entropy_x = _entropy(joint.sum(2))
    entropy_y = _entropy(joint.sum(1))
    both_constant = entropy_joint == 0
    ratio = (entropy_x + entropy_y) / torch.where(both_constant, 1.0, entropy_joint)
    return torch.where(both_constant, 2.0, ratio).to(x.dtype)


def _bin_index(values: torch.Tensor, bins: int) -> torch.Tensor:
    """numpy.histogram's bin of each value over its row's [min, max] (last bin closed)."""
    low = values.min(1, keepdim=True).values
    high = values.max(1, keepdim=True).values
    span = (high - low).to(torch.float64)
    degenerate = span == 0
    low = torch.where(degenerate, low - 0.5, low).to(torch.float64)
    span = torch.where(degenerate, torch.ones_like(span), span)
    index = ((values.to(torch.float64) - low) / span * bins).floor().long()
    return index.clamp_(0, bins - 1)


def _entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each row of a probability table."""
    logs = torch.where(probabilities > 0, probabilities.log(), torch.zeros_like(probabilities))
    return -(probabilities * logs).sum(1)

