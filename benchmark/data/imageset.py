"""The unit every stage exchanges: a batch of preprocessed images with their labels and brain masks.

Label convention (BraTS 2023): 0 background, 1 necrotic / non-enhancing core (NCR), 2 peritumoural
oedema (ED), 3 enhancing tumour (ET). BraTS 2021's label 4 and MSD Task01's order are mapped onto it by
the readers. Evaluation regions follow the BraTS challenge: whole tumour, tumour core, enhancing tumour.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

LABEL_NAMES: dict[int, str] = {0: "background", 1: "necrotic_core", 2: "oedema", 3: "enhancing"}
REGIONS: dict[str, tuple[int, ...]] = {"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)}


@dataclass
class ImageSet:
    """Images in [0, 1] with integer labels and boolean brain masks, 2D slices or 3D volumes.

    Shapes: images (N, C, *spatial) float32, labels (N, 1, *spatial) integer (uint8 from the data stage:
    a quarter of the memory of int64 at BraTS scale; other sets may hold int64), brain_masks
    (N, 1, *spatial) bool, where spatial is (H, W) for slices and (D, H, W) for volumes.
    `subject_ids[i]` names the subject item i comes from; `slice_indices[i]` is its axial slice index
    in the preprocessed volume, or -1 for a whole volume. `spacing` is in mm per spatial axis.
    """

    images: torch.Tensor
    labels: torch.Tensor
    brain_masks: torch.Tensor
    subject_ids: list[str]
    slice_indices: list[int]
    modalities: tuple[str, ...]
    spacing: tuple[float, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        spatial = tuple(self.images.shape[2:])
        if self.images.ndim not in (4, 5):
            raise ValueError(f"images must be (N, C, H, W) or (N, C, D, H, W), got {tuple(self.images.shape)}")
        for name, tensor in (("labels", self.labels), ("brain_masks", self.brain_masks)):
            if tensor.shape != (n, 1, *spatial):
                raise ValueError(f"{name} shape {tuple(tensor.shape)} does not match images {tuple(self.images.shape)}")
        if len(self.subject_ids) != n or len(self.slice_indices) != n:
            raise ValueError("subject_ids and slice_indices need one entry per item")
        if self.images.shape[1] != len(self.modalities):
            raise ValueError(f"{self.images.shape[1]} channels but modalities {self.modalities}")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def spatial_dims(self) -> int:
        """2 for slices, 3 for volumes."""
        return self.images.ndim - 2

    @property
    def tumour_present(self) -> torch.Tensor:
        """(N,) bool: whether each item contains any tumour label."""
        return self.labels.flatten(1).gt(0).any(dim=1)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> ImageSet:
        """The items at `indices`, in that order (repeats allowed)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return replace(
            self,
            images=self.images[idx],
            labels=self.labels[idx],
            brain_masks=self.brain_masks[idx],
            subject_ids=[self.subject_ids[i] for i in idx.tolist()],
            slice_indices=[self.slice_indices[i] for i in idx.tolist()],
        )

    def with_images(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> ImageSet:
        """A copy with new images (and optionally labels), everything else shared."""
        return replace(self, images=images, labels=self.labels if labels is None else labels)

    def to(self, device: torch.device | str) -> ImageSet:
        """The same set with its tensors on `device`."""
        return replace(
            self,
            images=self.images.to(device),
            labels=self.labels.to(device),
            brain_masks=self.brain_masks.to(device),
        )

    @staticmethod
    def concatenate(sets: Sequence[ImageSet]) -> ImageSet:
        """Join sets of the same modalities and spatial shape, in order."""
        first = sets[0]
        return replace(
            first,
            images=torch.cat([s.images for s in sets]),
            labels=torch.cat([s.labels for s in sets]),
            brain_masks=torch.cat([s.brain_masks for s in sets]),
            subject_ids=[sid for s in sets for sid in s.subject_ids],
            slice_indices=[i for s in sets for i in s.slice_indices],
        )


def content_fingerprint(sets: Sequence[ImageSet]) -> str:
    """16 hex digits of the SHA-256 of the sets' arrays, item names and geometry: what a study cell reads.

    Results cached under this fingerprint are recomputed whenever the prepared data change, whatever
    changed them (edited files, another preprocessing, a regenerated phantom), not only the data config.
    """
    digest = hashlib.sha256()
    for image_set in sets:
        for tensor in (image_set.images, image_set.labels, image_set.brain_masks):
            array = tensor.detach().cpu().contiguous().numpy()
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.reshape(-1).view(np.uint8))  # the bytes of tobytes(), without a copy
        digest.update(repr((image_set.subject_ids, image_set.slice_indices, image_set.modalities,
                            image_set.spacing)).encode())
    return digest.hexdigest()[:16]


@dataclass
class PreparedData:
    """The dataset after preprocessing, split by subject into train, validation and test.

    `fingerprint` hashes the content of the three splits (see `content_fingerprint`); study cells key
    their results on it.
    """

    train: ImageSet
    val: ImageSet
    test: ImageSet
    summary: dict[str, Any]
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = content_fingerprint((self.train, self.val, self.test))
