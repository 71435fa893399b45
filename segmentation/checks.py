"""Checks on what the segmentation stage is given: device, config and image sets, with actionable errors."""

from __future__ import annotations

import logging
import warnings

import torch
from omegaconf import DictConfig

from benchmark.data.imageset import LABEL_NAMES, ImageSet
from benchmark.errors import ConfigError, DataError

log = logging.getLogger(__name__)
PROTOCOLS = ("robustness", "utility")


def warn_and_record(message: str, record: list[str]) -> None:
    """Emit a user-visible warning, log it, and keep it in `record` for the report."""
    warnings.warn(message, UserWarning, stacklevel=3)
    log.warning(message)
    record.append(message)


def check_device(device: torch.device | str) -> torch.device:
    """The device as torch.device; a CUDA device that is not there is a ConfigError naming it."""
    device = torch.device(device)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index is not None and device.index >= count):
            raise ConfigError(
                f"segmentation was asked to run on {device} but this machine has {count} CUDA device(s) "
                f"(torch {torch.__version__}); use device=cpu or device=auto"
            )
    elif device.type != "cpu":
        raise ConfigError(f"segmentation supports cpu and cuda devices, not {device}")
    return device


def _positive_int(cfg: DictConfig, key: str) -> None:
    value = cfg.training[key]
    if value < 1:
        raise ConfigError(f"segmentation.training.{key} must be a positive integer, got {value!r}: the segmenter "
                          f"needs at least one (conf/segmentation/unet2d.yaml holds the default).")


def check_buildable(cfg: DictConfig) -> None:
    """Build the configured network, loss, optimiser and scheduler once on a one-channel input, so a setting
    they refuse (a negative learning rate, strides that do not match the channels) fails with the config,
    not in every Dice cell of the study."""
    from hydra.utils import instantiate

    from segmentation.network import build_network

    network = build_network(cfg.network, int(cfg.spatial_dims), in_channels=1)
    optimizer = None
    for part in ("loss", "optimizer", "scheduler"):
        if cfg.get(part) is None:
            continue
        try:
            if part == "loss":
                instantiate(cfg.loss, to_onehot_y=True, softmax=True)
            elif part == "optimizer":
                optimizer = instantiate(cfg.optimizer, params=network.parameters())
            else:
                instantiate(cfg.scheduler, optimizer=optimizer)
        except Exception as error:
            raise ConfigError(f"segmentation.{part} cannot be built from {dict(cfg[part])}: "
                              f"{type(error).__name__}: {error}; fix the values in conf/segmentation/ or on the "
                              f"command line (segmentation.{part}.KEY=VALUE).") from error


def check_config(cfg: DictConfig) -> None:
    """Validate the ranges of the segmentation config group before any work is done (its types and choices,
    structures, protocols and utility_families, are the schema's: benchmark.config_schema)."""
    if cfg.spatial_dims not in (2, 3):
        raise ConfigError(f"segmentation.spatial_dims must be 2 or 3, got {cfg.spatial_dims!r}")
    for key in ("iterations", "batch_size", "val_interval"):
        _positive_int(cfg, key)
    probability = cfg.training.flip_probability
    if not 0.0 <= float(probability) <= 1.0:
        raise ConfigError(f"segmentation.training.flip_probability must lie in [0, 1], got {probability}")
    axes = list(cfg.training.flip_axes)
    if any(not -int(cfg.spatial_dims) <= a <= -1 for a in axes):
        raise ConfigError(
            f"segmentation.training.flip_axes must be spatial axes counted from the end "
            f"(-1 .. -{cfg.spatial_dims}), got {axes}"
        )
    crop = cfg.training.crop_size
    if crop is not None and (not 1 <= len(list(crop)) <= int(cfg.spatial_dims) or any(c < 8 for c in crop)):
        raise ConfigError(f"segmentation.training.crop_size must be null or 1 to {cfg.spatial_dims} whole numbers "
                          f">= 8 (the window's last spatial sides), got {list(crop)}")


def usable_items(
    data: ImageSet, name: str, allow_empty: bool = False, warn_if_no_tumour: bool = False
) -> tuple[ImageSet, list[str]]:
    """The items of `data` with finite images; errors for no usable item or labels outside 0-3.

    Returns the set (items with NaN/Inf dropped, with a warning) and the warnings raised, for the report.
    With `warn_if_no_tumour` (training sets), label maps that are all empty are warned about: the model can
    then only learn background. `allow_empty` (validation sets) turns the no-usable-item error into a warning.
    """
    record: list[str] = []
    finite = torch.isfinite(data.images.flatten(1)).all(dim=1) if len(data) else torch.zeros(0, dtype=torch.bool)
    if not bool(finite.any()):
        message = (f"the {name} has no valid samples ({len(data)} items, none with finite images); "
                   "a perturbation that skipped or broke every item cannot be used for segmentation")
        if not allow_empty:
            raise DataError(message)
        warn_and_record(message + "; training keeps the final weights instead of the best validation ones", record)
        return data.subset(finite.nonzero().flatten()), record
    if not bool(finite.all()):
        dropped = (~finite).nonzero().flatten().tolist()
        warn_and_record(f"the {name} has {len(dropped)} item(s) with NaN/Inf images, left out: {dropped[:10]}", record)
        data = data.subset(finite.nonzero().flatten())
    bad = data.labels[(data.labels < 0) | (data.labels > max(LABEL_NAMES))].unique().tolist()
    if bad:
        raise DataError(f"the {name} has label values {bad[:10]} outside the BraTS labels {sorted(LABEL_NAMES)}")
    if warn_if_no_tumour and not bool(data.tumour_present.any()):
        warn_and_record(
            f"the {name} label maps are all empty ({len(data)} items, no tumour label): the segmenter can only "
            "learn to predict background, so its Dice is 0 on tumours (1 on tumour-free subjects)", record
        )
    return data, record
