"""Localised edits of the arteries in a TOF-MRA image: occlusion, stenosis, aneurysm, small-vessel dropout,
added tortuosity and calibre change.

The clinically decisive errors of a generated angiogram: do the metrics notice an artery that is missing,
narrowed or bulging while the rest of the image is untouched? Each edit turns the item's vessel mask (label > 0)
into a new mask on its centreline graph (`perturbations.vessels.tree`), then redraws the image where the mask
changed (`perturbations.vessels.render`: tissue where a vessel left, blood where one arrived, matched noise);
nothing changes farther than `margin` voxels from a changed vessel voxel (tested). `label: follow` returns the
new mask, `label: keep` the original one (a mask-conditioned generator that drew the wrong vessels); the image is
the same in both modes. New vessel voxels take the label of the nearest original vessel voxel (artery classes
survive). An item without vessels, or without a site the edit needs, is passed through and listed as skipped.
Sites are drawn from the item's own generator, the same at every severity (common random numbers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt, map_coordinates

from benchmark.errors import ConfigError
from perturbations.base import SamplePerturbation, at_severity, end_points
from perturbations.vessels.render import redraw_vessels
from perturbations.vessels.tree import VesselTree, vessel_tree

LABEL_MODES = ("keep", "follow")
CROP_PAD_MM = 16.0  # the edit works on the vessels' bounding box plus this much (reach of the largest edit)


class VesselEdit(SamplePerturbation):
    """Base of the vessel edits: crops to the vessels, builds the tree, redraws the image, applies the label mode.

    label: "follow" or "keep". margin: voxels around the changed vessel voxels outside which the image is
    unchanged, integer >= 2; default 3.
    """

    family = "morphological"

    def __init__(self, label: str = "follow", margin: int = 3) -> None:
        super().__init__()
        if label not in LABEL_MODES:
            raise ConfigError(f"parameter 'label' must be 'keep' or 'follow', got {label!r}")
        self.label = label
        self.margin = int(end_points("margin", [margin], low=2, integer=True)[0])

    def stream(self) -> str:
        """Class and settings without name and label mode: keep and follow variants draw the same numbers."""
        settings = sorted((k, v) for k, v in vars(self).items() if k not in ("name", "label") and k[0] != "_")
        return f"{type(self).__name__}:{settings}"

    def describe(self, severity: int) -> dict[str, Any]:
        return {**super().describe(severity), "label": self.label, "margin_voxels": self.margin}

    def perturb_item(self, image, label, mask, params, rng, spacing):
        labels = label[0].cpu().numpy()
        vessels = labels > 0
        if not vessels.any():
            return None
        box = crop_box(vessels, spacing)
        tree = vessel_tree(vessels[box], spacing)
        new = self.new_mask(tree, params, rng)
        if new is None:
            return None
        crop = image.cpu().numpy()[(slice(None), *box)].astype(np.float64)
        centre = np.zeros_like(new)
        centre[tuple(tree.nodes.T)] = True
        redrawn = redraw_vessels(crop, tree.mask, new, mask[0].cpu().numpy()[box].astype(bool), rng, self.margin,
                                 centre)
        edited = image.cpu().numpy().copy()
        edited[(slice(None), *box)] = redrawn
        new_labels = labels.copy()
        new_labels[box] = relabel(labels[box], new)
        out_labels = new_labels if self.label == "follow" else labels
        return torch.from_numpy(edited).to(image), torch.from_numpy(out_labels[None]).to(label)

    def new_mask(self, tree: VesselTree, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray | None:
        """The edited vessel mask, or None when the item has no site for this edit."""
        raise NotImplementedError


def crop_box(vessels: np.ndarray, spacing: tuple[float, ...]) -> tuple[slice, ...]:
    """The vessels' bounding box grown by CROP_PAD_MM on every side, clipped to the array."""
    points = np.argwhere(vessels)
    pad = np.ceil(CROP_PAD_MM / np.asarray(spacing, dtype=float)).astype(int)
    low, high = np.maximum(points.min(0) - pad, 0), np.minimum(points.max(0) + pad + 1, vessels.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))


def relabel(labels: np.ndarray, new: np.ndarray) -> np.ndarray:
    """`new` as a label map: old labels where they were, the nearest old vessel label on added voxels."""
    old = labels > 0
    if not old.any():
        return new.astype(labels.dtype)
    nearest = distance_transform_edt(~old, return_distances=False, return_indices=True)
    return np.where(new, labels[tuple(nearest)], 0).astype(labels.dtype)


