"""Loading a user's ResNet weight file into a MONAI ResNet, tolerating classifier heads it does not use."""

from __future__ import annotations

from pathlib import Path

from monai.networks.nets import ResNet

from benchmark.errors import BenchmarkError
from benchmark.features.weights import load_state_dict_file

IGNORED_HEADS = ("fc.", "conv_seg.", "classifier.")


def load_resnet_weights(network: ResNet, path: Path, what: str, how_to_get: str) -> ResNet:
    """Copy the backbone tensors of `path` into `network`; every backbone key must be present."""
    state = {
        key: value for key, value in load_state_dict_file(path, what).items() if not key.startswith(IGNORED_HEADS)
    }
    expected = {key for key in network.state_dict() if not key.endswith("num_batches_tracked")}
    missing = sorted(expected - state.keys())
    unexpected = sorted(state.keys() - set(network.state_dict()))
    if missing or unexpected:
        raise BenchmarkError(
            f"{what}: the weight file {path} does not match the network (missing {missing[:4]}, unexpected "
            f"{unexpected[:4]}; {len(missing)} / {len(unexpected)} keys). {how_to_get}"
        )
    network.load_state_dict(state, strict=False)
    return network.eval().requires_grad_(False)
