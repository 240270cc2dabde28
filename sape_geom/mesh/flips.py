"""Edge flips that turn a surface's triangles toward the input's normals (docs/method.md §6.3, "Snapping").

Once its vertices lie on the input, a surface extracted from a grid can still span detail finer than a
cell badly: two triangles sharing an edge that cuts across a crease each bend over it, where the other
diagonal of the same four corners would lie flat on either side. Flipping such an edge moves no vertex
and changes neither the number of faces nor the surface's topology; it only picks, for each quad, the
diagonal whose triangles agree better with the input's normals. The flips are made in rounds, each
face in at most one flip a round, each flip lowering the sum of the faces' deviations, so it ends.
Memory: the half-edges of the faces tried (all of them in the first round), about 200 bytes a face;
the faces' samples are queried in chunks.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import check_cancel
from .folds import face_chunks
from .queries import MeshQueries
from .surface_points import triangle_normals

__all__ = ["flip_toward_normals"]

SAMPLES = np.array([[2, 2, 2], [4, 1, 1], [1, 4, 1], [1, 1, 4]]) / 6.0
"""Barycentric points at which a face's normal is compared with the input's: the centre and one point
toward each corner, so that a face lying across a crease sees both sides of it."""
DEVIATION_FLOOR = 1.0 - np.cos(np.radians(3.0))
"""A face whose cost per area is below this (that of lying on the input, 3 degrees off) needs no flip:
the edges between two such faces are not tried."""
DISTANCE_WEIGHT = 0.3
"""Weight of the samples' distance to the input, in cells, beside ``1 - |cos|``: between two diagonals
that agree as well with the input's normals (a smoothly curved part), the one nearer to it."""
LEAST_COS = -0.5
"""The two new faces may meet at a dihedral angle of at most 120 degrees: a flip never makes a fold."""
ROUNDS = 32
"""Rounds of flips at most; each round after the first tries only the edges around what changed."""


def flip_toward_normals(
    V: np.ndarray,
    F: np.ndarray,
    reference: MeshQueries,
    reference_normals: np.ndarray,
    cell: float,
    *,
    offset: float = 0.0,
    least_area: float = 0.0,
    should_cancel: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, int]:
    """The faces of the closed surface ``(V, F)`` with edges flipped where the two faces beside an edge
    agree better with the normals of ``reference`` (its per-face ``reference_normals``, same frame) the
    other way; and how many were flipped. ``cell`` is the grid spacing; ``offset`` the distance from the
    input the surface is meant to lie at (a sheet's side; 0: on the input); no new face has an area of
    ``least_area`` or less. Only edges with exactly two faces, opposite in direction, are flipped, and
    only to a diagonal that is not an edge already, so a closed manifold surface stays one."""
    F = np.array(F, dtype=np.int64).reshape(-1, 3)
    n = len(V)
    if len(F) == 0:
        return F, 0
    cost, normals, areas = _face_costs(V, F, reference, reference_normals, cell, offset, should_cancel)
    active = cost > DEVIATION_FLOOR * areas
    flipped = 0
    just_flipped = np.zeros(0, dtype=np.int64)  # the last round's new edges: flipping one back only loses
    for _ in range(ROUNDS):
        check_cancel(should_cancel, "flipping edges")
        a, b, c, d, f1, f2 = _interior_edges(F, n, active)
        if not len(a):
            break
        key = np.sort(np.stack([c, d], axis=1), axis=1)
        new_key = key[:, 0] * n + key[:, 1]
        E = np.sort(np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]]), axis=1)
        fresh = (c != d) & ~np.isin(new_key, E[:, 0] * n + E[:, 1])
        fresh &= ~np.isin(np.minimum(a, b) * n + np.maximum(a, b), just_flipped)
        del E
        a, b, c, d, f1, f2, new_key = a[fresh], b[fresh], c[fresh], d[fresh], f1[fresh], f2[fresh], new_key[fresh]
        first = np.stack([a, d, c], axis=1)
        second = np.stack([b, c, d], axis=1)
        cost1, normal1, area1 = _face_costs(V, first, reference, reference_normals, cell, offset, should_cancel)
        cost2, normal2, area2 = _face_costs(V, second, reference, reference_normals, cell, offset, should_cancel)
        gain = cost[f1] + cost[f2] - cost1 - cost2
        before = normals[f1] + normals[f2]
        good = (
            (gain > 0)
            & (area1 > least_area)
            & (area2 > least_area)
            & (np.einsum("ij,ij->i", normal1, before) > 0)
            & (np.einsum("ij,ij->i", normal2, before) > 0)
            & (np.einsum("ij,ij->i", normal1, normal2) > LEAST_COS)
        )
        chosen = _independent(np.flatnonzero(good), gain, f1, f2, new_key, len(F))
        # two flips beside one vertex of valence four would leave it with two
        valence = np.bincount(F.ravel(), minlength=n)
        valence -= np.bincount(a[chosen], minlength=n) + np.bincount(b[chosen], minlength=n)
        chosen = chosen[(valence[a[chosen]] >= 3) & (valence[b[chosen]] >= 3)]
        if not len(chosen):
            break
        F[f1[chosen]], F[f2[chosen]] = first[chosen], second[chosen]
        for faces, new_cost, new_normal, new_area in ((f1, cost1, normal1, area1), (f2, cost2, normal2, area2)):
            cost[faces[chosen]], normals[faces[chosen]], areas[faces[chosen]] = (
                new_cost[chosen],
                new_normal[chosen],
                new_area[chosen],
            )
        flipped += len(chosen)
        just_flipped = new_key[chosen]
        # next round: the changed faces' edges, and the good flips that lost to a neighbour
        waiting = np.setdiff1d(np.flatnonzero(good), chosen)
        active[:] = False
        active[np.concatenate([f1[chosen], f2[chosen], f1[waiting], f2[waiting]])] = True
        active &= cost > DEVIATION_FLOOR * areas
    return F, flipped


