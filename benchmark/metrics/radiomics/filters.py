"""Derived images for radiomics: Laplacian of Gaussian and the stationary wavelet transform, batched torch.

LoG: sigma^2 (d2/dx2 + d2/dy2 [+ d2/dz2]) of the Gaussian-smoothed image, sigma in mm, computed exactly as
pyradiomics does with SimpleITK's recursive (IIR, Deriche) LaplacianRecursiveGaussian, NormalizeAcrossScale
on, edge-extended borders (see recursive_gaussian.py). Note that this recursive filter is itself an
approximation of the sampled Gaussian derivative (about 0.6 % lower peak response at sigma 2-5 mm).
Wavelet: one level of the undecimated (stationary) wavelet transform with coif1, periodic borders, as
pyradiomics' `getWaveletImage` (pywt.swtn); odd sizes are wrap-padded by one voxel and cropped back, as
pyradiomics does. Names follow pyradiomics: letters in order x, y(, z); L = low pass, H = high pass.
"""

from __future__ import annotations

import itertools

import torch

from benchmark.metrics.radiomics.recursive_gaussian import recursive_laplacian_of_gaussian

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


def laplacian_of_gaussian(images: torch.Tensor, sigma_mm: float, spacing: tuple[float, ...]) -> torch.Tensor:
    """Scale-normalised LoG of (N, *spatial) images as pyradiomics computes it; sigma in mm (> 0), spacing in mm.

    SimpleITK's recursive LoG reproduced by `recursive_laplacian_of_gaussian`, rounded to float32 as
    SimpleITK returns it (pyradiomics bins that float32 image), returned as float64.
    """
    if sigma_mm <= 0:
        raise ValueError(f"laplacian_of_gaussian: sigma must be > 0 mm, got {sigma_mm}")
    if min(images.shape[1:]) < 4:
        raise ValueError(f"laplacian_of_gaussian: every side must be >= 4 voxels, got {tuple(images.shape[1:])}")
    return recursive_laplacian_of_gaussian(images, sigma_mm, spacing).float().double()


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
