"""Quality of a deformed mesh (docs/method.md §6.5): how close to the target, how clean the surface.

* the surface metrics of :func:`mesh.metrics.mesh_metrics` against the target (Chamfer-L1 both ways,
  normal consistency, F-score, IoU), in its frame: the target's box, longest side 1;
* ``flipped_faces``: fraction of faces whose normal points against the target's normal at the
  closest target point of the face's centroid, i.e. faces lying inside out on the surface (folds).
  Taken relative to the majority, so a target stored with inward normals counts the same;
* ``turned_faces``: fraction of faces whose normal turned by more than 90 degrees from the same face of
  the source (the deformation is no rotation: the frames differ by a similarity);
* ``edge_distortion_p50/p95/p99``: percentiles of ``|log(l' / l) - log s|`` over the edges, ``l`` and
  ``l'`` the edge lengths before and after, ``s`` the square root of the ratio of total areas (a uniform
  scaling is no distortion); ``0.69`` is an edge twice (or half) as long as the scaling alone gives.

Self-intersections are not counted: neither libigl's Python bindings nor trimesh offer a cheap test.
"""

from __future__ import annotations

from typing import Any, cast

import igl
import numpy as np
import trimesh

from ...mesh.metrics import mesh_metrics
from .loss import edges_of


def face_normals(V: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals (m, 3) and areas (m,) of the faces."""
    cross = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    norm = np.linalg.norm(cross, axis=1)
    return cross / np.maximum(norm, 1e-300)[:, None], 0.5 * norm


def flipped_fraction(V: np.ndarray, F: np.ndarray, Vt: np.ndarray, Ft: np.ndarray) -> float:
    """Fraction of faces of (V, F) inside out against the target (Vt, Ft) (see the module notes)."""
    normals, areas = face_normals(V, F)
    _, face, _ = igl.point_mesh_squared_distance(V[F].mean(axis=1), Vt, Ft)
    target_normals, _ = face_normals(Vt, Ft)
    dots = (normals * target_normals[cast(np.ndarray, face)]).sum(1)  # igl types its arrays ArrayLike
    if (areas * dots).sum() < 0:  # the target's faces are wound the other way
        dots = -dots
    return float(np.mean(dots < 0))


def deformation_metrics(
    deformed: trimesh.Trimesh,
    target: trimesh.Trimesh,
    source: trimesh.Trimesh,
    *,
    n_points: int = 50_000,
    seed: int = 0,
) -> dict[str, Any]:
    """The metrics of the module notes; ``deformed`` and ``target`` in one frame, ``source`` in any."""
    out: dict[str, Any] = dict(mesh_metrics(deformed, target, n_points=n_points, iou_points=n_points, seed=seed))
    V, F = np.asarray(deformed.vertices, np.float64), np.asarray(deformed.faces, np.int64)
    V0 = np.asarray(source.vertices, np.float64)
    Vt, Ft = np.asarray(target.vertices, np.float64), np.asarray(target.faces, np.int64)
    out["flipped_faces"] = flipped_fraction(V, F, Vt, Ft)
    n_after, a_after = face_normals(V, F)
    n_before, a_before = face_normals(V0, F)
    out["turned_faces"] = float(np.mean((n_after * n_before).sum(1) < 0))
    edges = edges_of(F)
    before = np.linalg.norm(V0[edges[:, 0]] - V0[edges[:, 1]], axis=1)
    after = np.linalg.norm(V[edges[:, 0]] - V[edges[:, 1]], axis=1)
    scale = 0.5 * np.log(max(a_after.sum(), 1e-300) / max(a_before.sum(), 1e-300))
    distortion = np.abs(np.log(np.maximum(after, 1e-300) / np.maximum(before, 1e-300)) - scale)
    for q in (50, 95, 99):
        out[f"edge_distortion_p{q}"] = float(np.percentile(distortion, q))
    out["faces"], out["vertices"] = len(F), len(V)
    return out
