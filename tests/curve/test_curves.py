"""Tests of sape_geom.curve: loading, tracing, resampling, normalisation, metrics and writers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sape_geom import curve as C
from sape_geom.errors import InputError
from sape_geom.viz.colors import coolwarm
from sape_geom.viz.curves import draw_overlay_png, save_gif


def star_polygon(cx=100.0, cy=100.0, r_out=80.0, r_in=35.0, spikes=5) -> np.ndarray:
    ang = np.pi / 2 + np.arange(2 * spikes) * np.pi / spikes
    r = np.where(np.arange(2 * spikes) % 2 == 0, r_out, r_in)
    return np.stack([cx + r * np.cos(ang), cy - r * np.sin(ang)], axis=1)


def draw_png(path, size, polys, bg=255, fg=0, mode="L"):
    img = Image.new(mode, size, bg)
    d = ImageDraw.Draw(img)
    for poly in polys:
        d.polygon([tuple(p) for p in poly], fill=fg)
    img.save(path)
    return path


def shoelace_abs(p):
    return abs(C.signed_area(p))


# ---------------------------------------------------------------- images


def test_star_png_area_and_frame(tmp_path):
    star = star_polygon()
    path = draw_png(tmp_path / "star.png", (200, 200), [star])
    c = C.load_contour(path)
    assert c.kind == "image" and c.y_down and c.image_size == (200, 200)
    true_area = shoelace_abs(star)
    assert abs(shoelace_abs(c.points) - true_area) / true_area < 0.03
    # pixel coordinates: the top spike of the star is at y ~ 20 (y down)
    assert abs(c.points[:, 1].min() - 20) < 1.5
    assert abs(c.points[:, 0].mean() - 100) < 5
    # normalised frame is y-up: the top spike has the largest y there
    norm = c.normalization()
    q = norm.apply(c.points)
    assert q[np.argmin(c.points[:, 1]), 1] == pytest.approx(q[:, 1].max())
    assert np.sqrt((q**2).sum(1)).max() == pytest.approx(1.0)
    np.testing.assert_allclose(norm.invert(q), c.points, atol=1e-9)
    r = C.resample_closed(q, 300)
    assert C.signed_area(r) > 0  # counter-clockwise in the y-up frame


def test_square_png_area(tmp_path):
    path = tmp_path / "sq.png"
    a = np.full((64, 64), 255, np.uint8)
    a[10:40, 20:50] = 0
    Image.fromarray(a).save(path)
    c = C.load_contour(path)
    # 30x30 pixels, contour at the 0.5 level with cut corners: 30*30 - 4 * 0.125
    assert shoelace_abs(c.points) == pytest.approx(900 - 0.5)
    assert c.points[:, 0].min() == pytest.approx(19.5) and c.points[:, 0].max() == pytest.approx(49.5)
    assert c.points[:, 1].min() == pytest.approx(9.5) and c.points[:, 1].max() == pytest.approx(39.5)


def test_largest_contour_is_chosen(tmp_path):
    small = np.array([[10, 10], [40, 10], [40, 40], [10, 40]], float)  # found first in raster order
    big = star_polygon(150, 150, 90, 45)
    path = draw_png(tmp_path / "two.png", (260, 260), [small, big])
    c = C.load_contour(path)
    assert shoelace_abs(c.points) > 5 * 900
    assert c.points[:, 0].min() > 50


def test_holes_are_ignored(tmp_path):
    a = np.full((80, 80), 255, np.uint8)
    a[10:70, 10:70] = 0
    a[30:50, 30:50] = 255  # a hole
    p = tmp_path / "ring.png"
    Image.fromarray(a).save(p)
    c = C.load_contour(p)
    assert shoelace_abs(c.points) == pytest.approx(3600 - 0.5)


def test_light_on_dark_and_gif_and_rgba(tmp_path):
    star = star_polygon()
    ref = C.load_contour(draw_png(tmp_path / "dark.png", (200, 200), [star]))
    inv = C.load_contour(draw_png(tmp_path / "light.gif", (200, 200), [star], bg=0, fg=255))
    assert shoelace_abs(inv.points) == pytest.approx(shoelace_abs(ref.points), rel=0.01)
    grey = C.load_contour(draw_png(tmp_path / "grey.png", (200, 200), [star], bg=10, fg=180))
    assert shoelace_abs(grey.points) == pytest.approx(shoelace_abs(ref.points), rel=0.01)
    # RGBA with a transparent background and a light shape
    img = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(img).polygon([tuple(p) for p in star], fill=(250, 250, 250, 255))
    img.save(tmp_path / "alpha.png")
    al = C.load_contour(tmp_path / "alpha.png")
    assert shoelace_abs(al.points) == pytest.approx(shoelace_abs(ref.points), rel=0.01)
    jpg = draw_png(tmp_path / "star.jpg", (200, 200), [star], mode="RGB", bg=(255, 255, 255), fg=(0, 0, 0))
    assert shoelace_abs(C.load_contour(jpg).points) == pytest.approx(shoelace_abs(ref.points), rel=0.03)


def test_trace_mask_closed_loops_random():
    rng = np.random.default_rng(0)
    m = rng.random((40, 50)) < 0.45
    loops = C.trace_mask(m)
    # each loop's vertices are 0.5 apart in one coordinate or diagonal half-steps: all steps <= 0.75
    for loop in loops:
        steps = np.linalg.norm(np.roll(loop, -1, 0) - loop, axis=1)
        assert np.all(np.isclose(steps, 1.0) | np.isclose(steps, math.sqrt(0.5)))
    # sum of signed areas = (pixel count) - (corner cuts); outer positive, holes negative
    total = sum(C.signed_area(loop) for loop in loops)
    assert abs(total - m.sum()) < 0.25 * m.sum()


def test_real_silhouettes_if_present():
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[3] / "shared" / "assets" / "sape-official" / "silhouettes")
    if not os.path.isdir(root):
        pytest.skip("reference silhouettes not available")
    for name in ("bat-5.gif", "bird-17.gif", "tree-9.gif", "denver.png"):
        c = C.load_contour(os.path.join(root, name))
        assert len(c.points) > 500


# ---------------------------------------------------------------- polylines


def test_polyline_loaders(tmp_path):
    sq = np.array([[0, 0], [2, 0], [2, 1], [0, 1]], float)
    np.savez(tmp_path / "a.npz", points=sq)
    np.savez(tmp_path / "b.npz", other=sq)
    np.save(tmp_path / "c.npy", sq)
    (tmp_path / "d.txt").write_text("# square\nx y\n0 0\n2 0\n2 1\n0 1\n0 0\n")
    (tmp_path / "e.csv").write_text("0,0\n2,0\n2,1\n0,1\n")
    (tmp_path / "f.obj").write_text("v 0 0 0\nv 2 0 0\nv 2 1 0\nv 0 1 0\nl 1 2 3 4 1\n")
    (tmp_path / "g.obj").write_text("v 0 0 0\nv 2 1 0\nv 2 0 0\nv 0 1 0\nl 1 3\nl 3 2\nl 2 4\nl 4 1\n")
    (tmp_path / "h.obj").write_text("v 0 0 0\nv 2 0 0\nv 2 1 0\nv 0 1 0\n")
    for name in ("a.npz", "b.npz", "c.npy", "d.txt", "e.csv", "f.obj", "g.obj", "h.obj"):
        c = C.load_contour(tmp_path / name)
        assert c.points.shape == (4, 2), name
        assert shoelace_abs(c.points) == pytest.approx(2.0), name
        assert not c.y_down


def test_svg_loaders(tmp_path):
    ns = 'xmlns="http://www.w3.org/2000/svg"'
    (tmp_path / "p.svg").write_text(f'<svg {ns}><path d="M0 0 L 20 0 l0 10 H0 z"/></svg>')
    (tmp_path / "r.svg").write_text(f'<svg {ns}><path d="m 0,0 h20 v10 h-20 Z"/></svg>')
    (tmp_path / "poly.svg").write_text(f'<svg {ns}><polygon points="0,0 20,0 20,10 0,10"/></svg>')
    for name in ("p.svg", "r.svg", "poly.svg"):
        c = C.load_contour(tmp_path / name)
        assert shoelace_abs(c.points) == pytest.approx(200.0), name
        assert c.y_down
    # a circle made of two arcs, and a cubic
    (tmp_path / "arc.svg").write_text(f'<svg {ns}><path d="M 10 0 A 10 10 0 0 1 -10 0 A10 10 0 0110 0Z"/></svg>')
    c = C.load_contour(tmp_path / "arc.svg")
    assert shoelace_abs(c.points) == pytest.approx(math.pi * 100, rel=0.02)
    assert np.allclose(np.linalg.norm(c.points, axis=1), 10.0)
    (tmp_path / "cub.svg").write_text(f'<svg {ns}><path d="M0 0 C 0 -10 20 -10 20 0 S 0 10 0 0z"/></svg>')
    assert len(C.load_contour(tmp_path / "cub.svg").points) > 20


# ---------------------------------------------------------------- resampling / normalisation


def test_resample_equal_spacing_orientation_and_start():
    sq = np.array([[0, 0], [0, 1], [3, 1], [3, 0]], float)  # clockwise
    r = C.resample_closed(sq, 80)
    steps = np.linalg.norm(np.roll(r, -1, 0) - r, axis=1)
    # corners cut the chord slightly; away from corners the spacing equals length/n
    assert np.median(steps) == pytest.approx(8.0 / 80)
    assert steps.max() <= 8.0 / 80 + 1e-12
    assert C.signed_area(r) > 0
    assert r[0, 0] == pytest.approx(3.0)  # starts on the largest-x side
    # deterministic start whatever the input's starting vertex
    r2 = C.resample_closed(np.roll(sq, 2, axis=0), 80)
    np.testing.assert_allclose(r, r2)


def test_circle_matches_resampled_circle():
    c = C.circle(100)
    assert C.signed_area(c) > 0
    dense = C.circle(5000)
    r = C.resample_closed(dense[::-1], 100)  # even given clockwise
    assert C.signed_area(r) > 0
    # same direction and start (the default circle's step is 2 pi / 101 with a double gap at angle 0)
    ang_r = np.unwrap(np.arctan2(r[:, 1], r[:, 0]))
    ang_c = np.unwrap(np.arctan2(c[:, 1], c[:, 0]))
    assert np.all(np.diff(ang_r) > 0) and np.all(np.diff(ang_c) > 0)
    assert abs(ang_r[0] - ang_c[0]) < 2 * np.pi / 100
    tau = C.curve_parameter(100)
    assert tau.min() > -1 and tau.max() < 1


def test_normalization_roundtrip():
    p = np.array([[10, 20], [30, 20], [30, 60], [10, 50]], float)
    n = C.CurveNormalization.fit(p, flip_y=True)
    q = n.apply(p)
    lo, hi = q.min(0), q.max(0)
    np.testing.assert_allclose((lo + hi) / 2, 0, atol=1e-12)
    assert np.linalg.norm(q, axis=1).max() == pytest.approx(1.0)
    n2 = C.CurveNormalization.from_dict(n.to_dict())
    assert n2 == n
    np.testing.assert_allclose(n2.invert(q), p)
    with pytest.raises(InputError):
        C.CurveNormalization.from_dict({"center": [0, 0], "scale": 0})


# ---------------------------------------------------------------- metrics


def test_metrics_identical_and_shifted():
    c = C.resample_closed(star_polygon(0, 0, 1, 0.5), 500)
    m = C.curve_metrics(c, c)
    assert m["chamfer"] == pytest.approx(0, abs=1e-7)
    assert m["hausdorff"] == pytest.approx(0, abs=1e-6)
    assert m["iou"] == pytest.approx(1.0)
    assert m["self_intersections"] == 0
    circ = C.circle(400)
    big = C.circle(400) * 1.1
    m2 = C.curve_metrics(big, circ)
    assert m2["chamfer"] == pytest.approx(0.1, abs=1e-3)
    assert m2["hausdorff"] == pytest.approx(0.1, abs=1e-3)
    assert m2["iou"] == pytest.approx(1 / 1.21, abs=0.01)


def test_self_intersections():
    t = np.linspace(0, 2 * np.pi, 201, endpoint=False) + 0.01
    eight = np.stack([np.sin(t), np.sin(t) * np.cos(t)], axis=1)
    assert C.count_self_intersections(eight) >= 1
    assert C.count_self_intersections(C.circle(500)) == 0
    bowtie = np.array([[0, 0], [1, 1], [1, 0], [0, 1]], float)
    assert C.count_self_intersections(bowtie) == 1


# ---------------------------------------------------------------- writers


def test_writers_roundtrip(tmp_path):
    c = C.resample_closed(star_polygon(), 60)
    C.save_curve_npz(c, tmp_path / "c.npz", levels=np.ones(60))
    C.save_curve_obj(c, tmp_path / "c.obj")
    C.save_curve_svg(c, tmp_path / "c.svg", size=(200, 200), target=c)
    for name in ("c.npz", "c.obj"):
        back = C.load_contour(tmp_path / name).points
        np.testing.assert_allclose(back, c, atol=1e-6)
    svg_back = C.load_contour(tmp_path / "c.svg").points
    assert shoelace_abs(svg_back) == pytest.approx(shoelace_abs(c), rel=1e-4)
    lv = np.linspace(0, 1, 60)
    draw_overlay_png(c, c * 0.9 + 10, tmp_path / "o.png", levels=lv, size=128, y_up=False)
    img = np.asarray(Image.open(tmp_path / "o.png").convert("RGB"))
    assert img.shape == (128, 128, 3)
    assert (img[..., 2] > img[..., 0] + 60).any() and (img[..., 0] > img[..., 2] + 60).any()  # blue and red
    save_gif([c, c * 0.95, c * 0.9], c, tmp_path / "a.gif", size=64)
    with Image.open(tmp_path / "a.gif") as g:
        assert g.n_frames == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_coolwarm_endpoints():
    cols = coolwarm([0.0, 1.0])
    assert cols[0, 2] > cols[0, 0] and cols[1, 0] > cols[1, 2]


# ---------------------------------------------------------------- bad inputs


def test_bad_inputs(tmp_path):
    Image.new("L", (32, 32), 255).save(tmp_path / "white.png")
    Image.new("L", (32, 32), 0).save(tmp_path / "black.png")
    Image.new("RGB", (32, 32), (0, 0, 0)).save(tmp_path / "black.jpg")
    (tmp_path / "garbage.png").write_bytes(b"not an image at all")
    np.savez(tmp_path / "two.npz", points=np.array([[0, 0], [1, 1]], float))
    np.savez(tmp_path / "nan.npz", points=np.array([[0, 0], [1, np.nan], [1, 0]], float))
    np.savez(tmp_path / "inf.npz", points=np.array([[0, 0], [1, np.inf], [1, 0]], float))
    np.savez(tmp_path / "same.npz", points=np.array([[1, 1], [1, 1], [1, 1], [1, 1]], float))
    (tmp_path / "two.txt").write_text("0 0\n1 1\n")
    (tmp_path / "words.txt").write_text("0 0\n1 one\n2 2\n")
    (tmp_path / "nan.txt").write_text("0 0\nnan 1\n2 2\n")
    (tmp_path / "shape.stl").write_text("solid x\nendsolid x\n")
    (tmp_path / "empty.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    (tmp_path / "broken.svg").write_text("<svg><path d=")
    (tmp_path / "none.obj").write_text("# nothing\n")
    (tmp_path / "bad.obj").write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nl 1 2 9\n")
    names = [
        "white.png",
        "black.png",
        "black.jpg",
        "garbage.png",
        "two.npz",
        "nan.npz",
        "inf.npz",
        "same.npz",
        "two.txt",
        "words.txt",
        "nan.txt",
        "shape.stl",
        "empty.svg",
        "broken.svg",
        "none.obj",
        "bad.obj",
        "missing.png",
    ]
    for name in names:
        with pytest.raises(InputError) as info:
            C.load_contour(tmp_path / name)
        msg = str(info.value)
        assert msg and "\n" not in msg, name
    with pytest.raises(InputError):
        C.resample_closed(np.array([[0, 0], [1, 0]], float), 10)
    with pytest.raises(InputError):
        C.curve_metrics(np.array([[0, 0], [1, np.nan], [1, 1]]), C.circle(10))
