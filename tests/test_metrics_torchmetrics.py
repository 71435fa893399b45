"""FID and KID against torchmetrics 1.x's own compute path on the same feature matrices.

Feature extraction is bypassed: torchmetrics' FrechetInceptionDistance / KernelInceptionDistance get an
identity "feature extractor", so its update (float64 running sums) and compute (eigenvalues of S1 S2) run
on our features. KID settings matched: cubic kernel, gamma = 1 / d, coef 1, population std over subsets;
torchmetrics draws subsets with torch.randperm, so the per-subset estimator (its `poly_mmd`) is run on our
seeded subsets. Measured: FID relative 2e-15 / 3.8e-13, KID 2.9e-16 (asserted 1e-8 and 1e-10).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.metrics import fid, kid

torchmetrics_fid = pytest.importorskip("torchmetrics.image.fid")
torchmetrics_kid = pytest.importorskip("torchmetrics.image.kid")


class _Identity(torch.nn.Module):
    """Hands torchmetrics the features themselves (num_features tells it the width)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3 + shift)


@pytest.mark.parametrize("n_real, n_fake, d", [(300, 250, 16), (120, 90, 64)])
def test_fid_equals_torchmetrics_compute(n_real, n_fake, d):
    real, fake = _features(n_real, d, 0), _features(n_fake, d, 1, shift=0.2)
    metric = torchmetrics_fid.FrechetInceptionDistance(feature=_Identity(d))
    for chunk in torch.split(real, 64):
        metric.update(chunk, real=True)
    metric.update(fake, real=False)
    assert fid(real, fake) == pytest.approx(float(metric.compute()), rel=1e-8)


def test_kid_equals_torchmetrics_on_full_sets_and_per_subset():
    real, fake = _features(80, 12, 2), _features(70, 12, 3, shift=0.3)
    # sets of exactly subset_size samples: torchmetrics' random draw cannot matter
    equal = torchmetrics_kid.KernelInceptionDistance(feature=_Identity(12), subsets=2, subset_size=70)
    equal.update(real[:70], real=True)
    equal.update(fake, real=False)
    mean, std = equal.compute()
    ours_mean, ours_std = kid(fake, real[:70], subsets=2, subset_size=70)
    assert ours_mean == pytest.approx(float(mean), rel=1e-10) and ours_std == pytest.approx(float(std), abs=1e-12)
    # our seeded subsets through torchmetrics' estimator and aggregation (population std)
    generator = np.random.default_rng(5)
    values = []
    for _ in range(20):
        a = real[torch.from_numpy(generator.choice(80, 40, replace=False))]
        b = fake[torch.from_numpy(generator.choice(70, 40, replace=False))]
        values.append(torchmetrics_kid.poly_mmd(a, b, degree=3, gamma=None, coef=1.0))
    stacked = torch.stack(values)
    ours_mean, ours_std = kid(fake, real, subsets=20, subset_size=40, seed=5)
    assert ours_mean == pytest.approx(float(stacked.mean()), rel=1e-10)
    assert ours_std == pytest.approx(float(stacked.std(unbiased=False)), rel=1e-10)
