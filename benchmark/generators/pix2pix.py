"""A pix2pix-style conditional GAN (Isola et al. 2017): a UNet generator and MONAI's PatchDiscriminator
judging (masks, image) pairs patch by patch, trained with a least-squares adversarial loss plus L1.

The generator also sees one channel of Gaussian noise, so different seeds give different images for the
same masks (pix2pix relied on dropout for this); the L1 term keeps the image anatomically faithful.
"""

from __future__ import annotations

import torch
from monai.losses import PatchAdversarialLoss
from monai.networks.nets import PatchDiscriminator, UNet

from benchmark.generators.base import ConditionalGenerator, paint_inside


class ConditionalGAN(ConditionalGenerator):
    """UNet generator (`channels`, `strides`) and a PatchDiscriminator (`disc_channels`, `disc_layers`).

    l1_weight: weight of the L1 term against the adversarial term (pix2pix used 100 with a BCE loss; the
    least-squares loss is on a similar scale); the discriminator uses the same learning rate.
    """

    architecture = "pix2pix"

    def __init__(self, channels: list[int] = (16, 32, 64, 128), strides: list[int] = (2, 2, 2),
                 disc_channels: int = 32, disc_layers: int = 3, l1_weight: float = 50.0, **training) -> None:
        super().__init__(**training)
        self.channels, self.strides = tuple(channels), tuple(strides)
        self.disc_channels, self.disc_layers, self.l1_weight = int(disc_channels), int(disc_layers), float(l1_weight)
        self.adversarial = PatchAdversarialLoss(criterion="least_squares")

    def build(self, image_channels: int, device: torch.device) -> None:
        self.device = device
        generator = UNet(self.spatial_dims, 5, image_channels, self.channels, self.strides, num_res_units=1,
                         norm="batch", dropout=0.1)
        discriminator = PatchDiscriminator(self.spatial_dims, self.disc_channels, 4 + image_channels,
                                           num_layers_d=self.disc_layers)
        self.modules = {"generator": generator.to(device), "discriminator": discriminator.to(device)}
        self.optimizers = {name: self._adam(module, betas=(0.5, 0.999)) for name, module in self.modules.items()}

    def _generate(self, condition: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        out = self.modules["generator"](torch.cat([condition, noise], dim=1))
        return torch.sigmoid(out.float()) * condition[:, -1:]

    def _judge(self, condition: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        return self.modules["discriminator"](torch.cat([condition, images], dim=1))[-1]

    def train_step(self, images: torch.Tensor, condition: torch.Tensor, rng: torch.Generator) -> dict[str, float]:
        noise = torch.randn((images.shape[0], 1, *images.shape[2:]), generator=rng).to(self.device)
        g_opt, d_opt = self.optimizers["generator"], self.optimizers["discriminator"]
        g_opt.zero_grad(set_to_none=True)
        with self.autocast():
            fake = self._generate(condition, noise)
            l1 = torch.nn.functional.l1_loss(fake, images)
            fooled = self.adversarial(self._judge(condition, fake), target_is_real=True, for_discriminator=False)
            g_loss = fooled + self.l1_weight * l1
        g_loss.backward()
        g_opt.step()
        d_opt.zero_grad(set_to_none=True)
        with self.autocast():
            real_loss = self.adversarial(self._judge(condition, images), target_is_real=True, for_discriminator=True)
            fake_loss = self.adversarial(self._judge(condition, fake.detach()), target_is_real=False,
                                         for_discriminator=True)
            d_loss = 0.5 * (real_loss + fake_loss)
        d_loss.backward()
        d_opt.step()
        return {"l1": float(l1.detach()), "generator_adversarial": float(fooled.detach()),
                "discriminator": float(d_loss.detach())}

    @torch.no_grad()
    def sample(self, condition: torch.Tensor, noise_seeds: list[int]) -> torch.Tensor:
        noise = self._noise((1, *condition.shape[2:]), noise_seeds)
        with self.autocast():
            return paint_inside(self._generate(condition, noise), condition)
