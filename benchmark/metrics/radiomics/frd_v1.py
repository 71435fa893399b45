"""Radiomics features as frd-score 1.0.1 extracts them for FRDv1 (Konz, Osuala et al., arXiv 2412.01496).

frd-score runs pyradiomics with its `configs/extraction_2d.yaml` / `extraction_3d.yaml`. Per item:
1. the whole image (background included) is z-scored and multiplied by 100 (pyradiomics `normalize`,
   `normalizeScale: 100`; SimpleITK's Normalize, sample std);
2. image and mask are resampled to 2 mm (in-plane only for 2D) on a grid around the mask's bounding box
   plus 10 voxels, B-spline for the image and nearest neighbour for the mask (pyradiomics `resampleImage`);
   a 2D slice is handled as a one-slice volume of 1 mm thickness, as frd-score does;
3. features with binWidth 5 and voxelArrayShift 300 on the original image, the coif1 wavelet bands and,
   in 3D only, LoG sigma 2-5 mm (pyradiomics skips LoG on a one-slice image): first order, a 22-feature
   GLCM subset (no MCC, no SumAverage), GLRLM, GLSZM, NGTDM;
4. frd-score also keeps pyradiomics' numeric diagnostics as features (image mean/min/max before and after
   preprocessing, mask voxel and component counts, image mean/min/max in the resampled mask): 13 columns.
2D: 13 + 5 x 77 = 398 columns; 3D: 13 + 13 x 77 = 1014. Steps 1-2 use SimpleITK (the same filters
pyradiomics calls); step 3 is our batched torch radiomics; frd-score casts the features to float32, so do we.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from benchmark.errors import ConfigError, DataError
from benchmark.metrics.radiomics import glcm
from benchmark.metrics.radiomics.discretise import check_images_and_masks, discretise
from benchmark.metrics.radiomics.extractor import FEATURE_CLASSES, class_features, derived_images

GLCM_SUBSET = (
    "Autocorrelation", "JointAverage", "ClusterProminence", "ClusterShade", "ClusterTendency", "Contrast",
    "Correlation", "DifferenceAverage", "DifferenceEntropy", "DifferenceVariance", "JointEnergy", "JointEntropy",
    "Imc1", "Imc2", "Idm", "Idmn", "Id", "Idn", "InverseVariance", "MaximumProbability", "SumEntropy", "SumSquares",
)  # fmt: skip
NORMALIZE_SCALE, BIN_WIDTH, VOXEL_ARRAY_SHIFT, TARGET_MM, PAD = 100.0, 5.0, 300.0, 2.0, 10
LOG_SIGMAS = (2.0, 3.0, 4.0, 5.0)


def _sitk():
    try:
        import SimpleITK
    except ImportError as error:  # pragma: no cover - SimpleITK is a dependency of the dev extra and of torchio
        raise ConfigError("FRD convention frd_v1 needs SimpleITK (pip install SimpleITK) for pyradiomics' "
                          "normalisation and B-spline resampling; or set the FRD convention to native.") from error
    return SimpleITK


def _components(mask: np.ndarray) -> int:
    """Connected components with full connectivity (8 in 2D, 26 in 3D), as SimpleITK's FullyConnected."""
    return int(ndimage.label(mask, structure=np.ones((3,) * mask.ndim))[1])


def _crop(image, mask, box_low: np.ndarray, box_high: np.ndarray):
    """Crop both SimpleITK images to [low - PAD, high + PAD] (index order x, y, z), clipped to the image."""
    size = np.array(mask.GetSize())
    low = np.maximum(box_low - PAD, 0)
    high = np.minimum(box_high + PAD, size - 1)
    region = [slice(int(a), int(b) + 1) for a, b in zip(low, high, strict=True)]
    return image[region], mask[region]


