"""Signal- and contrast-to-noise ratios per image, estimated with the brain mask (2D and 3D).

Noise std (default "immerkaer"): Immerkær's estimator (1996), sigma = sqrt(pi / 2) / 6 x mean |I * N| with
N = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] applied in-plane, over brain voxels whose 3x3 neighbourhood is
in the brain. N cancels locally linear structure, so it works on skull-stripped data whose background is
exactly 0. "background": std of the voxels farther than 3 voxels from the brain, with the Rayleigh
correction 0.655 for magnitude images (Henkelman 1985); refused when the background is constant.
SNR = mean brain intensity / noise std (dimensionless, higher is better).
CNR between regions A and B = |mean_A - mean_B| / sqrt(var_A + var_B) (population variances; a common MRI
definition needing no separate noise estimate). `tumour_cnr` uses A = tumour (label > 0) and B = the
rest of the brain; items without tumour raise a DataError (select tumour slices first). `vessel_cnr` uses
A = vessel (label > 0) and B = the tissue around it (brain voxels 3 to `outer` voxels from a vessel, in-plane
and through-plane, beyond the partial-volume wall): TOF contrast is local (inflow brightens blood against the
suppressed tissue next to it), and the bright scalp fat inside a TOF "brain" mask would swamp a global B.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from benchmark.errors import BenchmarkError, DataError
from benchmark.metrics.no_reference.checks import check_images, check_mask

IMMERKAER_KERNEL = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]], dtype=torch.float64)
RAYLEIGH_CORRECTION = 0.655


def _in_plane(x: torch.Tensor) -> torch.Tensor:
    """(N, *spatial) -> (N * D, 1, H, W) axial slices for 2D convolutions."""
    return x.reshape(-1, 1, *x.shape[-2:])


def immerkaer_noise_std(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) noise std of float64 (N, *spatial) images over mask voxels with a full 3x3 in-plane neighbourhood."""
    response = F.conv2d(_in_plane(x), IMMERKAER_KERNEL.to(x.device)[None, None]).abs()
    inner = F.avg_pool2d(_in_plane(mask.double()), 3, stride=1) > 1 - 1e-9  # 3x3 fully in the mask
    response, inner = response.reshape(x.shape[0], -1), inner.reshape(x.shape[0], -1).double()
    count = inner.sum(1)
    if (count == 0).any():
        bad = torch.nonzero(count == 0).flatten().tolist()
        raise DataError(f"snr: brain masks of items {bad[:10]} have no voxel with a full 3x3 neighbourhood")
    return math.sqrt(math.pi / 2) / 6 * (response * inner).sum(1) / count


def background_noise_std(x: torch.Tensor, mask: torch.Tensor, margin: int = 3) -> torch.Tensor:
    """(N,) std of voxels farther than `margin` (in-plane) from the mask, over the Rayleigh factor 0.655."""
    near = F.max_pool2d(_in_plane(mask.double()), 2 * margin + 1, stride=1, padding=margin) > 0
    far = (~near).reshape(x.shape[0], -1).double()
    values, count = x.reshape(x.shape[0], -1), far.sum(1)
    mean = (values * far).sum(1) / count.clamp_min(1)
    std = ((((values - mean[:, None]) ** 2) * far).sum(1) / count.clamp_min(1)).sqrt()
    bad = (count < 10) | (std == 0)
    if bad.any():
        raise DataError(
            f"snr: items {torch.nonzero(bad).flatten().tolist()[:10]} have no usable background (fewer than 10 "
            "voxels or constant, e.g. skull-stripped data); use noise='immerkaer'"
        )
    return std / RAYLEIGH_CORRECTION


def snr(images: torch.Tensor, brain_masks: torch.Tensor | None = None, noise: str = "immerkaer") -> torch.Tensor:
    """(N,) mean brain intensity over the noise std ("immerkaer" or "background"); higher is better."""
    x = check_images(images, "snr")
    m = check_mask(brain_masks, images, "snr", "brain mask")
    if noise == "immerkaer":
        sigma = immerkaer_noise_std(x, m)
    elif noise == "background":
        sigma = background_noise_std(x, m)
    else:
        raise BenchmarkError(f"snr: noise must be 'immerkaer' or 'background', got {noise!r}")
    signal = (x * m).flatten(1).sum(1) / m.flatten(1).sum(1)
    if (sigma <= 0).any():
        raise DataError(f"snr: zero noise estimate for items {torch.nonzero(sigma <= 0).flatten().tolist()[:10]}")
    return signal / sigma


def cnr(images: torch.Tensor, region_a: torch.Tensor, region_b: torch.Tensor) -> torch.Tensor:
    """(N,) |mean_A - mean_B| / sqrt(var_A + var_B) between two bool regions (N, 1, *spatial)."""
    x = check_images(images, "cnr")
    a = check_mask(region_a, images, "cnr", "region A").flatten(1).double()
    b = check_mask(region_b, images, "cnr", "region B").flatten(1).double()
    values = x.flatten(1)
    means = [(values * r).sum(1) / r.sum(1) for r in (a, b)]
    variances = [(((values - mu[:, None]) ** 2) * r).sum(1) / r.sum(1) for mu, r in zip(means, (a, b), strict=True)]
    spread = (variances[0] + variances[1]).sqrt()
    if (spread == 0).any():
        raise DataError(f"cnr: both regions are constant in items {torch.nonzero(spread == 0).flatten().tolist()[:10]}")
    return (means[0] - means[1]).abs() / spread


def tumour_cnr(images: torch.Tensor, labels: torch.Tensor, brain_masks: torch.Tensor) -> torch.Tensor:
    """(N,) CNR between the tumour (label > 0) and the rest of the brain (brain mask and label 0)."""
    if labels.shape != images.shape or brain_masks.shape != images.shape:
        raise DataError(
            f"tumour_cnr: labels {tuple(labels.shape)} and brain masks {tuple(brain_masks.shape)} must match "
            f"images {tuple(images.shape)}"
        )
    tumour = labels > 0
    return cnr(images, tumour, brain_masks.bool() & ~tumour)


def vessel_cnr(images: torch.Tensor, labels: torch.Tensor, brain_masks: torch.Tensor, outer: int = 6) -> torch.Tensor:
    """(N,) CNR between the vessels (label > 0) and the tissue 3..`outer` voxels (Chebyshev) from them."""
    if labels.shape != images.shape or brain_masks.shape != images.shape:
        raise DataError(
            f"vessel_cnr: labels {tuple(labels.shape)} and brain masks {tuple(brain_masks.shape)} must match "
            f"images {tuple(images.shape)}"
        )
    vessel = labels > 0
    pool = F.max_pool2d if vessel.ndim == 4 else F.max_pool3d
    near = pool(vessel.double(), 5, stride=1, padding=2) > 0
    reach = pool(vessel.double(), 2 * outer + 1, stride=1, padding=outer) > 0
    ring = reach & ~near & brain_masks.bool()
    empty = ring.flatten(1).sum(1) == 0
    if empty.any():
        raise DataError(f"vessel_cnr: items {torch.nonzero(empty).flatten().tolist()[:10]} have no tissue within "
                        f"{outer} voxels of their vessels (brain mask empty there); raise outer")
    return cnr(images, vessel, ring)
