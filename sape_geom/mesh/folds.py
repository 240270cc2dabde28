"""Faces turned over by moving a mesh's vertices, and putting them back (smoothing, snapping).

Marching cubes makes slivers: moving a sliver's corners by a hair can turn it over, a fold that a
renderer shows as a dark speck. Whatever moved the vertices, the remedy is the same: the corners of
every turned face go back to where they were before the move, until no face is turned.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import check_cancel
from .surface_points import triangle_normals

__all__ = ["face_chunks", "put_back_turned_faces"]

CHUNK_FACES = 1 << 16
"""Faces compared at a time: two normals and an area each, a few MB however large the mesh."""


def face_chunks(n: int, size: int = CHUNK_FACES) -> list[slice]:
    """Slices of ``size`` over ``n`` faces."""
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def put_back_turned_faces(
    V: np.ndarray,
    before: np.ndarray,
    F: np.ndarray,
    *,
    least_area: float = 0.0,
    should_cancel: Callable[[], bool] | None = None,
    what: str = "moving vertices",
) -> np.ndarray:
    """``V``, changed in place, with the corners of every face of more than ``least_area`` whose normal
    points against its normal in ``before`` put back there, until none is. Ends: a face with all its
    corners back is as it was. (A face of no more than ``least_area`` turned over is a fold of no area.)"""
    while True:
        check_cancel(should_cancel, what)
        turned = np.zeros(len(F), dtype=bool)
        for chunk in face_chunks(len(F)):
            normals, areas = triangle_normals(V[F[chunk]])
            against = np.einsum("ij,ij->i", normals, triangle_normals(before[F[chunk]])[0]) < 0
            turned[chunk] = against & (areas > least_area)
        if not turned.any():
            return V
        corners = F[turned].ravel()
        V[corners] = before[corners]
