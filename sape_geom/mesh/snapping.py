"""Extracted surfaces put onto the input's own surface, with its creases (docs/method.md §6.3, "Snapping").

A field fitted in a thousand steps places its zero level within a fraction of a grid cell of the input,
but not on it: flat faces come out rippled and creases rounded over a cell or two. Where the input
itself is trustworthy (a solid's outer surface, its holes closed) the field has already done the hard
part, deciding what is inside, what is one piece and where the surface runs, and the input can say
exactly where. Four steps, none of which changes the surface's topology:

1. *Projection*: each vertex within :data:`SNAP_CELLS` of the input, whose surface normal agrees with
   the closest input face's (``|cos|`` at least :data:`NORMAL_AGREEMENT`), moves to its closest point
   on the input. A vertex far from the input (where the field bridges a gap) stays where it is.
2. *Creases*: a projected vertex whose one-ring lies on faces of the input that meet at an angle (two
   or three planes, as at a CAD edge or corner) moves to the point closest to all of their planes (the
   vertex placement of dual contouring), when that point is on the input and within
   :data:`CREASE_MOVE_CELLS`. A vertex on a smooth part has one plane and does not move.
3. *Clean-up*: a step that turns a face over (by more than a sliver's area) is taken back for its
   corners, and edges shorter than :data:`SHORT_EDGE_CELLS` (vertices drawn onto the same point of a
   crease) are collapsed where that keeps the surface manifold.
4. *Flips*: an edge whose two faces would agree better with the input's normals across the other
   diagonal of their four corners is flipped (:mod:`.flips`): triangles that spanned a crease or detail
   finer than a cell now lie on either side of it.

A shell's sheet (``offset`` > 0) goes onto the surface ``offset`` from the input instead, every vertex
on its own side; the creases are those of the offset planes and the flips measure distance from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix

from ..errors import check_cancel
from .flips import flip_toward_normals
from .folds import face_chunks, put_back_turned_faces
from .queries import MeshQueries
from .surface_points import triangle_normals, vertex_normals

__all__ = ["SnapStats", "snap_to_surface"]

SNAP_CELLS = 1.0
"""Vertices farther than this many grid cells from the input keep the field's position."""
NORMAL_AGREEMENT = 0.5
"""``|cos|`` of the angle between a vertex's normal and its closest input face's normal, at least (60
degrees): a vertex whose closest input point lies on a face turned away is not on that face's surface."""
CREASE_RATIO = 0.07
"""A vertex's one-ring spans a crease when the second eigenvalue of the sum of its planes' ``n n^T`` is
at least this fraction of the first: ``tan^2(theta / 2)`` for two equal halves at ``theta`` = 30
degrees. Smooth curvature across a one-ring stays far below it."""
CREASE_MOVE_CELLS = 2.0
"""A vertex moves onto a crease only from within this many cells (the field rounds a crease over about
one to two cells)."""
SHEET_ROUNDS = 3
"""Projections of a sheet's vertices onto its offset surface: a concave corner of three planes takes
three."""
SETTLE_ROUNDS = 8
"""Rounds in which a sheet's vertices kept off its offset surface by folds try again from their
neighbours' mean."""
SIDELESS = 1e-3
"""A sheet's vertex this close to the input (as a fraction of the offset) has no side to go to and stays."""
ON_SURFACE_CELLS = 0.05
"""The point a vertex would move to on a crease must lie this close to the input (in cells)."""
SHORT_EDGE_CELLS = 0.05
"""Edges shorter than this (in cells) are collapsed after the vertices have moved."""
CHUNK_VERTICES = 1 << 16
"""Vertices whose crease systems are solved at a time (faces go by :func:`.folds.face_chunks`): beside
about 150 bytes a vertex for the whole mesh, a chunk takes a few tens of MB."""
COLLAPSE_ROUNDS = 32
"""Rounds of edge collapses at most: each round takes the collapses far enough apart, so the last few
take only a handful each; the few short edges left are slivers of no area."""


