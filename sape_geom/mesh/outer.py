"""The outer surface of a solid input: the parts of its faces that separate its inside from its outside.

Meshes made of overlapping closed parts (a kitbashed model, eyes set into a head, a CAD assembly exported
without a boolean union) have faces buried inside the solid. The winding number still reads such a solid
right (docs/method.md §6.3), but the distance to the nearest face does not: beside a buried face it is
near 0 deep inside the solid, so a fitted signed distance gets a zero there and the extracted surface
gets bubbles and bumps. The distance targets, the surface samples and the support grid use the outer
surface instead. A face separates where the winding number is on different sides of the threshold just
in front of it and just behind it; faces are split into small pieces first, each tested at its centre.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .cleanup import face_components
from .queries import MeshQueries
from .surface_points import sample_surface, split_to_edge, triangle_normals

__all__ = ["OuterSurface", "outer_surface", "solid_pieces"]

OFFSET = 1e-4
"""How far in front of and behind a point of a face its winding number is read (unit frame, radius 0.95):
far under any part the 256^3 extraction can resolve (a cell is 0.008), far over float64 rounding."""
SCREEN_POINTS = 20_000
"""Surface points tested first, by area: most meshes have nothing buried, and their test then costs
about a second."""
SCREEN_TOLERANCE = 2e-3
"""A mesh whose tested points separate everywhere but this fraction is left as it is (a sliver of
solid thinner than the offset, as a layered 3D-print model has, is no reason to rebuild its surface)."""
TEST_EDGE = 0.04
"""Faces are split until their edges are at most this long and each piece is kept or dropped by the test
at its centre (unit frame): a small part buried in the middle of one big face (a chair leg pushed into
the seat) is seen, and the outer surface follows the curves where parts cross to about this."""
MAX_PARTS_MERGED = 1000
""":func:`solid_pieces` joins overlapping parts of inputs with at most this many face-connected parts
(beyond, it counts the parts: a scan's thousands of floaters seldom overlap)."""


@dataclass(frozen=True)
class OuterSurface:
    """The faces (V, F) of an input that bound its solid, and how much of its area does not."""

    vertices: np.ndarray
    faces: np.ndarray
    buried_area: float
    """Fraction of the input's surface area inside the solid or outside it, not on its boundary."""
    buried_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    """Centres of the pieces left out, and (``buried_from``) the input face each is part of."""
    buried_from: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def changed(self) -> bool:
        return self.buried_area > 0


def _separates(points: np.ndarray, normals: np.ndarray, queries: MeshQueries, threshold: float) -> np.ndarray:
    """Whether the surface at each point (with its face's normal) has the solid on one side only."""
    step = OFFSET * normals
    front, back = np.split(queries.winding_number(np.concatenate([points + step, points - step])) > threshold, 2)
    return front != back


def outer_surface(
    vertices: Any, faces: Any, queries: MeshQueries, *, threshold: float = 0.5, seed: int = 0
) -> OuterSurface:
    """The part of the mesh that bounds its solid {winding number > ``threshold``}. The mesh is about
    unit size (the fit's unit frame or the metrics' frame): the offsets and edge lengths above assume it.

    ``queries`` answers winding numbers for the whole input. When nothing is buried the input comes
    back as it is (same arrays); otherwise its faces that separate all over and the separating pieces
    of the others.
    """
    V = np.asarray(vertices, dtype=np.float64)
    F = np.asarray(faces, dtype=np.int64)
    points, face = sample_surface(V, F, SCREEN_POINTS, np.random.default_rng(seed))
    normal, _ = triangle_normals(V[F[face]])
    if np.mean(~_separates(points, normal, queries, threshold)) <= SCREEN_TOLERANCE:
        return OuterSurface(V, F, 0.0)
    pieces, piece_from = split_to_edge(V[F], TEST_EDGE)
    # The split surface has the same winding number, and its tree answers faster near long faces.
    split = MeshQueries(
        pieces.reshape(-1, 3), np.arange(3 * len(pieces)).reshape(-1, 3), should_cancel=queries.should_cancel
    )
    normal, area = triangle_normals(pieces)
    separates = _separates(pieces.mean(axis=1), normal, split, threshold) | (area <= 1e-14)  # no area: no error
    if not separates.any():
        return OuterSurface(V, F, 0.0)  # nothing bounds a solid here (an inverted or flat input): leave it be
    buried = float(area[~separates].sum() / max(area.sum(), 1e-300))
    # Faces that separate all over stay whole, so that sampling by triangle (docs/method.md §6.3) still
    # favours the input's small faces, its details; only the partly buried ones are split.
    whole = np.bincount(piece_from, weights=~separates, minlength=len(F)) == 0
    cut = pieces[separates & ~whole[piece_from]].reshape(-1, 3)
    outer_faces = np.concatenate([F[whole], len(V) + np.arange(len(cut), dtype=np.int64).reshape(-1, 3)])
    return OuterSurface(
        np.concatenate([V, cut]), outer_faces, buried, pieces[~separates].mean(axis=1), piece_from[~separates]
    )


def solid_pieces(vertices: Any, faces: Any, outer: OuterSurface) -> int:
    """How many separate solids the input makes: its face-connected parts, joined where one part's
    buried pieces lie inside another (teeth pushed into a disc are one gear, not 19 parts)."""
    V = np.asarray(vertices, dtype=np.float64)
    F = np.asarray(faces, dtype=np.int64)
    labels = face_components(F)
    count = int(labels.max()) + 1 if len(labels) else 0
    if not outer.changed or count <= 1 or count > MAX_PARTS_MERGED:
        return count
    owner = labels[outer.buried_from]
    order = np.argsort(labels, kind="stable")
    joined = [np.zeros((0, 2), dtype=np.int64)]  # (part, part) pairs that make one solid
    for part, part_faces in enumerate(np.split(F[order], np.cumsum(np.bincount(labels, minlength=count))[:-1])):
        corners = V[part_faces.ravel()]
        near = (owner != part) & np.all(
            (outer.buried_points >= corners.min(axis=0)) & (outer.buried_points <= corners.max(axis=0)), axis=1
        )
        if not near.any():
            continue
        inside = MeshQueries(V, part_faces).winding_number(outer.buried_points[near]) > 0.5
        others = np.unique(owner[near][inside])
        joined.append(np.stack([others, np.full(len(others), part)], axis=1))
    pairs = np.concatenate(joined)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    return int(connected_components(graph, directed=False)[0])
