"""MRI-like test images made inside the tests: a head with an exactly-zero background, grey and white matter
texture, dark ventricles and a bright lesion, in 2D or 3D, on several intensity scales.

Independent of the package: numpy and scipy only, so tests can compare the package against references
(scikit-image, MONAI, torchmetrics) on inputs that look like the data rather than on uniform noise.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

# intensity scale -> (map from [0, 1] to the scale, data range on that scale)
SCALES = {
    "unit": (lambda a: a, 1.0),
    "scanner_12bit": (lambda a: np.round(a * 4095.0), 4095.0),
}


def head(shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(image in [0, 1] float64, brain mask): zero outside an ellipsoid head, bright lesion, dark ventricles."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    radii = np.array([0.85, 0.7, 0.8][-len(shape):]).reshape(-1, *[1] * len(shape))
    brain = ((grid / radii) ** 2).sum(0) < 1
    texture = gaussian_filter(rng.standard_normal(shape), 2.0)
    texture /= np.abs(texture).max()
    white = gaussian_filter(rng.standard_normal(shape), 4.0) > 0
    image = np.where(white, 0.75, 0.5) + 0.08 * texture
    centre = np.zeros(len(shape))
    centre[-1] = 0.35
    lesion = np.sqrt(((grid - centre.reshape(-1, *[1] * len(shape))) ** 2).sum(0)) < 0.18
    ventricles = (np.abs(grid[-1]) < 0.12) & (np.abs(grid[-2]) < 0.3)
    image = np.where(lesion, 0.98, np.where(ventricles, 0.08, image))
    image = np.clip(image + 0.01 * rng.standard_normal(shape), 0.0, 1.0)
    return np.where(brain, image, 0.0), brain


def degraded(image: np.ndarray, brain: np.ndarray, seed: int) -> np.ndarray:
    """A plausible candidate: blurred, noisy and slightly darker inside the brain, zero background kept."""
    rng = np.random.default_rng(seed + 1000)
    candidate = 0.92 * gaussian_filter(image, 0.8) + 0.04 * rng.standard_normal(image.shape)
    return np.where(brain, np.clip(candidate, 0.0, 1.0), 0.0)


def pair(shape: tuple[int, ...], n: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(candidates, references, brain masks) as (n, 1, *shape) arrays in [0, 1]."""
    refs, cands, masks = [], [], []
    for k in range(n):
        image, brain = head(shape, seed + k)
        refs.append(image)
        cands.append(degraded(image, brain, seed + k))
        masks.append(brain)
    return tuple(np.stack(a)[:, None] for a in (cands, refs, masks))


def z_scored(images: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Z-score each item with its brain statistics (negative intensities inside), background left at 0."""
    out = np.zeros_like(images)
    for k in range(images.shape[0]):
        values = images[k][masks[k]]
        out[k] = np.where(masks[k], (images[k] - values.mean()) / values.std(), 0.0)
    return out


def blob_per_patch_masks(n: int, size: int = 64, patch: int = 16) -> np.ndarray:
    """(n, size, size) masks holding one 4x4 blob in the middle of each `patch` px patch: at half scale each patch
    holds one 2x2 blob, with one diagonal neighbour product (never both signs, so no NSS fit per patch), while all
    the blobs of the image together fit."""
    masks = np.zeros((n, size, size), dtype=bool)
    centre = patch // 2 - 2
    for i in range(size // patch):
        for j in range(size // patch):
            masks[:, patch * i + centre : patch * i + centre + 4, patch * j + centre : patch * j + centre + 4] = True
    return masks
