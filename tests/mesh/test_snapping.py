"""Snapping an extracted surface onto the input: on the surface, creases sharp, nothing far moved."""

import mcubes
import numpy as np
import pytest
import trimesh

from sape_geom.errors import Cancelled
from sape_geom.mesh.queries import MeshQueries
from sape_geom.mesh.snapping import snap_to_surface

RESOLUTION = 48
CELL = 2.0 / (RESOLUTION - 1)
HALF = np.array([0.6, 0.45, 0.3])


def rounded_box(rounding: float, offset: float = 0.0) -> trimesh.Trimesh:
    """Marching cubes of a box of half-sizes ``HALF`` with its edges rounded by ``rounding``, as a fitted
    field rounds them, its surface pushed out by ``offset``; on a grid over [-1, 1]^3."""
    axis = np.linspace(-1.0, 1.0, RESOLUTION)
    p = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    q = np.abs(p) - (HALF - rounding)
    distance = np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(axis=-1), 0.0) - rounding - offset
    vertices, faces = mcubes.marching_cubes(distance, 0.0)
    vertices = vertices * CELL - 1.0
    return trimesh.Trimesh(vertices, faces[:, ::-1], process=False)


def box_queries() -> MeshQueries:
    box = trimesh.creation.box(extents=2 * HALF)
    return MeshQueries(box.vertices, box.faces)


def off_axis_degrees(mesh: trimesh.Trimesh) -> np.ndarray:
    """Per face: degrees between its normal and the nearest coordinate axis."""
    cos = np.abs(mesh.face_normals).max(axis=1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def test_a_rounded_box_comes_out_on_the_box_with_sharp_edges():
    fitted = rounded_box(rounding=CELL)  # its corners within a cell of the box's
    queries = box_queries()
    vertices, faces, stats = snap_to_surface(fitted.vertices, fitted.faces, queries, CELL)
    snapped = trimesh.Trimesh(vertices, faces, process=False)

    assert snapped.is_watertight and snapped.is_winding_consistent
    assert snapped.euler_number == fitted.euler_number == 2
    assert np.sqrt(queries.squared_distance(vertices)[0]).max() < 1e-9  # every vertex on the box
    assert stats.snapped == len(fitted.vertices) and stats.on_creases > 0
    # The rounded edges are gone: faces off the box's axes, by area, go from a few per cent to nearly none.
    before = fitted.area_faces[off_axis_degrees(fitted) > 5].sum() / fitted.area
    after = snapped.area_faces[off_axis_degrees(snapped) > 5].sum() / snapped.area
    assert before > 0.05 and after < 0.2 * before, (before, after)
    assert abs(snapped.volume - np.prod(2 * HALF)) < 0.2 * abs(fitted.volume - np.prod(2 * HALF))


def test_a_surface_farther_than_a_cell_is_left_where_it_is():
    fitted = rounded_box(rounding=0.0, offset=1.5 * CELL)  # 1.5 cells from the box everywhere
    vertices, faces, stats = snap_to_surface(fitted.vertices, fitted.faces, box_queries(), CELL)
    assert stats.snapped == 0 and stats.collapsed == 0
    assert np.array_equal(vertices, fitted.vertices)  # edges may flip; no vertex moves
    flipped = trimesh.Trimesh(vertices, faces, process=False)
    assert flipped.is_watertight and flipped.euler_number == fitted.euler_number


def test_snapping_never_turns_a_face_over():
    fitted = rounded_box(rounding=CELL)
    vertices, faces, _ = snap_to_surface(fitted.vertices, fitted.faces, box_queries(), CELL)
    snapped = trimesh.Trimesh(vertices, faces, process=False)
    # Every face of some area points outwards, as the box's own faces do.
    centres = snapped.triangles_center
    outward = np.sign(centres) * (np.abs(centres) / HALF == (np.abs(centres) / HALF).max(axis=1, keepdims=True))
    big = snapped.area_faces > (0.05 * CELL) ** 2
    assert np.all(np.einsum("ij,ij->i", snapped.face_normals[big], outward[big]) > 0)


def test_nothing_to_snap_and_a_cancel():
    empty_vertices, empty_faces, stats = snap_to_surface(np.zeros((0, 3)), np.zeros((0, 3), int), box_queries(), CELL)
    assert len(empty_vertices) == 0 and len(empty_faces) == 0 and stats.snapped == 0
    fitted = rounded_box(rounding=CELL)
    with pytest.raises(Cancelled):
        snap_to_surface(fitted.vertices, fitted.faces, box_queries(), CELL, should_cancel=lambda: True)


def open_box_sheet(thickness_cells: float) -> tuple[trimesh.Trimesh, MeshQueries]:
    """A box of half-sizes ``HALF`` without its top face, and marching cubes of the sheet within
    ``thickness_cells / 2`` cells of it (as a shell's field gives it): the sheet and the box's queries."""
    box = trimesh.creation.box(extents=2 * HALF).subdivide()
    box = box.submesh([np.flatnonzero(box.triangles_center[:, 2] < HALF[2] - 1e-9)], append=True)
    queries = MeshQueries(box.vertices, box.faces)
    axis = np.linspace(-1.0, 1.0, RESOLUTION)
    p = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    distance = np.sqrt(queries.squared_distance(p)[0]).reshape((RESOLUTION,) * 3) - 0.5 * thickness_cells * CELL
    vertices, faces = mcubes.marching_cubes(distance, 0.0)
    return trimesh.Trimesh(vertices * CELL - 1.0, faces[:, ::-1], process=False), queries


def test_a_sheet_goes_onto_its_offset_with_both_sides_flat():
    sheet, queries = open_box_sheet(thickness_cells=2.4)
    offset = 0.5 * CELL
    vertices, faces, stats = snap_to_surface(sheet.vertices, sheet.faces, queries, CELL, offset=offset)
    snapped = trimesh.Trimesh(vertices, faces, process=False)

    assert snapped.is_watertight and snapped.is_winding_consistent
    assert snapped.euler_number == sheet.euler_number == 2  # one closed sheet, no tunnel through it
    distance = np.sqrt(queries.squared_distance(vertices)[0])
    assert np.abs(distance - offset).max() < 0.05 * CELL, np.abs(distance - offset).max()  # every vertex on a side
    assert stats.snapped == len(sheet.vertices)
    # Both sides parallel to the box: the faces off its axes are the rim's and the outer edges' rounds.
    before = sheet.area_faces[off_axis_degrees(sheet) > 5].sum() / sheet.area
    after = snapped.area_faces[off_axis_degrees(snapped) > 5].sum() / snapped.area
    assert after < 0.5 * before, (before, after)
    # No face is turned over, into the sheet (faces across a round may lie sideways to it).
    closest = queries.closest_points(snapped.triangles_center)[2]
    outward = snapped.triangles_center - closest
    away = np.einsum("ij,ij->i", snapped.face_normals, outward / np.linalg.norm(outward, axis=1, keepdims=True))
    assert away[snapped.area_faces > (0.05 * CELL) ** 2].min() > -0.5
