"""Train the downstream segmenter on one ImageSet, validate on another, cache the result.

The loop is iteration-based (a fixed number of optimiser steps, whatever the set size) so every training
of a study costs the same. Batches are drawn from a torch.Generator seeded with `seed`; the weights are
initialised with `seed` inside `torch.random.fork_rng`, so the caller's random state is left untouched
and the same seed gives the same weights (on a given device type). The weights of the best validation
Dice (mean of WT, TC, ET over the validation subjects that have each region) are kept. On CUDA, mixed
precision (float16 autocast with a gradient scaler).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from benchmark.data.imageset import REGIONS, ImageSet
from benchmark.errors import ConfigError
from segmentation.cache import CODE_VERSION, checkpoint_key, checkpoint_path, load_checkpoint, save_checkpoint
from segmentation.checks import check_config, check_device, usable_items
from segmentation.evaluation import score_label_maps, subject_groups
from segmentation.network import build_network, forward_padded
from segmentation.segmenter import Segmenter

log = logging.getLogger(__name__)
VAL_REGIONS = ("dice_WT", "dice_TC", "dice_ET")


def batch_indices(n: int, batch_size: int, iterations: int, generator: torch.Generator):
    """Yield `iterations` index batches: shuffled epochs over range(n), the last partial batch dropped."""
    size = min(batch_size, n)
    order = torch.empty(0, dtype=torch.long)
    for _ in range(iterations):
        if order.numel() < size:
            order = torch.randperm(n, generator=generator)
        yield order[:size]
        order = order[size:]


def random_crop(images: torch.Tensor, labels: torch.Tensor, size: list[int] | None, generator: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One random window of `size` (the last spatial sides, e.g. H, W of a volume too; None or larger than
    the image: no crop) cut
    from every item of the batch: training on patches costs less per step, and the fully convolutional
    network is still applied to whole images at validation and test time."""
    if not size:
        return images, labels
    spatial = images.shape[-len(size):]
    window = [min(int(s), int(n)) for s, n in zip(size, spatial, strict=True)]
    starts = [int(torch.randint(0, n - w + 1, (1,), generator=generator)) for n, w in zip(spatial, window, strict=True)]
    index = (..., *[slice(a, a + w) for a, w in zip(starts, window, strict=True)])
    return images[index], labels[index]


