"""``sape-geom deform-mesh``: outputs keep the source's faces, vertex order and UVs in every format; bad
input is one error line, exit status 2 and nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from PIL import Image

from sape_geom.app.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


FAST = ["--steps", "3", "--calibration-steps", "5", "--quiet"]


def textured_sphere(path) -> trimesh.Trimesh:
    """A small sphere with spherical UVs and a texture, written to ``path`` (OBJ + MTL + PNG)."""
    sphere = trimesh.creation.icosphere(2)
    v = sphere.vertices
    uv = np.stack(
        [0.5 + np.arctan2(v[:, 1], v[:, 0]) / (2 * np.pi), 0.5 + np.arcsin(np.clip(v[:, 2], -1, 1)) / np.pi], 1
    )
    material = trimesh.visual.material.SimpleMaterial(image=Image.new("RGB", (4, 4), (200, 30, 30)))
    mesh = trimesh.Trimesh(
        v, sphere.faces, visual=trimesh.visual.TextureVisuals(uv=uv, material=material), process=False
    )
    mesh.export(str(path))
    return trimesh.load(str(path), process=False)


def ellipsoid(path) -> None:
    mesh = trimesh.creation.icosphere(3)
    trimesh.Trimesh(mesh.vertices * [1.0, 0.6, 0.4] + [5, 0, 0], mesh.faces).export(str(path))


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".glb"])
def test_faces_order_and_uvs_are_kept_in_every_format(tmp_path, capsys, suffix):
    source = textured_sphere(tmp_path / "sphere.obj")
    ellipsoid(tmp_path / "target.ply")
    out = tmp_path / "out" / f"deformed{suffix}"
    rc = main(
        [
            "deform-mesh",
            str(tmp_path / "sphere.obj"),
            str(tmp_path / "target.ply"),
            "-o",
            str(out),
            *FAST,
            "--json",
            "--snapshots",
            "2",
        ]
    )
    assert rc == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload["outputs"]) == {"mesh", "levels", "metrics", "snapshots"}
    loaded = trimesh.load(str(out), process=False)
    if isinstance(loaded, trimesh.Scene):
        (loaded,) = loaded.geometry.values()
    assert loaded.vertices.shape == source.vertices.shape
    assert np.array_equal(loaded.faces, source.faces)
    assert np.allclose(loaded.visual.uv, source.visual.uv, atol=1e-6)
    assert not np.allclose(loaded.vertices, source.vertices)  # moved, into the target's frame
    assert abs(loaded.vertices[:, 0].mean() - 5.0) < 0.5
    snaps = np.load(tmp_path / "out" / "deformed_snapshots.npz")
    assert snaps["vertices"].shape == (4, len(source.vertices), 3) and list(snaps["steps"]) == [0, 1, 2, 3]
    levels = trimesh.load(str(tmp_path / "out" / "deformed_levels.ply"), process=False)
    assert len(levels.visual.vertex_colors) == len(source.vertices)


def _bad_inputs(tmp_path):
    ellipsoid(tmp_path / "good.ply")
    (tmp_path / "empty.obj").write_text("")
    trimesh.PointCloud(np.random.default_rng(0).normal(size=(50, 3))).export(str(tmp_path / "cloud.ply"))
    (tmp_path / "nan.obj").write_text("v 0 0 0\nv 1 0 0\nv nan 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\n")
    (tmp_path / "nofaces.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n")
    good = str(tmp_path / "good.ply")
    return {
        "empty source": (str(tmp_path / "empty.obj"), good),
        "point-cloud target": (good, str(tmp_path / "cloud.ply")),
        "NaN source": (str(tmp_path / "nan.obj"), good),
        "source without faces": (str(tmp_path / "nofaces.obj"), good),
        "missing target": (good, str(tmp_path / "missing.ply")),
    }


@pytest.mark.parametrize(
    "case", ["empty source", "point-cloud target", "NaN source", "source without faces", "missing target"]
)
def test_bad_input_is_one_line_and_nothing_is_written(tmp_path, capsys, case):
    source, target = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    rc = main(["deform-mesh", source, target, "-o", str(out / "d.ply"), *FAST])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("sape-geom deform-mesh: error:"), err
    assert not out.exists() or not any(out.iterdir())


def test_an_unwritable_output_is_refused_before_any_work(tmp_path, capsys):
    ellipsoid(tmp_path / "good.ply")
    (tmp_path / "file").write_text("x")
    rc = main(
        [
            "deform-mesh",
            str(tmp_path / "good.ply"),
            str(tmp_path / "good.ply"),
            "-o",
            str(tmp_path / "file" / "d.ply"),
            *FAST,
        ]
    )
    assert rc == 2 and "is a file" in capsys.readouterr().err
    rc = main(
        ["deform-mesh", str(tmp_path / "good.ply"), str(tmp_path / "good.ply"), "-o", str(tmp_path / "d.stl"), *FAST]
    )
    assert rc == 2 and "cannot write '.stl'" in capsys.readouterr().err
