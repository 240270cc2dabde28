"""Tidying an extracted surface: counting and keeping face-connected pieces, decimation."""

from __future__ import annotations

import numpy as np
import trimesh

from ..errors import InputError


def count_components(mesh: trimesh.Trimesh) -> int:
    """Number of face-connected components (faces sharing an edge); 0 for an empty mesh."""
    n_faces = len(mesh.faces)
    if n_faces == 0:
        return 0
    groups = trimesh.graph.connected_components(mesh.face_adjacency, nodes=np.arange(n_faces), min_len=1)
    return len(groups)


def largest_component(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The face-connected component with the most faces (the mesh itself if it has at most one)."""
    n_faces = len(mesh.faces)
    if n_faces == 0:
        return mesh.copy()
    groups = trimesh.graph.connected_components(mesh.face_adjacency, nodes=np.arange(n_faces), min_len=1)
    if len(groups) <= 1:
        return mesh.copy()
    keep = max(groups, key=len)
    out = mesh.submesh([np.sort(keep)], append=True, repair=False)
    return out


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
        import pymeshlab  # noqa: PLC0415 - lazy on purpose, see platform notes
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
