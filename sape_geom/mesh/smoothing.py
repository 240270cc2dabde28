"""Feature-preserving smoothing of an extracted surface (docs/method.md §6.3, "Smoothing").

A fitted field is slightly bumpy where the shape is simple: a flat face comes out with ripples of a few
degrees, well under a grid cell high but plain to see in shading. The smoothing works on the normals,
in two steps: each face normal is averaged with those of the faces sharing a vertex with it, weighted
by area and by how little they bend (zero beyond ``feature_angle``, so that an edge of a CAD part or a
crease stays sharp); then the vertices are moved, along those normals only, until the faces fit them.
Nothing slides along the surface and a smooth region does not shrink.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
from scipy.sparse import csr_matrix

from ..errors import check_cancel
from .folds import face_chunks, put_back_turned_faces
from .surface_points import triangle_normals

__all__ = ["FEATURE_ANGLE", "NORMAL_ITERATIONS", "VERTEX_ITERATIONS", "smooth_surface"]

FEATURE_ANGLE = 15.0
"""Degrees: faces bending by more than this do not average their normals (edges and creases stay)."""
NORMAL_ITERATIONS = 5
"""Rounds of normal averaging: each widens the reach by one ring of faces."""
VERTEX_ITERATIONS = 10
"""Rounds of moving the vertices towards the planes of the averaged faces. (With 25 degrees and 10/20
rounds the CAD parts came out smoother still, but the detailed meshes lost some: the cow's Chamfer-L1
0.494 -> 0.529e-3; with 15 degrees and 5/10 rounds they stayed where they were, docs/method.md §6.3.)"""
CHUNK_FACES = 1 << 16
"""Faces handled at a time, so that the pairs of neighbours (about 13 a face) are never all held: beside
about 60 bytes a face for the whole mesh (normals, the vertex-to-face table, the vertex copies), a chunk
takes about 50 MB however large the mesh (and is faster than larger chunks)."""


def smooth_surface(
    vertices: Any,
    faces: Any,
    *,
    feature_angle: float = FEATURE_ANGLE,
    normal_iterations: int = NORMAL_ITERATIONS,
    vertex_iterations: int = VERTEX_ITERATIONS,
    should_cancel: Callable[[], bool] | None = None,
) -> np.ndarray:
    """(V, 3) smoothed vertex positions of a triangle mesh; the faces are unchanged.

    ``should_cancel`` is asked between chunks of faces (:class:`~sape_geom.errors.Cancelled`)."""
    original = np.asarray(vertices, dtype=np.float64)
    V = original.copy()
    F = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(F) == 0:
        return V
    normals = _averaged_normals(V, F, float(np.cos(np.radians(feature_angle))), normal_iterations, should_cancel)
    uses = np.maximum(np.bincount(F.ravel(), minlength=len(V)), 1).astype(np.float64)
    for _ in range(vertex_iterations):
        check_cancel(should_cancel, "smoothing")
        moves = np.zeros_like(V)
        for chunk in face_chunks(len(F), CHUNK_FACES):
            check_cancel(should_cancel, "smoothing")
            # each corner moves along its face's normal onto the plane through the face's centroid
            Fc, nc = F[chunk], normals[chunk].astype(np.float64)
            centroids = V[Fc].mean(axis=1)
            for corner in range(3):
                along = np.einsum("ij,ij->i", nc, centroids - V[Fc[:, corner]])
                for axis in range(3):
                    moves[:, axis] += np.bincount(Fc[:, corner], weights=nc[:, axis] * along, minlength=len(V))
        V += moves / uses[:, None]
    del normals, uses
    return put_back_turned_faces(V, original, F)


def _averaged_normals(
    V: np.ndarray, F: np.ndarray, cos_limit: float, iterations: int, should_cancel: Callable[[], bool] | None
) -> np.ndarray:
    """(F, 3) float32 face normals, each averaged ``iterations`` times with those of the faces sharing a
    vertex with it, by area and by ``(cos - cos_limit)^2`` where their angle is under the limit."""
    n_faces = len(F)
    normals = np.empty((n_faces, 3), dtype=np.float32)
    areas = np.empty(n_faces, dtype=np.float32)
    for chunk in face_chunks(n_faces, CHUNK_FACES):
        normals[chunk], areas[chunk] = triangle_normals(V[F[chunk]])
    # vertex -> the faces around it; a chunk's faces times this gives the pairs sharing a vertex
    around = csr_matrix(
        (np.ones(3 * n_faces, dtype=np.float32), (F.ravel(), np.repeat(np.arange(n_faces, dtype=np.int32), 3))),
        shape=(len(V), n_faces),
    )
    for _ in range(iterations):
        check_cancel(should_cancel, "smoothing")
        averaged = np.empty_like(normals)
        for chunk in face_chunks(n_faces, CHUNK_FACES):
            check_cancel(should_cancel, "smoothing")
            size = chunk.stop - chunk.start
            corners = csr_matrix(
                (np.ones(3 * size, dtype=np.float32), F[chunk].ravel(), np.arange(0, 3 * size + 1, 3)),
                shape=(size, len(V)),
            )
            # faces of the chunk x faces sharing a vertex with them (CSR @ CSR is CSR; scipy types it an array)
            pairs = cast(csr_matrix, corners @ around)
            rows = np.repeat(np.arange(chunk.start, chunk.stop), np.diff(pairs.indptr))
            agreement = np.einsum("ij,ij->i", normals[rows], normals[pairs.indices])
            pairs.data = areas[pairs.indices] * np.square(np.maximum(agreement - cos_limit, 0.0))
            summed = pairs @ normals
            length = np.linalg.norm(summed, axis=1, keepdims=True)
            averaged[chunk] = np.where(length > 0, summed / np.maximum(length, 1e-30), normals[chunk])
        normals = averaged
    return normals
