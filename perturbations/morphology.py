"""Localised morphological edits of the tumour: remove, shrink / grow, move, deform, swap texture.

The heart of the study: do metrics notice that the tumour changed while the rest of the image did not?
Every edit touches only the voxels within `margin` voxels of the lesion before or after the edit (tested).
`label: follow` edits the label map with the image; `label: keep` leaves the original label, so the image
no longer matches its mask (as when a mask-conditioned generator errs); the image is the same in both
modes. An item without a lesion is passed through and listed in `PerturbedSet.skipped`.
Healthy tissue for removed parts comes from `perturbations.fill` (mirror about the estimated mid-sagittal
line, exemplar fallback, intensity and texture matched, Poisson-blended). Runs on the CPU (scipy); tensors
come back on the item's device.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt, gaussian_filter, map_coordinates
from scipy.ndimage import label as connected_components

from benchmark.data.imageset import ImageSet
from benchmark.errors import ConfigError
from perturbations.base import SamplePerturbation, at_severity, end_points
from perturbations.fill import (
    clearance,
    fill_healthy,
    lesion_support,
    match_intensity,
)
from perturbations.lesion_ops import (
    Fill,
    centroid,
    draw_lesion,
    equivalent_radius,
    identity_grid,
    paste_lesion,
    soft_mask,
    vacate,
)

LABEL_MODES = ("keep", "follow")


class TumourEdit(SamplePerturbation):
    """Base of the tumour edits: converts the item to numpy, skips lesion-free items, applies the label mode.

    label: "follow" (the label is edited with the image) or "keep" (the original label is returned).
    margin: voxels around the lesion (before or after the edit) outside which the image is unchanged,
    integer >= 2; the blending feather is margin / 2. Default 6.
    """

    family = "morphological"
    _fill: Fill = staticmethod(fill_healthy)  # what replaces removed tissue; `with_fill` swaps it

    def __init__(self, label: str = "follow", margin: int = 6) -> None:
        super().__init__()
        if label not in LABEL_MODES:
            raise ConfigError(f"parameter 'label' must be 'keep' or 'follow', got {label!r}")
        self.label = label
        self.margin = int(end_points("margin", margin, low=2, integer=True)[0])

    def stream(self) -> str:
        """The class and end points, not the name or label mode: the keep and follow variants of an edit draw
        the same random numbers, so their images are identical and only their labels differ."""
        settings = sorted((k, v) for k, v in vars(self).items() if k not in ("name", "label") and k[0] != "_")
        return f"{type(self).__name__}:{settings}"

    @property
    def feather(self) -> float:
        return self.margin / 2

    def with_fill(self, fill: Fill) -> TumourEdit:
        """A copy of this edit whose removed tissue is filled by `fill` (e.g. the learned inpainter) instead of
        `fill.fill_healthy`; its random stream, and so the removed part, stay the same."""
        edit = copy.copy(self)
        edit._fill = fill
        return edit

    def describe(self, severity: int) -> dict[str, Any]:
        return {**super().describe(severity), "label": self.label, "margin_voxels": self.margin}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        labels = label[0].cpu().numpy()
        if not (labels > 0).any():
            return None
        edited, new_labels = self.edit(image.cpu().numpy(), labels, mask[0].cpu().numpy().astype(bool), params, rng)
        out_labels = new_labels if self.label == "follow" else labels
        return torch.from_numpy(edited).to(image), torch.from_numpy(out_labels[None]).to(label)

    def edit(self, image: np.ndarray, label: np.ndarray, brain: np.ndarray, params: dict[str, Any],
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(edited image (C, *spatial), edited label (*spatial)) for one item with a lesion."""
        raise NotImplementedError