@dataclass(frozen=True)
class SnapStats:
    """What snapping did: vertices put on the input, of those moved onto a crease, edges collapsed and
    edges flipped."""

    snapped: int
    on_creases: int
    collapsed: int
    flipped: int


def snap_to_surface(
    vertices: Any,
    faces: Any,
    reference: MeshQueries,
    cell: float,
    *,
    offset: float = 0.0,
    should_cancel: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray, SnapStats]:
    """``(V, F)`` put onto the surface of ``reference`` (same frame), creases kept; the new vertices,
    faces and what was done. ``cell`` is the extraction grid's spacing in that frame.

    ``offset`` > 0: ``(V, F)`` is a sheet around the open surface ``reference`` and goes onto the surface
    ``offset`` from it instead, its sides parallel to the input and its rim a half-round (see
    :func:`_onto_offset`)."""
    original = np.asarray(vertices, dtype=np.float64)
    F = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(F) == 0:
        return original.copy(), F, SnapStats(0, 0, 0, 0)
    check_cancel(should_cancel, "snapping")

    sliver = (SHORT_EDGE_CELLS * cell) ** 2  # the area of a face no step needs to keep

    def undo_folds(moved: np.ndarray, before: np.ndarray) -> np.ndarray:
        # slivers turned over are folds of no area, collapsed at the end
        return put_back_turned_faces(moved, before, F, least_area=sliver, should_cancel=should_cancel, what="snapping")

    reference_normals = triangle_normals(reference.V[reference.F])[0]
    if offset > 0:
        snapped, closest = _onto_offset(original, reference, offset)
        face = reference.closest_points(closest)[1]
        input_normals = reference_normals[face].astype(np.float32)
    else:
        squared, face, closest = reference.closest_points(original)
        input_normals = reference_normals[face].astype(np.float32)
        agree = np.abs(np.einsum("ij,ij->i", vertex_normals(original, F), input_normals)) >= NORMAL_AGREEMENT
        snapped = (squared <= (SNAP_CELLS * cell) ** 2) & agree
        del squared, agree
    del face
    projected = np.where(snapped[:, None], closest, original)
    projected = undo_folds(projected, original)
    del original
    if offset > 0:
        projected = _settle_sheet(projected, F, closest, snapped, reference, offset, undo_folds, should_cancel)
    on_surface = snapped & np.all(projected == closest, axis=1)
    del closest, snapped
    creased, moved = _crease_points(projected, F, input_normals, on_surface, cell, should_cancel)
    del input_normals
    sharpened = projected.copy()
    if len(moved):
        distance = np.sqrt(reference.closest_points(creased)[0])
        keep = np.abs(distance - offset) <= ON_SURFACE_CELLS * cell
        moved, creased = moved[keep], creased[keep]
        sharpened[moved] = creased
    sharpened = undo_folds(sharpened, projected)
    on_creases = int(np.count_nonzero(np.any(sharpened[moved] != projected[moved], axis=1))) if len(moved) else 0
    del projected
    V, F, collapsed = _collapse_short_edges(sharpened, F, SHORT_EDGE_CELLS * cell, should_cancel)
    F, flipped = flip_toward_normals(
        V, F, reference, reference_normals, cell, offset=offset, least_area=sliver, should_cancel=should_cancel
    )
    return V, F, SnapStats(int(np.count_nonzero(on_surface)), on_creases, collapsed, flipped)


