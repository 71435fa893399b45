"""A learned healthy-tissue inpainter for the tumour edits: a diffusion model of healthy brain, RePaint sampling.

Optional (`conf/perturbation/tumour_remove_learned*.yaml`); the classical fill of `perturbations.fill` stays the
default. The pipeline:
1. `HealthyTissueDiffusion` trains MONAI's `DiffusionModelUNet` (conditioned on the brain mask, concatenated)
   with the DDPM noise-prediction loss on random crops of the study's *training* slices, the loss masked to
   voxels at least `healthy_margin` voxels from any tumour: tumour is never a target, the model learns healthy
   tissue. Trained once per (training data, config, seed) by `benchmark.generators.training` (content-hash
   checkpoint cache, atomic writes, resumable).
2. `DiffusionInpainter.fill` samples the hole with RePaint (Lugmayr et al., CVPR 2022): at every reverse step
   the known voxels (everything outside the hole) are replaced by the original, forward-noised to that step;
   every `jump_length` steps the chain goes back up `jump_length` steps and down again, `resample` times in
   all, so the generated part harmonises with the known part. Steps use MONAI's `DDIMScheduler` on a strided
   grid (eta 1: ancestral, DDPM-like). Only the hole (inside the brain) changes; its values are clipped to the
   range of the item's brain; the noise is seeded by (seed, image, hole), so the fill is deterministic.
3. `perturbations.learned_fill.LearnedFill` hands `DiffusionInpainter.fill` to a tumour edit (remove, shrink,
   move, deform) as the fill of its removed tissue.
"""

from __future__ import annotations

import hashlib
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import DiffusionInferer
from monai.networks.nets import DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError, DataError
from benchmark.generators.base import ConditionalGenerator
from benchmark.generators.diffusion import noised_batch
from benchmark.generators.training import generator_key, train_generator
from perturbations.base import item_seed

DEFAULT_CACHE = Path("~/.cache/mri-metric-bench/checkpoints")


class HealthyTissueDiffusion(ConditionalGenerator):
    """DiffusionModelUNet (image + brain mask in, noise out) trained on healthy tissue only.

    crop: side of the random square crops trained on (pixels, centred on a random brain voxel; the network is
    convolutional, so it samples windows of other sizes); healthy_margin: voxels around tumour left out of
    the loss; the other arguments as `benchmark.generators.diffusion.ConditionalDiffusion`.
    """

    architecture = "inpainter"

    def __init__(self, channels: list[int] = (8, 16, 16), attention_levels: list[bool] = (False, False, False),
                 num_res_blocks: int = 1, norm_num_groups: int = 8, num_head_channels: int = 8,
                 train_timesteps: int = 1000, crop: int = 32, healthy_margin: int = 2, **training) -> None:
        super().__init__(**training)
        self.channels, self.attention_levels = tuple(channels), tuple(bool(a) for a in attention_levels)
        self.num_res_blocks, self.norm_num_groups = int(num_res_blocks), int(norm_num_groups)
        self.num_head_channels, self.train_timesteps = int(num_head_channels), int(train_timesteps)
        self.crop, self.healthy_margin = int(crop), int(healthy_margin)
        self.inferer = DiffusionInferer(DDPMScheduler(num_train_timesteps=self.train_timesteps))

    def build(self, image_channels: int, device: torch.device) -> None:
        self.device, self.image_channels = device, image_channels
        unet = DiffusionModelUNet(2, image_channels + 1, image_channels, channels=self.channels,
                                  attention_levels=self.attention_levels, num_res_blocks=self.num_res_blocks,
                                  norm_num_groups=self.norm_num_groups, num_head_channels=self.num_head_channels)
        self.modules = {"unet": unet.to(device)}
        self.optimizers = {"unet": self._adam(unet)}

    def train_step(self, images: torch.Tensor, condition: torch.Tensor, rng: torch.Generator) -> dict[str, float]:
        """One DDPM step on crops; `condition` is (tumour labels 1/2/3, brain) as `condition_channels` makes it."""
        images, condition = random_crops(images, condition, self.crop, rng)
        healthy = healthy_weight(condition, self.healthy_margin)
        target, noise, timesteps = noised_batch(images, rng, self.train_timesteps, self.device)
        optimizer = self.optimizers["unet"]
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            predicted = self.inferer(target, self.modules["unet"], noise, timesteps, condition=condition[:, 3:],
                                     mode="concat")
        weight = healthy.expand_as(noise)
        loss = (weight * (predicted.float() - noise) ** 2).sum() / weight.sum().clamp_min(1.0)
        loss.backward()
        optimizer.step()
        return {"mse": float(loss.detach())}