class TumourRemove(TumourEdit):
    """Erase a growing share of the tumour, from its border inwards, and fill it with the patient's healthy tissue.

    Severity is the fraction of lesion volume removed (clinical degree, not a geometric cut): the voxels
    nearest the lesion's border go first (distance to the border plus the item's fixed smooth jitter of about
    a voxel, so the new border is irregular like a real one), so oedema goes before the core and compartments
    stay nested; exactly round(fraction x lesion voxels) are removed. The removed part with its FLAIR halo
    (`fill.clearance`, within margin - 1 voxels) is filled by `fill.fill_healthy` (mirror, exemplar, Poisson).
    fraction: 0..1; default 0.2 -> 1.0 (all of it). Before, a plane swept the lesion (a cut no generator makes).
    """

    def __init__(self, fraction: Any = (0.2, 1.0), label: str = "follow", margin: int = 6) -> None:
        super().__init__(label, margin)
        self.fraction = end_points("fraction", fraction, low=0.0, high=1.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"fraction_removed": at_severity(self.fraction, severity)}

    def edit(self, image, label, brain, params, rng):
        lesion = label > 0
        removed = peel(lesion, params["fraction_removed"], rng)
        remaining = lesion & ~removed
        region = clearance(image, brain, lesion, removed, self.margin - 1) & ~remaining
        return self._fill(image, brain, lesion, region), np.where(removed, 0, label)