def window(tree: VesselTree, centre_mm: np.ndarray, reach_mm: float) -> tuple[tuple[slice, ...], np.ndarray]:
    """(box, points): the voxels within `reach_mm` (per axis) of `centre_mm`, and their positions in mm
    (*box shape, ndim); the edits that draw new shapes compute only there."""
    spacing = np.asarray(tree.spacing)
    low = np.maximum(np.floor((centre_mm - reach_mm) / spacing), 0).astype(int)
    high = np.minimum(np.ceil((centre_mm + reach_mm) / spacing) + 1, tree.mask.shape).astype(int)
    box = tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))
    grid = np.meshgrid(*[np.arange(a, b) * s for a, b, s in zip(low, high, spacing, strict=True)], indexing="ij")
    return box, np.stack(grid, axis=-1)


def branch_at(tree: VesselTree, shares: list[float], rng: np.random.Generator) -> int | None:
    """A non-root centreline node whose distal subtree holds the share of vessel volume nearest `shares[-1]`,
    found by nesting: the node nearest shares[0] first, then among the nodes beyond it the one nearest shares[1],
    and so on, so a schedule of decreasing shares gives nested, growing edits across severities."""
    if len(tree.nodes) < 3:
        return None
    distal = tree.subtree_volume() / max(float(tree.mask.sum()), 1.0)
    order = rng.permutation(len(tree.nodes))
    allowed = np.ones(len(tree.nodes), dtype=bool)
    allowed[tree.root] = False
    node = None
    for share in shares:
        scores = np.where(allowed, np.abs(distal - share), np.inf)
        if not np.isfinite(scores).any():
            break
        node = int(order[np.argmin(scores[order])])
        allowed = tree.beyond(node)
        allowed[node] = False
    return node


def cut_and_beyond(tree: VesselTree, node: int) -> np.ndarray:
    """(n,) the nodes within the vessel's radius (at least a voxel) of `node` and every node cut off by them."""
    cut = tree.distances_mm(node) <= max(float(tree.radius[node]), max(tree.spacing))
    return cut | tree.disconnected(cut)


class VesselOcclusion(VesselEdit):
    """An artery occluded at a point: it and everything distal to it vanish; tissue shows where they ran.

    Models a thrombus or embolus (no inflow, so no TOF signal beyond the block). The point is the centreline
    voxel whose distal subtree holds the scheduled share of the item's vessel volume (first in the item's fixed
    random order among equals), searched beyond the point of the next higher severity, so the occluded part
    grows with severity and contains that of the levels below; its neighbourhood (the vessel's radius) and every
    centreline voxel cut off from the widest vessel by it lose their territory.
    share: distal share of the vessel volume, 0..1; default 0.05 -> 0.4.
    """

    def __init__(self, share: Any = (0.05, 0.4), label: str = "follow", margin: int = 3) -> None:
        super().__init__(label, margin)
        self.share = end_points("share", share, low=0.0, high=1.0)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"distal_share": at_severity(self.share, severity)}

    def new_mask(self, tree, params, rng):
        levels = [at_severity(self.share, severity) for severity in range(5, 0, -1)]
        node = branch_at(tree, [s for s in levels if s >= params["distal_share"]] or [params["distal_share"]], rng)
        if node is None:
            return None
        return tree.mask & ~tree.territory(cut_and_beyond(tree, node))


class VesselStenosis(VesselEdit):
    """Local narrowings of arteries: the lumen tapers to (1 - narrowing) of its radius and back over `length_mm`.

    Models atherosclerotic stenosis (NASCET grades the diameter reduction, 50-99 %). Sites are unbranched
    centreline voxels at least as wide as the median, `count` of them in the item's fixed random order, at
    least `length_mm` apart. The narrowing follows cos^2 along the centreline (full at the site, none at
    length_mm / 2); a vessel voxel farther from its centreline voxel than the narrowed radius becomes tissue.
    narrowing: 0..1 of the radius; default 0.2 -> 0.9. length_mm: > 0, default 4. count: sites per item, >= 1.
    """

    def __init__(self, narrowing: Any = (0.2, 0.9), length_mm: float = 4.0, count: int = 2, label: str = "follow",
                 margin: int = 3) -> None:
        super().__init__(label, margin)
        self.narrowing = end_points("narrowing", narrowing, low=0.0, high=1.0)
        self.length_mm = end_points("length_mm", [length_mm], low=1e-3)[0]
        self.count = int(end_points("count", [count], low=1, integer=True)[0])

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"narrowing": at_severity(self.narrowing, severity), "length_mm": self.length_mm, "sites": self.count}

    def new_mask(self, tree, params, rng):
        candidates = np.flatnonzero((tree.degree == 2) & (tree.radius >= np.median(tree.radius)))
        if not len(candidates):
            return None
        factor = np.ones(len(tree.nodes))
        sites: list[int] = []
        for node in rng.permutation(candidates).tolist():
            if len(sites) == self.count:
                break
            if sites and min(tree.distances_mm(s)[node] for s in sites) < self.length_mm:
                continue
            sites.append(node)
            t = tree.distances_mm(node)
            near = t < self.length_mm / 2
            factor[near] = np.minimum(factor[near],
                                      1 - params["narrowing"] * np.cos(np.pi * t[near] / self.length_mm) ** 2)
        owner = np.maximum(tree.owner, 0)
        voxels = np.argwhere(tree.mask & (factor[owner] < 1))
        nodes = owner[tuple(voxels.T)]
        distance = np.linalg.norm((voxels - tree.nodes[nodes]) * np.asarray(tree.spacing), axis=1)
        new = tree.mask.copy()
        new[tuple(voxels[distance > factor[nodes] * tree.radius[nodes]].T)] = False
        return new


