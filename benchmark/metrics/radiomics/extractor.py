"""Radiomics feature vectors for batches of images: pyradiomics' feature classes on original and filtered images.

Defaults reproduce the FRD setting of Konz et al. (arXiv 2412.01496) with pyradiomics 3.0.1 conventions:
first order, GLCM, GLRLM, GLSZM and NGTDM features on the original image, on LoG images (sigma 2, 3, 4,
5 mm) and on the 2^d coif1 wavelet sub-bands. Grey levels are binned with a fixed width of 1/32 on our
[0, 1] images (pyradiomics' default binWidth 25 assumes CT-like units; the same width is used on every
derived image, as pyradiomics does). 2D: 79 features per image type, 711 in all. Feature names follow
pyradiomics (`original_glcm_Contrast`, `log-sigma-2-0-mm-3D_firstorder_Mean`, `wavelet-LH_ngtdm_Busyness`).
Computed on CPU in float64; GLSZM labels zones with scikit-image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from benchmark.errors import ConfigError, DataError
from benchmark.metrics.radiomics import first_order, glcm, glrlm, glszm, ngtdm
from benchmark.metrics.radiomics.discretise import DEFAULT_BIN_WIDTH, check_images_and_masks, discretise
from benchmark.metrics.radiomics.filters import laplacian_of_gaussian, wavelet_decompositions

FEATURE_CLASSES = {
    "firstorder": first_order.NAMES,
    "glcm": glcm.NAMES,
    "glrlm": glrlm.NAMES,
    "glszm": glszm.NAMES,
    "ngtdm": ngtdm.NAMES,
}
IMAGE_TYPES = ("original", "log", "wavelet")
DEFAULT_SIGMAS = (2.0, 3.0, 4.0, 5.0)


def derived_images(
    images: torch.Tensor, image_types: Sequence[str], sigmas: Sequence[float], spacing: tuple[float, ...]
) -> dict[str, torch.Tensor]:
    """Original and filtered (N, *spatial) float64 images keyed by pyradiomics' image-type names."""
    out = {}
    if "original" in image_types:
        out["original"] = images
    if "log" in image_types:
        for sigma in sigmas:
            out[f"log-sigma-{str(float(sigma)).replace('.', '-')}-mm-3D"] = laplacian_of_gaussian(
                images, sigma, spacing
            )
    if "wavelet" in image_types:
        for band, image in wavelet_decompositions(images).items():
            out[f"wavelet-{band}"] = image
    return out


def mask_box(masks: torch.Tensor) -> tuple[slice, ...]:
    """Index of the smallest box holding every item's mask (N, *spatial): outside it every level is 0, so
    texture and first-order features are the same on the box, and 3D volumes shrink by about half."""
    box = [slice(None)]
    for axis in range(1, masks.ndim):
        present = torch.nonzero(masks.any(dim=tuple(a for a in range(masks.ndim) if a != axis))).flatten()
        box.append(slice(int(present.min()), int(present.max()) + 1))
    return tuple(box)


def class_features(
    images: torch.Tensor, masks: torch.Tensor, levels: torch.Tensor, feature_class: str, spacing: tuple[float, ...],
    voxel_array_shift: float = 0.0,
) -> torch.Tensor:
    """(N, k) features of one class on float64 images (N, *spatial) with bool masks and their grey levels."""
    if feature_class == "firstorder":
        return first_order.first_order_features(images, masks, levels, spacing, voxel_array_shift)
    return {"glcm": glcm.glcm_features, "glrlm": glrlm.glrlm_features, "glszm": glszm.glszm_features,
            "ngtdm": ngtdm.ngtdm_features}[feature_class](levels)  # fmt: skip


