"""Data-calibrated NIQE and a BRISQUE-feature distance: no-reference quality models fitted on real MRI.

NIQE (Mittal, Soundararajan and Bovik 2013) scores an image by the distance between a multivariate
Gaussian (MVG) fitted to its patch features and a "pristine" MVG: sqrt((mu_p - mu_t)^T ((S_p + S_t) / 2)^+
(mu_p - mu_t)). The published pristine model was fitted on natural photographs; ours is fitted on the
sharp patches (mean local std >= 0.75 x the image's sharpest patch, as in the paper) of the real reference
set, so it is a *data-calibrated NIQE* and its values are not comparable to published NIQE numbers.
Patches are 32x32 by default (the paper's 96x96 exceeds our 128x128 slices), keep those with at least
half their pixels inside the brain mask, and use only brain pixels.

BRISQUE (Mittal, Moorthy and Bovik 2012) maps the same 36 features, computed over the whole image, to a
human opinion score with an SVR trained on the LIVE photographs. Those weights are not ours to download
and say nothing about MRI, so the BRISQUE-style score here is the Mahalanobis distance of an image's 36
whole-image (brain-masked) features to the MVG of the real reference set, with a pseudo-inverse
covariance: 0 for the reference mean, larger for images whose statistics move away from real data.
Both are lower-is-better. 3D volumes are scored per axial slice, patches of all slices pooled per volume
(BRISQUE: the mean of the slices' feature vectors).

Real slices near the top of the head, or chosen for a tumour that fills little brain, may have no patch
with half its pixels in the brain. Such items are scored per item on a fallback, flagged and counted
(`NIQE.fallback`, and a warning), never failing the whole set: first their patches with any brain pixel,
else their whole brain region as one patch (BRISQUE's whole-image features). Only an item without any
scorable brain pixel is NaN.
"""

from __future__ import annotations

import logging

import torch

from benchmark.errors import BenchmarkError, DataError
from benchmark.metrics.no_reference.checks import check_images, check_mask, in_item_chunks
from benchmark.metrics.no_reference.natural_scene import nss_features
from benchmark.numerics import denormals_flushed

log = logging.getLogger(__name__)


