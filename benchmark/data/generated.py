"""Read a folder of images made by a generative model so it can be scored like a perturbed set.

Layout: `<folder>/images/<name>.{png,jpg,jpeg,nii,nii.gz,mha,mhd,nrrd,nhdr}` (suffixes in any case) and, when
the model was conditioned on masks, `<folder>/labels/<name>.{png,nii,nii.gz,mha,mhd,nrrd,nhdr}` (BraTS 2023 values
0-3), matched by the exact name; other files are listed in a warning and in the set's `meta["not_read"]` (except
the data files of detached MetaImage / NRRD headers). PNG and 2D volume files are slices already in display order;
they are scaled to [0, 1] (PNG by the maximum of their integer type, NIfTI / MetaImage / NRRD by the same
percentile clipping as real data) and resized to the reference's in-plane size when they differ. 3D volumes
(NIfTI, MetaImage, NRRD: read by `benchmark.data.nifti.load_volume`, one reorientation to RAS for every
format) go through the full preprocessing of real data (`data.*`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from skimage.io import imread
from skimage.transform import resize

from benchmark.data import preprocess
from benchmark.data.imageset import ImageSet
from benchmark.data.labels import MANY_VALUES, OUR_LABELS, outside_values_message
from benchmark.data.nifti import ITK_SUFFIXES, load_volume, volume_shape
from benchmark.data.prepare import load_subject, subject_items
from benchmark.data.readers import CaseFiles
from benchmark.errors import DataError

log = logging.getLogger(__name__)
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
VOLUME_SUFFIXES = (".nii.gz", ".nii", *ITK_SUFFIXES)
IMAGE_SUFFIXES = (*RASTER_SUFFIXES, *VOLUME_SUFFIXES)  # in any case: .PNG, .Nii.Gz, .MHA
LABEL_SUFFIXES = (".png", *VOLUME_SUFFIXES)  # lossless only: JPEG would blur label values
DETACHED_DATA_SUFFIXES = (".raw", ".zraw", ".raw.gz")  # voxel files of .mhd / .nhdr headers


def _suffix(path: Path) -> str | None:
    """The accepted suffix of a file name, lower case (None when not an accepted type)."""
    name = path.name.lower()
    return next((s for s in IMAGE_SUFFIXES if name.endswith(s) and len(name) > len(s)), None)


def _stem(path: Path) -> str | None:
    """The file name without its accepted suffix (exact case kept): `s1.v2.png` -> `s1.v2`."""
    suffix = _suffix(path)
    return path.name[: -len(suffix)] if suffix else None


def _is_raster(path: Path) -> bool:
    return _suffix(path) in RASTER_SUFFIXES


def files_by_stem(folder: Path, accepted: tuple[str, ...], what: str) -> tuple[dict[str, Path], list[str]]:
    """The files of `folder` by exact stem, and the names skipped (hidden files, other types). DataError
    when two files share a stem (`s1.png` and `s1.nii`), or when a file has a type this folder refuses."""
    found: dict[str, Path] = {}
    skipped = []
    for path in sorted(folder.iterdir()):
        suffix = _suffix(path)
        if path.name.startswith(".") or suffix is None or not path.is_file():
            skipped.append(path.name)
            continue
        if suffix not in accepted:
            raise DataError(f"{path}: {what} cannot be {suffix} files (lossy compression changes label values); save "
                            f"them as {', '.join(accepted)}.")
        stem = path.name[: -len(suffix)]
        if stem in found:
            raise DataError(f"{folder}: two {what} files named {stem}: {found[stem].name} and {path.name}; keep one.")
        found[stem] = path
    return found, [name for name in skipped if not _is_detached_data(name, found)]


def _is_detached_data(name: str, found: dict[str, Path]) -> bool:
    """Whether `name` is the voxel file of a detached header in `found` (`s1.raw` beside `s1.mhd`)."""
    suffix = next((s for s in DETACHED_DATA_SUFFIXES if name.lower().endswith(s)), None)
    header = found.get(name[: -len(suffix)]) if suffix else None
    return header is not None and header.name.lower().endswith((".mhd", ".nhdr"))


def read_png(path: Path, kind: str) -> np.ndarray:
    """A PNG (or JPEG) as one grey 2D array: images scaled by their integer type's maximum to [0, 1] (8-bit / 255,
    16-bit / 65535), labels as integers. Grey, grey+alpha, RGB and RGBA are accepted when the colour
    channels are equal and the alpha channel is fully opaque; anything else is refused (DataError)."""
    fmt = (_suffix(path) or ".png")[1:].upper()
    try:
        array = np.asarray(imread(path))
    except Exception as error:  # imageio/Pillow raise many types for a damaged file
        raise DataError(f"{path}: cannot read this {fmt} ({type(error).__name__}: {error}); the file is damaged or not "
                        f"a {fmt}: export it again.") from error
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{path}: {fmt} pixels of type {array.dtype}; save 8- or 16-bit integer PNGs.")
    if array.ndim == 3:
        channels = array.shape[-1]
        if channels in (2, 4):
            opaque = np.iinfo(array.dtype).max
            if (array[..., -1] != opaque).any():
                raise DataError(f"{path}: the {fmt} has transparent pixels (alpha below {opaque}); save it without an "
                                "alpha channel, or fully opaque.")
            array = array[..., :-1]
        if array.shape[-1] == 3 and not ((array[..., 0] == array[..., 1]) & (array[..., 1] == array[..., 2])).all():
            raise DataError(f"{path}: a colour {fmt} (its red, green and blue differ); an MRI slice must be grey: save "
                            "it as a greyscale PNG.")
        array = array[..., 0]
    if array.ndim != 2:
        raise DataError(f"{path}: expected a 2D {fmt} slice, got shape {array.shape}.")
    if kind == "image":
        return array.astype(np.float32) / np.iinfo(array.dtype).max
    return array.astype(np.int64)


def _read_slice(path: Path, kind: str) -> np.ndarray:
    """One 2D slice as float (images) or int (labels)."""
    if _is_raster(path):
        return read_png(path, kind)
    volume = load_volume(path, kind=kind)
    array = np.squeeze(volume.data)
    if array.ndim != 2:
        raise DataError(f"{path}: expected a 2D slice, got shape {volume.data.shape}.")
    return array


def describe_pngs(files: list[Path], size: tuple[int, int], what: str = "generated set") -> None:
    """Log what happens to the PNGs of a set: their bit depths (each scaled by its type's maximum) and the
    sizes resized to the reference's, so a rescaling is never silent."""
    depths, sizes = {}, {}
    for path in files:
        if not _is_raster(path):
            continue
        try:
            with Image.open(path) as image:
                mode, shape = image.mode, image.size[::-1]
        except Exception:  # a damaged file: read_png names it
            continue
        depths[mode] = depths.get(mode, 0) + 1
        if shape != size:
            sizes[shape] = sizes.get(shape, 0) + 1
    sixteen = sum(n for mode, n in depths.items() if mode.startswith("I"))
    if sixteen:
        log.warning("%s: %d of %d PNGs are 16-bit and are scaled by 65535 (8-bit ones by 255) to [0, 1]", what,
                    sixteen, sum(depths.values()))
    if sizes:
        log.warning("%s: PNGs of sizes %s resized to the reference's %s (linear, anti-aliased)", what,
                    ", ".join(f"{h}x{w} ({n})" for (h, w), n in sorted(sizes.items())), "x".join(map(str, size)))


def _slice_item(image_path: Path, label_path: Path | None, size: tuple[int, int], clip: list[float]) -> tuple:
    image = _read_slice(image_path, "image").astype(np.float32)
    labels = _read_slice(label_path, "label").astype(np.int64) if label_path else np.zeros(image.shape, np.int64)
    if labels.shape != image.shape:
        raise DataError(f"{label_path}: shape {labels.shape} does not match its image {image.shape}.")
    if not np.isfinite(image).all():
        raise DataError(f"{image_path}: the image holds NaN or Inf values.")
    values = set(np.unique(labels).tolist())
    if len(values) > MANY_VALUES:
        raise DataError(outside_values_message(label_path, values, set(OUR_LABELS)))
    if not values <= set(OUR_LABELS):
        raise DataError(f"{label_path}: label values {sorted(values - set(OUR_LABELS))} are outside 0-3 (BraTS 2023 "
                        "convention).")
    brain = preprocess.brain_mask_from_image(image[None, :, :, None])[:, :, 0] | (labels > 0)
    if not _is_raster(image_path):
        image = preprocess.normalise_intensity(image[None], brain, clip)[0]
    if image.shape != size:
        image = resize(image, size, order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)
        labels = resize(labels, size, order=0, anti_aliasing=False, preserve_range=True).astype(np.int64)
        brain = resize(brain, size, order=0, anti_aliasing=False).astype(bool)
    return image[None], labels, brain, -1


def load_generated_set(folder: Path, data_cfg: DictConfig, reference: ImageSet, seed: int,
                       what: str | None = None) -> ImageSet:
    """The generated images in `folder` as an ImageSet shaped like `reference` (labels zero when the
    folder has none; `meta["has_labels"]` says which). what: how log lines name the set (default
    "generated set <folder>")."""
    folder = Path(folder).expanduser()
    what = what or f"generated set {folder}"
    image_dir, label_dir = folder / "images", folder / "labels"
    if not image_dir.is_dir():
        raise DataError(f"{folder}: a generated set needs an images/ folder (and labels/ for its masks).")
    by_stem, skipped = files_by_stem(image_dir, IMAGE_SUFFIXES, "image")
    if not by_stem:
        raise DataError(f"{image_dir}: no image files ({', '.join(IMAGE_SUFFIXES)}, in any case).")
    has_labels = label_dir.is_dir()
    labels_by_stem, skipped_labels = files_by_stem(label_dir, LABEL_SUFFIXES, "label") if has_labels else ({}, [])
    unused = sorted(set(labels_by_stem) - set(by_stem))
    for where, names in ((image_dir, skipped), (label_dir, skipped_labels + [labels_by_stem[s].name for s in unused])):
        if names:
            log.warning("%s: %d file(s) in %s are not read: %s", what, len(names), where, ", ".join(names[:10]))
    files = list(by_stem.values())
    items, owners, no_slices = [], [], []
    size = tuple(reference.images.shape[-2:])
    describe_pngs(files, size, what)
    for stem, path in by_stem.items():
        label = None
        if has_labels:
            label = labels_by_stem.get(stem)
            if label is None:
                raise DataError(f"{path}: no label file named {stem} (.png, .nii or .nii.gz) in {label_dir}.")
        if _is_raster(path) or sum(n > 1 for n in volume_shape(path)) == 2:  # a 2D slice
            items.append(_slice_item(path, label, size, list(data_cfg.clip_percentiles)))
            owners.append(stem)
            continue
        modality = reference.modalities[0]  # a volume without labels/ is read as tumour-free (no Dice)
        case = CaseFiles(stem, {modality: path}, label, label_map={0: 0, 1: 1, 2: 2, 3: 3})
        subject = load_subject(case, [modality], data_cfg)
        new = subject_items(subject, data_cfg, np.random.default_rng([seed, 3, len(owners)]))
        if not new:
            no_slices.append(path.name)
        items += new
        owners += [case.subject_id] * len(new)
    if no_slices:
        log.warning("%s: %d volume(s) gave no slice under data.slices (policy=%s, min_brain_fraction=%s "
                    "of the field of view): %s", folder, len(no_slices), data_cfg.slices.policy,
                    data_cfg.slices.min_brain_fraction, ", ".join(no_slices[:10]))
    if not items:
        raise DataError(f"{folder}: no generated item: every volume gave no slice under data.slices (policy="
                        f"{data_cfg.slices.policy}, min_brain_fraction={data_cfg.slices.min_brain_fraction}).")
    images, labels, brains, indices = zip(*items, strict=True)
    if reference.spatial_dims != images[0].ndim - 1:
        raise DataError(f"{folder}: generated items are {images[0].ndim - 1}D but the study is "
                        f"{reference.spatial_dims}D.")
    log.info("%s: %d items%s", what, len(items), " with labels" if has_labels else "")
    not_read = {"images": skipped, "labels": skipped_labels + [labels_by_stem[s].name for s in unused],
                "volumes_without_slices": no_slices}
    return ImageSet(
        images=torch.from_numpy(np.stack(images)).float(),
        labels=torch.from_numpy(np.stack(labels)[:, None].astype(np.int64)),
        brain_masks=torch.from_numpy(np.stack(brains)[:, None].astype(bool)),
        subject_ids=owners, slice_indices=list(indices), modalities=reference.modalities,
        spacing=reference.spacing, meta={"source": str(folder), "has_labels": has_labels, "not_read": not_read},
    )
