"""Winding numbers, distances and pieces of big meshes, in bounded memory and with a way to stop.

libigl's trees cost about 220 bytes per face each (1.1 GB for a 5M-face scan) and hold Python's lock
while they are built or queried. :class:`MeshQueries` builds them once per mesh and queries them in
chunks of points, asking ``should_cancel`` between chunks; a mesh of more than :data:`FACES_PER_TREE`
faces is split into parts of at most that many faces, one tree at a time: distances are the minimum
over the parts (exact), winding numbers the sum (the winding number is additive; each part's is libigl's
fast approximation, so labels can differ from one tree's where the value is close to 0.5). Up to
:data:`FACES_PER_TREE` faces the results are exactly libigl's ``fast_winding_number`` and
``point_mesh_squared_distance``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import igl
import numpy as np

from ..errors import InputError, check_cancel
from .surface_points import covering_points, longest_edges, split_to_edge

__all__ = ["FACES_PER_TREE", "MeshQueries", "spatial_order"]

FACES_PER_TREE = 1_000_000
"""Faces per libigl tree: about 220 MB and 2 s to build on one core."""
POINTS_PER_CALL = 65_536
"""Points per libigl query call: well under a second, so a cancel is seen quickly. (Distance queries on
both cores took 10-15 % longer in calls of 16k points, whose threads start more often for less work.)"""
LONG_FACES = 64
"""Long faces a part may have before its winding-number tree is built on them cut smaller
(``MeshQueries(winding_edge=...)``): a handful cost little (the thin plate's 12 took twice as long cut),
a fan of them dominates labelling (the overlapping parts: 10.9 s of winding numbers for 800k points,
3.4 s cut by bisection)."""
COVERING_POINTS = 2_000_000
"""Most points :meth:`MeshQueries.truncated_distance` covers a surface with (about 50 MB with its
k-d tree), and never more than the surface has faces; a surface that needs more (long faces: CAD
parts, whose trees are quick anyway) has every point queried exactly."""


class MeshQueries:
    """Fast winding numbers and exact distances from points to one triangle mesh (V, F).

    Trees are built on first use and kept while the mesh fits in one (:meth:`release` frees them);
    bigger meshes rebuild their parts on each call, so call once with all the points. ``on_progress``
    gets what is computed (``"winding numbers"`` or ``"distances"``) and the fraction of that call done.

    ``winding_edge``: where a part has more than :data:`LONG_FACES` faces with an edge longer than this,
    the winding-number tree is built on those faces cut until no edge is (the winding number is a sum
    over the surface, so the same number; libigl's approximation of it differs by up to about 0.02).
    A fan of long thin faces, as CAD exports cap a cylinder, is otherwise evaluated face by face near
    every point. Distances are always the mesh's own.
    """

    def __init__(
        self,
        vertices: Any,
        faces: Any,
        *,
        should_cancel: Callable[[], bool] | None = None,
        on_progress: Callable[[str, float], None] | None = None,
        faces_per_tree: int = FACES_PER_TREE,
        winding_edge: float | None = None,
    ) -> None:
        self.winding_edge = winding_edge
        self.V = np.ascontiguousarray(vertices, dtype=np.float64)
        self.F = np.ascontiguousarray(faces, dtype=np.int64)
        if self.V.ndim != 2 or self.V.shape[1] != 3 or self.F.ndim != 2 or self.F.shape[1] != 3 or len(self.F) == 0:
            raise InputError(f"need vertices (n,3) and triangle faces (m,3), got {self.V.shape} and {self.F.shape}")
        self.should_cancel, self.on_progress = should_cancel, on_progress
        self.parts = (
            [self.F] if len(self.F) <= faces_per_tree else np.array_split(self.F, -(-len(self.F) // faces_per_tree))
        )
        self._trees: dict[str, Any] = {}

    def release(self) -> None:
        """Free the kept trees."""
        self._trees.clear()

    def _tree(self, kind: str, part: np.ndarray) -> Any:
        if len(self.parts) == 1 and kind in self._trees:
            return self._trees[kind]
        self._check()
        if kind == "winding":
            tree = igl.FastWindingNumberBVH()
            tree.init(*self._winding_mesh(part))
        else:
            tree = igl.AABB()
            tree.init(self.V, part)
        if len(self.parts) == 1:
            self._trees[kind] = tree
        return tree

    def _winding_mesh(self, part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The vertices and faces of ``part`` that its winding-number tree is built on (see the class)."""
        if self.winding_edge is None:
            return self.V, part
        corners = self.V[part]
        longest = longest_edges(corners)
        long = longest > self.winding_edge
        # halving a face's longest edge takes about two bisections
        halvings = np.ceil(np.log2(np.maximum(longest[long] / self.winding_edge, 1.0)))
        if np.count_nonzero(long) <= LONG_FACES or len(part) + float(np.sum(4.0**halvings)) > FACES_PER_TREE:
            return self.V, part
        pieces = split_to_edge(corners[long], self.winding_edge)[0].reshape(-1, 3)
        faces = np.arange(len(self.V), len(self.V) + len(pieces), dtype=np.int64).reshape(-1, 3)
        return np.concatenate([self.V, pieces]), np.concatenate([part[~long], faces])

    def _check(self) -> None:
        check_cancel(self.should_cancel, "labelling")

    def _chunks(self, points: np.ndarray, part_index: int, kind: str):
        """Slices of ``points`` for one part, with the cancel check and progress between them."""
        total = max(1, len(points) * len(self.parts))
        for start in range(0, len(points), POINTS_PER_CALL):
            self._check()
            if self.on_progress is not None:
                self.on_progress(kind, (part_index * len(points) + start) / total)
            yield slice(start, min(len(points), start + POINTS_PER_CALL))

    def winding_number(self, points: Any) -> np.ndarray:
        """(n,) generalised winding number at each point (libigl's fast approximation)."""
        P, order = _spatially_sorted(points)
        out = np.zeros(len(P), dtype=np.float64)
        for index, part in enumerate(self.parts):
            tree = self._tree("winding", part)
            for rows in self._chunks(P, index, "winding numbers"):
                out[rows] += tree.winding_number(P[rows])
            del tree
        return _unsorted(out, order)

    def squared_distance(self, points: Any) -> tuple[np.ndarray, np.ndarray]:
        """(n,) squared distance from each point to the mesh and (n,) the index of the closest face."""
        squared, face, _ = self._nearest(points, with_points=False)
        return squared, face

    def closest_points(self, points: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n,) squared distance from each point to the mesh, (n,) the index of the closest face and
        (n, 3) the closest point on it."""
        squared, face, point = self._nearest(points, with_points=True)
        return squared, face, cast(np.ndarray, point)

    def _nearest(self, points: Any, with_points: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Squared distances and closest faces, and the closest points only when asked: labels ask for
        millions of distances, whose closest points (24 bytes each) nobody reads."""
        P, order = _spatially_sorted(points)
        best = np.full(len(P), np.inf)
        face = np.zeros(len(P), dtype=np.int64)
        point = np.zeros((len(P), 3), dtype=np.float64) if with_points else None
        offset = 0
        for index, part in enumerate(self.parts):
            tree = self._tree("distance", part)
            for rows in self._chunks(P, index, "distances"):
                squared, closest, on_face = tree.squared_distance(self.V, part, P[rows])
                closer = squared < best[rows]
                best[rows] = np.where(closer, squared, best[rows])
                face[rows] = np.where(closer, closest + offset, face[rows])
                if point is not None:
                    point[rows] = np.where(closer[:, None], on_face, point[rows])
            offset += len(part)
            del tree
        return _unsorted(best, order), _unsorted(face, order), None if point is None else _unsorted(point, order)

    def unsigned_distance(self, points: Any) -> np.ndarray:
        """(n,) exact Euclidean distance from each point to the mesh."""
        return np.sqrt(np.maximum(self.squared_distance(points)[0], 0.0))

    def truncated_distance(self, points: Any, limit: float) -> np.ndarray:
        """(n,) ``min(distance to the mesh, limit)``, exact below ``limit``. A k-d tree of points
        covering the surface (each surface point within half of ``limit`` of one) finds the points that
        lie beyond ``limit`` without asking libigl's tree, whose queries far from the surface are the
        slow ones; only the others are queried."""
        P = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        spacing = 0.5 * float(limit)
        # a k-d tree of more points than the mesh has faces is no faster than libigl's tree of the faces
        most = min(COVERING_POINTS, len(self.F))
        cover = covering_points(self.V, self.F, spacing, most) if len(P) and limit > 0 else None
        if cover is None:
            return np.minimum(self.unsigned_distance(P), limit)
        from scipy.spatial import KDTree

        self._check()
        nearest, _ = KDTree(cover).query(P, distance_upper_bound=limit + spacing, workers=-1)
        near = np.flatnonzero(np.isfinite(nearest))  # the others are over limit + spacing from every cover point
        out = np.full(len(P), float(limit))
        out[near] = np.minimum(self.unsigned_distance(P[near]), limit)
        return out


def _spread_bits(bits: int) -> np.ndarray:
    """Each ``bits``-bit integer with its bit i moved to bit 3i: one axis's share of a Morton code."""
    values = np.arange(1 << bits, dtype=np.int64)
    spread = np.zeros(1 << bits, dtype=np.int64)
    for bit in range(bits):
        spread |= ((values >> bit) & 1) << (3 * bit)
    return spread


_SPREAD = _spread_bits(10)


def _spatially_sorted(points: Any) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) float64 points in Morton (Z-curve) order, and that order: neighbouring queries walk the same
    branches of a tree, which makes libigl's queries two to three times faster (each answer is the same)."""
    P = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(P) == 0:
        return np.ascontiguousarray(P), np.zeros(0, dtype=np.int64)
    # per column: numpy reduces a column of an (n, 3) array about ten times faster than along axis 0
    lo = np.array([P[:, axis].min() for axis in range(3)])
    span = np.maximum(np.array([P[:, axis].max() for axis in range(3)]) - lo, 1e-300)
    cells = len(_SPREAD)
    cell = np.clip(((P - lo) / span * cells).astype(np.int64), 0, cells - 1)
    code = _SPREAD[cell[:, 0]] | (_SPREAD[cell[:, 1]] << 1) | (_SPREAD[cell[:, 2]] << 2)
    order = np.argsort(code)  # ties in any order: each point's answer does not depend on the others
    return np.ascontiguousarray(P[order]), order


def spatial_order(points: Any) -> np.ndarray:
    """The Morton order of (n, 3) points: querying a tree in it gives the same answers, faster."""
    return _spatially_sorted(points)[1]


def _unsorted(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    out[order] = values
    return out
