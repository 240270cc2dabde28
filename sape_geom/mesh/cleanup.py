"""Tidying an extracted surface: face-connected pieces (count, label, keep the largest), decimation."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import InputError


def face_components(faces: Any) -> np.ndarray:
    """(F,) int64 piece index of every face; faces sharing an edge are in the same piece (as trimesh's
    ``face_adjacency`` connects them, without its caches, which would keep 160 bytes per face alive).

    Each face's three edges become integer keys; sorting them puts the half-edges of one edge next to
    each other. About 80 bytes per face while it runs."""
    F = np.asarray(faces).reshape(-1, 3)
    if len(F) == 0:
        return np.zeros(0, dtype=np.int64)
    n_vertices = int(F.max()) + 1
    keys = np.empty(3 * len(F), dtype=np.int64)  # half-edge 3f + c: edge c of face f
    for column, (u, v) in enumerate(((0, 1), (1, 2), (2, 0))):
        a, b = F[:, u].astype(np.int64), F[:, v].astype(np.int64)
        keys[column::3] = np.minimum(a, b) * n_vertices + np.maximum(a, b)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    same = np.flatnonzero(keys[1:] == keys[:-1])  # consecutive half-edges of one edge: their faces touch
    del keys
    index = np.int32 if len(F) < 2**31 else np.int64
    a, b = (order[same] // 3).astype(index), (order[same + 1] // 3).astype(index)
    del order, same
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(len(F), len(F)))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def count_components(mesh: trimesh.Trimesh) -> int:
    """Number of face-connected components (faces sharing an edge); 0 for an empty mesh."""
    labels = face_components(mesh.faces)
    return int(labels.max()) + 1 if len(labels) else 0


def largest_component(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The face-connected component with the most faces (the mesh itself if it has at most one)."""
    labels = face_components(mesh.faces)
    if len(labels) == 0 or labels.max() == 0:
        return mesh.copy()
    keep = np.nonzero(labels == np.bincount(labels).argmax())[0]
    return cast(trimesh.Trimesh, mesh.submesh([keep], append=True, repair=False))  # append: one mesh


def decimate(mesh: trimesh.Trimesh, target_faces: int) -> trimesh.Trimesh:
    """Quadric edge collapse down to about ``target_faces`` triangles (needs pymeshlab).

    pymeshlab is imported here only (it must not load before bpy). Vertex colours are not kept.
    """
    target = int(target_faces)
    if target < 4:
        raise InputError(f"target_faces must be at least 4, got {target_faces}")
    if len(mesh.faces) <= target:
        return mesh.copy()
    try:
        import pymeshlab
    except ImportError:
        raise InputError("decimation needs pymeshlab: pip install sape-geom[meshlab]") from None
    # pymeshlab's classes come from its compiled module, which has no stubs: pyright cannot see them
    ms = pymeshlab.MeshSet()  # pyright: ignore[reportAttributeAccessIssue]
    ms.add_mesh(pymeshlab.Mesh(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int32)))  # pyright: ignore[reportAttributeAccessIssue]
    ms.meshing_decimation_quadric_edge_collapse(
        targetfacenum=target,
        preservenormal=True,
        preservetopology=True,
        optimalplacement=True,
        planarquadric=True,
        autoclean=True,
    )
    out = ms.current_mesh()
    return trimesh.Trimesh(out.vertex_matrix(), out.face_matrix(), process=False)
