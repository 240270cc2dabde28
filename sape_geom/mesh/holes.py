"""Closing the holes of an input read as a solid (docs/method.md §6.3, "Open input").

A solid's labels take the side of a point from the winding number and its distance from the input
surface. Across a hole the winding number passes 0.5 on a film spanning the rim, but the distance there
is to the rim, not to the film: the label jumps from +d to -d across it, which no smooth field fits, and
the surface over the hole came out crumpled. Closing each hole with a fan of triangles from the centre of
its rim gives the solid a surface there: side and distance both come from the closed mesh, and the
surface over the hole is the fan, smoothed by the fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .surface_points import as_vf

__all__ = ["boundary_edges", "boundary_loops", "cap_holes"]


def boundary_edges(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """(B, 2) the edges used by one face only, each oriented as that face runs along it."""
    F = np.asarray(faces, dtype=np.int64)
    directed = np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]])
    low, high = directed.min(axis=1), directed.max(axis=1)
    keys = low * int(n_vertices) + high  # one int64 per undirected edge
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    return directed[first[counts == 1]]


def boundary_loops(faces: np.ndarray, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """The boundary edges (:func:`boundary_edges`) and, per vertex, the label of its connected part of
    the boundary graph: the vertices of one loop (or of loops touching at a vertex) share a label."""
    rim = boundary_edges(faces, n_vertices)
    if len(rim) == 0:  # a closed mesh: no graph to build
        return rim, np.arange(int(n_vertices))
    graph = coo_matrix((np.ones(len(rim)), (rim[:, 0], rim[:, 1])), shape=(int(n_vertices), int(n_vertices)))
    return rim, connected_components(graph, directed=False)[1]


def cap_holes(vertices: Any, faces: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices, faces)`` with every boundary loop closed by a fan from the mean of its rim's vertices,
    turned the way the faces around it turn (an edge ``a -> b`` of the rim gets the cap face ``b, a, c``).
    A mesh without holes comes back as it is."""
    V, F = as_vf(vertices, faces)
    rim, loop_of_vertex = boundary_loops(F, len(V))
    if len(rim) == 0:
        return V, F
    loop = loop_of_vertex[rim[:, 0]]
    loops, loop = np.unique(loop, return_inverse=True)
    on_rim = np.unique(rim.reshape(-1))
    rim_loop = np.searchsorted(loops, loop_of_vertex[on_rim])
    centres = np.zeros((len(loops), 3))
    np.add.at(centres, rim_loop, V[on_rim])
    centres /= np.bincount(rim_loop, minlength=len(loops))[:, None]
    cap = np.stack([rim[:, 1], rim[:, 0], len(V) + loop], axis=1)
    return np.concatenate([V, centres]), np.concatenate([F, cap])
