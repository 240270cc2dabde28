"""Uncrossing a closed curve by 2-opt moves: no crossing left, every point kept, simple curves untouched."""

import numpy as np

from sape_geom.curve import circle, count_self_intersections, signed_area
from sape_geom.curve.uncross import uncross


def test_a_simple_curve_is_left_as_it_is():
    points = circle(100)
    order, moves = uncross(points)
    assert moves == 0
    np.testing.assert_array_equal(order, np.arange(100))


def test_a_local_twist_is_undone_in_place_keeping_the_orientation():
    points = circle(200)
    twisted = points.copy()
    twisted[[50, 51]] = twisted[[51, 50]]  # two neighbours swapped: a small bow-tie on the circle
    assert count_self_intersections(twisted) > 0
    order, _moves = uncross(twisted)
    assert count_self_intersections(twisted[order]) == 0
    assert np.abs(twisted[order] - points).max() < 1e-12  # the circle back, in its own order
    assert signed_area(twisted[order]) > 0


def test_any_tangle_ends_simple_through_the_same_points():
    rng = np.random.default_rng(0)
    points = rng.random((120, 2))
    assert count_self_intersections(points) > 100
    order, moves = uncross(points)
    assert count_self_intersections(points[order]) == 0
    assert sorted(order.tolist()) == list(range(120)) and moves > 0
