"""Edge flips toward the input's normals: creases spanned by triangles come back, nothing else changes."""

import numpy as np
import pytest
import trimesh

from sape_geom.errors import Cancelled
from sape_geom.mesh.flips import flip_toward_normals
from sape_geom.mesh.queries import MeshQueries

HALF = np.array([0.6, 0.45, 0.3])
CELL = 0.05


def fine_box() -> trimesh.Trimesh:
    box = trimesh.creation.box(extents=2 * HALF)
    return box.subdivide().subdivide().subdivide()


def flip_edge(F: np.ndarray, a: int, b: int) -> None:
    """Flip the edge a-b of the closed mesh F in place."""
    first = np.flatnonzero((np.roll(F, -1, axis=1) == b).any(axis=1) & (F == a).any(axis=1))
    one, two = first[:2]
    c = next(v for v in F[one] if v not in (a, b))
    d = next(v for v in F[two] if v not in (a, b))
    # keep the orientation: the face where a is followed by b goes to (a, d, c)
    k = list(F[one]).index(a)
    if F[one][(k + 1) % 3] != b:
        c, d = d, c
    F[one], F[two] = (a, d, c), (b, c, d)


def crease_edges(mesh: trimesh.Trimesh) -> np.ndarray:
    """Edges that run along the box's edges, away from its corners."""
    at_face = np.isclose(np.abs(mesh.vertices), HALF)
    on_crease = at_face.sum(axis=1) == 2
    edges = mesh.edges_unique
    same_crease = (at_face[edges[:, 0]] == at_face[edges[:, 1]]).all(axis=1)
    return edges[on_crease[edges].all(axis=1) & same_crease]


def off_axis_degrees(mesh: trimesh.Trimesh) -> np.ndarray:
    cos = np.abs(mesh.face_normals).max(axis=1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def queries_and_normals() -> tuple[MeshQueries, np.ndarray]:
    box = trimesh.creation.box(extents=2 * HALF)
    return MeshQueries(box.vertices, box.faces), np.asarray(box.face_normals)


def test_triangles_spanning_a_crease_are_flipped_back_onto_its_sides():
    mesh = fine_box()
    F = np.array(mesh.faces)
    used: set[int] = set()
    spoiled = 0
    for a, b in crease_edges(mesh):
        ring = set(np.unique(F[(F == a).any(axis=1) | (F == b).any(axis=1)]))
        if ring & used:
            continue  # keep the spoiled edges apart
        flip_edge(F, a, b)
        used |= ring
        spoiled += 1
    bent = trimesh.Trimesh(mesh.vertices, F, process=False)
    assert spoiled >= 8 and bent.is_watertight and (off_axis_degrees(bent) > 1).sum() >= spoiled

    queries, normals = queries_and_normals()
    faces, flipped = flip_toward_normals(mesh.vertices, F, queries, normals, CELL)
    fixed = trimesh.Trimesh(mesh.vertices, faces, process=False)
    assert flipped == spoiled
    assert off_axis_degrees(fixed).max() < 1e-6
    assert fixed.is_watertight and fixed.is_winding_consistent and fixed.euler_number == 2
    assert abs(fixed.volume - np.prod(2 * HALF)) < 1e-9


def test_a_surface_already_on_the_input_is_left_as_it_is_and_a_cancel():
    mesh = fine_box()
    queries, normals = queries_and_normals()
    faces, flipped = flip_toward_normals(mesh.vertices, mesh.faces, queries, normals, CELL)
    assert flipped == 0 and np.array_equal(faces, mesh.faces)
    with pytest.raises(Cancelled):
        flip_toward_normals(mesh.vertices, mesh.faces, queries, normals, CELL, should_cancel=lambda: True)
