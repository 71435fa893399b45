"""A conditional denoising diffusion model: MONAI's DiffusionModelUNet sees the noisy image with the masks
concatenated as extra input channels, trained with the DDPM objective (predict the added noise) and
sampled with DDIM (deterministic given the initial noise, far fewer steps than training timesteps).

Images are mapped from [0, 1] to [-1, 1] for the diffusion and back. Costly on a CPU: keep `channels`
small there (e.g. [16, 32, 32]) and use [32, 64, 64] or more on a GPU.
"""

from __future__ import annotations

import torch
from monai.inferers import DiffusionInferer
from monai.networks.nets import DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

from benchmark.generators.base import ConditionalGenerator, paint_inside


def noised_batch(images: torch.Tensor, rng: torch.Generator, train_timesteps: int, device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DDPM training inputs: images in [0, 1] mapped to [-1, 1], Gaussian noise and uniform timesteps,
    drawn from `rng` in that order (so a seed gives the same batch)."""
    target = images * 2 - 1
    noise = torch.randn(target.shape, generator=rng).to(device)
    timesteps = torch.randint(0, train_timesteps, (target.shape[0],), generator=rng).to(device)
    return target, noise, timesteps

class ConditionalDiffusion(ConditionalGenerator):
    """DiffusionModelUNet (`channels`, `attention_levels`, `num_res_blocks`, `norm_num_groups`) with
    `train_timesteps` DDPM steps (linear beta schedule) and `sample_steps` DDIM steps (eta 0)."""

    architecture = "diffusion"

    def __init__(self, channels: list[int] = (32, 64, 64), attention_levels: list[bool] = (False, False, True),
                 num_res_blocks: int = 1, norm_num_groups: int = 16, num_head_channels: int = 32,
                 train_timesteps: int = 1000, sample_steps: int = 50, **training) -> None:
        super().__init__(**training)
        self.channels, self.attention_levels = tuple(channels), tuple(bool(a) for a in attention_levels)
        self.num_res_blocks, self.norm_num_groups = int(num_res_blocks), int(norm_num_groups)
        self.num_head_channels, self.train_timesteps = int(num_head_channels), int(train_timesteps)
        self.sample_steps = int(sample_steps)
        self.scheduler = DDPMScheduler(num_train_timesteps=self.train_timesteps)
        self.inferer = DiffusionInferer(self.scheduler)

    def build(self, image_channels: int, device: torch.device) -> None:
        self.device, self.image_channels = device, image_channels
        unet = DiffusionModelUNet(self.spatial_dims, image_channels + 4, image_channels, channels=self.channels,
                                  attention_levels=self.attention_levels, num_res_blocks=self.num_res_blocks,
                                  norm_num_groups=self.norm_num_groups, num_head_channels=self.num_head_channels)
        self.modules = {"unet": unet.to(device)}
        self.optimizers = {"unet": self._adam(unet)}

    def train_step(self, images: torch.Tensor, condition: torch.Tensor, rng: torch.Generator) -> dict[str, float]:
        target, noise, timesteps = noised_batch(images, rng, self.train_timesteps, self.device)
        optimizer = self.optimizers["unet"]
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            predicted = self.inferer(target, self.modules["unet"], noise, timesteps, condition=condition, mode="concat")
            loss = torch.nn.functional.mse_loss(predicted.float(), noise)
        loss.backward()
        optimizer.step()
        return {"mse": float(loss.detach())}

    @torch.no_grad()
    def sample(self, condition: torch.Tensor, noise_seeds: list[int]) -> torch.Tensor:
        ddim = DDIMScheduler(num_train_timesteps=self.train_timesteps)
        ddim.set_timesteps(self.sample_steps)
        noise = self._noise((self.image_channels, *condition.shape[2:]), noise_seeds)
        with self.autocast():
            images = self.inferer.sample(noise, self.modules["unet"], scheduler=ddim, conditioning=condition,
                                         mode="concat", verbose=False)
        return paint_inside((images.float() + 1) / 2, condition)