def _resample(image, mask, target: Sequence[float]):
    """pyradiomics' resampleImage: the target grid starts at the input origin, covers the mask's bounding box
    plus PAD target voxels, B-spline for the image and nearest neighbour for the mask. A spacing of 0 (and
    any axis where the box is one voxel thick) keeps the mask's spacing."""
    sitk = _sitk()
    spacing, size = np.array(mask.GetSpacing()), np.array(mask.GetSize())
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.Execute(mask)
    box = np.array(shape.GetBoundingBox(1))
    dims = len(size)
    target = np.where(np.array(target) == 0, spacing, np.array(target, dtype=float))
    target = np.where(box[dims:] != 1, target, spacing)
    if np.allclose(np.array(image.GetSpacing()), target):
        return _crop(image, mask, box[:dims], box[:dims] + box[dims:] - 1)
    ratio = spacing / target
    low = np.maximum(np.floor((box[:dims] - 0.5) * ratio - PAD), 0)
    high = np.minimum(np.ceil((box[:dims] + box[dims:] - 0.5) * ratio + PAD), np.ceil(size * ratio) - 1)
    origin_index = 0.5 * (target - spacing) / spacing + low / ratio
    resampler = sitk.ResampleImageFilter()
    resampler.SetOutputSpacing(target.tolist())
    resampler.SetOutputDirection(mask.GetDirection())
    resampler.SetSize((high - low + 1).astype(int).tolist())
    resampler.SetOutputOrigin(mask.TransformContinuousIndexToPhysicalPoint(origin_index.tolist()))
    resampler.SetOutputPixelType(image.GetPixelID())
    resampler.SetInterpolator(sitk.sitkBSpline)
    resampled_image = resampler.Execute(image)
    resampler.SetOutputPixelType(mask.GetPixelID())
    resampler.SetInterpolator(sitk.sitkNearestNeighbor)
    return resampled_image, resampler.Execute(mask)


def preprocess(image: np.ndarray, mask: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray, list]:
    """One item (array axes z, y, x or y, x; spacing in the same order, mm) through steps 1-2.

    Returns the resampled float64 image, its bool mask (a 2D item stays 2D) and the 13 diagnostics.
    """
    sitk = _sitk()
    image = np.asarray(image, dtype=np.float32)  # frd-score reads every file as float32
    mask = np.asarray(mask, dtype=bool)
    two_d = image.ndim == 2
    diagnostics = [float(image.astype(np.float64).mean()), float(image.min()), float(image.max()),
                   float(mask.sum()), float(_components(mask))]  # fmt: skip
    volume, labels = (image[None], mask[None]) if two_d else (image, mask)
    sitk_image = sitk.GetImageFromArray(volume)
    sitk_image.SetSpacing([float(s) for s in spacing[::-1]] + ([1.0] if two_d else []))
    sitk_mask = sitk.GetImageFromArray(labels.astype(np.uint8))
    sitk_mask.CopyInformation(sitk_image)
    normalised = sitk.Normalize(sitk_image) * NORMALIZE_SCALE
    target = (TARGET_MM, TARGET_MM, 0.0) if two_d else (TARGET_MM,) * 3
    resampled, resampled_mask = _resample(normalised, sitk_mask, target)
    array = sitk.GetArrayFromImage(resampled).astype(np.float64)
    inside = sitk.GetArrayFromImage(resampled_mask) == 1
    if not inside.any():
        raise DataError(f"frd_v1: a mask of {int(mask.sum())} voxels is empty after resampling to {TARGET_MM:g} mm "
                        "(its voxels fall between the grid's nearest neighbours); use larger masks")
    diagnostics += [float(array.mean()), float(array.min()), float(array.max()), float(inside.sum()),
                    float(_components(inside)), float(array[inside].mean()), float(array[inside].min()),
                    float(array[inside].max())]  # fmt: skip
    if two_d:
        array, inside = array[0], inside[0]
    return array, inside, diagnostics


DIAGNOSTICS = [
    "Image-original_Mean", "Image-original_Minimum", "Image-original_Maximum", "Mask-original_VoxelNum",
    "Mask-original_VolumeNum", "Image-interpolated_Mean", "Image-interpolated_Minimum",
    "Image-interpolated_Maximum", "Mask-interpolated_VoxelNum", "Mask-interpolated_VolumeNum",
    "Mask-interpolated_Mean", "Mask-interpolated_Minimum", "Mask-interpolated_Maximum",
]  # fmt: skip


