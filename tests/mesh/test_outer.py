"""The outer surface of inputs made of overlapping parts: buried faces are left out of the distances."""

from __future__ import annotations

import numpy as np
import trimesh

from sape_geom.mesh.outer import outer_surface, solid_pieces
from sape_geom.mesh.queries import MeshQueries
from sape_geom.mesh.sampling import PointSetBuffer


def _box(extents, centre):
    box = trimesh.creation.box(extents)
    box.apply_translation(centre)
    return box


def _overlapping_boxes():
    """Two boxes pushed into each other (their union is 1.0 x 0.4 x 0.4), as a kitbashed model has them."""
    mesh = trimesh.util.concatenate([_box([0.6, 0.4, 0.4], [-0.2, 0, 0]), _box([0.6, 0.4, 0.4], [0.2, 0, 0])])
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def _union_box_distance(points):
    """Exact distance from points inside the union (a 1.0 x 0.4 x 0.4 box) to its boundary."""
    half = np.array([0.5, 0.2, 0.2])
    return (half - np.abs(points)).min(axis=1)


def test_a_closed_mesh_comes_back_as_it_is():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.9)
    V, F = np.asarray(sphere.vertices), np.asarray(sphere.faces)
    outer = outer_surface(V, F, MeshQueries(V, F))
    assert not outer.changed and outer.vertices is V and outer.faces is F


def test_the_faces_inside_the_other_part_are_left_out():
    V, F = _overlapping_boxes()
    outer = outer_surface(V, F, MeshQueries(V, F))
    assert outer.changed
    # buried: the two end faces inside the other box (0.16 each) of a total area 2 x 1.28; the side walls
    # over the overlap lie on the union's skin twice (the winding number jumps by 2 across them) and stay
    assert abs(outer.buried_area - 2 * 0.16 / 2.56) < 0.01
    # what is left lies on the union's boundary: its area 1.92, and the walls over the overlap a second time (0.32)
    tri = outer.vertices[outer.faces]
    centres = tri.mean(axis=1)
    assert np.abs(_union_box_distance(centres)).max() < 1e-9
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
    assert abs(area - 2.24) < 0.05


def test_a_part_wholly_inside_another_is_left_out():
    outside = trimesh.creation.icosphere(subdivisions=3, radius=0.9)
    inside = trimesh.creation.icosphere(subdivisions=2, radius=0.3)
    mesh = trimesh.util.concatenate([outside, inside])
    V, F = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    outer = outer_surface(V, F, MeshQueries(V, F))
    radius = np.linalg.norm(outer.vertices[outer.faces], axis=2)  # the outer sphere's faces, whole
    assert radius.min() > 0.85 and abs(outer.buried_area - 0.3**2 / (0.3**2 + 0.9**2)) < 0.01


def test_signed_distances_ignore_buried_faces():
    """Deep in the overlap the distance is to the union's skin, not to the buried face beside the point."""
    V, F = _overlapping_boxes()
    buffer = PointSetBuffer(V, F, num_sets=1, n_points=6000, target="sdf")
    points, distances = buffer.get_set(0)
    inside = distances < 0
    assert inside.sum() > 500
    np.testing.assert_allclose(-distances[inside], _union_box_distance(points[inside].astype(np.float64)), atol=2e-3)
    # and the surface samples lie on the skin only: none on the buried end faces at x = +-0.1
    near = points[:2000].astype(np.float64)
    buried_end = (np.abs(np.abs(near[:, 0]) - 0.1) < 0.004) & (np.abs(near[:, 1:]).max(axis=1) < 0.17)
    assert buried_end.sum() <= 0.01 * len(near)


def test_overlapping_parts_count_as_one_solid_and_separate_ones_stay_separate():
    V, F = _overlapping_boxes()
    assert solid_pieces(V, F, outer_surface(V, F, MeshQueries(V, F))) == 1
    apart = trimesh.util.concatenate(
        [
            trimesh.util.concatenate([_box([0.6, 0.4, 0.4], [-0.2, 0, 0]), _box([0.6, 0.4, 0.4], [0.2, 0, 0])]),
            _box([0.2, 0.2, 0.2], [0, 0.6, 0]),
        ]
    )
    V, F = np.asarray(apart.vertices), np.asarray(apart.faces)
    assert solid_pieces(V, F, outer_surface(V, F, MeshQueries(V, F))) == 2
