"""Closing the holes of an input read as a solid (sape_geom.mesh.holes)."""

import numpy as np
import trimesh

from sape_geom.mesh.holes import boundary_edges, cap_holes
from sape_geom.mesh.sampling import winding_confidence
from sape_geom.mesh.shapes import hemisphere, sphere


def test_a_closed_mesh_comes_back_as_it_is():
    ball = sphere(0.8, 3)
    vertices, faces = cap_holes(ball.vertices, ball.faces)
    assert len(boundary_edges(ball.faces, len(ball.vertices))) == 0
    np.testing.assert_array_equal(vertices, ball.vertices)
    np.testing.assert_array_equal(faces, ball.faces)


def test_every_hole_is_closed_and_turned_like_the_faces_around_it():
    ball = sphere(0.8, 4)
    z = ball.triangles_center[:, 2]
    band = trimesh.Trimesh(ball.vertices, ball.faces[np.abs(z) < 0.5])  # both caps missing: two holes
    vertices, faces = cap_holes(band.vertices, band.faces)
    assert len(vertices) == len(band.vertices) + 2  # one centre per hole
    closed = trimesh.Trimesh(vertices, faces, process=False)
    assert closed.is_watertight and closed.is_winding_consistent
    assert closed.volume > 0  # outward, as the input's faces
    assert winding_confidence(vertices, faces, samples=3000) > 0.99

    bowl = hemisphere(4)
    vertices, faces = cap_holes(bowl.vertices, bowl.faces)
    closed = trimesh.Trimesh(vertices, faces, process=False)
    assert closed.is_watertight and abs(abs(closed.volume) - 2 / 3 * np.pi) < 0.1 * 2 / 3 * np.pi  # a half ball