def healthy_weight(condition: torch.Tensor, margin: int) -> torch.Tensor:
    """(N, 1, *spatial) loss weight: 0 on tumour (condition channels 0-2) and within `margin` voxels of it, else 1."""
    tumour = condition[:, :3].amax(1, keepdim=True)
    return 1.0 - (F.max_pool2d(tumour, 2 * margin + 1, stride=1, padding=margin) if margin > 0 else tumour)


def random_crops(images: torch.Tensor, condition: torch.Tensor, size: int, rng: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Square crops of side `size`, each centred on a random brain voxel (moved inside the image)."""
    if size >= min(images.shape[2:]):
        return images, condition
    crops = []
    for image, cond in zip(images, condition, strict=True):
        points, shape = cond[-1].nonzero().cpu(), image.shape[1:]
        pick = int(torch.randint(len(points), (1,), generator=rng)) if len(points) else None
        centre = points[pick] if pick is not None else torch.tensor(shape) // 2
        lo = [min(max(int(c) - size // 2, 0), n - size) for c, n in zip(centre, shape, strict=True)]
        window = (slice(None), *[slice(a, a + size) for a in lo])
        crops.append((image[window], cond[window]))
    return torch.stack([c[0] for c in crops]), torch.stack([c[1] for c in crops])


def repaint_schedule(steps: int, jump_length: int, resample: int) -> list[int]:
    """Inference-step indices from steps - 1 down to -1 (clean); every `jump_length` steps the chain goes back up
    `jump_length` steps, `resample` - 1 times (RePaint's `get_schedule_jump`)."""
    jumps = {j: resample - 1 for j in range(0, steps - jump_length, jump_length)}
    t, schedule = steps, []
    while t >= 1:
        t -= 1
        schedule.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(jump_length):
                t += 1
                schedule.append(t)
    return [*schedule, -1]


@torch.no_grad()
def repaint(unet: torch.nn.Module, scheduler: DDIMScheduler, original: torch.Tensor, known: torch.Tensor,
            condition: torch.Tensor, schedule: list[int], eta: float, generator: torch.Generator) -> torch.Tensor:
    """RePaint in [-1, 1]: `original` (1, C, *spatial), `known` (1, 1, *spatial) bool, `condition` the brain mask;
    index k of `schedule` is timestep k x stride (k = -1: clean). Returns the sample at k = -1."""
    stride = scheduler.num_train_timesteps // scheduler.num_inference_steps
    device = original.device

    def noise() -> torch.Tensor:
        return torch.randn(original.shape, generator=generator, device=device)

    def alpha_bar(k: int) -> torch.Tensor:
        return scheduler.alphas_cumprod[k * stride] if k >= 0 else torch.tensor(1.0)

    def known_at(k: int) -> torch.Tensor:
        return original if k < 0 else scheduler.add_noise(original, noise(), torch.tensor([k * stride], device=device))

    x = torch.where(known, known_at(schedule[0]), noise())
    for last, step in pairwise(schedule):
        if step < last:  # denoise one step, then put back the known part noised to the new level
            timestep = torch.tensor([last * stride], device=device)
            epsilon = unet(torch.cat([x, condition], 1), timesteps=timestep).float()
            x, _ = scheduler.step(epsilon, last * stride, x, eta=eta, generator=generator)
            x = torch.where(known, known_at(step), x)
        else:  # jump back: q(x_step | x_last), the forward diffusion between the two levels
            ratio = float(alpha_bar(step) / alpha_bar(last))
            x = ratio**0.5 * x + (1 - ratio) ** 0.5 * noise()
    return x


def hole_window(hole: np.ndarray, multiple: int, minimum: int, context: int) -> tuple[tuple[slice, ...], list]:
    """The window around the hole that is sampled: its bounding box plus `context` voxels, at least `minimum`
    and a multiple of `multiple` voxels per axis, inside the image; returns (slices, zero padding per axis) where
    the whole axis is used and padded up to a multiple."""
    points = np.argwhere(hole)
    slices, pads = [], []
    for lo, hi, n in zip(points.min(0), points.max(0) + 1, hole.shape, strict=True):
        length = -(-max(int(hi - lo) + 2 * context, minimum) // multiple) * multiple
        if length >= n:
            slices.append(slice(0, n))
            pads.append((0, -(-n // multiple) * multiple - n))
        else:
            start = min(max((int(lo + hi) - length) // 2, 0), n - length)
            slices.append(slice(start, start + length))
            pads.append((0, 0))
    return tuple(slices), pads


class DiffusionInpainter:
    """Fills holes in brain slices with healthy tissue sampled by RePaint from a `HealthyTissueDiffusion`.

    steps: optimiser steps of its training (cached); sample_steps: reverse steps (DDIM grid over the
    `train_timesteps`); jump_length, resample: RePaint's jumps (resample = 1: none); eta: DDIM noise (1: DDPM-like);
    context: known voxels around the hole's bounding box in the sampled window (the window is at least `crop`);
    device: auto | cpu | cuda | cuda:N; cache_dir: checkpoint folder (default ~/.cache/mri-metric-bench/checkpoints).
    The remaining arguments (channels, attention_levels, crop, batch_size, lr, ...) go to `HealthyTissueDiffusion`.
    """

    def __init__(self, steps: int = 300, sample_steps: int = 25, jump_length: int = 5, resample: int = 3,
                 eta: float = 1.0, context: int = 8, device: str = "auto", cache_dir: str | None = None,
                 **model: Any) -> None:
        from benchmark.runtime import resolve_device

        self.device = resolve_device(str(device))  # ConfigError for cuda without a GPU, before any training
        self.model_config = {"steps": int(steps), **model}  # what the checkpoint's key covers
        self.model = HealthyTissueDiffusion(budgets=[int(steps)], **model)
        self.sample_steps, self.jump_length, self.resample = int(sample_steps), int(jump_length), int(resample)
        self.eta, self.context = float(eta), int(context)
        self.cache_dir = Path(cache_dir or DEFAULT_CACHE).expanduser()
        self.multiple = 2 ** (len(self.model.channels) - 1)
        if not 1 <= self.sample_steps <= self.model.train_timesteps or not 1 <= self.jump_length < max(
                self.sample_steps, 2) or self.resample < 1 or not 0 <= self.eta <= 1 or self.context < 0:
            raise ConfigError(f"inpainter: need 1 <= sample_steps ({sample_steps}) <= train_timesteps "
                              f"({self.model.train_timesteps}), 1 <= jump_length ({jump_length}) < sample_steps, "
                              f"resample >= 1 ({resample}), 0 <= eta <= 1 ({eta}) and context >= 0 ({context})")
        if self.model.crop < 8 or self.model.crop % self.multiple:
            raise ConfigError(f"inpainter: crop={self.model.crop} must be at least 8 and a multiple of "
                              f"{self.multiple} (2 ** (len(channels) - 1), the UNet's downsampling)")
        self.key: str | None = None
        self.training = None

    def fit(self, train: ImageSet, seed: int) -> None:
        """Train on the training split (or load the cached checkpoint); a no-op when already fitted to it."""
        if train.spatial_dims != 2:
            raise ConfigError("the learned inpainter works on 2D slices only; use data.mode=2d or the classical fill")
        if self.key == generator_key(self.model_config, train, seed, self.device):
            return
        run = train_generator("inpainter", self.model, self.model_config, train, seed, self.device, self.cache_dir)
        if run.failures:
            raise DataError(next(iter(run.failures.values())))
        self.model.train_mode(False)
        self.key, self.training = run.key, run

    def fill(self, image: np.ndarray, brain: np.ndarray, lesion: np.ndarray, region: np.ndarray,
             seed: int = 0) -> np.ndarray:
        """`image` (C, H, W) with `region` inside the brain resampled as healthy tissue (same signature as
        `perturbations.fill.fill_healthy`, plus the seed); unchanged outside it; needs `fit` first."""
        hole = region & brain
        if not hole.any():
            return image.copy()
        if self.key is None:
            raise RuntimeError("DiffusionInpainter.fill before fit: call fit(train, seed) first")
        slices, pads = hole_window(hole, self.multiple, self.model.crop, self.context)

        def window(array: np.ndarray) -> torch.Tensor:
            cut = np.pad(array[(..., *slices)], [(0, 0)] * (array.ndim - 2) + pads)
            return torch.as_tensor(cut, dtype=torch.float32, device=self.device)[None]

        original = window(image) * 2 - 1
        known = window(hole[None]) < 0.5  # the padding (outside the image) is known background
        scheduler = DDIMScheduler(num_train_timesteps=self.model.train_timesteps)
        scheduler.set_timesteps(self.sample_steps)
        digest = hashlib.blake2b(image.tobytes() + np.packbits(hole).tobytes(), digest_size=16).hexdigest()
        generator = torch.Generator(device=self.device).manual_seed(item_seed(seed, "repaint", digest))
        schedule = repaint_schedule(self.sample_steps, self.jump_length, self.resample)
        with self.model.autocast():
            sample = repaint(self.model.modules["unet"], scheduler, original, known, window(brain[None]), schedule,
                             self.eta, generator)
        crop = tuple(slice(0, s.stop - s.start) for s in slices)
        filled = ((sample[0].float().cpu().numpy() + 1) / 2)[(..., *crop)]
        values = image[:, brain]
        low, high = values.min(1)[:, None, None], values.max(1)[:, None, None]
        out = image.copy()
        out[(..., *slices)] = np.where(hole[slices], np.clip(filled, low, high), image[(..., *slices)])
        return out