def _onto_offset(V: np.ndarray, reference: MeshQueries, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Each vertex of a sheet around ``reference`` moved to the surface ``offset`` from it on its own
    side: along the line from its closest input point, :data:`SHEET_ROUNDS` times (in a concave corner
    one step puts it at the offset from the nearer plane only, the next from the other, and so on into
    the corner of the offset planes). Returns which vertices moved (all but those on the input, which
    have no side) and the new positions."""
    points = V.copy()
    squared, _, on_input = reference.closest_points(points)
    sided = squared > (SIDELESS * offset) ** 2
    for step in range(SHEET_ROUNDS):
        if step:
            squared, _, on_input = reference.closest_points(points)
        scale = offset / np.sqrt(np.maximum(squared[sided], 1e-300))
        points[sided] = on_input[sided] + (points[sided] - on_input[sided]) * scale[:, None]
    return sided, points


def _settle_sheet(
    V: np.ndarray,
    F: np.ndarray,
    targets: np.ndarray,
    snapped: np.ndarray,
    reference: MeshQueries,
    offset: float,
    undo_folds: Callable[[np.ndarray, np.ndarray], np.ndarray],
    should_cancel: Callable[[], bool] | None,
) -> np.ndarray:
    """A sheet's vertices that folds kept off its offset surface moved there from the mean of their
    neighbours instead, for :data:`SETTLE_ROUNDS` rounds. Where the field rounded a concave corner well
    inside the sheet's, the corner's vertices crowd together on the way and turn faces over; from the
    neighbours' mean they spread along the offset planes. ``targets`` (where each vertex is meant to
    go) is updated in place; returns the new positions."""
    ring = _one_rings(F, len(V))
    count = np.maximum(np.asarray(ring.sum(axis=1)).ravel(), 1.0)
    for _ in range(SETTLE_ROUNDS):
        check_cancel(should_cancel, "snapping")
        stuck = np.flatnonzero(snapped & np.any(V != targets, axis=1))
        if not len(stuck):
            break
        mean = (ring[stuck] @ V) / count[stuck, None]
        moved = V.copy()
        moved[stuck] = _onto_offset(mean, reference, offset)[1]
        targets[stuck] = moved[stuck]
        V = undo_folds(moved, V)
    return V


def _crease_points(
    V: np.ndarray,
    F: np.ndarray,
    normals: np.ndarray,
    on_surface: np.ndarray,
    cell: float,
    should_cancel: Callable[[], bool] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The points closest to the input planes around each vertex whose one-ring spans a crease, within
    :data:`CREASE_MOVE_CELLS`; returns them and their vertices' indices."""
    # Vertex i gathers the planes (n_j, V_j) of itself and of each j it shares a face edge with (each
    # edge of a closed surface is there once per direction), on-surface vertices only: A = sum n n^T
    # (its six distinct entries) and b = sum n (n . V_j).
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    A = np.zeros((len(V), 6))
    b = np.zeros((len(V), 3))

    def gather(i: np.ndarray, j: np.ndarray) -> None:
        use = on_surface[j]
        i, j = i[use], j[use]
        n = normals[j].astype(np.float64)
        offset = np.einsum("ij,ij->i", n, V[j])
        for k, (row, col) in enumerate(pairs):
            A[:, k] += np.bincount(i, n[:, row] * n[:, col], minlength=len(V))
        for row in range(3):
            b[:, row] += np.bincount(i, n[:, row] * offset, minlength=len(V))

    own = np.arange(len(V))
    gather(own, own)
    for chunk in face_chunks(len(F)):
        check_cancel(should_cancel, "snapping")
        Fc = F[chunk]
        for a, c in ((0, 1), (1, 2), (2, 0)):
            gather(Fc[:, a], Fc[:, c])
    points, indices = [], []
    candidates = np.flatnonzero(on_surface)
    for start in range(0, len(candidates), CHUNK_VERTICES):
        check_cancel(should_cancel, "snapping")
        rows = candidates[start : start + CHUNK_VERTICES]
        system = np.empty((len(rows), 3, 3))
        for k, (row, col) in enumerate(pairs):
            system[:, row, col] = system[:, col, row] = A[rows, k]
        w, Q = np.linalg.eigh(system)  # ascending eigenvalues
        planes = w >= CREASE_RATIO * w[:, 2:3]
        crease = planes.sum(axis=1) >= 2
        rows, w, Q, planes, system = rows[crease], w[crease], Q[crease], planes[crease], system[crease]
        # least squares restricted to the kept eigenvectors, from the vertex's own position
        residual = b[rows] - np.einsum("vij,vj->vi", system, V[rows])
        along = np.einsum("vji,vj->vi", Q, residual)
        along = np.where(planes, along / np.where(planes, w, 1.0), 0.0)
        target = V[rows] + np.einsum("vij,vj->vi", Q, along)
        near = np.linalg.norm(target - V[rows], axis=1) <= CREASE_MOVE_CELLS * cell
        points.append(target[near])
        indices.append(rows[near])
    if not points:
        return np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    return np.concatenate(points), np.concatenate(indices)


