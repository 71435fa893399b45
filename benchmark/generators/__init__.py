"""Mask-conditioned generative models trained inside the study (MONAI networks), whose outputs are scored
like any generated set: a deterministic conditional UNet, a pix2pix-style GAN and a conditional diffusion
model. `base` holds the shared interface, one module per architecture, `training` the cached training
with budgets, `sets` the bridge to the study's generated-set path."""

from benchmark.generators.base import ConditionalGenerator, condition_channels

__all__ = ["ConditionalGenerator", "condition_channels"]