def _pad_stack(arrays: list[torch.Tensor]) -> torch.Tensor:
    """Stack (*spatial) tensors of different sizes, zero-padded at the far end of each axis."""
    shape = [max(sizes) for sizes in zip(*(a.shape for a in arrays), strict=True)]
    out = torch.zeros(len(arrays), *shape, dtype=arrays[0].dtype)
    for k, array in enumerate(arrays):
        out[(k, *[slice(0, s) for s in array.shape])] = array
    return out


def _class_block(images: torch.Tensor, masks: torch.Tensor, type_name: str) -> tuple[torch.Tensor, list[str]]:
    """One image type's features for a padded batch: first order, the GLCM subset, GLRLM, GLSZM, NGTDM."""
    dims = images.ndim - 1
    levels = discretise(images, masks, BIN_WIDTH)
    columns, names = [], []
    for feature_class, class_names in FEATURE_CLASSES.items():
        if feature_class == "glcm":
            keep = [k for k, name in enumerate(class_names) if name in GLCM_SUBSET]
            values, class_names = glcm.glcm_features(levels, with_mcc=False)[:, keep], [class_names[k] for k in keep]
        else:
            values = class_features(images, masks, levels, feature_class, (TARGET_MM,) * dims, VOXEL_ARRAY_SHIFT)
        columns.append(values)
        names += [f"{type_name}_{feature_class}_{name}" for name in class_names]
    return torch.cat(columns, dim=1), names


def frd_v1_features(
    images: torch.Tensor, masks: torch.Tensor, spacing: Sequence[float] | None = None, batch_size: int = 32
) -> tuple[torch.Tensor, list[str]]:
    """FRDv1 features (N, d) float64 (values rounded to float32 as frd-score does) and their names.

    images: (N, 1, H, W) or (N, 1, D, H, W), any intensity range (each image is normalised on its own);
    masks: bool, same shape (the region whose features are taken); spacing: mm per spatial axis (default 1).
    Each item is preprocessed and filtered on its own grid (filters see pyradiomics' crop and borders), then
    the filtered images are zero-padded to a common size with the mask off and their features batched.
    """
    if images.ndim not in (4, 5) or masks is None or masks.shape != images.shape:
        raise ConfigError(f"frd_v1: images (N, 1, H, W) or (N, 1, D, H, W) and masks of the same shape are needed, "
                          f"got {tuple(images.shape)} and {None if masks is None else tuple(masks.shape)}")
    check_images_and_masks(images, masks)
    dims = images.ndim - 2
    spacing = tuple(float(s) for s in spacing) if spacing is not None else (1.0,) * dims
    image_types = ("original", "wavelet") if dims == 2 else ("original", "log", "wavelet")
    images_np, masks_np = images[:, 0].detach().cpu().numpy(), masks[:, 0].detach().cpu().bool().numpy()
    rows, names = [], []
    for start in range(0, len(images_np), batch_size):
        derived, inside, diagnostics = {}, [], []
        chunk = slice(start, start + batch_size)
        for image, mask in zip(images_np[chunk], masks_np[chunk], strict=True):
            array, item_mask, item_diagnostics = preprocess(image, mask, spacing)
            grid = (TARGET_MM,) * dims
            filtered = derived_images(torch.from_numpy(array)[None], image_types, LOG_SIGMAS, grid)
            for type_name, filtered_image in filtered.items():
                derived.setdefault(type_name, []).append(filtered_image[0])
            inside.append(torch.from_numpy(item_mask))
            diagnostics.append(item_diagnostics)
        batch_masks = _pad_stack(inside)
        blocks = [torch.tensor(diagnostics, dtype=torch.float64)]
        names = [f"diagnostics_{name}" for name in DIAGNOSTICS]
        for type_name, filtered_images in derived.items():
            values, block_names = _class_block(_pad_stack(filtered_images), batch_masks, type_name)
            blocks.append(values)
            names += block_names
        rows.append(torch.cat(blocks, dim=1))
    features = torch.cat(rows)
    if not torch.isfinite(features).all():
        raise DataError("frd_v1: radiomics features are undefined for some items (a mask with no two neighbouring "
                        "voxels after resampling to 2 mm); use larger masks")
    return features.float().double(), names