def _one_rings(F: np.ndarray, n: int) -> csr_matrix:
    """(n, n) 0/1 matrix: row i marks the vertices that share an edge of ``F`` with vertex i (each edge
    counted once, whichever faces list it and in which direction)."""
    edges = np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]])
    ring = csr_matrix(coo_matrix((np.ones(2 * len(edges)), (edges.ravel(), edges[:, ::-1].ravel())), shape=(n, n)))
    ring.data[:] = 1.0
    return ring


def _short_edges(V: np.ndarray, F: np.ndarray, shortest: float) -> np.ndarray:
    """(k, 2) the edges shorter than ``shortest``, each once, lower vertex first."""
    found = []
    for chunk in face_chunks(len(F)):
        Fc = F[chunk]
        for a, c in ((0, 1), (1, 2), (2, 0)):
            short = np.linalg.norm(V[Fc[:, a]] - V[Fc[:, c]], axis=1) < shortest
            found.append(np.sort(np.stack([Fc[short, a], Fc[short, c]], axis=1), axis=1))
    return np.unique(np.concatenate(found), axis=0)


def _collapse_short_edges(
    V: np.ndarray, F: np.ndarray, shortest: float, should_cancel: Callable[[], bool] | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Collapse edges shorter than ``shortest`` whose ends share exactly two neighbours (the link
    condition: the surface stays manifold), in at most :data:`COLLAPSE_ROUNDS` rounds of collapses far
    enough apart not to interact; unused vertices are dropped."""
    collapsed = 0
    listed = _short_edges(V, F, shortest)
    for _ in range(COLLAPSE_ROUNDS):
        check_cancel(should_cancel, "snapping")
        if not len(listed):
            break
        # one candidate per vertex: the first short edge at both of its ends
        order = np.arange(len(listed))
        first = np.full(len(V), len(listed))
        np.minimum.at(first, listed[:, 0], order)
        np.minimum.at(first, listed[:, 1], order)
        short = listed[(first[listed[:, 0]] == order) & (first[listed[:, 1]] == order)]
        # the one-rings of the candidates' ends, from the faces around them only
        involved = np.zeros(len(V), dtype=bool)
        involved[short.ravel()] = True
        n = len(V)
        ring = _one_rings(F[involved[F].any(axis=1)], n)
        a, b = short[:, 0], short[:, 1]
        shared = np.asarray(ring[a].multiply(ring[b]).sum(axis=1)).ravel()
        a, b = a[shared == 2], b[shared == 2]
        # no collapse may have another's end in its one-ring: the lower-numbered one goes first
        rows, cols = (ring[a] + ring[b]).nonzero()
        owner = np.full(n, -1)
        owner[a] = owner[b] = np.arange(len(a))
        other = owner[cols]
        clash = (other >= 0) & (other != rows)
        later = np.zeros(len(a), dtype=bool)
        later[np.maximum(rows[clash], other[clash])] = True
        a, b = a[~later], b[~later]
        if not len(a):
            break
        remap = np.arange(n)
        remap[b] = a
        F = remap[F]
        F = F[(F[:, 0] != F[:, 1]) & (F[:, 1] != F[:, 2]) & (F[:, 2] != F[:, 0])]
        collapsed += len(a)
        # Only edges that had an end at a collapsed vertex changed: the short ones are the old list's.
        listed = np.sort(remap[listed], axis=1)
        listed = np.unique(listed[listed[:, 0] != listed[:, 1]], axis=0)
        listed = listed[np.linalg.norm(V[listed[:, 0]] - V[listed[:, 1]], axis=1) < shortest]
    used = np.unique(F)
    index = np.full(len(V), -1, dtype=np.int64)
    index[used] = np.arange(len(used))
    return V[used], index[F], collapsed