class VesselAneurysm(VesselEdit):
    """A saccular aneurysm: a round sac of `diameter_mm` on a neck, at a bifurcation.

    Models the berry aneurysms of the Circle of Willis, which grow at bifurcation apices (2-10 mm in screening
    series). The site is a bifurcation (a centreline voxel with three or more neighbours) at least as wide as
    the median bifurcation, in the item's fixed random order (the widest centreline voxel when there is none);
    the sac points into the free space between the branches (of 64 fixed random directions, the one farthest
    in angle from every branch leaving the site) and is joined to the vessel by a neck `neck` x the sac radius
    wide. diameter_mm: > 0; default 2 -> 10. neck: 0..1, default 0.6.
    """

    def __init__(self, diameter_mm: Any = (2.0, 10.0), neck: float = 0.6, label: str = "follow",
                 margin: int = 3) -> None:
        super().__init__(label, margin)
        self.diameter_mm = end_points("diameter_mm", diameter_mm, low=1e-3)
        self.neck = end_points("neck", [neck], low=0.0, high=1.0)[0]

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"diameter_mm": at_severity(self.diameter_mm, severity), "neck": self.neck}

    def new_mask(self, tree, params, rng):
        forks = np.flatnonzero(tree.degree >= 3)
        directions = rng.standard_normal((64, tree.mask.ndim))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        order = rng.permutation(len(tree.nodes))
        if len(forks):
            wide = set(forks[tree.radius[forks] >= np.median(tree.radius[forks])].tolist())
            site = int(next(n for n in order if n in wide))
        else:
            site = int(tree.root[np.argmax(tree.radius[tree.root])])
        spacing = np.asarray(tree.spacing)
        reach = tree.distances_mm(site)
        arms = (tree.nodes[(reach > 0) & (reach <= 3 * max(tree.radius[site], spacing.max()))] - tree.nodes[site])
        arms = arms * spacing
        if len(arms):
            arms /= np.linalg.norm(arms, axis=1, keepdims=True)
            direction = directions[np.argmin((directions @ arms.T).max(axis=1))]
        else:
            direction = directions[0]
        sac_radius = params["diameter_mm"] / 2
        start = tree.nodes[site] * spacing
        centre = start + direction * (tree.radius[site] + 0.8 * sac_radius)
        box, points = window(tree, centre, float(np.linalg.norm(centre - start)) + sac_radius + spacing.max())
        sac = np.linalg.norm(points - centre, axis=-1) <= sac_radius
        along = np.clip((points - start) @ direction, 0.0, np.linalg.norm(centre - start))
        neck = np.linalg.norm(points - start - along[..., None] * direction, axis=-1) <= self.neck * sac_radius
        new = tree.mask.copy()
        new[box] |= sac | neck
        return new


class SmallVesselDropout(VesselEdit):
    """Small arteries missing: every centreline voxel narrower than `radius_mm`, and all it alone fed, vanishes.

    Models the loss of distal branches a generator (or a slow-flow, saturated TOF acquisition) fails to draw.
    radius_mm: radius threshold, > 0; default 0.6 -> 1.4 (at 0.5 mm voxels: one to about three voxels).
    """

    def __init__(self, radius_mm: Any = (0.6, 1.4), label: str = "follow", margin: int = 3) -> None:
        super().__init__(label, margin)
        self.radius_mm = end_points("radius_mm", radius_mm, low=1e-3)

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"radius_mm": at_severity(self.radius_mm, severity)}

    def new_mask(self, tree, params, rng):
        if not len(tree.nodes):
            return None
        thin = tree.radius < params["radius_mm"]
        return tree.mask & ~tree.territory(thin | tree.disconnected(thin))


