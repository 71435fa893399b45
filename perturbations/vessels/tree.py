"""The vessel tree of a binary mask: centreline voxels, their radii, their graph and the territory of each.

The centreline is scikit-image's `skeletonize` (2D or 3D); a radius is the Euclidean distance transform of the
mask at a centreline voxel (mm, using the voxel spacing); the graph joins centreline voxels that touch (full
connectivity: 8 in 2D, 26 in 3D); every vessel voxel belongs to its nearest centreline voxel (its territory).
The root of each connected piece is its widest centreline voxel, so "distal to a point" means "cut off from the
widest vessel of its piece when that point is removed".
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt
from scipy.ndimage import label as label_pieces
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components
from skimage.morphology import skeletonize


@dataclass
class VesselTree:
    """Centreline graph of a vessel mask.

    nodes: (n, ndim) voxel indices of the centreline; radius: (n,) mm; graph: (n, n) symmetric adjacency;
    owner: (*spatial) index of the nearest centreline voxel for every voxel of the mask, -1 elsewhere;
    piece: (n,) connected piece of each node; root: (pieces,) widest node of each piece.
    """

    mask: np.ndarray
    spacing: tuple[float, ...]
    nodes: np.ndarray
    radius: np.ndarray
    graph: csr_matrix
    owner: np.ndarray
    piece: np.ndarray
    root: np.ndarray

    @property
    def degree(self) -> np.ndarray:
        """(n,) number of touching centreline voxels: 1 at a vessel end, >= 3 at a bifurcation."""
        return np.asarray(self.graph.sum(axis=1)).ravel()

    @property
    def volume(self) -> np.ndarray:
        """(n,) number of mask voxels in each node's territory."""
        owned = self.owner[self.owner >= 0]
        return np.bincount(owned, minlength=len(self.nodes))

    def territory(self, selected: np.ndarray) -> np.ndarray:
        """The mask voxels whose nearest centreline voxel is one of the `selected` nodes (bool (n,))."""
        return self.mask & np.where(self.owner >= 0, selected[np.maximum(self.owner, 0)], False)

    def disconnected(self, removed: np.ndarray) -> np.ndarray:
        """(n,) nodes cut off from their piece's root once the `removed` nodes (bool (n,)) are taken out."""
        keep = ~removed
        sub = self.graph[keep][:, keep]
        _, labels = connected_components(sub, directed=False)
        full = np.full(len(self.nodes), -1)
        full[keep] = labels
        rooted = {int(full[r]) for r in self.root if keep[r]}
        return keep & ~np.isin(full, list(rooted))

    def breadth_first(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per piece, (order, parent) of the breadth-first tree from its root (scipy.sparse.csgraph)."""
        return [breadth_first_order(self.graph, int(root), directed=False) for root in self.root]

    def subtree_volume(self) -> np.ndarray:
        """(n,) mask voxels owned by each node and everything beyond it on the breadth-first tree from its root
        (equal to the distal volume where the tree has no loops; an estimate across the Circle of Willis)."""
        total = self.volume.astype(float)
        for order, parent in self.breadth_first():
            for node in order[:0:-1]:
                total[parent[node]] += total[node]
        return total

    def beyond(self, node: int) -> np.ndarray:
        """(n,) `node` and every node after it on the breadth-first tree from its root."""
        inside = np.zeros(len(self.nodes), dtype=bool)
        inside[node] = True
        for order, parent in self.breadth_first():
            if node in set(order.tolist()):
                for v in order[1:]:
                    inside[v] |= inside[parent[v]]
        return inside

    def distances_mm(self, node: int) -> np.ndarray:
        """(n,) straight-line distance in mm from `node` to every node."""
        return np.linalg.norm((self.nodes - self.nodes[node]) * np.asarray(self.spacing), axis=1)


def centreline(mask: np.ndarray) -> np.ndarray:
    """scikit-image's skeleton of `mask`, plus the deepest voxel of any piece the skeleton missed."""
    skeleton = skeletonize(mask).astype(bool)
    pieces, count = label_pieces(mask, structure=np.ones((3,) * mask.ndim))
    covered = np.unique(pieces[skeleton])
    if len(covered) - (0 in covered) < count:
        depth = distance_transform_edt(mask)
        for k in set(range(1, count + 1)) - set(covered.tolist()):
            inside = np.where(pieces == k, depth, -1.0)
            skeleton[np.unravel_index(int(np.argmax(inside)), mask.shape)] = True
    return skeleton


def adjacency(nodes: np.ndarray, shape: tuple[int, ...]) -> csr_matrix:
    """(n, n) symmetric adjacency of voxels that touch (full connectivity)."""
    index = np.full(shape, -1, dtype=np.int64)
    index[tuple(nodes.T)] = np.arange(len(nodes))
    rows, cols = [], []
    for offset in itertools.product((-1, 0, 1), repeat=len(shape)):
        if not any(offset):
            continue
        moved = nodes + np.array(offset)
        inside = np.all((moved >= 0) & (moved < np.array(shape)), axis=1)
        neighbour = np.full(len(nodes), -1)
        neighbour[inside] = index[tuple(moved[inside].T)]
        hit = neighbour >= 0
        rows.append(np.flatnonzero(hit))
        cols.append(neighbour[hit])
    row, col = np.concatenate(rows), np.concatenate(cols)
    return coo_matrix((np.ones(len(row)), (row, col)), shape=(len(nodes), len(nodes))).tocsr()


def vessel_tree(mask: np.ndarray, spacing: tuple[float, ...]) -> VesselTree:
    """The centreline graph of a boolean vessel mask (2D or 3D) with voxel `spacing` in mm per axis."""
    mask = np.asarray(mask, dtype=bool)
    skeleton = centreline(mask)
    nodes = np.argwhere(skeleton)
    radius = distance_transform_edt(mask, sampling=spacing)[skeleton] if len(nodes) else np.zeros(0)
    graph = adjacency(nodes, mask.shape)
    owner = np.full(mask.shape, -1, dtype=np.int64)
    if len(nodes):
        index = np.full(mask.shape, -1, dtype=np.int64)
        index[tuple(nodes.T)] = np.arange(len(nodes))
        nearest = distance_transform_edt(~skeleton, sampling=spacing, return_distances=False, return_indices=True)
        owner = np.where(mask, index[tuple(nearest)], -1)
    count, piece = connected_components(graph, directed=False) if len(nodes) else (0, np.zeros(0, int))
    root = np.array([np.flatnonzero(piece == k)[np.argmax(radius[piece == k])] for k in range(count)], dtype=int)
    return VesselTree(mask, tuple(float(s) for s in spacing), nodes, radius, graph, owner, piece, root)
