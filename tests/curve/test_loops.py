"""Silhouettes with holes and several parts: loading every loop, writing them back, shape metrics."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sape_geom import curve as C
from sape_geom.errors import InputError


def ring_png(path, speck: bool = False):
    a = np.full((80, 80), 255, np.uint8)
    a[10:70, 10:70] = 0
    a[30:50, 30:50] = 255  # the hole: 20 x 20 pixels
    if speck:
        a[20, 20] = 255  # a one-pixel hole, too small to deform onto
        a[3, 75] = 0  # a one-pixel speck outside
    Image.fromarray(a).save(path)
    return path


def test_ring_image_gives_outer_and_hole(tmp_path):
    shape = C.load_contours(ring_png(tmp_path / "ring.png", speck=True))
    assert len(shape) == 2 and shape.holes == (False, True)
    assert shape.dropped == 2  # the pixel hole and the pixel speck
    assert abs(C.signed_area(shape.loops[0])) == pytest.approx(3600 - 0.5)
    assert abs(C.signed_area(shape.loops[1])) == pytest.approx(400 - 0.5)
    assert shape.kind == "image" and shape.y_down and shape.image_size == (80, 80)
    # the single-curve loader still gives the outline only
    assert abs(C.signed_area(C.load_contour(tmp_path / "ring.png").points)) == pytest.approx(3600 - 0.5)


def test_shape_touching_the_border_is_closed_along_it(tmp_path):
    a = np.full((60, 60), 255, np.uint8)
    a[0:40, 0:30] = 0  # touches the top and left edges
    Image.fromarray(a).save(tmp_path / "corner.png")
    c = C.load_contour(tmp_path / "corner.png")
    assert c.points.min(axis=0) == pytest.approx([-0.5, -0.5])
    assert abs(C.signed_area(c.points)) == pytest.approx(1200, abs=1)


def test_text_file_with_several_loops_and_nesting(tmp_path):
    # a blank line ends a loop, and so does a row coming back to the loop's first point
    (tmp_path / "loops.txt").write_text(
        "x y\n0 0\n10 0\n10 10\n0 10\n\n2 2\n8 2\n8 8\n2 8\n2 2\n4 4\n6 4\n6 6\n4 6\n\n20 0\n22 0\n22 2\n"
    )
    shape = C.load_contours(tmp_path / "loops.txt")
    assert [abs(C.signed_area(p)) for p in shape.loops] == pytest.approx([100, 36, 4, 2])  # largest first
    # the 6 x 6 square is a hole in the 10 x 10 one; the 2 x 2 square inside it is an island again
    assert shape.holes == (False, True, False, False)
    assert abs(C.signed_area(C.load_contour(tmp_path / "loops.txt").points)) == pytest.approx(100)


@pytest.mark.parametrize("ext", ["npz", "obj", "svg"])
def test_several_loops_roundtrip(tmp_path, ext):
    outer, hole, other = C.circle(60) * 2, C.circle(40)[::-1] * 0.8, C.circle(30) * 0.5 + [4, 0]
    path = tmp_path / f"shape.{ext}"
    kwargs = {"holes": [False, True, False]} if ext == "npz" else {}
    getattr(C, f"save_curve_{ext}")([outer, hole, other], path, **kwargs)
    shape = C.load_contours(path)
    assert [len(p) for p in shape.loops] == [60, 40, 30]
    assert shape.holes == (False, True, False)
    sign = np.array([1.0, -1.0]) if ext == "svg" else 1.0  # the SVG writer flips y only for y-up input
    for got, want in zip(shape.loops, (outer, hole, other)):
        assert np.abs(np.sort(got * sign, axis=0) - np.sort(want, axis=0)).max() < 1e-5


def test_svg_writes_one_even_odd_path_per_curve(tmp_path):
    C.save_curve_svg([C.circle(20), C.circle(20) * 0.5], tmp_path / "a.svg", target=[C.circle(30), C.circle(30) * 0.4])
    text = (tmp_path / "a.svg").read_text()
    assert text.count("<path") == 2 and text.count('fill-rule="evenodd"') == 2
    assert text.count(" Z") == 4


def test_bad_multi_loop_files(tmp_path):
    np.savez(tmp_path / "off.npz", points=C.circle(10), contour_offsets=np.array([0, 4, 12]))
    (tmp_path / "nan.txt").write_text("0 0\n1 0\n1 1\n\n5 5\nnan 6\n6 6\n")
    for name in ("off.npz", "nan.txt"):
        with pytest.raises(InputError) as info:
            C.load_contours(tmp_path / name)
        assert "\n" not in str(info.value)
    # a degenerate loop among good ones is dropped, not fatal
    (tmp_path / "deg.txt").write_text("0 0\n1 0\n1 1\n0 1\n\n5 5\n5 5\n")
    shape = C.load_contours(tmp_path / "deg.txt")
    assert len(shape) == 1 and shape.dropped == 1


def test_distances_to_polyline_match_dense_sampling():
    rng = np.random.default_rng(0)
    poly = np.array([[0, 0], [3, 0], [3, 1], [1, 2], [0, 1]], float)
    q = rng.uniform(-1, 4, size=(200, 2))
    t = np.linspace(0, 1, 20001)[:, None]
    dense = np.vstack([a + t * (b - a) for a, b in zip(poly, np.roll(poly, -1, 0))])
    brute = np.sqrt(((q[:, None] - dense[None]) ** 2).sum(-1)).min(1)
    got = C.distances_to_polyline(q, poly)
    assert np.all(got <= brute + 1e-12) and np.abs(got - brute).max() < 1e-4
    assert C.distances_to_polyline(poly, poly).max() == 0.0


def test_crossings_between_loops_and_even_odd_iou():
    c = C.circle(200)
    assert C.count_crossings([c, c * 0.5]) == 0
    assert C.count_crossings([c, c * 0.5 + [0.8, 0]]) == 2  # a hole poking out of the outline
    ring = [c, c * 0.5]
    assert C.shape_iou(ring, ring) == pytest.approx(1.0)
    assert C.shape_iou([c], ring) == pytest.approx(0.75, abs=0.01)  # the disc misses the hole
    m = C.shape_metrics(ring, ring)
    assert m["chamfer"] == pytest.approx(0, abs=1e-7) and m["self_intersections"] == 0
