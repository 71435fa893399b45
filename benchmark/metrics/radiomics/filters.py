"""Derived images for radiomics: Laplacian of Gaussian and the stationary wavelet transform, batched torch.

LoG: sigma^2 (d2/dx2 + d2/dy2 [+ d2/dz2]) of the Gaussian-smoothed image, sigma in mm, with sampled
Gaussian kernels truncated at 4 sigma and replicated borders, applied by FFT. pyradiomics uses SimpleITK's recursive
(IIR, Deriche) LaplacianRecursiveGaussian with NormalizeAcrossScale, which approximates the same operator;
the two differ by a small fraction of the response (measured in tests/test_radiomics_filters.py).
Wavelet: one level of the undecimated (stationary) wavelet transform with coif1, periodic borders, as
pyradiomics' `getWaveletImage` (pywt.swtn); odd sizes are wrap-padded by one voxel and cropped back, as
pyradiomics does. Names follow pyradiomics: letters in order x, y(, z); L = low pass, H = high pass.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F

COIF1_LOW = (
    -0.015655728135791993, -0.07273261951252645, 0.3848648468648578,
    0.8525720202116004, 0.3378976624574818, -0.07273261951252645,
)  # fmt: skip
COIF1_HIGH = tuple((-1) ** (k + 1) * COIF1_LOW[len(COIF1_LOW) - 1 - k] for k in range(len(COIF1_LOW)))


def _circular_correlate(images: torch.Tensor, kernel: tuple[float, ...], axis: int) -> torch.Tensor:
    """Correlate (N, *spatial) images with a short 1D kernel along spatial `axis`, periodic borders.

    Output[i] = sum_k kernel[k] x[i + k - (len - 2) // 2 ... ] laid out to reproduce pywt.swtn level 1.
    """
    dim = axis + 1
    size, length = len(kernel), images.shape[dim]
    left = size // 2 - 1
    padded = torch.cat([images.narrow(dim, length - left, left), images, images.narrow(dim, 0, size - 1 - left)], dim)
    return sum(w * padded.narrow(dim, k, length) for k, w in enumerate(kernel))


def _centred_kernel(taps: torch.Tensor, radius: int, length: int) -> torch.Tensor:
    """A symmetric 1D kernel of 2 radius + 1 taps laid out for circular convolution on `length` samples."""
    full = torch.zeros(length, dtype=torch.float64)
    full[: taps.numel()] = taps
    return torch.roll(full, -radius)


def laplacian_of_gaussian(images: torch.Tensor, sigma_mm: float, spacing: tuple[float, ...]) -> torch.Tensor:
    """Scale-normalised LoG of (N, *spatial) images; sigma in mm (> 0), spacing in mm per spatial axis.

    The separable kernel sum_a G''_a prod_{b != a} G_b is applied by FFT on the image padded by replicating
    its border over the kernel radius (identical to direct convolution with replicated borders).
    """
    if sigma_mm <= 0:
        raise ValueError(f"laplacian_of_gaussian: sigma must be > 0 mm, got {sigma_mm}")
    dims = images.ndim - 1
    radii = [max(1, math.ceil(4 * sigma_mm / step)) for step in spacing]
    padding = [r for radius in reversed(radii) for r in (radius, radius)]
    padded = F.pad(images.double().unsqueeze(1), padding, mode="replicate")[:, 0]
    shape = padded.shape[1:]
    smooth, second = [], []
    for radius, step, length in zip(radii, spacing, shape, strict=True):
        x = torch.arange(-radius, radius + 1, dtype=torch.float64) * step
        gauss = torch.exp(-(x**2) / (2 * sigma_mm**2))
        gauss = gauss / gauss.sum()
        smooth.append(_centred_kernel(gauss, radius, length))
        second.append(_centred_kernel(gauss * (x**2 - sigma_mm**2) / sigma_mm**4, radius, length))
    kernel = torch.zeros(shape, dtype=torch.float64)
    for axis in range(dims):
        term = torch.ones(shape, dtype=torch.float64)
        for other in range(dims):
            taps = second[other] if other == axis else smooth[other]
            term = term * taps.view([-1 if k == other else 1 for k in range(dims)])
        kernel = kernel + term
    axes = tuple(range(1, dims + 1))
    spectrum = torch.fft.rfftn(padded, dim=axes) * torch.fft.rfftn(kernel)
    filtered = torch.fft.irfftn(spectrum, s=shape, dim=axes)
    crop = (slice(None), *[slice(radius, length - radius) for radius, length in zip(radii, shape, strict=True)])
    return filtered[crop] * sigma_mm**2


def wavelet_decompositions(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The 2^d sub-bands of one coif1 SWT level of (N, *spatial) images, keyed like pyradiomics ('LH', ...)."""
    spatial_dims = images.ndim - 1
    pads = [size % 2 for size in images.shape[1:]]
    data = images.double()
    for axis, pad in enumerate(pads):
        if pad:
            data = torch.cat([data, data.narrow(axis + 1, 0, 1)], axis + 1)
    filters = {"L": COIF1_LOW[::-1], "H": COIF1_HIGH[::-1]}
    bands = {}
    for name in itertools.product("LH", repeat=spatial_dims):
        band = data
        for letter, axis in zip(name, reversed(range(spatial_dims)), strict=True):
            band = _circular_correlate(band, filters[letter], axis)
        crop = tuple(slice(0, size) for size in images.shape)
        bands["".join(name)] = band[crop]
    return bands
