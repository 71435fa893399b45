"""Natural-scene statistics of Mittal et al.: MSCN coefficients and their (asymmetric) generalised Gaussian fits.

MSCN (BRISQUE, Mittal et al. 2012; NIQE, Mittal et al. 2013): (I - mu) / (sigma + C) with mu, sigma the
local mean and std under a 7x7 Gaussian window (sigma 7/6), replicated borders, intensities on the
0-255 scale and C = 1 (our [0, 1] images are multiplied by 255). 18 features per scale: the GGD fit
(shape alpha, variance) of the MSCN coefficients and, for the 4 neighbour products (horizontal, vertical,
both diagonals), the AGGD fit (shape, mean, left variance, right variance). Fits use the moment-matching
lookup of the reference MATLAB code (alpha on a 0.2:0.001:10 grid). Statistics can be restricted to a mask
(products: both pixels inside). Features are pooled over non-overlapping patches ("patch" mode, NIQE)
or over the whole image (patch = whole image, BRISQUE). A product x(p) x(p + shift) belongs to the patch of p,
its partner anywhere in the image; unlike MATLAB's circshift, products never wrap around the image (or, in
NIQE's blkproc, around a block), so a patch's statistics are those of its real neighbourhood.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ALPHAS = torch.arange(0.2, 10.0005, 0.001, dtype=torch.float64)
_G1, _G2, _G3 = (torch.lgamma(k / ALPHAS) for k in (1.0, 2.0, 3.0))
GGD_RATIO = torch.exp(_G1 + _G3 - 2 * _G2)  # E[x^2] / E[|x|]^2 of a GGD with shape alpha
AGGD_RATIO = torch.exp(2 * _G2 - _G1 - _G3)  # E[|x|]^2 / E[x^2]
PRODUCT_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
SLICE_CHUNK = 32  # slices filtered at once: bounds the float64 temporaries (about 1.5 MiB per 128 x 128 slice)
FEATURE_NAMES = [
    f"scale{s}_{name}"
    for s in (1, 2)
    for name in ["ggd_alpha", "ggd_variance"]
    + [f"{o}_{p}" for o in ("h", "v", "d1", "d2") for p in ("alpha", "mean", "left_var", "right_var")]
]


def gaussian_window(size: int = 7, sigma: float = 7 / 6) -> torch.Tensor:
    """The normalised 2D Gaussian window of the reference implementation (float64, size x size)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    window = g[:, None] * g[None, :]
    return window / window.sum()


