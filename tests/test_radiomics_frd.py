"""FRD: log Fréchet distance of reference-z-scored radiomics features, against a numpy/scipy formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from benchmark.errors import DataError
from benchmark.metrics.radiomics import frd, radiomics_features
from benchmark.metrics.radiomics.frd import FD_FLOOR
from tests._pyradiomics import textured_images


def _numpy_frd(reference: np.ndarray, candidate: np.ndarray) -> float:
    mean, std = reference.mean(0), reference.std(0)
    std[std == 0] = 1
    a, b = (reference - mean) / std, (candidate - mean) / std
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    fd = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * root)
    return math.log(fd)


def test_frd_matches_numpy_formula():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(200, 6)) * [1, 10, 100, 0.1, 1, 5]
    candidate = rng.normal(size=(150, 6)) * [1.2, 10, 90, 0.1, 1, 5] + [0.5, 0, 20, 0, 0, 1]
    assert frd(torch.from_numpy(candidate), torch.from_numpy(reference)) == pytest.approx(
        _numpy_frd(reference, candidate), rel=1e-6
    )


def test_frd_is_scale_invariant_and_floored_for_identical_sets():
    rng = np.random.default_rng(1)
    reference, candidate = rng.normal(size=(50, 4)), rng.normal(size=(60, 4)) + 0.3
    scale = torch.tensor([1.0, 1e3, 1e-3, 7.0], dtype=torch.float64)
    ref, cand = torch.from_numpy(reference), torch.from_numpy(candidate)
    assert frd(cand * scale, ref * scale) == pytest.approx(frd(cand, ref), rel=1e-9)
    assert frd(ref, ref) == pytest.approx(math.log(FD_FLOOR))


def test_frd_grows_with_blur_on_radiomics_features():
    images, masks = textured_images(24, (32, 32), seed=2)
    blurred = torch.nn.functional.avg_pool2d(images, 3, 1, 1, count_include_pad=False)
    kwargs = dict(image_types=("original",))
    reference, _ = radiomics_features(images[:12], masks[:12], **kwargs)
    clean, _ = radiomics_features(images[12:], masks[12:], **kwargs)
    degraded, _ = radiomics_features(blurred[12:], masks[12:], **kwargs)
    assert frd(degraded, reference) > frd(clean, reference)


def test_frd_rejects_bad_features():
    good = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(DataError, match="NaN"):
        frd(torch.full((10, 3), float("nan")), good)
    with pytest.raises(DataError, match="dimensions differ"):
        frd(good[:, :2], good)
    with pytest.raises(DataError, match="n >= 2"):
        frd(good, good[:1])