def _face_costs(
    V: np.ndarray,
    F: np.ndarray,
    reference: MeshQueries,
    reference_normals: np.ndarray,
    cell: float,
    offset: float,
    should_cancel: Callable[[], bool] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per face: area times (mean ``1 - |cos|`` against the closest input faces' normals at
    :data:`SAMPLES` (a sheet's, ``offset`` > 0: ``1 - cos`` against the direction from the closest
    input point, its offset surface's normal), plus :data:`DISTANCE_WEIGHT` times the samples' mean
    distance from ``offset``, in cells); the unit normal; the area."""
    cost, normals, areas = np.empty(len(F)), np.empty((len(F), 3)), np.empty(len(F))
    for chunk in face_chunks(len(F), 1 << 14):
        check_cancel(should_cancel, "flipping edges")
        corners = V[F[chunk]]
        normal, area = triangle_normals(corners)
        points = np.einsum("sk,fkd->fsd", SAMPLES, corners).reshape(-1, 3)
        squared, face, closest = reference.closest_points(points)
        if offset > 0:
            # a sheet's side: the offset surface's normal, away from the input (a turned face costs 2)
            away = (points - closest) / np.sqrt(np.maximum(squared, 1e-300))[:, None]
            deviation = 1.0 - np.einsum("fd,fsd->fs", normal, away.reshape(len(corners), len(SAMPLES), 3))
        else:
            closest_normals = reference_normals[face].reshape(len(corners), len(SAMPLES), 3)
            deviation = 1.0 - np.abs(np.einsum("fd,fsd->fs", normal, closest_normals))
        distance = np.abs(np.sqrt(squared) - offset).reshape(len(corners), len(SAMPLES)) / cell
        cost[chunk] = area * (deviation.mean(axis=1) + DISTANCE_WEIGHT * distance.mean(axis=1))
        normals[chunk], areas[chunk] = normal, area
    return cost, normals, areas


def _interior_edges(
    F: np.ndarray, n: int, active: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Edges ``a -> b`` of face ``f1 = (a, b, c)`` whose reverse ``b -> a`` is in face ``f2 = (b, a, d)``,
    each once, with at least one of ``f1`` and ``f2`` active; an edge with more than two faces is left
    out."""
    # every face at a corner of an active face: all the faces of the active faces' edges
    at_active = np.zeros(n, dtype=bool)
    at_active[F[active].ravel()] = True
    around = np.flatnonzero(at_active[F].any(axis=1))
    sub = F[around]
    a = sub.ravel()
    b = sub[:, [1, 2, 0]].ravel()
    c = sub[:, [2, 0, 1]].ravel()
    face = np.repeat(around, 3)
    key = np.minimum(a, b) * n + np.maximum(a, b)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    counts = np.diff(np.r_[starts, len(key)])
    pair = starts[counts == 2]
    e1, e2 = order[pair], order[pair + 1]
    keep = (a[e1] == b[e2]) & (b[e1] == a[e2]) & (active[face[e1]] | active[face[e2]])
    e1, e2 = e1[keep], e2[keep]
    return a[e1], b[e1], c[e1], c[e2], face[e1], face[e2]


def _independent(
    good: np.ndarray, gain: np.ndarray, f1: np.ndarray, f2: np.ndarray, new_key: np.ndarray, faces: int
) -> np.ndarray:
    """Of the flips ``good``, those that gain the most around each face, no two sharing a face or
    making the same new edge."""
    good = good[np.argsort(-gain[good], kind="stable")]
    rank = np.arange(len(good))
    first = np.full(faces, len(good))
    np.minimum.at(first, f1[good], rank)
    np.minimum.at(first, f2[good], rank)
    chosen = good[(first[f1[good]] == rank) & (first[f2[good]] == rank)]
    keys, counts = np.unique(new_key[chosen], return_counts=True)
    return chosen[np.isin(new_key[chosen], keys[counts == 1])]
