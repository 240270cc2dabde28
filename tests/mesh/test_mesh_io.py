"""Mesh loading, validation, normalisation and saving."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from sape_geom.errors import InputError
from sape_geom.mesh.io import Normalization, load_mesh, normalization_for, save_mesh, validate_mesh


@pytest.fixture()
def sphere() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=2)


def test_normalization_round_trip_and_spec(sphere):
    mesh = sphere.copy()
    mesh.vertices = mesh.vertices * [2.0, 1.0, 0.5] + [3.0, -1.0, 7.0]
    norm = normalization_for(mesh)
    unit = norm.apply(mesh.vertices)
    lo, hi = unit.min(0), unit.max(0)
    np.testing.assert_allclose(0.5 * (lo + hi), 0.0, atol=1e-12)
    assert np.linalg.norm(unit, axis=1).max() == pytest.approx(0.95)
    np.testing.assert_allclose(norm.invert(unit), mesh.vertices, atol=1e-12)
    again = Normalization.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_allclose(again.apply(mesh.vertices), unit, atol=1e-12)


def test_translated_scaled_mesh_has_same_unit_coordinates(sphere):
    moved = sphere.copy()
    moved.vertices = moved.vertices * 37.5 + [100.0, -4.0, 0.25]
    a = normalization_for(sphere).apply(sphere.vertices)
    b = normalization_for(moved).apply(moved.vertices)
    np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".stl", ".off", ".glb"])
def test_save_load_round_trip(tmp_path, sphere, suffix):
    path = save_mesh(sphere, tmp_path / f"out{suffix}")
    loaded = load_mesh(path)
    assert len(loaded.vertices) == len(sphere.vertices)  # STL's unwelded triangles are merged
    assert len(loaded.faces) == len(sphere.faces)
    assert loaded.volume == pytest.approx(sphere.volume, rel=1e-5)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".glb"])
def test_vertex_colours_survive(tmp_path, sphere, suffix):
    colors = np.tile(np.array([[200, 10, 30, 255]], np.uint8), (len(sphere.vertices), 1))
    mesh = trimesh.Trimesh(sphere.vertices, sphere.faces, vertex_colors=colors, process=False)
    loaded = load_mesh(save_mesh(mesh, tmp_path / f"c{suffix}"))
    assert loaded.visual.kind == "vertex"
    np.testing.assert_array_equal(loaded.visual.vertex_colors[:, :3], colors[:, :3])


def test_quads_are_triangulated_and_scene_transforms_applied(tmp_path):
    obj = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 0 0 1\nv 1 0 1\nv 1 1 1\nv 0 1 1\n"
    obj += "f 1 4 3 2\nf 5 6 7 8\nf 1 2 6 5\nf 3 4 8 7\nf 2 3 7 6\nf 1 5 8 4\n"
    (tmp_path / "cube.obj").write_text(obj)
    cube = load_mesh(tmp_path / "cube.obj")
    assert cube.faces.shape == (12, 3)
    assert abs(cube.volume) == pytest.approx(1.0)
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box(), transform=trimesh.transformations.translation_matrix([5, 0, 0]))
    scene.add_geometry(trimesh.creation.box())
    scene.export(tmp_path / "scene.glb")
    flat = load_mesh(tmp_path / "scene.glb")
    np.testing.assert_allclose(flat.bounds, [[-0.5, -0.5, -0.5], [5.5, 0.5, 0.5]])


def test_open_mesh_is_accepted(tmp_path, sphere):
    hole = trimesh.Trimesh(sphere.vertices, sphere.faces[5:], process=False)
    mesh = load_mesh(save_mesh(hole, tmp_path / "open.ply"))
    assert not mesh.is_watertight


def _write_ply(path, vertices, faces=None):
    lines = [
        "ply",
        "format ascii 1.0",
        f"element vertex {len(vertices)}",
        "property float x",
        "property float y",
        "property float z",
    ]
    if faces is not None:
        lines += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    lines.append("end_header")
    lines += [" ".join(str(c) for c in v) for v in vertices]
    lines += [f"3 {f[0]} {f[1]} {f[2]}" for f in (faces if faces is not None else [])]
    path.write_text("\n".join(lines) + "\n")


def _bad_file(tmp_path, kind):
    tri = [[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]]
    tet = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    if kind == "empty":
        path = tmp_path / "empty.ply"
        path.write_bytes(b"")
    elif kind == "garbage":
        path = tmp_path / "garbage.ply"
        path.write_text("this is not a mesh at all\n")
    elif kind == "points":
        path = tmp_path / "points.ply"
        _write_ply(path, tet)
    elif kind == "nan":
        path = tmp_path / "nan.ply"
        _write_ply(path, [[0, 0, 0], [1, 0, 0], ["nan", 1, 0], [0, 0, 1]], tri)
    elif kind == "flat":
        path = tmp_path / "flat.ply"
        _write_ply(path, [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], [[0, 1, 2], [0, 2, 3]])
    elif kind == "zero_area":
        path = tmp_path / "line.ply"
        _write_ply(path, [[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3]], tri)
    elif kind == "suffix":
        path = tmp_path / "mesh.xyz123"
        path.write_text("1 2 3\n")
    else:
        path = tmp_path / "missing.obj"
    return path


@pytest.mark.parametrize(
    "kind, words",
    [
        ("missing", "not found"),
        ("empty", "empty"),
        ("garbage", "cannot read"),
        ("points", "point cloud"),
        ("nan", "NaN"),
        ("flat", "flat"),
        ("zero_area", "zero area"),
        ("suffix", "unknown mesh format"),
    ],
)
def test_bad_files_raise_input_error_naming_the_file(tmp_path, kind, words):
    path = _bad_file(tmp_path, kind)
    with pytest.raises(InputError) as info:
        load_mesh(path)
    message = str(info.value)
    assert path.name in message and words in message
    assert "\n" not in message


def test_validate_mesh_arrays():
    V, F = validate_mesh(np.eye(3).tolist() + [[0, 0, 0]], [[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]])
    assert V.dtype == np.float64 and F.dtype == np.int64
    with pytest.raises(InputError, match=r"blender_obj.*out of range"):
        validate_mesh(np.eye(3), [[0, 1, 5]], name="blender_obj")
    with pytest.raises(InputError, match="no faces"):
        validate_mesh(np.eye(3), np.zeros((0, 3)))
    plane = validate_mesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], allow_flat=True)
    assert plane[1].shape == (1, 3)


def test_save_rejects_unknown_suffix(tmp_path, sphere):
    with pytest.raises(InputError, match="cannot write"):
        save_mesh(sphere, tmp_path / "x.fbx")