def _as_slices(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(N, H, W) or (N, D, H, W) -> (N * D, H, W) slices and the number of slices per item."""
    if images.ndim == 3:
        return images, masks, 1
    n, d = images.shape[:2]
    return images.reshape(n * d, *images.shape[2:]), masks.reshape(n * d, *masks.shape[2:]), d


def patch_features(
    images: torch.Tensor, masks: torch.Tensor | None, patch_size: int, min_mask_fraction: float, metric: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, P, 36) patch features, (N, P) usable flags and (N, P) sharpness for 2D/3D inputs; a patch is
    usable when its fit is valid and at least `min_mask_fraction` of its pixels are brain (> 0: any).
    Items are processed a few at a time (`in_item_chunks`): memory stays flat in N."""
    return in_item_chunks(lambda x, m: _patch_features_block(x, m, patch_size, min_mask_fraction, metric),
                          images, masks)


def _patch_features_block(
    images: torch.Tensor, masks: torch.Tensor | None, patch_size: int, min_mask_fraction: float, metric: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if patch_size < 8 or patch_size % 2:
        raise BenchmarkError(f"{metric}: patch_size must be an even number >= 8, got {patch_size}")
    x = check_images(images, metric)
    m = check_mask(masks, images, metric, "brain mask")
    slices, slice_masks, _ = _as_slices(x, m)
    if min(slices.shape[-2:]) < patch_size:
        raise DataError(f"{metric}: images {tuple(slices.shape[-2:])} are smaller than patch_size {patch_size}")
    features, valid, sharpness = nss_features(slices, slice_masks, (patch_size, patch_size))
    fraction = torch.nn.functional.avg_pool2d(slice_masks.unsqueeze(1).double(), patch_size).reshape(valid.shape)
    usable = valid & (fraction >= min_mask_fraction) & (fraction > 0)
    n = x.shape[0]
    return features.reshape(n, -1, 36), usable.reshape(n, -1), sharpness.reshape(n, -1)


def _weighted_gaussian(features: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (N, d) and unbiased covariance (N, d, d) of each item's weighted rows; zero covariance if < 2 rows."""
    count = weights.sum(1, keepdim=True)
    mean = (weights.unsqueeze(-1) * features).sum(1) / count.clamp_min(1)
    centred = (features - mean.unsqueeze(1)) * weights.unsqueeze(-1)
    covariance = centred.transpose(1, 2) @ centred / (count - 1).clamp_min(1).unsqueeze(-1)
    return mean, covariance


class NIQE:
    """Data-calibrated NIQE: `fit(reference_images, brain_masks)` once, then `niqe(images, brain_masks)` -> (N,).

    patch_size: even patch side in pixels (default 32); sharpness_threshold: fraction of each reference image's
    sharpest patch a patch must reach to enter the pristine model (paper: 0.75); min_mask_fraction: share of
    brain pixels a patch needs (0-1).
    """

    name = "niqe"
    higher_is_better = False

    def __init__(self, patch_size: int = 32, sharpness_threshold: float = 0.75, min_mask_fraction: float = 0.5):
        self.patch_size, self.sharpness_threshold = patch_size, sharpness_threshold
        self.min_mask_fraction = min_mask_fraction
        self.mean: torch.Tensor | None = None
        self.covariance: torch.Tensor | None = None
        self.fallback: dict[str, list[int]] = {"partial_brain_patches": [], "whole_brain": [], "unscorable": []}

    def fit(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> NIQE:
        """Fit the pristine MVG on the sharp usable patches of the real reference images."""
        features, usable, sharpness = patch_features(images, masks, self.patch_size, self.min_mask_fraction, "niqe")
        best = torch.where(usable, sharpness, -torch.inf).amax(1, keepdim=True)
        selected = usable & (sharpness >= self.sharpness_threshold * best) & (sharpness > 0)
        rows = features[selected]
        if rows.shape[0] < 2:
            raise DataError(f"niqe: only {rows.shape[0]} usable sharp patches in the reference set; need >= 2")
        self.mean, self.covariance = rows.mean(0), torch.cov(rows.T)
        return self

    def __call__(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) float64 NIQE per image (lower = closer to the reference statistics)."""
        if self.mean is None:
            raise BenchmarkError("niqe: call fit(reference_images, masks) before scoring images")
        features, usable, _ = patch_features(images, masks, self.patch_size, self.min_mask_fraction, "niqe")
        features, usable = self._fallback(images, masks, features, usable)
        mean, covariance = _weighted_gaussian(features, usable.double())
        with denormals_flushed():
            pooled = torch.linalg.pinv((self.covariance + covariance) / 2, hermitian=True)
        diff = (self.mean - mean).unsqueeze(-1)
        scores = (diff.transpose(1, 2) @ pooled @ diff).flatten().clamp_min(0).sqrt()
        scores[self.fallback["unscorable"]] = torch.nan
        return scores

    def _fallback(self, images: torch.Tensor, masks: torch.Tensor | None, features: torch.Tensor,
                  usable: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Give items without a usable patch their partial-brain patches, else their whole brain as one patch
        (padded into the patch axis); record which items needed which (see the module docstring)."""
        self.fallback = {"partial_brain_patches": [], "whole_brain": [], "unscorable": []}
        empty = torch.nonzero(usable.sum(1) == 0).flatten().tolist()
        if not empty:
            return features, usable
        _, relaxed, _ = patch_features(images[empty], None if masks is None else masks[empty], self.patch_size,
                                       0.0, "niqe")
        features, usable = features.clone(), usable.clone()
        whole = brisque_slices(images[empty], None if masks is None else masks[empty])
        for row, item in enumerate(empty):
            if relaxed[row].any():
                usable[item] = relaxed[row]
                self.fallback["partial_brain_patches"].append(item)
            elif whole[row] is not None:
                features[item, 0], usable[item, 0] = whole[row], True
                self.fallback["whole_brain"].append(item)
            else:
                self.fallback["unscorable"].append(item)
        log.warning("niqe: %d of %d items have no %dpx patch with >= %.0f%% brain pixels; scored on fallbacks "
                    "(partial-brain patches: %s; whole brain: %s; unscorable: %s)", len(empty), len(usable),
                    self.patch_size, 100 * self.min_mask_fraction, self.fallback["partial_brain_patches"][:10],
                    self.fallback["whole_brain"][:10], self.fallback["unscorable"][:10])
        return features, usable


class BRISQUEDistance:
    """BRISQUE-feature distance: Mahalanobis distance of whole-image NSS features to the reference MVG, (N,)."""

    name = "brisque_distance"
    higher_is_better = False

    def __init__(self) -> None:
        self.mean: torch.Tensor | None = None
        self.precision: torch.Tensor | None = None

    def fit(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> BRISQUEDistance:
        """Fit the MVG of the reference images' 36 whole-image features (needs >= 2 images)."""
        features = brisque_features(images, masks)
        if features.shape[0] < 2:
            raise DataError(f"brisque_distance: need >= 2 reference images, got {features.shape[0]}")
        self.mean = features.mean(0)
        with denormals_flushed():
            self.precision = torch.linalg.pinv(torch.cov(features.T), hermitian=True)
        return self

    def __call__(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) float64 distance per image (lower = closer to the reference statistics)."""
        if self.mean is None:
            raise BenchmarkError("brisque_distance: call fit(reference_images, masks) before scoring images")
        diff = brisque_features(images, masks) - self.mean
        return torch.einsum("nd,de,ne->n", diff, self.precision, diff).clamp_min(0).sqrt()


def brisque_slices(images: torch.Tensor, masks: torch.Tensor | None) -> list[torch.Tensor | None]:
    """Per 2D item, its 36 whole-image (brain-masked) features, or None when they cannot be fitted."""
    x = check_images(images, "niqe")
    m = check_mask(masks, images, "niqe", "brain mask")
    slices, slice_masks, depth = _as_slices(x, m)
    features, valid, _ = nss_features(slices, slice_masks, None)
    features, valid = features[:, 0].view(x.shape[0], depth, 36), valid[:, 0].view(x.shape[0], depth)
    out = []
    for item in range(x.shape[0]):
        if not valid[item].any():
            out.append(None)
            continue
        out.append(features[item][valid[item]].mean(0))
    return out


def brisque_features(images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 36) BRISQUE features over each image's brain mask (3D: mean over slices with a valid fit)."""
    x = check_images(images, "brisque_features")
    m = check_mask(masks, images, "brisque_features", "brain mask")
    slices, slice_masks, depth = _as_slices(x, m)
    features, valid, _ = nss_features(slices, slice_masks, None)
    features, valid = features[:, 0].view(x.shape[0], depth, 36), valid[:, 0].view(x.shape[0], depth)
    if not valid.any(1).all():
        bad = torch.nonzero(~valid.any(1)).flatten().tolist()
        raise DataError(f"brisque_features: items {bad[:10]} have no slice with enough brain pixels to fit")
    weights = valid.double().unsqueeze(-1)
    return (features * weights).sum(1) / weights.sum(1)