class VesselTortuosity(VesselEdit):
    """Added tortuosity: an artery segment bent sideways into an S over `length_mm`, amplitude `amplitude_mm`.

    Models the elongated, kinked arteries of ageing and hypertension (and a generator's wandering vessel).
    The site is a centreline voxel at least as wide as the median in the item's fixed random order; the
    vessel's local direction is the main axis of the centreline within length_mm / 2; the displacement is
    amplitude x sin(2 pi t / length) across it, faded by cos^2 along and across the segment, so the vessel
    stays connected and nothing moves beyond the segment's neighbourhood.
    amplitude_mm: >= 0; default 1 -> 4. length_mm: > 0, default 16.
    """

    def __init__(self, amplitude_mm: Any = (1.0, 4.0), length_mm: float = 16.0, label: str = "follow",
                 margin: int = 3) -> None:
        super().__init__(label, margin)
        self.amplitude_mm = end_points("amplitude_mm", amplitude_mm, low=0.0)
        self.length_mm = end_points("length_mm", [length_mm], low=1e-3)[0]

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"amplitude_mm": at_severity(self.amplitude_mm, severity), "length_mm": self.length_mm}

    def new_mask(self, tree, params, rng):
        candidates = np.flatnonzero(tree.radius >= np.median(tree.radius)) if len(tree.nodes) else []
        if not len(candidates):
            return None
        site = int(rng.permutation(candidates)[0])
        side = rng.standard_normal(tree.mask.ndim)
        spacing = np.asarray(tree.spacing)
        near = tree.nodes[tree.distances_mm(site) <= self.length_mm / 2] * spacing
        axis = np.linalg.svd(near - near.mean(0))[2][0] if len(near) > 1 else np.eye(tree.mask.ndim)[-1]
        side -= (side @ axis) * axis
        side /= max(float(np.linalg.norm(side)), 1e-12)
        half, width = self.length_mm / 2, 2 * params["amplitude_mm"] + 4 * float(tree.radius[site])
        origin = tree.nodes[site] * spacing
        box, points = window(tree, origin, max(half, width) + spacing.max())
        points = points - origin
        along = points @ axis
        across = np.linalg.norm(points - along[..., None] * axis, axis=-1)
        fade = (np.cos(np.pi * np.clip(along / self.length_mm, -0.5, 0.5)) ** 2
                * np.cos(np.pi / 2 * np.clip(across / max(width, 1e-6), 0.0, 1.0)) ** 2)
        shift = params["amplitude_mm"] * np.sin(np.pi * along / half) * fade
        source = (points - shift[..., None] * side + origin) / spacing
        moved = map_coordinates(tree.mask.astype(np.float32), np.moveaxis(source, -1, 0), order=1, mode="nearest")
        new = tree.mask.copy()
        new[box] = np.where(fade > 0, moved >= 0.5, tree.mask[box])
        return new


class VesselCalibre(VesselEdit):
    """A branch's calibre changed: its radius scaled by `factor` along its whole length, distal branches included.

    Models diffuse narrowing (vasospasm, hypoplasia; factor < 1) or ectasia (factor > 1) of one artery. The
    branch is the distal subtree holding `share` of the vessel volume (as for occlusion); its new lumen is every
    voxel nearer its centreline than factor x the local radius.
    factor: 0.05..4; default 0.8 -> 0.4. share: 0..1, default 0.3.
    """

    def __init__(self, factor: Any = (0.8, 0.4), share: float = 0.3, label: str = "follow", margin: int = 3) -> None:
        super().__init__(label, margin)
        self.factor = end_points("factor", factor, low=0.05, high=4.0)
        self.share = end_points("share", [share], low=0.0, high=1.0)[0]

    def parameters_at(self, severity: int) -> dict[str, Any]:
        return {"factor": at_severity(self.factor, severity), "share": self.share}

    def new_mask(self, tree, params, rng):
        node = branch_at(tree, [self.share], rng)
        if node is None:
            return None
        branch = cut_and_beyond(tree, node)
        centre = np.zeros(tree.mask.shape, dtype=bool)
        centre[tuple(tree.nodes[branch].T)] = True
        distance, nearest = distance_transform_edt(~centre, sampling=tree.spacing, return_indices=True)
        index = np.full(tree.mask.shape, -1)
        index[tuple(tree.nodes.T)] = np.arange(len(tree.nodes))
        radius = tree.radius[index[tuple(nearest)]]
        lumen = distance < params["factor"] * radius
        return (tree.mask & ~tree.territory(branch)) | lumen
