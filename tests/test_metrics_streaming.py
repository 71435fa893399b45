"""The class twins of the functional metrics: batches streamed through update() give the function's value
on the whole set, as 0-d float64 tensors, candidate first as everywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.metrics import (
    FID,
    KID,
    MAE,
    MMD,
    MSE,
    NMI,
    NMSE,
    PRDC,
    PSNR,
    SSIM,
    Authenticity,
    CopyRate,
    MetricInputError,
    authenticity,
    copy_rate,
    fid,
    kid,
    mae,
    mmd,
    mse,
    nmi,
    nmse,
    prdc,
    ssim,
)
from tests.mri_like import pair


def _pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """Six MRI-like slices (zero background, lesion, ventricles) and degraded candidates of them."""
    candidates, references, _ = pair((48, 40), n=6, seed=3)
    return torch.from_numpy(candidates), torch.from_numpy(references)


def _features(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(shift, 1.0, size=(n, 6)))


@pytest.mark.parametrize(("streaming", "function"), [
    (SSIM(), ssim), (MSE(), mse), (MAE(), mae), (NMSE(), nmse), (NMI(bins=32), lambda c, r: nmi(c, r, bins=32))])
def test_image_twins_average_the_items_over_batches(streaming, function):
    candidate, reference = _pairs()
    for part in (slice(0, 2), slice(2, 3), slice(3, 6)):  # uneven batches
        streaming.update(candidate[part], reference[part])
    value = streaming.compute()
    assert value.dtype == torch.float64 and value.ndim == 0
    assert float(value) == pytest.approx(float(function(candidate, reference).double().mean()), rel=1e-12)
    streaming.reset()
    with pytest.raises(MetricInputError, match=r"compute\(\) before any update\(\)"):
        streaming.compute()


def test_psnr_twin_pools_the_squared_error_of_every_item():
    candidate, reference = _pairs()
    psnr = PSNR(data_range=1.0)
    psnr.update(candidate[:4], reference[:4])
    psnr.update(candidate[4:], reference[4:])
    pooled = float(((candidate - reference) ** 2).flatten(1).mean(1).double().mean())
    assert float(psnr.compute()) == pytest.approx(10 * math.log10(1.0 / pooled), rel=1e-12)
    identical = PSNR()
    identical.update(reference, reference)
    assert float(identical.compute()) == math.inf
    with pytest.raises(MetricInputError, match="data_range must be positive"):
        PSNR(data_range=0)


def test_distribution_twins_equal_the_functions_on_the_streamed_rows():
    real, fake = _features(40, 0), _features(35, 1, shift=0.4)
    streams = {"fid": FID(), "kid": KID(subsets=4, subset_size=20, seed=2), "mmd": MMD(), "prdc": PRDC(k=3)}
    for stream in streams.values():
        for chunk in real.split(15):
            stream.update(chunk, real=True)
        for chunk in fake.split(10):
            stream.update(chunk, real=False)
    assert float(streams["fid"].compute()) == pytest.approx(fid(fake, real), rel=1e-9)
    assert float(streams["kid"].compute()) == kid(fake, real, subsets=4, subset_size=20, seed=2)[0]
    assert float(streams["mmd"].compute()) == mmd(fake, real)
    expected = prdc(fake, real, k=3)
    assert {key: float(value) for key, value in streams["prdc"].compute().items()} == expected
    assert expected["precision"] != prdc(real, fake, k=3)["precision"]  # the order matters and is kept


def test_memorisation_twins_score_every_candidate_against_the_training_set():
    train = _features(30, 5)
    candidate = torch.cat([train[:5], _features(10, 6)])
    for streaming, function in ((Authenticity(train), authenticity),
                                (CopyRate(train, threshold=0.3), lambda c, t: copy_rate(c, t, 0.3))):
        streaming.update(candidate[:7])
        streaming.update(candidate[7:])
        assert float(streaming.compute()) == function(candidate, train)
    with pytest.raises(MetricInputError, match=r"^authenticity: train has 1 samples"):
        Authenticity(train[:1])


def test_every_export_is_the_function_or_class_even_after_its_submodules_are_imported():
    """A submodule named like an export would shadow it once imported (as `lpips` once did)."""
    import importlib
    import inspect
    import pkgutil

    import benchmark.metrics as metrics

    for module in pkgutil.walk_packages(metrics.__path__, "benchmark.metrics."):
        importlib.import_module(module.name)
    shadowed = [name for name in metrics.__all__ if inspect.ismodule(getattr(metrics, name))]
    assert shadowed == []