def random_flips(
    images: torch.Tensor, labels: torch.Tensor, axes: list[int], probability: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip each item along each axis in `axes` (spatial, negative from the end) with `probability`."""
    for axis in axes:
        flip = (torch.rand(images.shape[0], generator=generator) < probability).to(images.device)
        images = torch.where(flip.view(-1, *[1] * (images.ndim - 1)), images.flip(axis), images)
        labels = torch.where(flip.view(-1, *[1] * (labels.ndim - 1)), labels.flip(axis), labels)
    return images, labels


def regions_present(val: ImageSet) -> dict[str, np.ndarray]:
    """Per validation subject (in score order), whether its reference labels hold each validation region."""
    labels = val.labels.cpu()
    groups = subject_groups(val.subject_ids, val.slice_indices).values()
    return {column: np.array([bool(torch.isin(labels[items], torch.tensor(REGIONS[column[5:]])).any())
                              for items in groups]) for column in VAL_REGIONS}


def validation_dice(network: nn.Module, val: ImageSet, batch_size: int) -> dict[str, float]:
    """Mean Dice of WT, TC, ET over the validation subjects whose reference holds the region (NaN when
    none does). A subject without the region scores 1 for an empty prediction (BraTS convention); counted,
    such subjects made a model that predicts no tumour at all the "best" checkpoint."""
    network.eval()
    with torch.no_grad():
        device = next(network.parameters()).device
        predicted = torch.cat(
            [forward_padded(network, b.to(device)).argmax(1, keepdim=True).cpu() for b in val.images.split(batch_size)]
        )
    network.train()
    scores = score_label_maps(predicted, val, with_hd95=False)
    present = regions_present(val)
    return {column: float(scores[column][present[column]].mean()) if present[column].any() else math.nan
            for column in VAL_REGIONS}


def cpu_state(network: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the network's weights and buffers."""
    return {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}


def fit(network: nn.Module, train: ImageSet, val: ImageSet, cfg: DictConfig, seed: int, device: torch.device):
    """Run the optimisation; return (history, best state_dict on CPU, best iteration)."""
    t = cfg.training
    generator = torch.Generator().manual_seed(seed)
    loss_function = instantiate(cfg.loss, to_onehot_y=True, softmax=True)
    optimizer = instantiate(cfg.optimizer, params=network.parameters())
    scheduler = instantiate(cfg.scheduler, optimizer=optimizer) if cfg.scheduler else None
    use_amp = device.type == "cuda" and bool(t.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    images, labels = train.images.to(device), train.labels.to(device)
    history: dict[str, list[float]] = {"iteration": [], "loss": [], "val_iteration": []}
    history.update({f"val_{c}": [] for c in VAL_REGIONS})
    best_score, best_state, best_iteration = -1.0, cpu_state(network), 0
    network.train()
    for step, index in enumerate(batch_indices(len(train), int(t.batch_size), int(t.iterations), generator), 1):
        x, y = random_flips(images[index], labels[index], list(t.flip_axes), float(t.flip_probability), generator)
        x, y = random_crop(x, y, t.crop_size, generator)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            loss = loss_function(forward_padded(network, x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        history["iteration"].append(step)
        history["loss"].append(float(loss.detach()))
        if len(val) and (step % int(t.val_interval) == 0 or step == int(t.iterations)):
            dice = validation_dice(network, val, int(t.batch_size) * 2)
            history["val_iteration"].append(step)
            for column, value in dice.items():
                history[f"val_{column}"].append(value)
            scored = [value for value in dice.values() if math.isfinite(value)]
            score = sum(scored) / len(scored) if scored else 0.0  # no tumour in validation: the last weights
            if score >= best_score if not scored else score > best_score:
                best_score, best_state, best_iteration = score, cpu_state(network), step
    if not len(val):  # nothing to choose by: the final weights
        best_state, best_iteration = cpu_state(network), int(t.iterations)
    return history, best_state, best_iteration


def train_segmenter(
    train: ImageSet, val: ImageSet, cfg: DictConfig, seed: int, device: torch.device, cache_dir: Path | None
) -> Segmenter:
    """Train (or load from `cache_dir`) a segmenter on `train`, choosing weights by Dice on `val`.

    cfg: the `segmentation` config group (conf/segmentation/*.yaml). seed: any int; same seed, data and
    config give the same model. cache_dir: folder of cached checkpoints, None to always train.
    """
    cfg = OmegaConf.create(cfg) if not isinstance(cfg, DictConfig) else cfg
    device = check_device(device)
    check_config(cfg)
    if train.spatial_dims != int(cfg.spatial_dims):
        raise ConfigError(
            f"segmentation.spatial_dims={cfg.spatial_dims} but the data are {train.spatial_dims}D "
            f"(images {tuple(train.images.shape)}); pick the matching segmentation config or data.mode"
        )
    train, warnings_list = usable_items(train, "training set", warn_if_no_tumour=True)
    val, val_warnings = usable_items(val, "validation set", allow_empty=True)
    warnings_list += val_warnings
    key = checkpoint_key(train, val, cfg, seed, device)
    path = checkpoint_path(cache_dir, key) if cache_dir is not None else None
    payload = load_checkpoint(path, key) if path is not None else None
    cache_hit = payload is not None
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        network = build_network(cfg.network, train.spatial_dims, train.images.shape[1]).to(device)
        if not cache_hit:
            history, state, best_iteration = fit(network, train, val, cfg, seed, device)
    if not cache_hit:
        payload = {
            "key": key, "code_version": CODE_VERSION, "state_dict": state, "history": history,
            "info": {"train_seconds": time.perf_counter() - start, "best_iteration": best_iteration,
                     "n_train": len(train), "n_val": len(val), "device": device.type, "seed": seed},
        }
        if path is not None:
            save_checkpoint(path, payload)
    network.load_state_dict(payload["state_dict"])
    info: dict[str, Any] = {**payload["info"], "cache_key": key, "cache_hit": cache_hit,
                            "checkpoint": str(path) if path else None, "warnings": warnings_list}
    log.info("segmenter %s: %s (trained in %.1f s)", key[:12], "cache hit" if cache_hit else "trained",
             info["train_seconds"])
    return Segmenter(network.to(device), train.modalities, train.spatial_dims, payload["history"], info)

