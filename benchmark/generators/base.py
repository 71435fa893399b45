"""What every mask-conditioned generator shares: its conditioning input, its hyper-parameters, its state.

A generator maps a tumour label map and a brain mask to an image in [0, 1] that is zero outside the brain
mask, so every synthetic image comes with the mask it was conditioned on (the utility protocol trains a
segmenter on exactly these pairs). Subclasses build their MONAI networks and optimisers in `build`, do one
optimisation step in `train_step` and draw images in `sample`.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch

from benchmark.errors import ConfigError

TUMOUR_LABELS = (1, 2, 3)  # NCR, ED, ET in the BraTS 2023 convention of benchmark.data.imageset


def condition_channels(labels: torch.Tensor, brain_masks: torch.Tensor) -> torch.Tensor:
    """(N, 4, *spatial) float: one channel per tumour label (1/2/3) and the brain mask, each 0 or 1."""
    onehot = [labels.eq(value) for value in TUMOUR_LABELS]
    return torch.cat([*onehot, brain_masks.bool()], dim=1).float()


class ConditionalGenerator:
    """Base class: training hyper-parameters shared by every architecture.

    budgets: optimiser steps at which a checkpoint is kept (each becomes one generated set, e.g. an early
    and a late one); batch_size: images per step; lr: Adam learning rate; amp: bfloat16 autocast on CUDA
    (ignored on CPU); sample_batch: images per sampling call.
    """

    architecture = "generator"

    def __init__(self, budgets: list[int], batch_size: int = 16, lr: float = 2e-3, amp: bool = True,
                 sample_batch: int = 32, spatial_dims: int = 2) -> None:
        budgets = sorted({int(b) for b in budgets})
        if not budgets or budgets[0] < 1:
            raise ConfigError(f"{type(self).__name__}: budgets {budgets} must be positive optimiser step counts, "
                              "e.g. [100, 400].")
        if batch_size < 1 or lr <= 0:
            raise ConfigError(f"{type(self).__name__}: batch_size={batch_size} and lr={lr} must be positive.")
        self.budgets, self.batch_size, self.lr, self.amp = budgets, int(batch_size), float(lr), bool(amp)
        self.sample_batch, self.spatial_dims = int(sample_batch), int(spatial_dims)
        self.modules: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.device = torch.device("cpu")

    def build(self, image_channels: int, device: torch.device) -> None:
        """Create the networks and optimisers on `device` for images with `image_channels` channels."""
        raise NotImplementedError

    def train_step(self, images: torch.Tensor, condition: torch.Tensor, rng: torch.Generator) -> dict[str, float]:
        """One optimisation step on a batch; returns the losses by name (floats)."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, condition: torch.Tensor, noise_seeds: list[int]) -> torch.Tensor:
        """Images (N, C, *spatial) in [0, 1] for `condition`; item i's randomness comes from noise_seeds[i]."""
        raise NotImplementedError

    def autocast(self) -> Any:
        """bfloat16 mixed precision on CUDA when `amp` is set (no loss scaling needed), nothing on CPU."""
        if self.amp and self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return nullcontext()

    def state(self) -> dict[str, Any]:
        """Weights and optimiser states, for the checkpoint cache."""
        return {"modules": {k: m.state_dict() for k, m in self.modules.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        for name, module in self.modules.items():
            module.load_state_dict(state["modules"][name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])

    def weights_finite(self) -> bool:
        """Whether every network parameter is finite (an update can poison them before any loss shows it)."""
        return all(bool(torch.isfinite(p).all()) for m in self.modules.values() for p in m.parameters())

    def train_mode(self, training: bool) -> None:
        for module in self.modules.values():
            module.train(training)

    def _adam(self, module: torch.nn.Module, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
        return torch.optim.Adam(module.parameters(), lr=self.lr, betas=betas)

    def _noise(self, shape: tuple[int, ...], noise_seeds: list[int]) -> torch.Tensor:
        """Standard normal noise (N, *shape), item i drawn from its own seed: independent of batching."""
        draws = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in noise_seeds]
        return torch.stack(draws).to(self.device)


def paint_inside(images: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and zero everything outside the brain mask (the condition's last channel)."""
    return images.float().clamp(0, 1) * condition[:, -1:].to(images.device)
