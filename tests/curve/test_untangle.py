"""Untangling a closed curve: the outline of its positive-winding region, as many points, simple."""

import numpy as np

from sape_geom.curve import circle, count_self_intersections, polygon_iou, resample_closed, signed_area
from sape_geom.curve.untangle import resolve_crossings, untangle


def test_a_simple_curve_comes_back_unchanged():
    points = circle(100)
    out = untangle(points)
    np.testing.assert_array_equal(out.points, points)
    np.testing.assert_array_equal(out.position, np.arange(100))


def _winding(curve: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Winding numbers by summed angles (independent of the ray casting under test)."""
    a = curve[None] - at[:, None]
    b = np.roll(curve, -1, axis=0)[None] - at[:, None]
    angle = np.arctan2(a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0], (a * b).sum(-1))
    return np.rint(angle.sum(1) / (2 * np.pi)).astype(int)


def test_a_tip_run_around_twice_stays_filled():
    # a square whose right side makes an extra lap around its small tip, covering part of it twice
    # (winding number 2); the outline is the square with the whole tip, where reordering cuts into it
    curve = np.array(
        [(0, 0), (4, 0), (4, 1), (5, 1), (5, 2), (3.5, 2), (3.5, 0.5), (4.5, 0.5), (4.5, 3), (4, 3), (4, 4), (0, 4)],
        dtype=np.float64,
    )
    assert count_self_intersections(curve) > 0
    out = untangle(curve)
    assert out is not None and count_self_intersections(out.points) == 0
    assert len(out.points) == len(curve) and signed_area(out.points) > 0
    grid = np.stack(np.meshgrid(np.linspace(-0.5, 5.5, 121), np.linspace(-0.5, 4.5, 101)), -1).reshape(-1, 2) + 1e-3
    winding = _winding(curve, grid)
    assert winding.max() == 2
    np.testing.assert_array_equal(_winding(out.points, grid) == 1, winding > 0)


def test_a_twisted_fold_is_cut_off_and_values_follow_the_points():
    points = circle(200)
    twisted = points.copy()
    twisted[[50, 52]] = twisted[[52, 50]]  # a small bow-tie: a fold with winding number -1
    assert count_self_intersections(twisted) > 0
    out = untangle(twisted)
    assert count_self_intersections(out.points) == 0 and len(out.points) == 200
    assert polygon_iou(out.points, points) > 0.999
    # per-point values interpolate along the input: the positions index the input curve's points
    inner = out.position < 199  # off the closing edge, where values run from the last point to the first
    np.testing.assert_allclose(out.at(np.arange(200.0))[inner], out.position[inner])
    k = np.nonzero(out.position == np.floor(out.position))[0]
    np.testing.assert_array_equal(out.points[k], twisted[out.position[k].astype(int)])


def test_any_tangle_ends_simple_with_as_many_points():
    rng = np.random.default_rng(0)
    points = rng.random((120, 2))
    assert count_self_intersections(points) > 100
    out, _how = resolve_crossings(points, points)
    assert count_self_intersections(out.points) == 0 and len(out.points) == 120


def test_the_nearer_of_outline_and_reordering_is_taken():
    # a rectangle with a spike on top, whose curve crosses itself at the spike's base and runs round its
    # tip the wrong way (winding number -1 where the target is): the outline would cut the tip off,
    # reordering the points turns it back
    target = resample_closed(np.array([(0, 0), (4, 0), (4, 2), (2.5, 2), (2, 4), (1.5, 2), (0, 2)], float), 400)
    curve = np.array([(0, 0), (4, 0), (4, 2), (2.5, 2), (1.75, 3), (2, 4), (2.25, 3), (1.5, 2), (0, 2)], float)
    assert count_self_intersections(curve) == 1
    out, how = resolve_crossings(curve, target)
    assert how == "reordering" and count_self_intersections(out.points) == 0
    assert polygon_iou(out.points, target) > polygon_iou(untangle(curve).points, target)
