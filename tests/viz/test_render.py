"""Preview rendering writes sensible PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from sape_geom.errors import InputError
from sape_geom.viz.colors import colorize_by_values
from sape_geom.viz.render import render_mesh_image, render_mesh_png


def test_png_is_not_blank(tmp_path):
    path = render_mesh_png(trimesh.creation.icosphere(subdivisions=3), tmp_path / "s.png", size=128)
    img = np.asarray(Image.open(path))
    assert img.shape == (128, 128, 3)
    covered = (img != 255).any(axis=2)
    assert 0.3 < covered.mean() < 0.9  # a disc around the centre
    assert covered[64, 64] and not covered[0, 0]
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20  # shaded, not flat


def test_side_by_side_with_titles_colours_and_empty(tmp_path):
    sphere = trimesh.creation.icosphere(subdivisions=2)
    red = colorize_by_values(sphere.vertices, np.ones(len(sphere.vertices)))
    path = render_mesh_png(
        [sphere, trimesh.creation.box(), trimesh.Trimesh()],
        tmp_path / "row.png",
        size=96,
        colors=[red, None, None],
        titles=["a", "b", "empty"],
        view="front",
    )
    img = np.asarray(Image.open(path)).astype(int)
    assert img.shape == (96, 288, 3)
    centre = img[48, 48]
    assert centre[0] > centre[2] + 40  # red vertex colours shown
    assert (img[20:, 192:] == 255).all()  # empty mesh leaves its tile blank (below the title)
    assert (img[:14, 192:230] != 255).any()  # title drawn


def test_nearest_surface_wins():
    near = trimesh.creation.box(extents=[1, 1, 0.1]).apply_translation([0, 0, 1])
    far = trimesh.creation.box(extents=[2, 2, 0.1])
    img = render_mesh_image(
        [trimesh.util.concatenate([near, far])],
        size=64,
        view="front",
        colors=[np.where(np.arange(16)[:, None] < 8, [255, 0, 0], [0, 0, 255])],
    )
    assert img[32, 32, 0] > img[32, 32, 2]  # red box in front of the blue one


def test_large_mesh_renders(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=7)  # 327k faces (its time: benchmarks/stress.py)
    path = render_mesh_png(mesh, tmp_path / "big.png", size=256)
    assert path.stat().st_size > 0


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="view"):
        render_mesh_png(trimesh.creation.box(), tmp_path / "x.png", view="sideways")
    with pytest.raises(InputError, match="colour"):
        render_mesh_png(trimesh.creation.box(), tmp_path / "x.png", colors=np.zeros((3, 3)))


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def half_written(image, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", half_written)
    with pytest.raises(OSError, match="disk full"):
        render_mesh_png(trimesh.creation.box(), tmp_path / "preview.png", size=32)
    assert list(tmp_path.iterdir()) == []
