"""Healthy-tissue fill for the tumour edits: the patient's own tissue, intensity-matched, blended seamlessly.

Sources, per voxel of the region to fill, the first that lands on healthy brain (brain minus lesion dilated by
two voxels): (1) the contralateral hemisphere, mirrored about the mid-sagittal line estimated from the image
(`perturbations.symmetry`); (2) exemplar copies: the translation of the patient's healthy tissue that covers
what is left and best matches the healthy ring around the hole (sum of squared differences, all shifts at
once by FFT correlation; Efros-Leung / Criminisi in spirit, one large exemplar per piece rather than many
small patches; never of lesion-like bright tissue). Each source's intensities are matched (median, IQR) to
the ring of healthy tissue around the hole, its fine texture scaled voxel by voxel to that of the healthy
tissue nearest it (`match_texture`), then the fill is blended in the gradient domain (Poisson image editing,
Perez et al. 2003): inside the region the result keeps the source's gradients and meets the surrounding healthy
tissue exactly, with free (Neumann) borders at remaining tumour and at the brain's edge. OpenCV's
`seamlessClone` would do the blend, but only on 8-bit 3-channel images (quantising [0, 1] MRI to 256 levels,
2D only), so the float Poisson system is solved here with scipy.sparse (a few thousand unknowns per slice:
milliseconds).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import (
    binary_dilation,
    binary_erosion,
    binary_opening,
    binary_propagation,
    distance_transform_edt,
    gaussian_filter,
    map_coordinates,
    uniform_filter,
)
from scipy.signal import correlate
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve

from perturbations.symmetry import cached_mirror_line, mirrored_points

RING_WIDTH = 4  # voxels of healthy tissue around the hole used for intensity matching and exemplar scoring
MAX_PIECES = 8  # exemplar copies per hole at most
MIN_MIRROR_SHARE = 0.6  # the mirror is used only when it covers this share of the region
DEPTH_REACH = 10.0  # voxels from the brain's edge within which the mirror is moved to matched depth


def healthy_tissue(brain: np.ndarray, lesion: np.ndarray) -> np.ndarray:
    """Brain voxels that may serve as a source: two voxels away from any lesion (FLAIR halo excluded)."""
    return brain & ~binary_dilation(lesion, iterations=2) if lesion.any() else brain.copy()


def mirror_source(image: np.ndarray, brain: np.ndarray, lesion: np.ndarray, points: np.ndarray):
    """(values (C, n), valid (n,)) of the contralateral voxels of `points` (n, ndim), at matched depth."""
    line = cached_mirror_line(image[0], brain, lesion)
    coords = depth_matched(points, mirrored_points(points, line), brain).T
    healthy = healthy_tissue(brain, lesion).astype(np.float32)
    valid = map_coordinates(healthy, coords, order=0, mode="constant", cval=0.0) > 0.5
    # nearest voxel, not interpolated: linear interpolation at half-voxel offsets smooths the texture away
    values = np.stack([map_coordinates(c, coords, order=0, mode="nearest") for c in image])
    return values, valid


def depth_matched(points: np.ndarray, mirrored: np.ndarray, brain: np.ndarray, reach: float = DEPTH_REACH,
                  steps: int = 2) -> np.ndarray:
    """The mirrored points (n, ndim) moved in-plane along the brain's depth gradient until their depth (distance to
    the brain's edge) matches that of `points`, where either lies within `reach` voxels of the edge (fading to
    no move at `reach`). Hemispheres differ in size and a tumour pushes its side outward, so the plain mirror of
    cortex near the edge lands in the other side's sulcal CSF or outside the brain (dark bands, bright Poisson
    glows where the blend corrects them); matched depth puts cortex on cortex."""
    depth = distance_transform_edt(brain)
    wanted = depth[tuple(points.T)]
    out = mirrored.astype(float).copy()
    have = map_coordinates(depth, out.T, order=1, mode="nearest")
    near = np.minimum(wanted, have) < reach  # deep tissue keeps the plain mirror
    if not near.any():
        return out
    grads = [np.asarray(g) for g in np.gradient(gaussian_filter(depth, 1.0))[-2:]]
    moved = out[near]
    for _ in range(steps):
        coords = moved.T
        have = map_coordinates(depth, coords, order=1, mode="nearest")
        weight = np.clip(1.0 - np.minimum(wanted[near], have) / reach, 0.0, 1.0)
        g = np.stack([map_coordinates(gr, coords, order=1, mode="nearest") for gr in grads], axis=1)
        g /= np.maximum((g * g).sum(1, keepdims=True), 0.25)
        moved[:, -2:] += np.clip(weight * (wanted[near] - have), -reach, reach)[:, None] * g
    out[near] = moved
    return out


def correlation(big: np.ndarray, small: np.ndarray) -> np.ndarray:
    """sum_p small(p) big(p + shift) for every shift; index k <-> shift k - (shape - 1)."""
    return correlate(big, small, mode="full", method="fft")


def best_exemplar_shift(image: np.ndarray, healthy: np.ndarray, todo: np.ndarray, ring: np.ndarray,
                        min_shift: float) -> tuple[np.ndarray, int] | None:
    """(shift, voxels of `todo` it covers) of the healthy-tissue translation that covers most of `todo` and,
    among those covering it, whose copy of the ring best matches the ring; None when nothing is covered."""
    offset = np.array(todo.shape) - 1
    covered = correlation(healthy.astype(np.float64), todo.astype(np.float64))
    ring_f = ring.astype(np.float64)
    ring_cover = correlation(healthy.astype(np.float64), ring_f)
    cost = np.zeros_like(covered)
    for channel in image:
        cost += correlation(channel * channel, ring_f) - 2 * correlation(channel, ring_f * channel)
    cost /= max(ring.sum(), 1)
    shifts = np.stack(np.meshgrid(*[np.arange(n) for n in covered.shape], indexing="ij"), -1) - offset
    far = np.linalg.norm(shifts, axis=-1) >= min_shift
    need = todo.sum()
    full = far & (covered >= need - 0.5) & (ring_cover >= 0.9 * ring.sum() - 0.5)
    if full.any():
        index = np.unravel_index(np.argmin(np.where(full, cost, np.inf)), cost.shape)
        return shifts[index], int(need)
    score = np.where(far, np.round(covered), -1)
    if score.max() < 0.5:
        return None
    index = np.unravel_index(np.argmax(score), score.shape)
    return shifts[index], int(np.rint(covered[index]))


def match_intensity(source: np.ndarray, source_ring: np.ndarray, target_ring: np.ndarray) -> np.ndarray:
    """Per channel, map the source so its ring's median and interquartile range match the target ring's (robust
    to the unlabelled FLAIR halo around a lesion; range ratio limited to 0.67..1.5)."""
    if source_ring.shape[1] < 5 or target_ring.shape[1] < 5:
        return source
    q_s = np.percentile(source_ring, [25, 50, 75], axis=1)[..., None]
    q_t = np.percentile(target_ring, [25, 50, 75], axis=1)[..., None]
    ratio = np.clip((q_t[2] - q_t[0]) / np.maximum(q_s[2] - q_s[0], 1e-6), 0.67, 1.5)
    return (source - q_s[1]) * ratio + q_t[1]


def min_shift(todo: np.ndarray) -> float:
    """Shortest exemplar translation for `todo`: its equivalent diameter (2D disc, 3D cube side x 2), so a copy
    never comes from the tissue right beside the hole it fills."""
    n = float(todo.sum())
    return 2 * float(np.sqrt(n / np.pi)) if todo.ndim == 2 else 2 * n ** (1 / 3)


def fill_sources(image, brain, lesion, region) -> tuple[np.ndarray, np.ndarray]:
    """(source image (C, *spatial), source id (*spatial): 0 mirror, k > 0 exemplar k, -1 none) on the
    region and its one-voxel outer shell, each source intensity-matched to the ring around the region."""
    healthy = healthy_tissue(brain, lesion)
    interior = healthy & binary_erosion(brain, iterations=3)  # exemplars: no dark partial-volume brain edge
    interior &= ~brighter_than_typical(image, interior, lesion)  # nor unlabelled hyperintensity (a new lesion)
    interior &= ~wide_csf(image, interior, lesion)  # nor a ventricle (a new cavity); thin sulci stay
    shell = binary_dilation(region) & brain
    distance = distance_transform_edt(~region)
    ring = typical_tissue(image, healthy & ~region & (distance <= RING_WIDTH + 1), healthy)  # no halo
    source = np.zeros(image.shape, np.float64)
    ids = np.full(region.shape, -1)
    points, ring_points = np.argwhere(shell), np.argwhere(ring)
    values, valid = mirror_source(image, brain, lesion, points)
    ring_values, ring_valid = mirror_source(image, brain, lesion, ring_points)
    target = image[(slice(None), *ring_points.T)]
    matched = match_intensity(values, ring_values[:, ring_valid], target[:, ring_valid])
    if valid[region[tuple(points.T)]].mean() >= MIN_MIRROR_SHARE:  # else one coherent exemplar beats a patchwork
        source[(slice(None), *points[valid].T)] = matched[:, valid]
        ids[tuple(points[valid].T)] = 0
    for k in range(1, MAX_PIECES + 1):
        todo = region & (ids < 0)
        if not todo.any():
            break
        found = best_exemplar_shift(image, interior, todo, ring, min_shift(todo))
        if found is None:
            break
        shift = found[0]
        wanted = np.argwhere(shell & (ids < 0))
        origin = wanted + shift
        inside = np.all((origin >= 0) & (origin < np.array(region.shape)), axis=1)
        inside[inside] = interior[tuple(origin[inside].T)]
        copied = image[(slice(None), *origin[inside].T)]
        source[(slice(None), *wanted[inside].T)] = match_intensity(copied, copied, target)
        ids[tuple(wanted[inside].T)] = k
    return source, ids


def poisson_blend(image: np.ndarray, source: np.ndarray, ids: np.ndarray, region: np.ndarray,
                  anchor: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Solve, per channel, for f on `region`: for every neighbour pair inside the brain, f_p - f_q follows the
    source's difference when both voxels come from the same source (0 across sources: smooth there), with
    f_q = image at `anchor` voxels (healthy tissue) and no condition at other neighbours (remaining tumour,
    outside the brain); `eps` ties f weakly to the source so that an anchor-free piece stays defined."""
    n = int(region.sum())
    index = np.full(region.shape, -1)
    index[region] = np.arange(n)
    points = np.argwhere(region)
    rows, cols, diag = [], [], np.full(n, eps)
    rhs = eps * source[(slice(None), *points.T)]
    for axis in range(region.ndim):
        for step in (-1, 1):
            q = points.copy()
            q[:, axis] += step
            ok = (q[:, axis] >= 0) & (q[:, axis] < region.shape[axis])
            p_ok, q_ok = points[ok], q[ok]
            p_i = index[tuple(p_ok.T)]
            q_i = index[tuple(q_ok.T)]
            fixed = anchor[tuple(q_ok.T)] & (q_i < 0)
            linked = (q_i >= 0) | fixed
            same = (ids[tuple(p_ok.T)] == ids[tuple(q_ok.T)]) & (ids[tuple(p_ok.T)] >= 0)
            guide = np.where(same, source[(slice(None), *p_ok.T)] - source[(slice(None), *q_ok.T)], 0.0)
            np.add.at(diag, p_i[linked], 1.0)
            for c in range(image.shape[0]):
                np.add.at(rhs[c], p_i[linked], guide[c][linked])
                np.add.at(rhs[c], p_i[fixed], image[c][tuple(q_ok[fixed].T)])
            inner = q_i >= 0
            rows.append(p_i[inner])
            cols.append(q_i[inner])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    matrix = coo_matrix((np.concatenate([-np.ones(len(rows)), diag]),
                         (np.concatenate([rows, np.arange(n)]), np.concatenate([cols, np.arange(n)]))),
                        shape=(n, n)).tocsc()
    out = image.astype(np.float64).copy()
    for c in range(image.shape[0]):
        out[c][region] = spsolve(matrix, rhs[c])
    return out


