"""Memorisation detectors on feature matrices: does a generated set copy its training data?

Every function takes the candidate (generated) features first, then the training features (and, for the
FID train gap, the held-out reference), each an (N, d) matrix.

- `authenticity` (Alaa et al., ICML 2022): a generated sample is authentic only when it lies farther from
  its nearest training sample than that training sample lies from its own nearest training neighbour
  (strictly, as the authors' code `real_to_real < real_to_synth`: an exact copy of a training image that is
  duplicated in the training set, distance 0 = radius 0, is a copy); the score is the fraction of
  authentic samples, higher is better.
- `copy_rate`: the fraction of generated samples whose nearest training sample is closer than `threshold`
  times the median nearest-neighbour distance inside the training set (scale-free; lower is better).
- `fid_train_gap`: FID(generated, train) - FID(generated, held-out real). A memorising generator sits
  closer to its training data than to unseen real data, so the gap turns negative.
"""

from __future__ import annotations

import torch

from benchmark.metrics.checks import MetricInputError, check_features, check_same_dim
from benchmark.metrics.distribution import fid


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def training_radius(train: torch.Tensor) -> torch.Tensor:
    """Distance from each training sample to its nearest other training sample (N,): the radius of both
    detectors. Computed once per training set by callers that score many candidate sets (the bootstrap)."""
    distance = _distances(train, train)
    distance.fill_diagonal_(float("inf"))
    return distance.min(1).values


def nearest_training(train: torch.Tensor, candidate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each generated sample's nearest training sample: (distance, index), both (M,)."""
    nearest = _distances(candidate, train).min(1)
    return nearest.values, nearest.indices


def authentic_items(distance: torch.Tensor, index: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """The authenticity decision per sample on precomputed neighbours (bool, (M,)): authentic when its
    distance to its nearest training sample `index` exceeds that sample's `radius` (strictly: a tie is a copy)."""
    return distance > radius[index]


def authentic_fraction(distance: torch.Tensor, index: torch.Tensor, radius: torch.Tensor) -> float:
    """The share of authentic samples (`authentic_items`)."""
    return float(authentic_items(distance, index, radius).double().mean())


def near_copy_items(distance: torch.Tensor, radius: torch.Tensor, threshold: float) -> torch.Tensor:
    """The copy-rate decision per sample on precomputed neighbours (bool, (M,)): `distance` within
    `threshold` x the median of the training `radius` (torch.quantile at 0.5: of an even count, the mid-point)."""
    if not 0 < threshold <= 1:
        raise MetricInputError(f"copy_rate: threshold must lie in (0, 1], got {threshold}.")
    return distance <= threshold * torch.quantile(radius, 0.5)


def near_copy_fraction(distance: torch.Tensor, radius: torch.Tensor, threshold: float) -> float:
    """The share of near copies (`near_copy_items`)."""
    return float(near_copy_items(distance, radius, threshold).double().mean())


def _prepare(candidate: torch.Tensor, train: torch.Tensor, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    candidate = check_features(candidate, "candidate", metric, min_samples=1)
    train = check_features(train, "train", metric, min_samples=2)
    check_same_dim(candidate, train, metric)
    return candidate, train


def authenticity(candidate: torch.Tensor, train: torch.Tensor) -> float:
    """Fraction of generated samples that are authentic (farther from their nearest training sample than
    that sample's own nearest training neighbour; ties are copies), in [0, 1]; 1 = no copies. Needs >= 2
    training samples."""
    candidate, train = _prepare(candidate, train, "authenticity")
    return authentic_fraction(*nearest_training(train, candidate), training_radius(train))


def copy_rate(candidate: torch.Tensor, train: torch.Tensor, threshold: float = 0.2) -> float:
    """Fraction of generated samples within `threshold` x (median training nearest-neighbour distance) of
    a training sample, in [0, 1]; 0 = no near-copies. threshold: relative radius in (0, 1]."""
    if not 0 < threshold <= 1:
        raise MetricInputError(f"copy_rate: threshold must lie in (0, 1], got {threshold}.")
    candidate, train = _prepare(candidate, train, "copy_rate")
    return near_copy_fraction(nearest_training(train, candidate)[0], training_radius(train), threshold)


def fid_train_gap(candidate: torch.Tensor, train: torch.Tensor, reference: torch.Tensor) -> float:
    """FID(candidate, train) - FID(candidate, held-out real `reference`): negative when the generated set sits
    closer to the training data than to unseen real data (memorisation). Each set needs >= 2 samples."""
    return fid(candidate, train) - fid(candidate, reference)
