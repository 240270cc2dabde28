"""Big-mesh queries: libigl's answers exactly (one tree), in parts (exact distances, additive winding
numbers), pieces without trimesh's caches, and a cancel seen between chunks of points."""

import igl
import numpy as np
import pytest
import trimesh

from sape_geom.errors import Cancelled
from sape_geom.mesh import queries
from sape_geom.mesh.cleanup import face_components
from sape_geom.mesh.queries import MeshQueries
from sape_geom.mesh.sampling import PointSetBuffer, sample_training_points
from sape_geom.mesh.shapes import hemisphere, several_pieces


@pytest.fixture(params=["pieces", "open"])
def mesh(request):
    return several_pieces() if request.param == "pieces" else hemisphere(subdivisions=4)


def test_one_tree_gives_libigls_answers_exactly(mesh):
    V, F = np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64)
    P = sample_training_points(V, F, 20_000, seed=1).astype(float)
    q = MeshQueries(V, F)
    np.testing.assert_array_equal(q.winding_number(P), igl.fast_winding_number(V, F, P))
    squared, face = q.squared_distance(P)
    expected, expected_face, _ = igl.point_mesh_squared_distance(P, V, F)
    np.testing.assert_array_equal(squared, expected)
    np.testing.assert_array_equal(face, expected_face)


def test_parts_give_exact_distances_and_nearly_the_same_winding_numbers(mesh):
    V, F = np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64)
    P = sample_training_points(V, F, 20_000, seed=2).astype(float)
    whole, parts = MeshQueries(V, F), MeshQueries(V, F, faces_per_tree=len(F) // 3 + 1)
    assert len(parts.parts) == 3
    np.testing.assert_array_equal(parts.unsigned_distance(P), whole.unsigned_distance(P))
    assert np.abs(parts.winding_number(P) - whole.winding_number(P)).max() < 0.02


def test_face_components_are_the_pieces_trimesh_finds(mesh):
    expected = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    np.testing.assert_array_equal(face_components(mesh.faces), expected)
    np.testing.assert_array_equal(face_components(mesh.faces.astype(np.int32)), expected)
    touching = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]], [[0, 1, 2], [0, 3, 4]])
    assert face_components(touching.faces).tolist() == [0, 1]  # sharing a vertex only: two pieces


def test_labelling_asks_for_a_cancel_between_chunks(mesh, monkeypatch):
    monkeypatch.setattr(queries, "POINTS_PER_CALL", 1000)
    V, F = np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64)
    asked = []
    buffer = PointSetBuffer(
        V, F, num_sets=2, n_points=6000, target="sdf", should_cancel=lambda: asked.append(1) or len(asked) > 4
    )
    with pytest.raises(Cancelled):
        buffer.prepare()
    assert len(asked) == 5 and buffer.generated == 0


def test_all_sets_at_once_are_the_sets_one_by_one(mesh):
    V, F = np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64)
    together = PointSetBuffer(V, F, num_sets=3, n_points=3000, seed=4, target="sdf")
    together.prepare()
    alone = PointSetBuffer(V, F, num_sets=3, n_points=3000, seed=4, target="sdf")
    for index in (2, 0, 1):
        for a, b in zip(together.get_set(index), alone.get_set(index)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", ["fine", "long faces too", "long faces only"])
def test_truncated_distance_is_the_exact_one_cut_at_its_limit(shape):
    """A subdivided hemisphere (its vertices cover it), the same beside a box of 12 long faces (cut into
    many small triangles' corners) and the box alone (more cover points than faces: every point exact)."""
    from sape_geom.mesh.surface_points import covering_points

    box = trimesh.creation.box((1.0, 0.6, 0.2))
    box.apply_translation((0.0, 0.0, -0.8))
    parts = {"fine": [hemisphere(subdivisions=5)], "long faces too": [hemisphere(subdivisions=5), box]}
    mesh = trimesh.util.concatenate(parts.get(shape, [box]))
    V, F = np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64)
    limit = 0.2
    assert (covering_points(V, F, 0.5 * limit, len(F)) is None) == (shape == "long faces only")
    P = sample_training_points(V, F, 30_000, seed=3).astype(float)
    q = MeshQueries(V, F)
    truncated = q.truncated_distance(P, limit)
    np.testing.assert_array_equal(truncated, np.minimum(q.unsigned_distance(P), limit))
    assert 0.1 < np.mean(truncated == limit) < 0.9  # both kinds of points were there


def test_covering_points_leave_no_surface_point_farther_than_the_spacing():
    from scipy.spatial import KDTree

    from sape_geom.mesh.surface_points import covering_points, sample_surface

    mesh = trimesh.creation.box((1.6, 1.0, 0.4))  # long thin faces, cut many times
    V, F = np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64)
    cover = covering_points(V, F, 0.05, 1_000_000)
    assert cover is not None
    samples, _ = sample_surface(V, F, 50_000, np.random.default_rng(0))
    assert KDTree(cover).query(samples)[0].max() <= 0.05
    assert covering_points(V, F, 0.05, 100) is None  # over the limit: the caller queries every point


def test_a_fan_of_long_faces_gets_a_winding_tree_of_short_ones_and_the_same_labels():
    """A cylinder's caps are fans of long thin faces (as CAD exports them): with ``winding_edge`` the
    winding-number tree is built on them cut short, its numbers the same up to libigl's approximation;
    a box's 12 long faces are too few to cut."""
    cylinder = trimesh.creation.cylinder(radius=0.8, height=0.3, sections=128)
    V, F = np.asarray(cylinder.vertices, float), np.asarray(cylinder.faces, np.int64)
    cut = MeshQueries(V, F, winding_edge=0.1)
    assert len(cut._winding_mesh(F)[1]) > 4 * len(F)
    P = sample_training_points(V, F, 20_000, seed=5).astype(float)
    plain, fast = MeshQueries(V, F).winding_number(P), cut.winding_number(P)
    assert np.abs(plain - fast).max() < 0.05
    np.testing.assert_array_equal(plain > 0.5, fast > 0.5)
    box = trimesh.creation.box((1.6, 1.0, 0.4))
    assert len(MeshQueries(box.vertices, box.faces, winding_edge=0.1)._winding_mesh(np.asarray(box.faces))[1]) == 12
