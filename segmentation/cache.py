"""Checkpoint cache: a trained model is stored under the sha256 of everything that determines it.

The key covers the training and validation data (tensor bytes, so a perturbed set differs from the clean
one), the training part of the config, the seed, the device type (mixed precision on CUDA gives other
weights) and `CODE_VERSION`, bumped whenever the training code changes its result. Files are written to a
temporary name and renamed, so a crashed or concurrent run never leaves a half-written checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from benchmark.atomic import replace_atomically
from benchmark.data.imageset import ImageSet

CODE_VERSION = "seg-2"  # seg-2: validation Dice only over subjects with the region
TRAINING_KEYS = ("spatial_dims", "network", "loss", "optimizer", "scheduler", "training")
log = logging.getLogger(__name__)


def _update_with_set(digest: Any, name: str, data: ImageSet) -> None:
    digest.update(f"{name}:{tuple(data.images.shape)}:{data.modalities}:{data.spacing}".encode())
    for tensor in (data.images, data.labels):
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())


def training_config(cfg: DictConfig) -> dict[str, Any]:
    """The part of the segmentation config that changes the trained weights, as plain containers."""
    return {key: OmegaConf.to_container(cfg[key], resolve=True) if isinstance(cfg[key], DictConfig) else cfg[key]
            for key in TRAINING_KEYS if key in cfg}


def checkpoint_key(train: ImageSet, val: ImageSet, cfg: DictConfig, seed: int, device: torch.device) -> str:
    """Hex sha256 of (data, training config, seed, device type, code version)."""
    digest = hashlib.sha256()
    digest.update(f"{CODE_VERSION}|seed={seed}|device={device.type}|".encode())
    digest.update(OmegaConf.to_yaml(OmegaConf.create(training_config(cfg)), sort_keys=True).encode())
    _update_with_set(digest, "train", train)
    _update_with_set(digest, "val", val)
    return digest.hexdigest()


def checkpoint_path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / f"segmenter-{key[:32]}.pt"


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` atomically: to a temporary file in the same folder, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, lambda tmp: torch.save(payload, tmp))


SEGMENTER_FIELDS = ("state_dict", "history", "info")  # what a segmentation checkpoint holds


def load_checkpoint(path: Path, key: str, fields: tuple[str, ...] = SEGMENTER_FIELDS) -> dict[str, Any] | None:
    """The cached payload for `key`, or None when absent, unreadable, without the `fields` its writer stores
    (a segmenter's by default; the generators pass theirs) or written for another key."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: retrain and overwrite it
        log.warning("ignoring unreadable checkpoint %s (%s)", path, error)
        return None
    if not isinstance(payload, dict) or not set(fields) <= set(payload):
        log.warning("ignoring checkpoint %s: it is not a checkpoint of this tool", path)
        return None
    if payload.get("key") != key:
        log.warning("ignoring checkpoint %s: it was written for another key", path)
        return None
    return payload
