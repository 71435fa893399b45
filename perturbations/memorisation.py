"""Memorisation: a growing share of the set replaced by training images or near-copies of them.

Schemes from the literature on memorisation in medical generative models (see REFERENCE.md): exact copies
replacing 5 / 15 / 30 / 45 / 100 % of the set; near-copies with N(0, 0.01) noise, a rotation up to 10
degrees with intensity x0.9-1.1, a blend with another training image (alpha 0.6-0.8), or a Gaussian blur of
sigma 0.5. A replaced item has no clean counterpart (reference_index -1) and its source is "train:j";
its label is the training image's. The slots replaced at one level include those of the level below.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
from monai.transforms import GaussianSmooth, Rotate

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError
from perturbations.base import SetPerturbation, at_severity, end_points

COPY_FRACTIONS = (0.05, 0.15, 0.30, 0.45, 1.0)


class MemorisationCopies(SetPerturbation):
    """Replace a growing fraction of the set by (near-)copies of training images.

    near_copy: "exact" (default) | "noise" | "rotation" | "blend" | "blur".
    fraction: share of the set replaced, 0..1; default 0.05, 0.15, 0.30, 0.45, 1.0 (five per-level values).
    noise_std: std of the added noise for "noise", >= 0, default 0.01 (in [0, 1] intensity units).
    max_degrees: rotation bound for "rotation", 0..180, default 10; intensity_jitter: bound of the
    multiplicative jitter, 0..1, default 0.1 (x0.9-1.1). alpha: weight of the copied image for "blend",
    [low, high] in 0..1, default [0.6, 0.8]. blur_sigma: for "blur", >= 0 px, default 0.5.
    Training images are drawn without replacement while they last.
    """

    family = "memorisation"
    needs_train: ClassVar[bool] = True
    kinds = ("exact", "noise", "rotation", "blend", "blur")

    def __init__(self, near_copy: str = "exact", fraction: Any = COPY_FRACTIONS, noise_std: float = 0.01,
                 max_degrees: float = 10.0, intensity_jitter: float = 0.1, alpha: Any = (0.6, 0.8),
                 blur_sigma: float = 0.5) -> None:
        super().__init__()
        if near_copy not in self.kinds:
            raise ConfigError(f"parameter 'near_copy' must be one of {self.kinds}, got {near_copy!r}")
        self.near_copy = near_copy
        self.fraction = end_points("fraction", fraction, low=0.0, high=1.0)
        self.noise_std = end_points("noise_std", noise_std, low=0.0)[0]
        self.max_degrees = end_points("max_degrees", max_degrees, low=0.0, high=180.0)[0]
        self.intensity_jitter = end_points("intensity_jitter", intensity_jitter, low=0.0, high=1.0)[0]
        alpha = end_points("alpha", alpha, low=0.0, high=1.0)
        if len(alpha) != 2 or alpha[0] > alpha[1]:
            raise ConfigError(f"parameter 'alpha' must be [low, high] with low <= high, got {list(alpha)}")
        self.alpha = alpha
        self.blur_sigma = end_points("blur_sigma", blur_sigma, low=0.0)[0]

    def parameters_at(self, severity: int) -> dict[str, Any]:
        near = {"exact": {}, "noise": {"noise_std": self.noise_std}, "blur": {"blur_sigma": self.blur_sigma},
                "rotation": {"max_degrees": self.max_degrees, "intensity_jitter": self.intensity_jitter},
                "blend": {"alpha": list(self.alpha)}}[self.near_copy]
        return {"near_copy": self.near_copy, "fraction": at_severity(self.fraction, severity), **near}

    def build_set(self, clean, params, rng, train):
        n, slots = len(clean), rng.permutation(len(clean))
        replaced = np.sort(slots[: round(params["fraction"] * n)])
        donors = np.concatenate([rng.permutation(len(train)) for _ in range(-(-n // len(train)))])[:n]
        partners = rng.integers(0, len(train), n)
        slot_seeds = rng.integers(0, 2**63, n)
        images, labels = clean.images.clone(), clean.labels.clone()
        reference, sources = torch.arange(n), [f"clean:{i}" for i in range(n)]
        for slot in replaced.tolist():
            j = int(donors[slot])
            image = self.near_copy_of(train, j, int(partners[slot]), np.random.default_rng(int(slot_seeds[slot])))
            images[slot] = image.to(images.device).clamp(0, 1)
            labels[slot] = train.labels[j].to(labels.device)
            reference[slot], sources[slot] = -1, f"train:{j}"
        copied = {int(i): int(donors[i]) for i in replaced}
        data = replace(
            clean.with_images(images, labels),
            subject_ids=[train.subject_ids[copied[i]] if i in copied else s for i, s in enumerate(clean.subject_ids)],
            slice_indices=[train.slice_indices[copied[i]] if i in copied else s
                           for i, s in enumerate(clean.slice_indices)],
        )
        return data, reference, sources

    def near_copy_of(self, train: ImageSet, j: int, partner: int, rng: np.random.Generator) -> torch.Tensor:
        """Training image j, or its near-copy of this kind (drawing from the slot's own generator)."""
        image = train.images[j]
        if self.near_copy == "noise":
            noise = torch.from_numpy(rng.standard_normal(tuple(image.shape)).astype(np.float32))
            return image + self.noise_std * noise.to(image.device)
        if self.near_copy == "rotation":
            angle = np.deg2rad(rng.uniform(-self.max_degrees, self.max_degrees))
            angles = angle if image.ndim == 3 else (angle, 0.0, 0.0)
            rotated = torch.as_tensor(Rotate(angle=angles, padding_mode="zeros")(image))
            return rotated * rng.uniform(1 - self.intensity_jitter, 1 + self.intensity_jitter)
        if self.near_copy == "blend":
            alpha = rng.uniform(*self.alpha)
            return alpha * image + (1 - alpha) * train.images[partner]
        if self.near_copy == "blur":
            return torch.as_tensor(GaussianSmooth(sigma=self.blur_sigma)(image))
        return image.clone()
