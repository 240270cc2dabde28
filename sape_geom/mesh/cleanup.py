"""Tidying an extracted surface: face-connected pieces (count, label, keep the largest), decimation."""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import InputError


def component_labels(mesh: trimesh.Trimesh) -> np.ndarray:
    """(F,) int64 piece index of every face; faces sharing an edge are in the same piece."""
    n_faces = len(mesh.faces)
    if n_faces == 0:
        return np.zeros(0, dtype=np.int64)
    pairs = np.asarray(mesh.face_adjacency, dtype=np.int64).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_faces, n_faces))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def count_components(mesh: trimesh.Trimesh) -> int:
    """Number of face-connected components (faces sharing an edge); 0 for an empty mesh."""
    labels = component_labels(mesh)
    return int(labels.max()) + 1 if len(labels) else 0


def largest_component(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The face-connected component with the most faces (the mesh itself if it has at most one)."""
    labels = component_labels(mesh)
    if len(labels) == 0 or labels.max() == 0:
        return mesh.copy()
    keep = np.nonzero(labels == np.bincount(labels).argmax())[0]
    return mesh.submesh([keep], append=True, repair=False)


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
        import pymeshlab  # noqa: PLC0415 - lazy on purpose: it must not load before bpy
    except ImportError:
        raise InputError("decimation needs pymeshlab: pip install sape-geom[meshlab]") from None
    ms = pymeshlab.MeshSet()
    ms.add_mesh(pymeshlab.Mesh(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int32)))
    ms.meshing_decimation_quadric_edge_collapse(
        targetfacenum=target, preservenormal=True, preservetopology=True, optimalplacement=True,
        planarquadric=True, autoclean=True,
    )
    out = ms.current_mesh()
    return trimesh.Trimesh(out.vertex_matrix(), out.face_matrix(), process=False)