def peel(lesion: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """The round(fraction x size) lesion voxels nearest its border (jittered by smooth noise of ~1 voxel)."""
    jitter = gaussian_filter(rng.standard_normal(lesion.shape), 2.0)
    jitter *= 1.0 / max(float(jitter.std()), 1e-12)
    depth = distance_transform_edt(lesion) + jitter
    points = np.argwhere(lesion)
    count = int(np.rint(fraction * len(points)))
    order = np.argsort(depth[tuple(points.T)], kind="stable")[:count]
    removed = np.zeros_like(lesion)
    removed[tuple(points[order].T)] = True
    return removed


class TumourResize(TumourEdit):
    """Shrink or grow the tumour about its centroid, every compartment with it.

    Each lesion (connected component; image and labels) is rescaled by `scale` about its centre of mass and
    redrawn on healthy tissue, so the necrotic core, enhancing rim and oedema keep their proportions and
    intensities (a pure erosion would erase the thin rim first).
    scale: factor, 0.05..5; tumour_shrink 0.85 -> 0.4, tumour_grow 1.15 -> 1.6.
    """

    def __init__(self, scale: Any = (0.85, 0.4), label: str = "follow", margin: int = 6) -> None:
        super().__init__(label, margin)
        self.scale = end_points("scale", scale, low=0.05, high=5.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"scale": at_severity(self.scale, severity)}

    def edit(self, image, label, brain, params, rng):
        grid = identity_grid(label.shape)
        components, count = connected_components(label > 0)
        edited = vacate(image, brain, label > 0, label > 0, self.margin - 1, self._fill)
        new_label = np.zeros_like(label)
        support = lesion_support(image, brain, label > 0, self.margin - 1)
        for k in range(1, count + 1):  # each tumour about its own centre
            part = np.where(components == k, label, 0)
            centre = centroid(part > 0).reshape(-1, *[1] * label.ndim)
            edited, drawn = draw_lesion(edited, image, part, brain, centre + (grid - centre) / params["scale"],
                                        self.feather, support)
            new_label = np.where(drawn > 0, drawn, new_label)
        return edited, new_label


class TumourMove(TumourEdit):
    """Move the tumour to another place in the brain.

    distance: displacement as a fraction of the brain's equivalent diameter, 0..1; default 0.05 -> 0.35.
    The direction is the first of the item's 16 fixed random directions that keeps the lesion inside the
    brain at the longest scheduled distance (the one keeping most of it when none does), so every level moves
    the lesion along the same path.
    """

    def __init__(self, distance: Any = (0.05, 0.35), label: str = "follow", margin: int = 6) -> None:
        super().__init__(label, margin)
        self.distance = end_points("distance", distance, low=0.0, high=1.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"distance": at_severity(self.distance, severity)}

    def edit(self, image, label, brain, params, rng):
        lesion = label > 0
        points = np.argwhere(lesion)
        diameter = 2 * equivalent_radius(brain)
        directions = rng.standard_normal((16, label.ndim))
        best, best_inside = None, -1.0
        for direction in directions:  # chosen at the longest scheduled distance: one path for all levels
            shift = np.round(max(self.distance) * diameter * direction / np.linalg.norm(direction)).astype(int)
            moved = points + shift
            valid = np.all((moved >= 0) & (moved < np.array(label.shape)), axis=1)
            inside = float(brain[tuple(moved[valid].T)].sum()) / len(points)
            if inside > best_inside:
                best, best_inside = direction / np.linalg.norm(direction), inside
            if inside >= 0.999:
                break
        shift = np.round(params["distance"] * diameter * best)
        coords = identity_grid(label.shape) - shift.reshape(-1, *[1] * label.ndim)
        return paste_lesion(image, label, brain, coords, self.feather, fill=self._fill)


class TumourDeform(TumourEdit):
    """Deform the tumour's shape with a smooth random displacement field confined to its neighbourhood.

    The field is the item's fixed Gaussian-smoothed noise (smoothing about half the lesion radius, so it
    varies across the lesion and changes its shape), full strength inside the lesion and fading to zero within
    `margin` voxels outside it. The lesion (with its halo) is lifted out, the place refilled with healthy tissue
    (`fill.fill_healthy`, as for move) and the lesion drawn back resampled through the field, so a part it
    vacates shows healthy tissue, not stretched halo (before, the whole neighbourhood was warped).
    amplitude: peak displacement as a fraction of the lesion's equivalent radius, >= 0; default 0.1 -> 0.6;
    capped at 0.9 x margin voxels to avoid folding.
    """

    def __init__(self, amplitude: Any = (0.1, 0.6), label: str = "follow", margin: int = 6) -> None:
        super().__init__(label, margin)
        self.amplitude = end_points("amplitude", amplitude, low=0.0, high=5.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"amplitude": at_severity(self.amplitude, severity)}

    def edit(self, image, label, brain, params, rng):
        lesion = label > 0
        radius = equivalent_radius(lesion)
        field = np.stack([gaussian_filter(rng.standard_normal(label.shape), max(1.0, radius / 2))
                          for _ in range(label.ndim)])
        field /= max(float(np.abs(field).max()), 1e-12)
        window = soft_mask(lesion, self.margin - 1)
        amplitude = min(params["amplitude"] * radius, 0.9 * self.margin)
        coords = identity_grid(label.shape) - amplitude * field * window
        return paste_lesion(image, label, brain, coords, self.feather, fill=self._fill)


class TumourTextureSwap(TumourEdit):
    """Give the tumour another patient's tumour texture, compartment by compartment.

    Each compartment (necrotic core, oedema, enhancing rim) takes the texture of the same compartment of
    another subject's tumour in the set or the training set (first in the item's fixed random order; another
    slice of the same subject when no other subject has it; left as is when nothing has it): the donor
    compartment, taken whole, is scaled onto the region's bounding box (`resample_texture`; its own voxels only),
    its intensities mapped (median, interquartile range) onto the item's own compartment, so brightness stays and
    texture changes; the result is blended with the original by `strength` (half of it on the lesion's outermost
    voxels). Shape and label unchanged in both label modes. strength: 0..1; default 0.2 -> 1.0. Before, ranks
    were mapped onto another compartment's values (salt-and-pepper noise), then the donor was copied in up to
    16 translated tiles, whose seams showed as a checkerboard on real patients.
    """

    def __init__(self, strength: Any = (0.2, 1.0), label: str = "follow", margin: int = 6) -> None:
        super().__init__(label, margin)
        self.strength = end_points("strength", strength, low=0.0, high=1.0)
        self._donors: tuple[ImageSet, ImageSet | None, Iterator[int]] | None = None

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"strength": at_severity(self.strength, severity)}

    def apply(self, clean: ImageSet, severity: int, seed: int, train: ImageSet | None = None):
        """As every sample perturbation, with the set (and the training set, when given) as the donor pool."""
        self._donors = (clean, train, iter(range(len(clean))))  # the base class edits the items in order
        try:
            return super().apply(clean, severity, seed, train)
        finally:
            self._donors = None

    def edit(self, image, label, brain, params, rng):
        clean, train, order = self._donors if self._donors is not None else (None, None, iter(()))
        index = next(order, None)
        subject = clean.subject_ids[index] if clean is not None and index is not None else None
        lesion = label > 0
        original = image[:, lesion].astype(np.float64)
        total, norm = np.zeros_like(original), np.zeros(original.shape[1])
        for compartment in (int(v) for v in np.unique(label) if v > 0):
            region = label == compartment
            donor = pick_donor([(clean, index), (train, None)], subject, compartment, rng, min(20, region.sum()),
                               span(region))
            values = original
            if donor is not None:  # sampled over the whole lesion, so neighbouring compartments can overlap softly
                copied = resample_texture(*donor, region, lesion)
                values = match_intensity(copied, copied[:, region[lesion]], image[:, region])
            # compartments meet over about a voxel, as in the scan (a hard step between them looked pasted)
            share = gaussian_filter(region.astype(np.float64), 0.8)[lesion]
            total += share * values
            norm += share
        swapped = image.astype(np.float64).copy()
        swapped[:, lesion] = total / np.maximum(norm, 1e-12)
        # strength inside the lesion, half of it on its outermost voxels: a soft 1-voxel edge to healthy tissue
        weight = params["strength"] * np.clip(distance_transform_edt(lesion) / 2, 0.0, 1.0)
        return (weight * swapped + (1 - weight) * image).astype(image.dtype), label.copy()


