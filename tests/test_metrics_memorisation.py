"""Memorisation and diversity metrics on constructed cases with known answers, and numpy references."""

import numpy as np
import pytest
import torch

from benchmark.errors import BenchmarkError
from benchmark.metrics import authenticity, copy_rate, fid, fid_train_gap, ms_ssim, ms_ssim_diversity


def _cloud(n, seed, d=8):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, d)))


def _numpy_authenticity(train, fake):
    d_tt = np.sqrt(((train[:, None] - train[None]) ** 2).sum(-1))
    np.fill_diagonal(d_tt, np.inf)
    radius = d_tt.min(1)
    d_ft = np.sqrt(((fake[:, None] - train[None]) ** 2).sum(-1))
    nearest = d_ft.argmin(1)
    return float((d_ft.min(1) > radius[nearest]).mean())  # Alaa et al.'s code: real_to_real < real_to_synth


def test_authenticity_and_copy_rate_detect_copies():
    train, fresh = _cloud(200, 0), _cloud(100, 1)
    assert authenticity(fresh, train) == pytest.approx(_numpy_authenticity(train.numpy(), fresh.numpy()))
    assert authenticity(fresh, train) > 0.4
    copies = train[:50] + 1e-4 * _cloud(50, 2)
    assert authenticity(copies, train) == 0.0
    assert copy_rate(copies, train) == 1.0
    assert copy_rate(fresh, train) < 0.05
    half = torch.cat([copies, fresh[:50]])
    assert copy_rate(half, train) == pytest.approx(0.5, abs=0.05)


def test_fid_train_gap_turns_negative_for_a_memorising_set():
    train, heldout = _cloud(300, 3), _cloud(300, 4)
    memorised = train[:150] + 0.01 * _cloud(150, 5)
    gap = fid_train_gap(memorised, train, heldout)
    assert gap == pytest.approx(fid(memorised, train) - fid(memorised, heldout))
    assert gap < 0
    assert abs(fid_train_gap(_cloud(150, 6), train, heldout)) < abs(gap)


def test_ms_ssim_diversity_is_the_mean_pairwise_ms_ssim():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 1, 48, 48, generator=generator)
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    expected = np.mean([ms_ssim(images[[i]], images[[j]]).item() for i, j in pairs])
    assert ms_ssim_diversity(images) == pytest.approx(expected, abs=1e-6)
    collapsed = images[:1].repeat(4, 1, 1, 1)
    assert ms_ssim_diversity(collapsed) == pytest.approx(1.0, abs=1e-5)
    many = torch.rand(12, 1, 32, 32, generator=generator)
    sampled = ms_ssim_diversity(many, max_pairs=10, seed=1)
    assert sampled == ms_ssim_diversity(many, max_pairs=10, seed=1)
    assert sampled != ms_ssim_diversity(many, max_pairs=10, seed=2)


def test_memorisation_input_errors():
    with pytest.raises(BenchmarkError, match="at least 2"):
        authenticity(_cloud(5, 1), _cloud(1, 0))
    with pytest.raises(BenchmarkError, match="dimensions differ"):
        copy_rate(_cloud(5, 1, d=3), _cloud(5, 0))
    with pytest.raises(BenchmarkError, match="N >= 2"):
        ms_ssim_diversity(torch.rand(1, 1, 32, 32))


def test_bootstrap_shortcut_applies_the_study_rules_at_ties_and_even_counts():
    """The bootstrap's fast path and the study's entries decide copies with the same code: a candidate that
    copies a training image duplicated in the training set (distance 0 = radius 0) is a copy, and the copy
    rate's median of an even count of training radii is the mid-point, not the lower value."""
    from benchmark.metrics.entries import AuthenticityMetric, CopyRateMetric, SuiteContext
    from benchmark.study.recompute import fast_feature_metric

    # Training radii 0, 0 (the duplicated image), 1, 1, 2, 3, 3, 4: median 1.5 (mid-point), lower median 1.
    train = torch.tensor([[x, 0.0] for x in (0.0, 0.0, 10.0, 11.0, 13.0, 30.0, 33.0, 37.0)])
    # An exact copy of the duplicated image, a near copy (1.2 from a sample of radius 1), two far samples.
    candidate = torch.tensor([[0.0, 0.0], [10.0, 1.2], [20.0, 0.0], [50.0, 0.0]])
    sets = {"train": train, "candidate": candidate}
    context = SuiteContext(candidate_images=torch.empty(0), paired_candidate=torch.empty(0),
                           paired_reference=torch.empty(0), features=lambda _n, which: sets[which],
                           logits=lambda *_: None, device=torch.device("cpu"), sets={})
    for metric, expected in ((AuthenticityMetric("x"), 0.75), (CopyRateMetric("x", threshold=1.0), 0.5)):
        study = metric.compute(context)[metric.name]
        shortcut = fast_feature_metric(metric, lambda _n, which: sets[which])[metric.name]
        assert study == shortcut == expected, metric.name
