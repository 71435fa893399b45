"""A tiny synthetic brain set (disc or ball 'brain' with a three-compartment tumour) for tests and previews.

Not a phantom of real anatomy (that is `benchmark.data`'s job): just enough structure for the perturbations
to act on: a brain mask, smooth tissue texture, a bright oedema shell (2) around an enhancing rim (3)
around a dark necrotic core (1), FLAIR-like. Deterministic in `seed`.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from benchmark.data.imageset import ImageSet


def synthetic_item(size: int, spatial_dims: int, rng: np.random.Generator, tumour: bool) -> tuple[np.ndarray, ...]:
    """(image, label, mask) arrays of shape (size,) * spatial_dims."""
    shape = (size,) * spatial_dims
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, size)] * spatial_dims, indexing="ij"))
    radius = np.sqrt((grid**2).sum(0))
    mask = radius < 0.8
    texture = gaussian_filter(rng.standard_normal(shape), sigma=size / 24) * size / 24
    image = np.where(mask, 0.45 + 0.06 * texture + 0.1 * np.cos(6 * radius), 0.0)
    label = np.zeros(shape, np.int64)
    if tumour:
        centre = np.zeros(spatial_dims)
        centre[-1] = rng.uniform(0.3, 0.45) * rng.choice([-1, 1])  # off the midline, left or right
        centre[0] = rng.uniform(-0.3, 0.3)
        r = rng.uniform(0.1, 0.16)
        wobble = 1 + 0.15 * gaussian_filter(rng.standard_normal(shape), sigma=size / 10) * size / 10
        distance = np.sqrt(((grid - centre.reshape(-1, *[1] * spatial_dims)) ** 2).sum(0)) / r * wobble
        label[distance < 1.6] = 2
        label[distance < 1.0] = 3
        label[distance < 0.6] = 1
        label[~mask] = 0
        intensity = {1: 0.25, 2: 0.8, 3: 0.65}
        for value, level in intensity.items():
            image = np.where(label == value, level + 0.05 * texture, image)
    image = np.clip(image + 0.01 * rng.standard_normal(shape) * mask, 0, 1)
    return image.astype(np.float32), label, mask


def synthetic_imageset(n: int = 6, size: int = 48, spatial_dims: int = 2, seed: int = 0,
                       tumour_free: tuple[int, ...] = ()) -> ImageSet:
    """`n` synthetic FLAIR-like items, each from its own subject; items in `tumour_free` have no lesion."""
    rng = np.random.default_rng(seed)
    items = [synthetic_item(size, spatial_dims, rng, i not in tumour_free) for i in range(n)]
    images, labels, masks = (torch.from_numpy(np.stack([it[k] for it in items])[:, None]) for k in range(3))
    return ImageSet(images=images, labels=labels, brain_masks=masks.bool(),
                    subject_ids=[f"syn{i:03d}" for i in range(n)],
                    slice_indices=[-1 if spatial_dims == 3 else 0] * n, modalities=("flair",),
                    spacing=(1.5,) * spatial_dims, meta={"source": "perturbations.synthetic"})
