"""A synthetic cerebral arterial tree in MNI space: named trunks around the Circle of Willis plus random
side branches down to sub-millimetre radius, varied per subject by the seed.

Trunks (MNI152 mm, RAS: x right, y anterior, z superior) follow textbook anatomy (Osborn's Brain,
Gray's Anatomy): vertebral arteries joining into the basilar artery, internal carotids (ICA) rising
to their termini beside the optic chiasm, the Circle of Willis (A1 segments and anterior
communicating artery, posterior communicating arteries, P1 segments) and its outflow: middle (MCA,
M1 lateral then M2 up the insula), anterior (ACA, A2 up the interhemispheric fissure), posterior
(PCA, P2 round the midbrain) and superior cerebellar (SCA) arteries. Per subject: a random affine
(+-6 % scale, +-4 degrees), node jitter of ~1.5 mm, radii scaled by ~10 %, common variants
(an absent or hypoplastic communicating artery, a hypoplastic A1, a fetal PCA) and random side
branches whose radii follow Murray's law (parent^3 = continuing^3 + child^3, Murray 1926).

`VesselTree` is a list of straight segments (truncated cones) with parent links: the edits of a
vessel study (occlusion of a subtree, stenosis, aneurysm, dropout below a radius) act on it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from benchmark.data.phantom import euler_rotation

MIN_RADIUS_MM = 0.15  # branching stops below this radius (arterioles are not resolved by TOF-MRA)

# name: (parent trunk or None, points in MNI mm, radius at start and end in mm)
TRUNKS: dict[str, tuple[str | None, list[tuple[float, float, float]], tuple[float, float]]] = {
    "R-VA": (None, [(9, -42, -60), (5, -38, -50), (1, -34, -44)], (1.5, 1.5)),
    "L-VA": (None, [(-9, -42, -60), (-5, -38, -50), (-1, -34, -44)], (1.6, 1.6)),
    "BA": ("L-VA", [(-1, -34, -44), (0, -29, -34), (0, -23, -25)], (1.6, 1.4)),
    "R-ICA": (None, [(19, -6, -60), (18, -2, -46), (16, 6, -38), (14, 8, -30), (15, 2, -24), (14, 1, -18)],
              (2.2, 1.9)),
    "L-ICA": (None, [(-19, -6, -60), (-18, -2, -46), (-16, 6, -38), (-14, 8, -30), (-15, 2, -24), (-14, 1, -18)],
              (2.2, 1.9)),
    "R-MCA": ("R-ICA", [(14, 1, -18), (24, 3, -17), (34, 3, -14), (41, 1, -9)], (1.4, 1.2)),
    "R-MCA-sup": ("R-MCA", [(41, 1, -9), (44, 8, -2), (46, 14, 8)], (0.9, 0.8)),
    "R-MCA-inf": ("R-MCA", [(41, 1, -9), (46, -6, -4), (50, -14, 4)], (0.9, 0.8)),
    "L-MCA": ("L-ICA", [(-14, 1, -18), (-24, 3, -17), (-34, 3, -14), (-41, 1, -9)], (1.4, 1.2)),
    "L-MCA-sup": ("L-MCA", [(-41, 1, -9), (-44, 8, -2), (-46, 14, 8)], (0.9, 0.8)),
    "L-MCA-inf": ("L-MCA", [(-41, 1, -9), (-46, -6, -4), (-50, -14, 4)], (0.9, 0.8)),
    "R-A1": ("R-ICA", [(14, 1, -18), (8, 8, -16), (2.5, 13, -14)], (1.1, 1.0)),
    "L-A1": ("L-ICA", [(-14, 1, -18), (-8, 8, -16), (-2.5, 13, -14)], (1.1, 1.0)),
    "Acom": ("R-A1", [(2.5, 13, -14), (-2.5, 13, -14)], (0.7, 0.7)),
    "R-A2": ("R-A1", [(2.5, 13, -14), (3, 20, -8), (3, 28, 0), (3, 34, 10)], (1.0, 0.9)),
    "L-A2": ("L-A1", [(-2.5, 13, -14), (-3, 20, -8), (-3, 28, 0), (-3, 34, 10)], (1.0, 0.9)),
    "R-P1": ("BA", [(0, -23, -25), (5, -22, -24), (9, -21, -22)], (1.0, 1.0)),
    "L-P1": ("BA", [(0, -23, -25), (-5, -22, -24), (-9, -21, -22)], (1.0, 1.0)),
    "R-Pcom": ("R-ICA", [(15, 2, -24), (12, -8, -23), (9, -21, -22)], (0.6, 0.6)),
    "L-Pcom": ("L-ICA", [(-15, 2, -24), (-12, -8, -23), (-9, -21, -22)], (0.6, 0.6)),
    "R-P2": ("R-P1", [(9, -21, -22), (18, -28, -18), (24, -42, -12), (20, -60, -6), (14, -76, -2)], (1.0, 0.8)),
    "L-P2": ("L-P1", [(-9, -21, -22), (-18, -28, -18), (-24, -42, -12), (-20, -60, -6), (-14, -76, -2)],
             (1.0, 0.8)),
    "R-SCA": ("BA", [(0, -24, -28), (8, -27, -30), (16, -38, -26), (14, -55, -24)], (0.7, 0.6)),
    "L-SCA": ("BA", [(0, -24, -28), (-8, -27, -30), (-16, -38, -26), (-14, -55, -24)], (0.7, 0.6)),
}
# Trunks that sprout random side branches (the cortical and perforating arteries).
BRANCHING = ("R-MCA", "R-MCA-sup", "R-MCA-inf", "L-MCA", "L-MCA-sup", "L-MCA-inf", "R-A2", "L-A2", "R-P2", "L-P2",
             "R-SCA", "L-SCA", "BA", "R-A1", "L-A1")


@dataclass
class VesselTree:
    """Straight segments (truncated cones) in world mm with parent links (-1: a root).

    `starts`, `ends` (N, 3) mm; `radii` (N, 2) mm at start and end; `parents` (N,) index of the segment
    each one continues or branches from; `names` the trunk a segment belongs to (side branches carry
    their trunk's name with `/b`); `path_mm` (N,) arc length from the tree's inflow to each segment start.
    """

    starts: np.ndarray
    ends: np.ndarray
    radii: np.ndarray
    parents: np.ndarray
    names: list[str]
    path_mm: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.starts)

    def children(self) -> list[list[int]]:
        """For each segment, the segments whose parent it is."""
        out: list[list[int]] = [[] for _ in range(len(self))]
        for index, parent in enumerate(self.parents.tolist()):
            if parent >= 0:
                out[parent].append(index)
        return out

    def subtree(self, index: int) -> list[int]:
        """Segment `index` and everything downstream of it (what an occlusion there cuts off)."""
        children, out, stack = self.children(), [], [index]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(children[node])
        return sorted(out)

    def select(self, keep: np.ndarray) -> VesselTree:
        """The tree restricted to the segments where `keep` (bool, N) holds; parent links re-indexed
        (-1 where the parent was dropped)."""
        keep = np.asarray(keep, dtype=bool)
        new_index = np.cumsum(keep) - 1
        parents = np.where(self.parents >= 0, self.parents, 0)
        remapped = np.where((self.parents >= 0) & keep[parents], new_index[parents], -1)[keep]
        return VesselTree(self.starts[keep], self.ends[keep], self.radii[keep], remapped,
                          [n for n, k in zip(self.names, keep, strict=True) if k], self.path_mm[keep])

    def to_json(self) -> dict[str, list]:
        """The tree as plain lists (mm), for a json file beside the rendered subject."""
        return {"starts": self.starts.tolist(), "ends": self.ends.tolist(), "radii": self.radii.tolist(),
                "parents": self.parents.tolist(), "names": list(self.names), "path_mm": self.path_mm.tolist()}

    @staticmethod
    def from_json(data: dict[str, list]) -> VesselTree:
        """The tree `to_json` wrote."""
        return VesselTree(np.array(data["starts"], np.float64).reshape(-1, 3),
                          np.array(data["ends"], np.float64).reshape(-1, 3),
                          np.array(data["radii"], np.float64).reshape(-1, 2), np.array(data["parents"], np.int64),
                          list(data["names"]), np.array(data["path_mm"], np.float64))

    def transformed(self, matrix: np.ndarray, offset: np.ndarray) -> VesselTree:
        """The tree moved by x -> matrix @ x + offset (mm); radii scaled by the mean linear scale."""
        scale = float(np.cbrt(abs(np.linalg.det(matrix))))
        return VesselTree(self.starts @ matrix.T + offset, self.ends @ matrix.T + offset, self.radii * scale,
                          self.parents.copy(), list(self.names), self.path_mm * scale)


def _variant_scales(rng: np.random.Generator) -> dict[str, float]:
    """Radius factors of the common Circle-of-Willis variants (0 removes the trunk and its branches)."""
    scales = {name: float(np.exp(rng.normal(0.0, 0.1))) for name in TRUNKS}
    for side in ("R", "L"):
        draw = rng.random()
        if draw < 0.15:
            scales[f"{side}-Pcom"] = 0.0  # absent posterior communicating artery
        elif draw < 0.25:  # fetal PCA: a large Pcom feeds the P2, the P1 is thin
            scales[f"{side}-Pcom"], scales[f"{side}-P1"] = 1.6, 0.45
        if rng.random() < 0.08:
            scales[f"{side}-A1"] = 0.5  # hypoplastic A1
    if rng.random() < 0.1:
        scales["Acom"] = 0.0
    return scales


def _subdivide(points: np.ndarray, step_mm: float, rng: np.random.Generator, jitter_mm: float) -> np.ndarray:
    """Resample a polyline every ~`step_mm`, jittering interior points (smooth tortuosity)."""
    out = [points[0]]
    for a, b in itertools.pairwise(points):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / step_mm)))
        for k in range(1, n + 1):
            out.append(a + (b - a) * k / n)
    out = np.array(out)
    if len(out) > 2 and jitter_mm > 0:
        wiggle = rng.normal(0.0, jitter_mm, size=out.shape)
        wiggle = (wiggle + np.roll(wiggle, 1, 0) + np.roll(wiggle, -1, 0)) / 3  # smooth along the vessel
        wiggle[0] = wiggle[-1] = 0.0
        out = out + wiggle
    return out


class _Builder:
    """Accumulates segments; each added polyline continues from a parent segment."""

    def __init__(self) -> None:
        self.starts: list[np.ndarray] = []
        self.ends: list[np.ndarray] = []
        self.radii: list[tuple[float, float]] = []
        self.parents: list[int] = []
        self.names: list[str] = []
        self.path: list[float] = []

    def add_polyline(self, points: np.ndarray, r0: float, r1: float, parent: int, name: str, path0: float
                     ) -> list[int]:
        lengths = np.linalg.norm(np.diff(points, axis=0), axis=1)
        cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
        total = max(float(cumulative[-1]), 1e-6)
        indices = []
        for k in range(len(points) - 1):
            ra = r0 + (r1 - r0) * cumulative[k] / total
            rb = r0 + (r1 - r0) * cumulative[k + 1] / total
            self.starts.append(points[k])
            self.ends.append(points[k + 1])
            self.radii.append((ra, rb))
            self.parents.append(parent)
            self.names.append(name)
            self.path.append(path0 + float(cumulative[k]))
            parent = len(self.starts) - 1
            indices.append(parent)
        return indices

    def tree(self) -> VesselTree:
        return VesselTree(np.array(self.starts, dtype=np.float64).reshape(-1, 3),
                          np.array(self.ends, dtype=np.float64).reshape(-1, 3),
                          np.array(self.radii, dtype=np.float64).reshape(-1, 2), np.array(self.parents, dtype=np.int64),
                          self.names, np.array(self.path, dtype=np.float64))


def _grow_branch(builder: _Builder, rng: np.random.Generator, start: np.ndarray, direction: np.ndarray, radius: float,
                 parent: int, name: str, path0: float, inside: Callable[[np.ndarray], bool], min_radius: float,
                 budget: list[int]) -> None:
    """A side branch as a curving walk (steps of ~6 radii, at least 1.5 mm) that tapers, sprouts its own
    branches by Murray's law and ends below `min_radius`, outside the brain or when the budget is spent."""
    position, heading = start.copy(), direction / np.linalg.norm(direction)
    points, path = [position.copy()], path0
    length_left = radius * rng.uniform(25.0, 45.0)
    current = parent
    while length_left > 0 and radius >= min_radius and budget[0] > 0:
        step = max(1.5, 6.0 * radius)
        heading = heading + rng.normal(0.0, 0.15, 3)
        heading /= np.linalg.norm(heading)
        nxt = position + heading * step
        if not inside(nxt):
            break
        end_radius = radius * 0.97
        current = builder.add_polyline(np.array([position, nxt]), radius, end_radius, current, name, path)[0]
        budget[0] -= 1
        path += step
        position, radius, length_left = nxt, end_radius, length_left - step
        points.append(position)
        if rng.random() < 0.35 and radius * 0.75 >= min_radius:
            child = radius * rng.uniform(0.45, 0.75)
            radius = float(np.cbrt(max(radius**3 - child**3, (0.5 * radius) ** 3)))
            side = np.cross(heading, rng.normal(size=3))
            side /= max(np.linalg.norm(side), 1e-9)
            angle = np.deg2rad(rng.uniform(35.0, 75.0))
            child_dir = np.cos(angle) * heading + np.sin(angle) * side
            _grow_branch(builder, rng, position, child_dir, child, current, name, path, inside, min_radius, budget)


def cerebral_arterial_tree(rng: np.random.Generator, inside: Callable[[np.ndarray], bool] | None = None, *,
                           min_radius_mm: float = MIN_RADIUS_MM, max_segments: int = 1500) -> VesselTree:
    """One subject's arterial tree in MNI mm, drawn from `rng` (the same seed gives the same tree).

    `inside(point_mm) -> bool` bounds the side branches (the brain mask; None: unbounded);
    `min_radius_mm` (0.1-0.5) the smallest radius drawn; `max_segments` caps the tree's size.
    Trunk radii are 0.6-2.2 mm before per-subject scaling; side branches taper to `min_radius_mm`.
    """
    inside = inside or (lambda point: True)
    scales = _variant_scales(rng)
    matrix = euler_rotation(np.deg2rad(rng.uniform(-4.0, 4.0, 3))) @ np.diag(rng.uniform(0.94, 1.06, 3))
    centre = np.array([0.0, -10.0, -20.0])  # the Circle of Willis: the variation turns about it
    offset = centre - matrix @ centre + rng.normal(0.0, 1.5, 3)
    builder, last_segment, budget = _Builder(), {}, [max_segments]
    for name, (parent, points, (r0, r1)) in TRUNKS.items():
        scale = scales[name] * (scales[parent] > 0 if parent else 1.0)
        if scale <= 0:
            scales[name] = 0.0
            continue
        moved = np.array(points, dtype=np.float64) @ matrix.T + offset
        polyline = _subdivide(moved, 3.0, rng, 0.6)
        parent_index = last_segment.get(parent, -1) if parent else -1
        if parent_index >= 0:  # attach to the parent segment nearest to this trunk's start
            members = [i for i, n in enumerate(builder.names) if n == parent]
            ends = np.array([builder.ends[i] for i in members])
            parent_index = members[int(np.argmin(np.linalg.norm(ends - polyline[0], axis=1)))]
            polyline[0] = builder.ends[parent_index]
        path0 = builder.path[parent_index] + float(np.linalg.norm(builder.ends[parent_index] -
                                                                  builder.starts[parent_index])) \
            if parent_index >= 0 else 0.0
        segments = builder.add_polyline(polyline, r0 * scale, r1 * scale, parent_index, name, path0)
        last_segment[name] = segments[-1]
        budget[0] -= len(segments)
    trunk_segments = len(builder.starts)
    sprouts = [i for i in range(trunk_segments) if builder.names[i] in BRANCHING and rng.random() < 0.8]
    share = max(budget[0], 0) // max(len(sprouts), 1)
    for index in sprouts:
        name, spent = builder.names[index], [share]
        start, end = builder.starts[index], builder.ends[index]
        axis = (end - start) / max(np.linalg.norm(end - start), 1e-9)
        side = np.cross(axis, rng.normal(size=3))
        side /= max(np.linalg.norm(side), 1e-9)
        angle = np.deg2rad(rng.uniform(40.0, 85.0))
        parent_radius = builder.radii[index][1]
        child = parent_radius * rng.uniform(0.35, 0.65)
        _grow_branch(builder, rng, end.copy(), np.cos(angle) * axis + np.sin(angle) * side, child, index,
                     f"{name}/b", builder.path[index] + float(np.linalg.norm(end - start)), inside, min_radius_mm,
                     spent)
    return builder.tree()