def local_std(image: np.ndarray, size: int = 5) -> np.ndarray:
    """Standard deviation in a size^ndim window around each voxel."""
    mean = uniform_filter(image, size)
    return np.sqrt(np.clip(uniform_filter(image * image, size) - mean * mean, 0.0, None))


def masked_local_std(values: np.ndarray, mask: np.ndarray, size: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(standard deviation over the `mask` voxels of the size^ndim window around each voxel, share of the window
    in `mask`): the texture of one source without the steps where it meets another."""
    share = uniform_filter(mask.astype(np.float64), size)
    safe = np.maximum(share, 1e-9)
    mean = uniform_filter(np.where(mask, values, 0.0), size) / safe
    square = uniform_filter(np.where(mask, values * values, 0.0), size) / safe
    return np.sqrt(np.clip(square - mean * mean, 0.0, None)), share


def spread_inward(values: np.ndarray, known: np.ndarray, sigma: float, prior: float = 0.05) -> np.ndarray:
    """Gaussian-weighted mean of `values` over the `known` voxels near each voxel (normalised convolution,
    `sigma` voxels), drawn towards their median where few known voxels are near (`prior`: the weight of the
    median, against 1 for a voxel amid known ones). Carrying the nearest known value instead, deep into a hole,
    made fills too busy on real patients (the tissue just outside a hole is often the busiest)."""
    weight = gaussian_filter(known.astype(np.float64), sigma)
    total = gaussian_filter(np.where(known, values, 0.0), sigma)
    return (total + prior * float(np.median(values[known]))) / (weight + prior)


def source_texture(values: np.ndarray, ids: np.ndarray, inside: np.ndarray) -> np.ndarray | None:
    """5x5 local standard deviation of `values` within each source (ids) at the `inside` voxels, smoothed over
    them (Gaussian, 2 voxels); None when fewer than 20 voxels have enough of their own source around them."""
    have, measured = np.zeros(ids.shape), np.zeros(ids.shape, bool)
    for k in np.unique(ids[inside]):
        spread, share = masked_local_std(values, ids == k)
        mine = inside & (ids == k) & (share >= 0.4)
        have[mine], measured[mine] = spread[mine], True
    if measured.sum() < 20:
        return None
    return spread_inward(have, measured, 2.0)


def match_texture(image: np.ndarray, source: np.ndarray, ids: np.ndarray, region: np.ndarray, brain: np.ndarray,
                  lesion: np.ndarray, gain_range: tuple[float, float] = (0.5, 2.5), sigma: float = 4.0,
                  passes: int = 2) -> np.ndarray:
    """Scale the fine detail of the source (minus its Gaussian blur, sigma 2 voxels) voxel by voxel so that its 5x5
    local standard deviation matches that of the healthy tissue nearest it: the tissue 3..12 voxels around the
    hole (windows clear of it and of the brain's edge), spread inwards by a Gaussian of `sigma` voxels (its
    median deep inside a large hole: `spread_inward`). The source's own texture is measured within each source
    (not across the steps between mirror and exemplar copies), smoothed alike, and measured again after a first
    gain (`passes`); the gain is limited to `gain_range`. One gain for the whole hole (as before) left thin fills
    beside remaining tumour flat and cortical fills too busy."""
    away = distance_transform_edt(~region)
    ring = healthy_tissue(brain, lesion) & (away >= 3) & (away <= 3 * RING_WIDTH) & (distance_transform_edt(brain) >= 3)
    inside = region & binary_erosion(brain, iterations=2) & (ids >= 0)
    if ring.sum() < 20 or inside.sum() < 20:
        return source
    out = source.copy()
    known = ((ids >= 0) | (brain & ~region & ~lesion)).astype(np.float64)
    weight = np.maximum(gaussian_filter(known, 2.0), 1e-6)
    taper = np.clip((distance_transform_edt(brain) - 1.0) / 3.0, 0.0, 1.0)  # no unsharp overshoot at the edge
    for c, channel in enumerate(image):
        assembled = np.where(ids >= 0, source[c], channel) * known  # no tumour, no background in the blur
        detail = assembled - gaussian_filter(assembled, 2.0) / weight
        wanted = local_std(channel)
        wanted = spread_inward(wanted, ring, sigma)
        gain = np.ones(region.shape)
        for _ in range(passes):  # the detail is not all of the local spread: a second pass corrects the first
            trial = assembled + (gain - 1.0) * taper * detail
            have = source_texture(trial, ids, inside)
            if have is None:
                break
            gain = np.clip(gain * wanted / np.maximum(have, 1e-6), *gain_range)
        out[c] = np.where(ids >= 0, assembled + (gain - 1.0) * taper * detail, source[c])
    return out


def typical_tissue(image: np.ndarray, candidates: np.ndarray, healthy: np.ndarray, spread: float = 2.5) -> np.ndarray:
    """The candidates whose intensity lies within `spread` robust standard deviations (IQR / 1.349) of the
    healthy tissue's median in every channel: the blend is not anchored to unlabelled FLAIR halo around a
    lesion (labels often stop short of the hyperintensity), which would pull the fill bright."""
    if healthy.sum() < 20:
        return candidates
    keep = candidates.copy()
    for channel in image:
        q50, iqr = median_and_iqr(channel[healthy])
        keep &= np.abs(channel - q50) <= spread * iqr / 1.349
    return keep


def median_and_iqr(values: np.ndarray) -> tuple[float, float]:
    """Median and interquartile range (at least 1e-6) of `values`: the robust centre and spread the tissue tests
    compare against (robust standard deviation = IQR / 1.349)."""
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return q50, max(q75 - q25, 1e-6)


def lesion_bright_channels(image: np.ndarray, healthy: np.ndarray, lesion: np.ndarray
                           ) -> list[tuple[np.ndarray, float, float]]:
    """(channel, healthy median, healthy IQR) for every channel where the lesion's median is above the healthy
    tissue's (FLAIR); none with fewer than 20 healthy voxels or no lesion."""
    if healthy.sum() < 20 or not lesion.any():
        return []
    stats = [(channel, *median_and_iqr(channel[healthy])) for channel in image]
    return [(channel, q50, iqr) for channel, q50, iqr in stats if np.median(channel[lesion]) > q50]


def brighter_than_typical(image: np.ndarray, healthy: np.ndarray, lesion: np.ndarray, spread: float = 2.5,
                          grow: int = 1) -> np.ndarray:
    """Lesion-like voxels: more than `spread` robust standard deviations above the healthy tissue's median in every
    channel where the lesion is brighter than it (FLAIR: periventricular caps, unlabelled hyperintensity; CSF
    bright in T2 alone is not lesion-like next to FLAIR), grown by `grow` voxels; none without such a channel."""
    channels = lesion_bright_channels(image, healthy, lesion)
    bright = np.ones(healthy.shape, bool)
    for channel, q50, iqr in channels:
        bright &= channel - q50 > spread * iqr / 1.349
    if not channels or not bright.any():
        return np.zeros(healthy.shape, bool)
    return binary_dilation(bright, iterations=grow) if grow else bright


def wide_csf(image: np.ndarray, healthy: np.ndarray, lesion: np.ndarray, spread: float = 2.5) -> np.ndarray:
    """Fluid wider than a sulcus: voxels more than `spread` robust standard deviations below the healthy tissue's
    median in every channel where the lesion is brighter than it (FLAIR), that survive a one-voxel opening
    (ventricles, cysts; sulci are 1-2 voxels wide), grown by one voxel. A copied ventricle reads as a new cavity."""
    channels = lesion_bright_channels(image, healthy, lesion)
    dark = np.ones(healthy.shape, bool)
    for channel, q50, iqr in channels:
        dark &= q50 - channel > spread * iqr / 1.349
    wide = binary_opening(dark) if channels else np.zeros(healthy.shape, bool)
    return binary_dilation(wide) if wide.any() else wide


def atypical_near(image: np.ndarray, brain: np.ndarray, lesion: np.ndarray, around: np.ndarray,
                  reach: int) -> np.ndarray:
    """Brain voxels within `reach` voxels of `around` whose intensity is atypical of the healthy tissue (more than
    2 robust standard deviations from its median in some channel): candidates for unlabelled FLAIR halo."""
    near = brain & (distance_transform_edt(~around) <= reach)
    return near & ~typical_tissue(image, near, healthy_tissue(brain, lesion), spread=2.0)


def clearance(image: np.ndarray, brain: np.ndarray, lesion: np.ndarray, removed: np.ndarray,
              reach: int) -> np.ndarray:
    """The region to refill when `removed` (lesion voxels) goes: `removed` dilated by two voxels, grown within
    `reach` voxels through atypical tissue connected to it (the unlabelled FLAIR halo: labels often stop short of
    the hyperintensity, and a removed tumour should not leave its halo behind), inside the brain. `image` is
    channel-first (C, *spatial)."""
    seed = binary_dilation(removed, iterations=2) & brain
    if reach <= 2:
        return seed
    return binary_propagation(seed, mask=seed | atypical_near(image, brain, lesion, removed, reach))


def lesion_support(image: np.ndarray, brain: np.ndarray, lesion: np.ndarray, reach: int,
                   soft: float = 2.0) -> np.ndarray:
    """Where a drawn (moved, rescaled) lesion may carry its original surroundings: 1 on the lesion and on its
    connected halo of atypical tissue within `reach` voxels, falling linearly to 0 over `soft` voxels outside,
    0 outside the brain. Weighting the paste by it keeps normal tissue, CSF and background next to the
    original lesion from being dragged along (they made dark bands beside a moved tumour)."""
    near = brain & (distance_transform_edt(~lesion) <= reach)
    healthy = healthy_tissue(brain, lesion)
    toward = np.zeros_like(near)
    for channel in image:  # atypical on the lesion's side of healthy tissue (FLAIR halo), not CSF or air
        q50, iqr = median_and_iqr(channel[healthy]) if healthy.sum() >= 20 else (0.0, 1.0)
        side = np.sign(np.median(channel[lesion]) - q50) if lesion.any() else 1.0
        toward |= near & ((channel - q50) * side > 2.0 * iqr / 1.349)
    halo = binary_propagation(lesion, mask=lesion | toward)
    outside = distance_transform_edt(~halo) if halo.any() else np.full(lesion.shape, np.inf)
    return np.clip(1.0 - outside / soft, 0.0, 1.0) * brain


def fill_healthy(image: np.ndarray, brain: np.ndarray, lesion: np.ndarray, region: np.ndarray) -> np.ndarray:
    """`image` ((C,) *spatial) with `region` (inside the brain) replaced by seamless healthy tissue.

    `lesion` marks every lesion voxel of the item (never copied from); voxels of the region that no source
    reaches take their nearest sourced or healthy voxel's value and are smoothed by the blend (rare: a piece
    that no translation of healthy tissue covers). Outside the region the image is returned unchanged.
    """
    region = region & brain
    if not region.any():
        return image.copy()
    data = image.astype(np.float64)
    source, ids = fill_sources(data, brain, lesion, region)
    known = (ids >= 0) | (brain & ~region & ~lesion)
    missing = region & (ids < 0)
    if missing.any() and known.any():
        nearest = distance_transform_edt(~known, return_distances=False, return_indices=True)
        donor = tuple(axis[missing] for axis in nearest)
        source[:, missing] = np.where(ids[donor] >= 0, source[(slice(None), *donor)], data[(slice(None), *donor)])
    source = match_texture(data, source, ids, region, brain, lesion)
    anchor = typical_tissue(data, brain & ~region & ~lesion, healthy_tissue(brain, lesion))
    blended = poisson_blend(data, source, ids, region, anchor)
    return np.where(region, np.clip(blended, 0.0, 1.0), data).astype(image.dtype)