def pick_donor(pools: list[tuple[ImageSet | None, int | None]], subject: str | None, compartment: int,
               rng: np.random.Generator, min_voxels: int = 20, extent: np.ndarray | None = None):
    """(image (C, *spatial), region) of the same compartment in another subject's item (the set first, then the
    training set; another slice of the same subject when no other subject has it) with at least `min_voxels`
    voxels of it, or None. Given the target's bounding-box `extent` (voxels per axis), a donor whose compartment
    spans at least that much is preferred: a smaller one must be magnified, which blurs its texture."""
    holders = []
    for rank, (pool, own) in enumerate(pools):
        if pool is None:
            continue
        for j in rng.permutation(len(pool)).tolist():
            region = pool.labels[j, 0] == compartment
            if j != own and int(region.sum()) >= min_voxels:
                small = extent is not None and bool(np.any(span(region.cpu().numpy()) < extent))
                holders.append((pool.subject_ids[j] == subject, small, rank, pool, j))
    if not holders:
        return None
    *_, pool, j = min(holders, key=lambda h: h[:3])  # stable: the first in the random order wins
    return pool.images[j].cpu().numpy().astype(np.float64), (pool.labels[j, 0] == compartment).cpu().numpy()


def span(mask: np.ndarray) -> np.ndarray:
    """Bounding-box size of `mask` per axis, voxels."""
    low, high = bounding_box(mask)
    return high - low + 1


def resample_texture(donor: np.ndarray, donor_region: np.ndarray, region: np.ndarray,
                     where: np.ndarray | None = None) -> np.ndarray:
    """(C, n) donor values for the n voxels of `where` (default `region`): the donor compartment as one piece,
    its bounding box centred on the region's and scaled (isotropically, magnified only: <= 1 donor voxel per
    target voxel) so it covers the region's bounding box, sampled linearly. Donor voxels outside the donor
    compartment are first refilled from the compartment alone (`donor_only`), so no healthy donor tissue leaks
    in. One coherent piece instead of the old tiles, whose seams showed as a checkerboard on real patients."""
    target_lo, target_hi = bounding_box(region)
    donor_lo, donor_hi = bounding_box(donor_region)
    step = min(1.0, float(np.min(span(donor_region) / span(region))))
    # integer offset at step 1, so an unscaled copy is exact (a half-voxel shift would smooth the texture away)
    offset = np.round((donor_lo + donor_hi) / 2 - step * (target_lo + target_hi) / 2)
    points = np.argwhere(region if where is None else where)
    coords = (points * step + offset).T
    source = donor_only(donor, donor_region)
    return np.stack([map_coordinates(channel, coords, order=1, mode="nearest") for channel in source])


def bounding_box(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) voxel index of `mask` per axis."""
    points = np.argwhere(mask)
    return points.min(0).astype(float), points.max(0).astype(float)


def donor_only(donor: np.ndarray, donor_region: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """The donor with every voxel outside `donor_region` replaced by a normalised convolution of the region's
    own voxels (Gaussian `sigma` voxels), or the nearest region voxel where the region is too far away."""
    weight = donor_region.astype(np.float64)
    reach = gaussian_filter(weight, sigma)
    nearest = distance_transform_edt(~donor_region, return_distances=False, return_indices=True)
    out = donor.copy()
    for c, channel in enumerate(donor):
        smooth = gaussian_filter(channel * weight, sigma) / np.maximum(reach, 1e-12)
        filled = np.where(reach > 0.05, smooth, channel[tuple(nearest)])
        out[c] = np.where(donor_region, channel, filled)
    return out
