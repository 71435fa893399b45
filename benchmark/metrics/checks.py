"""Input validation shared by metrics and feature extractors: one clear error instead of a silent NaN."""

from __future__ import annotations

import torch

from benchmark.errors import BenchmarkError


class MetricInputError(BenchmarkError, ValueError):
    """A metric received input it cannot score: wrong shape, dtype, non-finite values or too few samples."""


def as_float_tensor(value: torch.Tensor, name: str, metric: str) -> torch.Tensor:
    """`value` as a floating-point tensor; integer, boolean and complex tensors are refused, not cast."""
    tensor = torch.as_tensor(value)
    if not tensor.is_floating_point():
        raise MetricInputError(
            f"{metric}: {name} has dtype {tensor.dtype}; pass a floating-point tensor "
            f"(images scaled to [0, data_range], features as float32/float64)."
        )
    return tensor


def check_finite(tensor: torch.Tensor, name: str, metric: str) -> None:
    """Refuse NaN or Inf, naming how many entries are affected."""
    if bool(torch.isfinite(tensor).all()):
        return
    bad = (~torch.isfinite(tensor)).sum().item()
    if bad:
        raise MetricInputError(f"{metric}: {name} contains {bad} NaN or Inf value(s) out of {tensor.numel()}.")


def check_image_pair(candidate: torch.Tensor, reference: torch.Tensor, metric: str
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """A candidate batch and its reference, of identical shape (N, C, H, W) or (N, C, D, H, W), floating point,
    finite; returned in a common floating dtype on the candidate's device."""
    x = as_float_tensor(candidate, "candidate", metric)
    y = as_float_tensor(reference, "reference", metric)
    if x.shape != y.shape:
        raise MetricInputError(
            f"{metric}: candidate has shape {tuple(x.shape)} but reference has shape {tuple(y.shape)}.")
    if x.ndim not in (4, 5):
        raise MetricInputError(
            f"{metric}: expected (N, C, H, W) or (N, C, D, H, W) images, got shape {tuple(x.shape)}."
        )
    if x.shape[0] == 0:
        raise MetricInputError(f"{metric}: empty batch.")
    check_finite(x, "candidate", metric)
    check_finite(y, "reference", metric)
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    return x.to(dtype), y.to(device=x.device, dtype=dtype)


def check_features(features: torch.Tensor, name: str, metric: str, min_samples: int = 1) -> torch.Tensor:
    """A finite (N, d) feature matrix with at least `min_samples` rows, as float64."""
    features = as_float_tensor(features, name, metric)
    if features.ndim != 2:
        raise MetricInputError(f"{metric}: {name} must be an (N, d) feature matrix, got shape {tuple(features.shape)}.")
    if features.shape[0] < min_samples:
        raise MetricInputError(
            f"{metric}: {name} has {features.shape[0]} samples; at least {min_samples} are needed."
        )
    check_finite(features, name, metric)
    return features.to(torch.float64)


def check_same_dim(a: torch.Tensor, b: torch.Tensor, metric: str) -> None:
    """Two feature matrices must share their feature dimension."""
    if a.shape[1] != b.shape[1]:
        raise MetricInputError(f"{metric}: feature dimensions differ ({a.shape[1]} vs {b.shape[1]}).")
