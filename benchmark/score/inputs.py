"""The three folders of a scoring run (real, generated, training) read as ImageSets with the study's
preprocessing, and paired by name.

A folder is either flat (the image files themselves) or the study's generated-set layout (`images/` and
optional `labels/`); a separate mask folder is read as its labels. Reading goes through
`benchmark.data.generated.load_generated_set`, so PNG and 2D NIfTI slices are scaled to [0, 1] and resized
to `data.size` (logged), and 3D NIfTI volumes go through the full preprocessing of real data (`data.mode`
2d: `data.slices.per_subject` axial slices each; 3d: the volume).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from benchmark.data.generated import load_generated_set
from benchmark.data.imageset import ImageSet
from benchmark.data.prepare import modalities_of
from benchmark.errors import ConfigError, DataError


@dataclass
class ScoreInputs:
    """The real, generated and (optional) training sets, the generated items' real partners (-1: none)
    and the folders they came from."""

    real: ImageSet
    generated: ImageSet
    train: ImageSet | None
    reference_index: torch.Tensor
    folders: dict[str, str]

    @property
    def paired(self) -> bool:
        return bool((self.reference_index >= 0).any())


def item_names(images: ImageSet) -> list[str]:
    """One name per item: the file stem, with `:z<slice>` for a slice taken from a volume."""
    return [f"{s}:z{i}" if i >= 0 else s for s, i in zip(images.subject_ids, images.slice_indices, strict=True)]


def shape_template(data_cfg: DictConfig) -> ImageSet:
    """A one-item set carrying the target shape, modality and spacing that the reader resizes to."""
    size = [int(s) for s in data_cfg.size]
    spatial = size if data_cfg.mode == "3d" else size[-2:]
    fov = data_cfg.fov_mm
    if fov is None:
        spacing = (1.0,) * len(spatial)
    else:
        fovs = [float(f) for f in fov][-len(spatial):] if OmegaConf.is_list(fov) else [float(fov)] * len(spatial)
        spacing = tuple(f / s for f, s in zip(fovs, spatial, strict=True))
    modalities = modalities_of(data_cfg)[:1]
    shape = (1, 1, *spatial)
    return ImageSet(torch.zeros(shape), torch.zeros(shape, dtype=torch.long), torch.zeros(shape, dtype=torch.bool),
                    ["template"], [-1], modalities, spacing)


def _folder(value: str | None, key: str) -> Path | None:
    if value is None:
        return None
    folder = Path(str(value)).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{key}={value}: not a folder; pass {key}=/path/to/a/folder/of/images.")
    return folder.resolve()


def read_folder(folder: Path, masks: Path | None, data_cfg: DictConfig, template: ImageSet, seed: int,
                key: str) -> ImageSet:
    """The images of `folder` (flat or images/ + labels/), with the labels of `masks` when given."""
    images = folder / "images" if (folder / "images").is_dir() else folder
    labels = masks if masks is not None else (folder / "labels" if (folder / "labels").is_dir() else None)
    with tempfile.TemporaryDirectory(prefix="mribench-score-") as scratch:
        view = Path(scratch) / key
        view.mkdir()
        (view / "images").symlink_to(images, target_is_directory=True)
        if labels is not None:
            (view / "labels").symlink_to(labels, target_is_directory=True)
        try:
            loaded = load_generated_set(view, data_cfg, template, seed, what=f"{key} folder {images}")
        except DataError as error:
            message = str(error).replace(str(view / "images"), str(images)).replace(str(view / "labels"), str(labels))
            raise DataError(f"{key} folder: {message.replace(str(view), str(folder))}") from error
    loaded.meta["source"] = str(folder)
    return loaded


def pair_by_name(real: ImageSet, generated: ImageSet) -> torch.Tensor:
    """For each generated item, the position of the real item of the same name (-1 when none)."""
    positions = {name: i for i, name in enumerate(item_names(real))}
    return torch.tensor([positions.get(name, -1) for name in item_names(generated)], dtype=torch.long)


def _same_images(first: ImageSet, second: ImageSet) -> bool:
    return first.images.shape == second.images.shape and bool(torch.equal(first.images, second.images))


def read_inputs(cfg: DictConfig) -> ScoreInputs:
    """Read and check the folders named by `cfg.real`, `cfg.generated`, `cfg.train` and `cfg.masks`."""
    for key in ("real", "generated"):
        if OmegaConf.is_missing(cfg, key) or cfg.get(key) is None:
            raise ConfigError(f"{key}= is not set; pass {key}=/path/to/a/folder/of/images.")
    folders = {key: _folder(cfg.get(key), key) for key in ("real", "generated", "train")}
    for key in ("real", "generated"):
        if folders[key] is None:
            raise ConfigError(f"{key}= is not set; pass {key}=/path/to/a/folder/of/images.")
    for other, meant in (("real", "real images the model never saw"), ("train", "the model's training images")):
        if folders[other] is not None and folders[other] == folders["generated"]:
            raise ConfigError(f"{other}={cfg.get(other)} is the generated folder itself; {other} must hold {meant}, "
                              "not the model's outputs.")
    masks = {key: _folder(cfg.masks[key], f"masks.{key}") for key in folders}
    template = shape_template(cfg.data)
    seed = int(cfg.seed)
    sets = {key: read_folder(folder, masks[key], cfg.data, template, seed, key)
            for key, folder in folders.items() if folder is not None}
    if "train" in sets and _same_images(sets["train"], sets["generated"]):
        raise DataError(f"train={folders['train']} holds exactly the images of generated={folders['generated']}; "
                        "train must be the model's training images, not its outputs.")
    for key in ("real", "generated"):
        if len(sets[key]) < 4:
            raise DataError(f"{key}={folders[key]}: {len(sets[key])} image(s); scoring needs at least 4 in each of "
                            "real and generated (more than 50 for stable distribution metrics).")
    paired = str(cfg.paired).lower()
    if paired not in ("auto", "false"):
        raise ConfigError(f"paired={cfg.get('paired')}: choose auto (pair generated and real images by file name) "
                          "or false.")
    index = pair_by_name(sets["real"], sets["generated"]) if paired == "auto" else torch.full(
        (len(sets["generated"]),), -1, dtype=torch.long)
    return ScoreInputs(sets["real"], sets["generated"], sets.get("train"), index,
                       {key: str(folder) for key, folder in folders.items() if folder is not None})


def positions_by_subject(images: ImageSet) -> np.ndarray:
    """The subject of each item as a string array (a flat folder of slices: one subject per file)."""
    return np.asarray(images.subject_ids, dtype=str)
