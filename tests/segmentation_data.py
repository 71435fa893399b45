"""Synthetic 2D slices for the segmentation tests: a bright-rimmed disc of brain holding a layered tumour.

Not a phantom of the real data: just enough structure (oedema ring, enhancing rim, necrotic core, each
with its own FLAIR-like intensity) for a small UNet to learn in a few dozen steps.
"""

from __future__ import annotations

import torch

from benchmark.data.imageset import ImageSet


def synthetic_slices(n_subjects: int, per_subject: int, size: int = 64, seed: int = 0) -> ImageSet:
    """`n_subjects * per_subject` slices (size x size); about two thirds of them contain a tumour."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    images, labels, masks, subjects, slices = [], [], [], [], []
    for s in range(n_subjects):
        for k in range(per_subject):
            c = size / 2 + (torch.rand(2, generator=g) - 0.5) * size * 0.05
            brain = ((yy - c[0]) ** 2 + (xx - c[1]) ** 2).sqrt() < size * 0.42
            image = 0.35 * brain + 0.05 * torch.rand(size, size, generator=g) * brain
            label = torch.zeros(size, size, dtype=torch.long)
            if torch.rand(1, generator=g) < 0.67:
                t = size / 2 + (torch.rand(2, generator=g) - 0.5) * size * 0.3
                r = size * (0.08 + 0.08 * torch.rand(1, generator=g))
                d = ((yy - t[0]) ** 2 + (xx - t[1]) ** 2).sqrt()
                label[d < r] = 2
                label[d < 0.6 * r] = 3
                label[d < 0.35 * r] = 1
                image = torch.where(label == 2, 0.75, image)
                image = torch.where(label == 3, 0.95, image)
                image = torch.where(label == 1, 0.55, image)
            images.append(image.clamp(0, 1))
            labels.append(label)
            masks.append(brain)
            subjects.append(f"sub-{s:02d}")
            slices.append(10 + 3 * k)
    return ImageSet(
        images=torch.stack(images)[:, None], labels=torch.stack(labels)[:, None],
        brain_masks=torch.stack(masks)[:, None], subject_ids=subjects, slice_indices=slices,
        modalities=("flair",), spacing=(1.5, 1.5),
    )
