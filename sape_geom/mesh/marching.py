"""PyMCubes' marching cubes, computed slab by slab so that a large grid never has to be in memory at once.

:class:`SlabMarcher` takes the grid in consecutive slabs of planes along axis 0 and returns exactly what
``mcubes.marching_cubes`` returns for the whole grid: the same vertices (bit for bit), in the same order,
and the same triangles. It follows PyMCubes' algorithm (0.1.6) step by step: cubes are visited with the
last index fastest; a cube whose corners straddle the iso value creates the vertices of its "upper" edges
(6, 5 and 10) and, on the low faces of the grid, those of the edges no earlier cube owns; every other
edge takes the vertex an earlier cube made; a vertex lies at ``(x2 - x1) * (iso - f1) / (f2 - f1) + x1``
along its edge, with the edge's ends in PyMCubes' order. The edge and triangle tables are read from
PyMCubes itself (one call per cube configuration), so the two cannot disagree.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .surface_points import vertex_normals

__all__ = ["SlabMarcher", "marching_tables"]

CORNERS = np.array([(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)])
"""Corner ``m`` of a cube as an offset from its lowest corner (PyMCubes' numbering)."""
EDGES = {
    0: (0, 1),
    1: (1, 2),
    2: (2, 3),
    3: (3, 0),
    4: (4, 5),
    5: (5, 6),
    6: (6, 7),
    7: (7, 4),
    8: (0, 4),
    9: (1, 5),
    10: (2, 6),
    11: (3, 7),
}
"""Edge -> (first corner, second corner), in the order PyMCubes interpolates it."""
ORDER = (6, 5, 10, 0, 1, 2, 3, 4, 7, 8, 9, 11)
"""The order in which one cube creates its vertices."""
CREATES_WHEN = {6: "", 5: "", 10: "", 0: "jk", 1: "k", 2: "k", 3: "ik", 4: "j", 7: "i", 8: "ij", 9: "j", 11: "i"}
"""Edge -> the cube indices that must all be 0 for the cube to create that edge's vertex (PyMCubes 0.1.6:
each edge of the grid gets one vertex, made by the first cube that visits it; later cubes reuse it)."""


@lru_cache(maxsize=1)
def marching_tables() -> tuple[np.ndarray, np.ndarray]:
    """(edge bits (256,) int64, triangle edges (256, 15) int64 padded with -1), read from PyMCubes.

    Each configuration is one cube with values -1 (inside) and 1: every edge is created in PyMCubes'
    order at its midpoint, which names the edge of each vertex.
    """
    import mcubes

    midpoints = {tuple((CORNERS[a] + CORNERS[b]) / 2.0): edge for edge, (a, b) in EDGES.items()}
    bits = np.zeros(256, dtype=np.int64)
    triangles = np.full((256, 15), -1, dtype=np.int64)
    for case in range(256):
        cube = np.ones((2, 2, 2))
        for m in range(8):
            if case >> m & 1:
                cube[tuple(CORNERS[m])] = -1.0
        verts, faces = mcubes.marching_cubes(cube, 0.0)
        edges = [midpoints[tuple(v)] for v in np.asarray(verts)]
        bits[case] = sum(1 << e for e in set(edges))
        flat = [edges[i] for i in np.asarray(faces, dtype=np.int64).reshape(-1)]
        triangles[case, : len(flat)] = flat
    return bits, triangles


class SlabMarcher:
    """Marching cubes of a ``(nx, ny, nz)`` grid fed as consecutive slabs of planes along axis 0.

    Call :meth:`add` with planes ``[i0, i1]`` (inclusive; each slab starts at the previous one's last
    plane) for the cubes between them, then :meth:`result`. ``faces_so_far`` lets a caller stop early.
    ``corner_gap`` (a fraction of a cell, under 0.5) keeps every vertex at least that far from the ends
    of its grid edge: where the surface passes next to a grid point, the vertices on the edges around it
    would otherwise lie within a hair of each other and make needle triangles, whose normals are noise
    (dark specks in shading). The shift along the edge is then taken back along the surface normal, so
    a vertex slides along the surface, not off it. 0 places every vertex exactly as
    ``mcubes.marching_cubes`` does.
    """

    def __init__(self, shape: tuple[int, int, int], iso: float = 0.0, corner_gap: float = 0.0) -> None:
        if not 0.0 <= corner_gap < 0.5:
            raise ValueError(f"corner_gap must be in [0, 0.5), got {corner_gap}")
        self.shape = tuple(int(n) for n in shape)
        self.iso = float(iso)
        self.corner_gap = float(corner_gap)
        self.next_plane = 0
        self.vertex_count = 0
        self.faces_so_far = 0
        self._vertices: list[np.ndarray] = []
        self._exact: list[np.ndarray] = []  # with a corner gap: where the vertices were before it
        self._faces: list[np.ndarray] = []
        self._per_plane = self.shape[1] * self.shape[2]
        self._per_axis = self.shape[0] * self._per_plane
        self._plane_ids = self._plane_index = np.zeros(0, dtype=np.int64)  # vertices on the last plane's y/z edges

    def add(self, planes: np.ndarray, i0: int) -> None:
        """Cubes between planes ``i0 .. i0 + len(planes) - 1`` of the grid (``planes`` holds those planes)."""
        planes = np.asarray(planes, dtype=np.float64)
        if i0 != self.next_plane or planes.shape[1:] != self.shape[1:] or len(planes) < 2:
            raise ValueError(f"slab must start at plane {self.next_plane} and hold >= 2 planes of {self.shape[1:]}")
        self.next_plane = i0 + len(planes) - 1
        edge_bits, triangle_edges = marching_tables()
        inside = planes <= self.iso
        case = np.zeros(np.subtract(inside.shape, 1), dtype=np.uint8)
        for m, (a, b, c) in enumerate(CORNERS):
            case |= inside[a : a + case.shape[0], b : b + case.shape[1], c : c + case.shape[2]].astype(np.uint8) << m
        del inside
        li, j, k = np.nonzero((case != 0) & (case != 255))
        if len(li) == 0:
            self._plane_ids = self._plane_index = np.zeros(0, dtype=np.int64)
            return
        case = case[li, j, k].astype(np.int64)
        i = li + i0
        active = edge_bits[case]
        low = {"i": i == 0, "j": j == 0, "k": k == 0}
        creates = np.zeros((len(case), 12), dtype=bool)
        for e, rule in CREATES_WHEN.items():
            creates[:, e] = (active >> e & 1).astype(bool)
            for name in rule:
                creates[:, e] &= low[name]
        ordered = creates[:, list(ORDER)]
        first = self.vertex_count + np.concatenate([[0], np.cumsum(ordered.sum(axis=1))[:-1]])
        rank = np.cumsum(ordered, axis=1) - ordered  # vertices this cube created before each edge
        vertices = np.empty((int(ordered.sum()), 3), dtype=np.float64)
        exact = np.empty_like(vertices) if self.corner_gap > 0 else None
        slot = np.full((len(case), 12), -1, dtype=np.int64)
        made_ids, made_index = [self._plane_ids], [self._plane_index]
        for position, e in enumerate(ORDER):
            rows = np.nonzero(creates[:, e])[0]
            index = first[rows] + rank[rows, position]
            slot[rows, e] = index
            at = index - self.vertex_count
            on_edge, vertices[at] = self._vertex(planes, li[rows], i[rows], j[rows], k[rows], e)
            if exact is not None:
                exact[at] = on_edge
            made_ids.append(self._edge_id(e, i[rows], j[rows], k[rows]))
            made_index.append(index)
        if exact is not None:
            self._exact.append(exact)
        ids, index = np.concatenate(made_ids), np.concatenate(made_index)
        order = np.argsort(ids, kind="stable")
        ids, index = ids[order], index[order]
        for e in ORDER:
            rows = np.nonzero(((active >> e & 1) == 1) & ~creates[:, e])[0]
            slot[rows, e] = index[np.searchsorted(ids, self._edge_id(e, i[rows], j[rows], k[rows]))]
        # Vertices on y and z edges of the slab's last plane are reused by the next slab's first cubes.
        last_plane = self.next_plane
        axis, x = ids // self._per_axis, ids % self._per_axis // self._per_plane
        keep = (axis > 0) & (x == last_plane)
        self._plane_ids, self._plane_index = ids[keep], index[keep]
        edges = triangle_edges[case]
        faces = np.take_along_axis(slot, np.maximum(edges, 0), axis=1)[edges >= 0].reshape(-1, 3)
        self._vertices.append(vertices)
        self._faces.append(faces)
        self.vertex_count += len(vertices)
        self.faces_so_far += len(faces)

    def _vertex(self, planes, li, i, j, k, edge) -> tuple[np.ndarray, np.ndarray]:
        """Positions (n, 3) of the vertices on ``edge`` of cubes (i, j, k), computed as PyMCubes does,
        and the same kept ``corner_gap`` from the edge's ends (the same array without a gap)."""
        a, b = EDGES[edge]
        start, end = CORNERS[a], CORNERS[b]
        axis = int(np.nonzero(start != end)[0][0])
        f1 = planes[li + start[0], j + start[1], k + start[2]]
        f2 = planes[li + end[0], j + end[1], k + end[2]]
        cube = np.stack([i, j, k], axis=1).astype(np.float64)
        x1, x2 = cube[:, axis] + start[axis], cube[:, axis] + end[axis]
        out = cube + start
        t = (self.iso - f1) / (f2 - f1)
        out[:, axis] = (x2 - x1) * t + x1
        if self.corner_gap <= 0:
            return out, out
        off = out.copy()
        off[:, axis] = (x2 - x1) * np.clip(t, self.corner_gap, 1.0 - self.corner_gap) + x1
        return out, off

    def _edge_id(self, edge: int, i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
        """One integer per grid edge: its axis and its lower end."""
        a, b = EDGES[edge]
        low = np.minimum(CORNERS[a], CORNERS[b])
        axis = int(np.nonzero(CORNERS[a] != CORNERS[b])[0][0])
        _, ny, nz = self.shape
        return axis * self._per_axis + ((i + low[0]) * ny + j + low[1]) * nz + k + low[2]

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(vertices (V, 3) float64 in grid index units, faces (F, 3) int64), as ``mcubes.marching_cubes``."""
        if not self._vertices:
            return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
        vertices = np.concatenate(self._vertices)
        self._vertices = []  # each slab's arrays go as soon as they are copied: one mesh held, not two
        faces = np.concatenate(self._faces)
        self._faces = []
        if self._exact:
            exact = np.concatenate(self._exact)
            self._exact = []
            normals = vertex_normals(vertices, faces)  # the exact mesh's are undefined where vertices meet
            shift = np.einsum("ij,ij->i", vertices - exact, normals)
            vertices -= shift[:, None] * normals  # back onto the surface's tangent plane
        return vertices, faces
