"""Smoothing an extracted surface: ripples on flat and round parts go, edges and volume stay."""

from __future__ import annotations

import numpy as np
import pytest

from sape_geom.errors import Cancelled
from sape_geom.mesh.extract import extract_surface_dense
from sape_geom.mesh.smoothing import smooth_surface
from sape_geom.mesh.surface_points import triangle_normals

RESOLUTION = 48
CELL = 2.0 / (RESOLUTION - 1)
HALF = np.array([0.6, 0.4, 0.25])


def box_distance(p: np.ndarray) -> np.ndarray:
    q = np.abs(p) - HALF
    return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)


def rippled(distance, amplitude: float = 0.05 * CELL, seed: int = 0):
    """A field with noise of a twentieth of a cell on it: marching cubes gives a surface about as bumpy as
    a fitted field's (a box's faces 4 degrees off on the median)."""
    rng = np.random.default_rng(seed)

    def query(p: np.ndarray) -> np.ndarray:  # dense marching cubes asks for each grid point once
        return distance(p) + amplitude * rng.standard_normal(len(p))

    return extract_surface_dense(query, RESOLUTION)


def axis_angle(normals: np.ndarray) -> np.ndarray:
    """Degrees between each normal and the nearest of the box's face normals."""
    return np.degrees(np.arccos(np.clip(np.abs(normals).max(axis=1), -1.0, 1.0)))


def test_a_rippled_box_comes_out_flat_with_its_edges_sharp():
    box = rippled(box_distance)
    smoothed = smooth_surface(box.vertices, box.faces)
    before, _ = triangle_normals(np.asarray(box.vertices)[np.asarray(box.faces)])
    after, areas = triangle_normals(smoothed[np.asarray(box.faces)])
    assert np.median(axis_angle(after)) < 0.25 * np.median(axis_angle(before))
    # The faces stay where the box is: its edges and corners are not rounded off (a plain Laplacian
    # pulls the corners in by about a cell).
    off = np.abs(box_distance(smoothed))
    assert off.max() < 0.3 * CELL
    # Most of the area faces an axis within 5 degrees (0.6 of it before): flat faces meet at
    # edges, the box is not rounded.
    assert np.sum(areas[axis_angle(after) < 5.0]) > 0.85 * areas.sum()


def test_a_rippled_sphere_keeps_its_size():
    sphere = rippled(lambda p: np.linalg.norm(p, axis=1) - 0.7)
    faces = np.asarray(sphere.faces)

    def off_radial(vertices: np.ndarray) -> float:
        """Median degrees between the face normals and the radial direction (what shading shows)."""
        normals, _ = triangle_normals(vertices[faces])
        radial = vertices[faces].mean(axis=1)
        radial /= np.linalg.norm(radial, axis=1, keepdims=True)
        return float(np.median(np.degrees(np.arccos(np.clip(np.abs(np.sum(normals * radial, axis=1)), 0.0, 1.0)))))

    smoothed = smooth_surface(sphere.vertices, faces)
    radius_before = np.linalg.norm(sphere.vertices, axis=1).mean()
    assert abs(np.linalg.norm(smoothed, axis=1).mean() - radius_before) < 0.01 * CELL  # no shrinking
    assert off_radial(smoothed) < 0.6 * off_radial(np.asarray(sphere.vertices))


def test_no_face_is_turned_over_and_the_faces_an_empty_mesh_stay_alone_and_it_can_be_cancelled():
    sphere = rippled(lambda p: np.linalg.norm(p, axis=1) - 0.7, amplitude=0.15 * CELL)
    faces = sphere.faces.copy()
    smoothed = smooth_surface(sphere.vertices, sphere.faces)
    assert np.array_equal(sphere.faces, faces)
    # marching cubes' slivers turn over at a hair's move of a corner; none may fold
    assert np.all(np.sum(triangle_normals(smoothed[faces])[0] * np.asarray(sphere.face_normals), axis=1) > 0)
    assert smooth_surface(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)).shape == (0, 3)
    with pytest.raises(Cancelled):
        smooth_surface(sphere.vertices, sphere.faces, should_cancel=lambda: True)
