"""Points on a triangle mesh's surface: uniform by area or by triangle, and the arrays libigl wants."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

__all__ = [
    "as_vf",
    "covering_points",
    "longest_edges",
    "sample_surface",
    "split_to_edge",
    "triangle_areas",
    "triangle_normals",
    "vertex_normals",
]


def as_vf(vertices: Any, faces: Any) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous (float64 (n,3), int64 (m,3)) copies as libigl wants them."""
    V = np.ascontiguousarray(vertices, dtype=np.float64)
    F = np.ascontiguousarray(faces, dtype=np.int64)
    if V.ndim != 2 or V.shape[1] != 3 or F.ndim != 2 or F.shape[1] != 3 or len(F) == 0:
        raise InputError(f"need vertices (n,3) and triangle faces (m,3), got {V.shape} and {F.shape}")
    return V, F


def longest_edges(corners: np.ndarray) -> np.ndarray:
    """(m,) the longest edge of each of the (m, 3, 3) triangles."""
    return np.linalg.norm(corners[:, [1, 2, 0]] - corners, axis=2).max(axis=1)


def _bisect(corners: np.ndarray) -> np.ndarray:
    """(m, 3, 3) triangles split at the middle of their longest edge: (2m, 3, 3), the same area."""
    edge = np.linalg.norm(corners[:, [1, 2, 0]] - corners, axis=2)  # edge k runs from corner k to k+1
    first = np.argmax(edge, axis=1)
    rows = np.arange(len(corners))[:, None]
    a, b, c = (corners[rows, (first[:, None] + k) % 3][:, 0] for k in range(3))
    middle = 0.5 * (a + b)
    return np.concatenate([np.stack([a, middle, c], axis=1), np.stack([middle, b, c], axis=1)])


def split_to_edge(corners: np.ndarray, edge: float) -> tuple[np.ndarray, np.ndarray]:
    """The (m, 3, 3) triangles bisected until no edge is longer than ``edge`` (the same surface), and
    the triangle each piece is of."""
    done, done_from = [], []
    origin = np.arange(len(corners))
    while len(corners):
        long = longest_edges(corners) > edge
        done.append(corners[~long])
        done_from.append(origin[~long])
        corners, origin = _bisect(corners[long]), np.tile(origin[long], 2)
    return np.concatenate(done), np.concatenate(done_from)


def covering_points(vertices: Any, faces: Any, spacing: float, limit: int) -> np.ndarray | None:
    """Points on the faces such that every point of the surface lies within ``spacing`` of one of them,
    or None where that takes more than ``limit`` points (long faces and a fine spacing).

    Each face is cut into k x k similar triangles, k its longest edge over ``spacing`` rounded up; a point
    of a triangle lies within its longest edge of each of its corners, and the corners of all the small
    triangles are the points. A mesh whose edges are all shorter than ``spacing`` gives its own vertices."""
    V, F = as_vf(vertices, faces)
    corners = V[F]
    cuts = np.maximum(1, np.ceil(longest_edges(corners) / spacing)).astype(np.int64)
    used = np.unique(F)
    if len(used) + int(((cuts + 1) * (cuts + 2) // 2 - 3).sum()) > limit:
        return None
    points = [V[used]]
    for k in np.unique(cuts[cuts > 1]):  # one pass per number of cuts, each over all its faces
        i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
        i, j = i.ravel(), j.ravel()
        inner = (i + j <= k) & (i < k) & (j < k) & (i + j > 0)  # the face's own corners are in V already
        weights = np.stack([k - i - j, i, j], axis=1)[inner] / k
        points.append(np.einsum("pk,fkd->fpd", weights, corners[cuts == k]).reshape(-1, 3))
    return np.concatenate(points)


def sample_surface(
    vertices: Any, faces: Any, n: int, rng: np.random.Generator, *, mode: str = "area"
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform points on triangles: returns (points (n,3) float64, face index (n,) int64).

    ``mode="area"`` picks triangles with probability proportional to area; ``"uniform"`` picks every
    triangle with equal probability (the second half of the hybrid sampler, docs/method.md §6.3). Same frame as ``vertices``.
    """
    V, F = as_vf(vertices, faces)
    if mode == "area":
        area = triangle_areas(V, F)
        total = area.sum()
        if not total > 0:
            raise InputError("cannot sample a surface whose faces all have zero area")
        cdf = np.cumsum(area / total)
        face = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(F) - 1)
    elif mode == "uniform":
        face = rng.integers(0, len(F), size=n)
    else:
        raise InputError(f"unknown triangle selection mode {mode!r} (use 'area' or 'uniform')")
    uv = rng.random((n, 2))
    flip = uv.sum(axis=1) > 1.0
    uv[flip] = 1.0 - uv[flip]
    t = V[F[face]]
    pts = t[:, 0] + uv[:, :1] * (t[:, 1] - t[:, 0]) + uv[:, 1:] * (t[:, 2] - t[:, 0])
    return pts, face.astype(np.int64)


def triangle_areas(V: np.ndarray, F: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """(m,) triangle areas, a million faces at a time (the (m, 3, 3) corners of a 5M-face mesh are 360 MB)."""
    area = np.empty(len(F), dtype=np.float64)
    for start in range(0, len(F), chunk):
        tri = V[F[start : start + chunk]]
        area[start : start + len(tri)] = 0.5 * np.linalg.norm(
            np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1
        )
    return area


def triangle_normals(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals (m, 3) and areas (m,) of triangles given as their (m, 3, 3) corners; a degenerate
    triangle gets a zero normal."""
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(normal, axis=1)
    return normal / np.maximum(length, 1e-300)[:, None], 0.5 * length


VERTEX_WEIGHTS = ("area", "angle")


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, weights: str = "area") -> np.ndarray:
    """(V, 3) unit vertex normals: the sum of the incident faces' normals weighted by their ``area``, or
    by their corner ``angle`` at the vertex (Blender's shading, where a needle triangle's wide corner
    weighs as much as a whole face); zero where a vertex has nothing around it."""
    if weights not in VERTEX_WEIGHTS:
        raise ValueError(f"vertex normal weights must be one of {VERTEX_WEIGHTS}, got {weights!r}")
    V = np.asarray(vertices, dtype=np.float64)
    F = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    corners = V[F]
    scaled = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])  # twice the area long
    if weights == "area":
        per_corner = np.repeat(scaled[:, None, :], 3, axis=1)
    else:
        unit = scaled / np.maximum(np.linalg.norm(scaled, axis=1, keepdims=True), 1e-300)
        to_next = np.roll(corners, -1, axis=1) - corners
        to_previous = np.roll(corners, 1, axis=1) - corners
        cos = np.einsum("fkc,fkc->fk", to_next, to_previous) / np.maximum(
            np.linalg.norm(to_next, axis=2) * np.linalg.norm(to_previous, axis=2), 1e-300
        )
        per_corner = unit[:, None, :] * np.arccos(np.clip(cos, -1.0, 1.0))[:, :, None]
    summed = np.stack(
        [np.bincount(F.ravel(), per_corner[:, :, axis].ravel(), minlength=len(V)) for axis in range(3)], axis=1
    )
    length = np.linalg.norm(summed, axis=1, keepdims=True)
    return np.divide(summed, length, out=np.zeros_like(summed), where=length > 0)
