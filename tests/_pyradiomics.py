"""Shared helpers for the radiomics tests: textured images with irregular masks, and pyradiomics as reference."""

from __future__ import annotations

import logging

import numpy as np
import torch
from scipy.ndimage import gaussian_filter


def textured_images(n: int, shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, *shape) float32 images in [0, 1] (smoothed noise of varied grain) and irregular bool masks."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    for k in range(n):
        image = gaussian_filter(rng.random(shape), 0.5 + 0.5 * (k % 4))
        image = (image - image.min()) / (image.max() - image.min())
        images.append(image)
        centre = rng.uniform(-0.2, 0.2, size=(len(shape),) + (1,) * len(shape))
        radius = rng.uniform(0.6, 0.9)
        mask = ((grid - centre) ** 2).sum(0) < radius**2
        mask &= rng.random(shape) > 0.05  # scattered holes
        masks.append(mask)
    to_tensor = torch.from_numpy
    return to_tensor(np.stack(images)[:, None].astype(np.float32)), to_tensor(np.stack(masks)[:, None])


def pyradiomics_features(
    image: np.ndarray, mask: np.ndarray, bin_width: float, image_types: dict, spacing: float = 1.0,
    voxel_array_shift: float = 0,
) -> dict[str, float]:
    """pyradiomics 3.0.1 features (first order, GLCM, GLRLM, GLSZM, NGTDM) of one 2D/3D image and bool mask."""
    import radiomics
    import SimpleITK as sitk
    from radiomics import featureextractor

    radiomics.setVerbosity(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor(binWidth=bin_width, voxelArrayShift=voxel_array_shift)
    extractor.disableAllFeatures()
    for feature_class in ("firstorder", "glcm", "glrlm", "glszm", "ngtdm"):
        extractor.enableFeatureClassByName(feature_class)
    extractor.enableImageTypes(**image_types)
    sitk_image = sitk.GetImageFromArray(image.astype(np.float64))
    sitk_image.SetSpacing((spacing,) * image.ndim)
    sitk_mask = sitk.GetImageFromArray(mask.astype(np.uint8))
    sitk_mask.CopyInformation(sitk_image)
    result = extractor.execute(sitk_image, sitk_mask)
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics")}


def assert_features_match(ours: np.ndarray, names: list[str], reference: dict[str, float], rtol: float, atol: float):
    """Every named feature within rtol (atol near 0) of pyradiomics; the message lists the worst offenders."""
    expected = np.array([reference[name] for name in names])
    assert np.isfinite(ours).all()
    bad = [
        (n, o, e) for n, o, e in zip(names, ours, expected, strict=True) if not np.isclose(o, e, rtol=rtol, atol=atol)
    ]
    assert not bad, f"{len(bad)} features differ from pyradiomics, e.g. {bad[:5]}"
