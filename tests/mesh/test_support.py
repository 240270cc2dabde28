"""Support grid and clean-up of unsupported pieces; solid/shell reading of open input."""

import numpy as np
import pytest
import trimesh

from sape_geom.mesh.cleanup import count_components
from sape_geom.mesh.io import normalization_for
from sape_geom.mesh.sampling import field_targets, hole_area_fraction, winding_confidence
from sape_geom.mesh.shapes import hemisphere, several_pieces, sphere
from sape_geom.mesh.support import SupportGrid, build_support, remove_unsupported_pieces


def _unit(mesh):
    return normalization_for(mesh).apply_mesh(mesh)


def test_clean_up_removes_a_speck_but_keeps_a_real_small_part():
    reference = _unit(several_pieces())  # two spheres and a small cube
    support = build_support(reference.vertices, reference.faces)
    speck = sphere(0.02, 1)
    speck.apply_translation([0.0, 0.6, 0.6])  # floating in empty space
    extracted = trimesh.util.concatenate([reference, speck])
    kept, removed = remove_unsupported_pieces(extracted, support)
    assert removed == 1
    assert count_components(kept) == 3  # the small cube of the input survives
    assert len(kept.faces) == len(reference.faces)


def test_support_grid_round_trips_through_packed_bits():
    reference = _unit(sphere(0.8, 2))
    support = build_support(reference.vertices, reference.faces, resolution=32)
    again = SupportGrid.from_array(support.to_array(), support.resolution)
    np.testing.assert_array_equal(again.mask, support.mask)
    assert support.contains(reference.vertices).all()
    assert not support.contains(np.zeros((1, 3))).any()  # the centre of a ball is far from its surface


def test_hole_area_tells_closed_from_open():
    closed = sphere(0.8, 3)
    assert hole_area_fraction(closed.vertices, closed.faces) == 0.0
    # a hemisphere's rim closes with a disc of half its area
    shell = hemisphere(4)
    assert abs(hole_area_fraction(shell.vertices, shell.faces) - 0.5) < 0.2
    small_hole = closed.submesh([np.arange(1, len(closed.faces))], append=True)  # one triangle missing
    assert 0 < hole_area_fraction(small_hole.vertices, small_hole.faces) < 0.01


def without_cap(mesh: trimesh.Trimesh, below: float) -> trimesh.Trimesh:
    """``mesh`` without its faces whose centres lie above ``z = below`` (in units of its top)."""
    keep = mesh.triangles_center[:, 2] < below * mesh.vertices[:, 2].max()
    return trimesh.Trimesh(mesh.vertices, mesh.faces[keep])


def test_winding_confidence_tells_an_almost_closed_solid_from_a_sheet():
    def confidence(mesh):
        return winding_confidence(normalization_for(mesh).apply(mesh.vertices), mesh.faces, samples=5000)

    ball = sphere(0.8, 4)
    assert confidence(ball) > 0.99
    assert confidence(without_cap(ball, 0.9)) > 0.9  # an open neck: only the faces by the hole see it
    assert confidence(hemisphere(4)) < 0.05  # a bowl: beside it the winding number is fractional
    assert confidence(without_cap(ball, 0.6)) < 0.05


def test_a_hole_inside_another_piece_is_not_open():
    """An eyeball open at the back, set into a head, spans no visible film; the same eye in the open does."""
    import trimesh

    head = sphere(0.8, 3)
    eye = hemisphere(3)
    eye.apply_scale(0.2)
    inside = trimesh.util.concatenate([head, eye.copy().apply_translation([0.0, 0.0, 0.65])])  # rim at z 0.65
    outside = trimesh.util.concatenate([head, eye.copy().apply_translation([0.0, 0.0, 0.9])])  # rim at z 0.9
    assert hole_area_fraction(inside.vertices, inside.faces) == 0.0
    assert hole_area_fraction(outside.vertices, outside.faces) > 0.01
    # a hole in the head itself still counts, eye or no eye (the same hole over more area)
    holed = head.submesh([np.arange(1, len(head.faces))], append=True)
    with_eye = trimesh.util.concatenate([holed, eye.copy().apply_translation([0.0, 0.0, 0.65])])
    hole = hole_area_fraction(holed.vertices, holed.faces)
    assert hole > 0 and hole_area_fraction(with_eye.vertices, with_eye.faces) == pytest.approx(
        hole * holed.area / with_eye.area
    )


def test_shell_targets_are_inside_within_the_half_thickness():
    unit = _unit(hemisphere())
    pole = unit.vertices[np.argmax(unit.vertices[:, 2])]
    points = np.array([pole + [0, 0, 0.005], pole + [0, 0, -0.005], pole + [0, 0, 0.05], pole + [0, 0, -0.05]])
    values = field_targets(unit.vertices, unit.faces, points, "sdf", shell_thickness=0.01)
    assert values[0] < 0 and values[1] < 0  # within the half-thickness on either side: inside the sheet
    assert abs(values[2] - 0.04) < 2e-3 and abs(values[3] - 0.04) < 2e-3  # beyond it: distance to the sheet
    occupancy = field_targets(unit.vertices, unit.faces, points, "occupancy", shell_thickness=0.01)
    np.testing.assert_array_equal(occupancy, [0.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize("shell", [0.0, 0.01])
def test_targets_within_the_band_are_exact_and_beyond_it_keep_their_side(shell):
    """What a fit's loss reads of a target (docs/method.md §6.3) is the same with and without ``band``:
    the distance inside the band, the side beyond it."""
    from sape_geom.mesh.sampling import sample_training_points

    mesh = several_pieces() if shell == 0 else hemisphere(subdivisions=3)
    V, F = np.asarray(mesh.vertices, float), np.asarray(mesh.faces, np.int64)
    points = sample_training_points(V, F, 20_000, seed=4)
    exact = field_targets(V, F, points, "sdf", shell_thickness=shell)
    banded = field_targets(V, F, points, "sdf", shell_thickness=shell, band=0.05)
    inside_band = np.abs(exact) < 0.05
    np.testing.assert_array_equal(np.abs(banded) < 0.05, inside_band)
    np.testing.assert_array_equal(banded[inside_band], exact[inside_band])
    np.testing.assert_array_equal(np.sign(banded[~inside_band]), np.sign(exact[~inside_band]))
    assert np.all(np.abs(banded[~inside_band]) >= 0.05)
    assert 0.2 < np.mean(~inside_band) < 0.9
