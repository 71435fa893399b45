"""The deterministic baseline: a MONAI UNet regresses the image from the masks with an L1 loss.

It predicts the conditional mean, so its images are smooth (the 'blurry baseline' of the study); sampling
ignores the seed.
"""

from __future__ import annotations

import torch
from monai.networks.nets import UNet

from benchmark.generators.base import ConditionalGenerator, paint_inside


class ConditionalRegressor(ConditionalGenerator):
    """Masks (4 channels) -> image through a UNet with `channels` / `strides`, sigmoid output, L1 loss."""

    architecture = "regressor"

    def __init__(self, channels: list[int] = (16, 32, 64, 128), strides: list[int] = (2, 2, 2),
                 num_res_units: int = 1, **training) -> None:
        super().__init__(**training)
        self.channels, self.strides, self.num_res_units = tuple(channels), tuple(strides), int(num_res_units)

    def build(self, image_channels: int, device: torch.device) -> None:
        self.device = device
        self.modules = {"generator": UNet(self.spatial_dims, 4, image_channels, self.channels, self.strides,
                                          num_res_units=self.num_res_units, norm="batch").to(device)}
        self.optimizers = {"generator": self._adam(self.modules["generator"])}

    def _forward(self, condition: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.modules["generator"](condition).float()) * condition[:, -1:]

    def train_step(self, images: torch.Tensor, condition: torch.Tensor, rng: torch.Generator) -> dict[str, float]:
        optimizer = self.optimizers["generator"]
        optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            loss = torch.nn.functional.l1_loss(self._forward(condition), images)
        loss.backward()
        optimizer.step()
        return {"l1": float(loss.detach())}

    @torch.no_grad()
    def sample(self, condition: torch.Tensor, noise_seeds: list[int]) -> torch.Tensor:
        with self.autocast():
            return paint_inside(self._forward(condition), condition)