def radiomics_features(
    images: torch.Tensor,
    masks: torch.Tensor | None = None,
    image_types: Sequence[str] = IMAGE_TYPES,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    bin_width: float = DEFAULT_BIN_WIDTH,
    spacing: Sequence[float] | None = None,
    feature_classes: Sequence[str] = tuple(FEATURE_CLASSES),
    batch_size: int = 32,
    voxel_array_shift: float = 0.0,
) -> tuple[torch.Tensor, list[str]]:
    """Radiomics features (N, d) float64 and their names for images (N, 1, H, W) or (N, 1, D, H, W).

    images: intensities (any range; bin_width is in the same units, default 1/32 for [0, 1] images).
    masks: bool, same shape, the region of interest per item (e.g. the brain mask); None = whole image.
    sigmas: LoG widths in mm; spacing: mm per spatial axis (default 1 mm, so sigmas are in voxels).
    batch_size: items processed at once (memory grows linearly with it).
    voxel_array_shift: pyradiomics' `voxelArrayShift`, added to intensities in Energy, TotalEnergy, RMS.
    """
    _validate(image_types, feature_classes, sigmas, bin_width, batch_size)
    images, masks = check_images_and_masks(images, masks)
    spatial_dims = images.ndim - 1
    spacing = tuple(float(s) for s in spacing) if spacing is not None else (1.0,) * spatial_dims
    if len(spacing) != spatial_dims:
        raise ConfigError(f"radiomics: spacing {spacing} needs one value per spatial axis ({spatial_dims})")
    chunks, names = [], []
    for start in range(0, images.shape[0], batch_size):
        batch_images, batch_masks = images[start : start + batch_size], masks[start : start + batch_size]
        columns, names = [], []
        box = mask_box(batch_masks)
        for type_name, derived in derived_images(batch_images, image_types, sigmas, spacing).items():
            derived, masks_in_box = derived[box], batch_masks[box]  # filters see the whole image, features the box
            levels = discretise(derived, masks_in_box, bin_width)
            for feature_class in feature_classes:
                columns.append(class_features(derived, masks_in_box, levels, feature_class, spacing, voxel_array_shift))
                names += [f"{type_name}_{feature_class}_{name}" for name in FEATURE_CLASSES[feature_class]]
        chunks.append(torch.cat(columns, dim=1))
    features = torch.cat(chunks, dim=0)
    _check_finite(features, names)
    return features, names


def _check_finite(features: torch.Tensor, names: list[str]) -> None:
    """Refuse undefined features (a mask with no two neighbouring voxels has no texture matrix)."""
    bad = ~torch.isfinite(features)
    if bad.any():
        items = torch.nonzero(bad.any(1)).flatten().tolist()
        columns = [names[c] for c in torch.nonzero(bad.any(0)).flatten().tolist()]
        raise DataError(
            f"radiomics: features {columns[:3]} are undefined for items {items[:10]}: their masks hold no two "
            "neighbouring voxels (or a filtered image is flat); use larger, connected masks"
        )


def _validate(image_types, feature_classes, sigmas, bin_width, batch_size) -> None:
    unknown = set(image_types) - set(IMAGE_TYPES)
    if unknown or not image_types:
        raise ConfigError(f"radiomics: image_types {list(image_types)} must be a non-empty subset of {IMAGE_TYPES}")
    unknown = set(feature_classes) - set(FEATURE_CLASSES)
    if unknown or not feature_classes:
        raise ConfigError(
            f"radiomics: feature_classes {list(feature_classes)} must be a subset of {list(FEATURE_CLASSES)}"
        )
    if "log" in image_types and (not sigmas or min(sigmas) <= 0):
        raise ConfigError(f"radiomics: LoG sigmas must be positive mm values, got {list(sigmas)}")
    if bin_width <= 0 or batch_size < 1:
        raise ConfigError(f"radiomics: bin_width ({bin_width}) must be > 0 and batch_size ({batch_size}) >= 1")


class RadiomicsExtractor:
    """Feature extractor for FRD, instantiable from Hydra (`_target_: benchmark.metrics.radiomics.RadiomicsExtractor`).

    `extractor(images, masks)` returns (N, d) float64 features; `extractor.names` lists them after a call.
    Parameters as in `radiomics_features`.
    """

    name = "radiomics"

    def __init__(
        self,
        image_types: Sequence[str] = IMAGE_TYPES,
        sigmas: Sequence[float] = DEFAULT_SIGMAS,
        bin_width: float = DEFAULT_BIN_WIDTH,
        spacing: Sequence[float] | None = None,
        feature_classes: Sequence[str] = tuple(FEATURE_CLASSES),
        batch_size: int = 32,
        voxel_array_shift: float = 0.0,
    ) -> None:
        self.image_types, self.sigmas = tuple(image_types), tuple(float(s) for s in sigmas)
        self.bin_width, self.spacing = float(bin_width), None if spacing is None else tuple(spacing)
        self.feature_classes, self.batch_size = tuple(feature_classes), int(batch_size)
        self.voxel_array_shift = float(voxel_array_shift)
        _validate(self.image_types, self.feature_classes, self.sigmas, self.bin_width, self.batch_size)
        self.names: list[str] = []

    def __call__(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        features, self.names = radiomics_features(
            images,
            masks,
            self.image_types,
            self.sigmas,
            self.bin_width,
            self.spacing,
            self.feature_classes,
            self.batch_size,
            self.voxel_array_shift,
        )
        return features
