"""Per-image flags of a generated set: nearest training image, copy / near-copy, out of distribution.

Both thresholds are calibrated on real images the model never saw, so each flag's false-positive rate on
real images is a measured number, not an assumption (the quantiles are taken conservatively: at most the
target share of the calibration images is flagged):
- copy: a generated image is a copy when its distance to the nearest training image is below the
  `copy_fpr` quantile of the same distance for the real images (or 0: an exact duplicate). The rate is
  stated twice: in-sample (the share of real images below the threshold) and split-half (threshold from
  one random half of the real images, rate on the other, averaged over 20 splits).
- out of distribution: the distance to the k-th nearest real image, divided by the (1 - `ood_fpr`)
  quantile of the same distance of each real image to the other real images (leave-one-out); a score
  above 1 is flagged.
Distances are Euclidean, in pixels (the preprocessed [0, 1] images, as RMS per pixel) or in the features
of a suite extractor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from benchmark.errors import ConfigError

SPLIT_HALVES = 20


@dataclass
class Calibration:
    """A threshold and its false-positive rate on real images (target, in-sample, split-half)."""

    threshold: float
    target_fpr: float
    fpr_in_sample: float
    fpr_split_half: float
    n_real: int
    features: str

    def describe(self) -> dict:
        return {"threshold": self.threshold, "target_fpr": self.target_fpr, "fpr_in_sample": self.fpr_in_sample,
                "fpr_split_half": self.fpr_split_half, "n_real": self.n_real, "features": self.features}


@dataclass
class ImageFlags:
    """Per generated image: nearest training item and distance, copy flag, OOD score and flag."""

    nearest_train: np.ndarray
    train_distance: np.ndarray
    copy: np.ndarray
    exact: np.ndarray
    ood_score: np.ndarray
    ood: np.ndarray
    copy_calibration: Calibration | None
    ood_calibration: Calibration
    notes: list[str] = field(default_factory=list)


def pixel_vectors(images: torch.Tensor) -> torch.Tensor:
    """Images as float32 rows scaled so that Euclidean distance is the RMS pixel difference (in [0, 1] units);
    `nearest` measures in float64, a chunk at a time."""
    flat = images.flatten(1)
    return flat.float() / math.sqrt(flat.shape[1])


def nearest(queries: torch.Tensor, pool: torch.Tensor, exclude_self: bool = False, k: int = 1
            ) -> tuple[np.ndarray, np.ndarray]:
    """Distance to and index of the k-th nearest row of `pool` for every row of `queries` (chunked: memory
    grows with the chunk, not the product of the set sizes)."""
    distances, indices = [], []
    pool = pool.double()
    for start in range(0, len(queries), 256):
        block = torch.cdist(queries[start:start + 256].double(), pool,
                            compute_mode="donot_use_mm_for_euclid_dist")
        if exclude_self:
            block[torch.arange(block.shape[0]), torch.arange(start, start + block.shape[0])] = math.inf
        if k > block.shape[1]:
            raise ConfigError(f"flags.ood_k={k} exceeds the {block.shape[1]} real images it is measured against.")
        values, order = block.topk(k, dim=1, largest=False)
        distances.append(values[:, -1].numpy())
        indices.append(order[:, -1].numpy())
    return np.concatenate(distances), np.concatenate(indices)


def _split_half_rate(real: np.ndarray, quantile: float, below: bool, seed: int) -> float:
    rng = np.random.default_rng(seed)
    rates = []
    for _ in range(SPLIT_HALVES):
        order = rng.permutation(len(real))
        first, second = real[order[: len(real) // 2]], real[order[len(real) // 2:]]
        threshold = float(np.quantile(first, quantile, method="lower" if below else "higher"))
        rates.append(float(np.mean(second < threshold) if below else np.mean(second > threshold)))
    return float(np.mean(rates))


def calibrate_copy(real_distance: np.ndarray, fpr: float, features: str, seed: int) -> Calibration:
    """The copy threshold: the `fpr` quantile of the real images' nearest-training distances."""
    threshold = float(np.quantile(real_distance, fpr, method="lower"))  # at most `fpr` of the real images below
    return Calibration(threshold, fpr, float(np.mean(real_distance < threshold)),
                       _split_half_rate(real_distance, fpr, True, seed), len(real_distance), features)


def calibrate_ood(real_knn: np.ndarray, fpr: float, features: str, seed: int) -> Calibration:
    """The OOD threshold: the (1 - `fpr`) quantile of the real images' leave-one-out k-NN distances."""
    threshold = float(np.quantile(real_knn, 1 - fpr, method="higher"))  # at most `fpr` of the real images above
    return Calibration(threshold, fpr, float(np.mean(real_knn > threshold)),
                       _split_half_rate(real_knn, 1 - fpr, False, seed), len(real_knn), features)


def image_flags(generated: torch.Tensor, real: torch.Tensor, train: torch.Tensor | None,
                ood_generated: torch.Tensor, ood_real: torch.Tensor, copy_fpr: float, ood_fpr: float,
                ood_k: int, copy_features: str, ood_features: str, seed: int) -> ImageFlags:
    """Flags of every generated image. `generated` / `real` / `train`: copy-detection rows (pixels or
    features); `ood_generated` / `ood_real`: OOD feature rows. Without a training set there are no copy
    flags (nearest_train -1, distance NaN)."""
    for name, rate in (("flags.copy_fpr", copy_fpr), ("flags.ood_fpr", ood_fpr)):
        if not 0 < rate < 0.5:
            raise ConfigError(f"{name}={rate}: choose a false-positive rate in (0, 0.5), e.g. 0.01.")
    n = len(generated)
    notes = []
    if train is None:
        nearest_train, distance = np.full(n, -1), np.full(n, math.nan)
        copy = exact = np.zeros(n, dtype=bool)
        copy_calibration = None
        notes.append("no train folder: no copy flags")
    else:
        distance, nearest_train = nearest(generated, train)
        real_distance, _ = nearest(real, train)
        copy_calibration = calibrate_copy(real_distance, copy_fpr, copy_features, seed)
        exact = distance == 0
        copy = (distance < copy_calibration.threshold) | exact
        if copy_calibration.threshold == 0:
            notes.append("copy threshold is 0: some real images are exact duplicates of training images")
    real_knn, _ = nearest(ood_real, ood_real, exclude_self=True, k=ood_k)
    generated_knn, _ = nearest(ood_generated, ood_real, k=ood_k)
    ood_calibration = calibrate_ood(real_knn, ood_fpr, ood_features, seed)
    scale = ood_calibration.threshold if ood_calibration.threshold > 0 else 1.0
    score = generated_knn / scale
    return ImageFlags(nearest_train, distance, copy, exact, score, score > 1.0, copy_calibration, ood_calibration,
                      notes)


def worst_first(flags: ImageFlags) -> np.ndarray:
    """Positions ordered worst first: copies (closest to their training image first), then by OOD score."""
    n = len(flags.ood_score)
    closeness = np.where(flags.copy, flags.train_distance, np.inf)
    return np.lexsort((-flags.ood_score, closeness, ~flags.copy))[:n]