def mscn(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MSCN coefficients and local std of (N, H, W) float64 images in [0, 1] (0-255 scale inside, C = 1)."""
    window = gaussian_window().to(images.device)[None, None]
    scaled = images.unsqueeze(1) * 255.0
    padded = F.pad(scaled, (3, 3, 3, 3), mode="replicate")
    mu = F.conv2d(padded, window)
    second = F.conv2d(F.pad(scaled**2, (3, 3, 3, 3), mode="replicate"), window)
    sigma = (second - mu**2).abs().sqrt()
    return ((scaled - mu) / (sigma + 1.0))[:, 0], sigma[:, 0]


def _lookup(ratio: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """alpha on the grid whose (monotonic) table value is closest to `ratio`: the MATLAB argmin, by bisection."""
    table = table.to(ratio.device)
    decreasing = bool(table[0] > table[-1])
    ascending = table.flip(0) if decreasing else table
    upper = torch.searchsorted(ascending, ratio.contiguous()).clamp(1, len(table) - 1)
    lower = upper - 1
    pick = torch.where((ratio - ascending[lower]).abs() <= (ascending[upper] - ratio).abs(), lower, upper)
    index = len(table) - 1 - pick if decreasing else pick
    return ALPHAS.to(ratio.device)[index]


def _pool(values: torch.Tensor, patch: tuple[int, int]) -> torch.Tensor:
    """Sums of (N, H, W) values over non-overlapping patches: (N, H // ph, W // pw)."""
    return F.avg_pool2d(values.unsqueeze(1), patch, stride=patch, divisor_override=1)[:, 0]


def _shifted(x: torch.Tensor, w: torch.Tensor, shift: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Products x(p) x(p + shift) and their weights on the (N, H, W) grid (0 where p + shift is outside)."""
    dy, dx = shift
    h, w_ = x.shape[-2:]
    target = (slice(None), slice(0, h - dy), slice(max(0, -dx), w_ - max(0, dx)))
    source = (slice(None), slice(dy, h), slice(max(0, dx), w_ - max(0, -dx)))
    product, weight = torch.zeros_like(x), torch.zeros_like(w)
    product[target] = x[target] * x[source]
    weight[target] = w[target] * w[source]
    return product, weight


def ggd_features(x: torch.Tensor, w: torch.Tensor, patch: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """GGD (alpha, variance) per patch, (N, h, w, 2), and the weight count per patch."""
    count = _pool(w, patch)
    second = _pool(w * x**2, patch) / count.clamp_min(1)
    first = _pool(w * x.abs(), patch) / count.clamp_min(1)
    alpha = _lookup(second / first.clamp_min(1e-300) ** 2, GGD_RATIO)
    return torch.stack([alpha, second], -1), count


def aggd_features(x: torch.Tensor, w: torch.Tensor, patch: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """AGGD (alpha, mean, left variance, right variance) per patch, (N, h, w, 4), and whether the fit exists."""
    negative, positive = w * (x < 0), w * (x > 0)
    n_left, n_right, count = _pool(negative, patch), _pool(positive, patch), _pool(w, patch)
    left_var = _pool(negative * x**2, patch) / n_left.clamp_min(1)
    right_var = _pool(positive * x**2, patch) / n_right.clamp_min(1)
    mean_abs = _pool(w * x.abs(), patch) / count.clamp_min(1)
    mean_sq = _pool(w * x**2, patch) / count.clamp_min(1)
    ok = (n_left > 0) & (n_right > 0) & (mean_sq > 0)
    gamma = left_var.sqrt() / right_var.sqrt().clamp_min(1e-300)
    r_hat = mean_abs**2 / mean_sq.clamp_min(1e-300)
    r_norm = r_hat * (gamma**3 + 1) * (gamma + 1) / (gamma**2 + 1) ** 2
    alpha = _lookup(torch.where(ok, r_norm, 1.0), AGGD_RATIO)
    lg1, lg2, lg3 = (torch.lgamma(k / alpha) for k in (1.0, 2.0, 3.0))
    mean = (right_var.sqrt() - left_var.sqrt()) * torch.exp(lg2 - lg1) * torch.exp(0.5 * (lg1 - lg3))
    return torch.stack([alpha, mean, left_var, right_var], -1), ok


def scale_features(
    images: torch.Tensor, weights: torch.Tensor, patch: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """18 features per patch (N, h, w, 18), validity (N, h, w) and patch sharpness (mean local std)."""
    x, sigma = mscn(images)
    ggd, count = ggd_features(x, weights, patch)
    parts, valid = [ggd], (count > 1) & (ggd[..., 1] > 0)
    for shift in PRODUCT_SHIFTS:
        product, product_weight = _shifted(x, weights, shift)
        features, ok = aggd_features(product, product_weight, patch)
        parts.append(features)
        valid &= ok
    sharpness = _pool(weights * sigma, patch) / count.clamp_min(1)
    return torch.cat(parts, -1), valid, sharpness


def half_scale(images: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images downsampled by 2 (bicubic with antialiasing, like MATLAB imresize 0.5) and weights (mask >= 0.5)."""
    small = F.interpolate(images.unsqueeze(1), scale_factor=0.5, mode="bicubic", antialias=True, align_corners=False)
    small_weights = F.avg_pool2d(weights.unsqueeze(1), 2)[:, 0] >= 0.5
    return small[:, 0], small_weights.to(images.dtype)


def nss_features(
    images: torch.Tensor, masks: torch.Tensor, patch: tuple[int, int] | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """36 features (N, P, 36) over P patches (patch=None: the whole image, P = 1), validity and sharpness (N, P).

    images (N, H, W) float64 in [0, 1], masks (N, H, W) bool. Patch sides must be even (the second scale uses
    half-size patches); the image is cropped to a whole number of patches. Slices are processed `SLICE_CHUNK`
    at a time (each slice's features depend on that slice only), so the filtered copies stay a few MiB
    whatever N.
    """
    parts = [_nss_block(images[start:start + SLICE_CHUNK], masks[start:start + SLICE_CHUNK], patch)
             for start in range(0, images.shape[0], SLICE_CHUNK)]
    if not parts:
        return _nss_block(images, masks, patch)
    return tuple(torch.cat(part) for part in zip(*parts, strict=True))


def _nss_block(
    images: torch.Tensor, masks: torch.Tensor, patch: tuple[int, int] | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, h, w = images.shape
    if patch is None:
        patch = (h - h % 2, w - w % 2)
    ph, pw = patch
    images, masks = images[:, : h - h % ph, : w - w % pw], masks[:, : h - h % ph, : w - w % pw]
    weights = masks.to(images.dtype)
    first, valid1, sharpness = scale_features(images, weights, (ph, pw))
    small, small_weights = half_scale(images, weights)
    second, valid2, _ = scale_features(small, small_weights, (ph // 2, pw // 2))
    features = torch.cat([first, second], -1).reshape(n, -1, 36)
    return features, (valid1 & valid2).reshape(n, -1), sharpness.reshape(n, -1)
