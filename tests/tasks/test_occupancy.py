"""Occupancy fitting end to end on small shapes: quality, coordinates, checkpoints, CLI and batch."""

import dataclasses
import json
import subprocess
import sys
from typing import cast

import numpy as np
import pytest
import trimesh

from sape_geom.app.batch import run_batch
from sape_geom.app.batch.jobs import read_metrics
from sape_geom.app.cli import main
from sape_geom.errors import ConfigError
from sape_geom.mesh.cleanup import count_components
from sape_geom.mesh.extract import extract_surface_dense
from sape_geom.mesh.metrics import mesh_metrics
from sape_geom.mesh.queries import MeshQueries
from sape_geom.mesh.shapes import hemisphere, non_manifold_parts, several_pieces, sphere, torus
from sape_geom.tasks.occupancy import OccupancyFit, fit_occupancy, occupancy_preset
from sape_geom.tasks.occupancy.surface import SHEET_SIDE_CELLS, surface_field

# A small network and a short run: seconds on a CPU. Sigma 10 because a 400-step run opens its blocks
# faster than the field settles; the fast preset's 1000 steps handle sigma 20 (see benchmarks/).
TINY = {
    "steps": 400,
    "points_per_set": 30_000,
    "num_sets": 2,
    "batch_size": 2000,
    "resolution": 64,
    "device": "cpu",
    "sigma": 10.0,
    "field.hidden_width": 128,
    "field.hidden_layers": 3,
}


def tiny_config(**changes):
    config = occupancy_preset("fast", **{**TINY, **changes})
    return dataclasses.replace(config, shell_num_frequencies=None, shell_batch_size=None)  # small for shells too


@pytest.fixture(scope="module")
def sphere_fit():
    return fit_occupancy(sphere(0.8), tiny_config())


def test_fitted_sphere_has_high_iou(sphere_fit):
    surface = sphere_fit.extract(64)
    assert surface.is_watertight
    metrics = mesh_metrics(surface, sphere(0.8), n_points=20_000, iou_points=20_000)
    assert metrics["iou"] > 0.95, metrics
    pieces = sorted((len(piece.faces) for piece in surface.split(only_watertight=False)), reverse=True)
    assert sum(pieces[1:]) < 0.02 * pieces[0], pieces  # at most a few specks beside the sphere


@pytest.mark.parametrize("target", ["sdf", "occupancy"])
def test_sparse_extraction_equals_dense_on_a_fitted_field(sphere_fit, target):
    occupancy = tiny_config(target="occupancy", **{"progress.epsilon": 0.1})  # the method's BCE threshold
    fit = sphere_fit if target == "sdf" else fit_occupancy(sphere(0.8), occupancy)
    # every piece, as dense (plain) marching cubes sees them, not smoothed or snapped
    plain = dataclasses.replace(fit.config, smooth_surface=False, snap_to_input=False, corner_gap=0.0)
    fit = dataclasses.replace(fit, support=None, config=plain)
    sparse, stats = fit.extract_with_stats(64, colors=False)

    # the field itself (distance or logit) with the cube's faces outside, as extraction contours it
    dense = fit.normalization.invert_mesh(extract_surface_dense(surface_field(fit.model, fit.config), 64))
    assert stats.grid.evaluated < 0.7 * 64**3  # the saving grows with resolution (see benchmarks)
    assert len(sparse.vertices) == len(dense.vertices) and len(sparse.faces) == len(dense.faces)
    # Same vertices, up to float noise: the network is evaluated in different batches in the two runs.
    difference = np.abs(np.sort(sparse.vertices, axis=0) - np.sort(dense.vertices, axis=0))
    assert difference.max() < 2e-3 and np.mean(difference < 1e-6) > 0.999


def test_the_surface_is_smoothed_unless_asked_not_to(sphere_fit):
    unsnapped = dataclasses.replace(sphere_fit.config, snap_to_input=False)
    smoothed = dataclasses.replace(sphere_fit, config=unsnapped).extract(64, colors=False)
    raw = dataclasses.replace(sphere_fit, config=dataclasses.replace(unsnapped, smooth_surface=False)).extract(
        64, colors=False
    )
    assert np.array_equal(raw.faces, smoothed.faces) and not np.allclose(raw.vertices, smoothed.vertices)

    def off_radial(mesh) -> float:  # degrees between face normals and the sphere's, by area (as shading sees it)
        centres = mesh.triangles_center / np.linalg.norm(mesh.triangles_center, axis=1, keepdims=True)
        angles = np.degrees(np.arccos(np.clip(np.sum(mesh.face_normals * centres, axis=1), -1, 1)))
        return float(np.average(angles, weights=mesh.area_faces))

    assert off_radial(smoothed) < 0.8 * off_radial(raw)
    assert not occupancy_preset("paper").smooth_surface  # the method as published: marching cubes only


def test_a_solid_is_snapped_onto_the_input_and_a_checkpoint_snaps_the_same(sphere_fit, tmp_path):
    reference = sphere(0.8)
    snapped, stats = sphere_fit.extract_with_stats(64, colors=False)
    plain = dataclasses.replace(sphere_fit, config=dataclasses.replace(sphere_fit.config, snap_to_input=False))
    unsnapped = plain.extract(64, colors=False)
    assert stats.snapped is not None and stats.snapped.snapped > 0.99 * len(snapped.vertices)

    def off_input(mesh):  # distance of each vertex to the input surface
        return np.sqrt(MeshQueries(reference.vertices, reference.faces).squared_distance(mesh.vertices)[0])

    assert np.median(off_input(snapped)) < 1e-6 < np.median(off_input(unsnapped))
    assert snapped.is_watertight and count_components(snapped) == 1
    loaded = OccupancyFit.load(sphere_fit.save(tmp_path / "sphere.pt"))
    again = loaded.extract(64, colors=False)
    assert np.allclose(again.vertices, snapped.vertices, atol=1e-5) and np.array_equal(again.faces, snapped.faces)
    assert not occupancy_preset("paper").snap_to_input  # the method as published: marching cubes only


def test_outputs_are_in_the_input_coordinates():
    base = torus()
    moved = base.copy()
    moved.apply_scale(3.0)
    moved.apply_translation([10.0, -4.0, 2.5])
    fitted = fit_occupancy(moved, tiny_config()).extract(64)
    assert np.allclose(fitted.bounds, moved.bounds, atol=0.1 * 3.0)
    assert mesh_metrics(fitted, moved, n_points=20_000, iou_points=20_000)["iou"] > 0.85


def test_checkpoint_round_trip_gives_the_same_surface(sphere_fit, tmp_path):
    path = sphere_fit.save(tmp_path / "sphere.ckpt")
    loaded = OccupancyFit.load(path, device="cpu")
    a, b = sphere_fit.extract(48), loaded.extract(48)
    assert len(a.vertices) == len(b.vertices)
    np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-6)
    np.testing.assert_array_equal(a.visual.vertex_colors, b.visual.vertex_colors)
    assert loaded.extract(96).vertices.shape[0] > a.vertices.shape[0]  # level of detail without refitting


def test_heatmap_colours_follow_the_sape_levels(sphere_fit):
    coloured = sphere_fit.extract(48, colors=True)
    assert coloured.visual.vertex_colors.shape == (len(coloured.vertices), 4)


def test_every_encoding_can_fit(tmp_path):
    for encoding in ("ff", "none", "siren", "progressive", "pe"):
        fit = fit_occupancy(sphere(0.8), tiny_config(encoding=encoding, steps=20))
        assert fit.model.config.encoding == encoding


def test_time_budget_finishes_the_sape_schedule():
    # epsilon 0: no node freezes (a ball's distance is fitted under 0.005 by the first blocks), so the
    # schedule itself, scaled to the budget, must reach the last block
    fit = fit_occupancy(
        sphere(0.8),
        tiny_config(steps=None, time_budget=4.0, **{"progress.min_block_period": 1, "progress.epsilon": 0.0}),
    )
    controller = fit.model.spatial
    assert fit.stats.seconds >= 3.99  # trains until the budget is spent
    assert int(controller.current_block) == len(controller.block_ends) - 1  # every block was reached


def test_a_short_run_opens_fewer_blocks_than_there_are():
    fit = fit_occupancy(sphere(0.8), tiny_config(steps=100))  # the preset's minimum period: 25 steps
    controller = fit.model.spatial
    assert int(controller.period) == 25
    assert int(controller.current_block) <= 100 // 25 < len(controller.block_ends) - 1


def test_fast_opens_sooner_in_its_default_run_than_in_a_short_one():
    from sape_geom.tasks.occupancy.config import build_model

    fast = occupancy_preset("fast")
    ratios = {steps: build_model(fast, steps).spatial._plateau_ratio for steps in (200, 900, fast.steps)}
    assert ratios == {200: 0.8, 900: 0.8, 1000: 0.7}  # docs/method.md §5.5, long runs


def test_presets_and_overrides():
    paper = occupancy_preset("paper")
    assert (paper.points_per_set, paper.steps, paper.batch_size, paper.lr) == (1_000_000, 100_000, 5000, 1e-4)
    assert (paper.progress.epsilon, paper.progress.grid_resolution, paper.progress.block_period) == (0.1, 64, 200)
    assert (paper.field.hidden_layers, paper.field.sigma) == (4, 20.0)
    assert (paper.target, paper.open_input, paper.remove_unsupported, paper.smooth_surface) == (
        "occupancy",
        "solid",
        False,
        False,
    )
    quality = occupancy_preset("quality")
    assert (quality.points_per_set, quality.steps, quality.progress.block_period) == (1_000_000, 100_000, 200)
    assert (quality.target, quality.open_input, quality.remove_unsupported, quality.smooth_surface) == (
        "sdf",
        "auto",
        True,
        True,
    )
    with pytest.raises(ConfigError, match="preset"):
        occupancy_preset("turbo")
    with pytest.raises(ConfigError, match="unknown option"):
        occupancy_preset("fast", sigmaa=3)


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "content, suffix, message",
    [
        (None, ".obj", "not found"),
        ("garbage that is no mesh", ".ply", ""),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\n", ".obj", "face"),
        ("v 0 0 0\nv 1 0 0\nv nan 1 0\nf 1 2 3\n", ".obj", ""),
        ("hello", ".xyz", ""),
    ],
)
def test_cli_bad_input_gives_one_error_line(tmp_path, capsys, content, suffix, message):
    path = tmp_path / f"bad{suffix}"
    if content is not None:
        _write(path, content)
    code = main(["fit", str(path), "-o", str(tmp_path / "out.ply"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("sape-geom fit: error:") and message in err[0]
    assert not (tmp_path / "out.ply").exists()


def test_cli_fit_json_and_extract(tmp_path):
    mesh_path = tmp_path / "ball.stl"
    sphere(0.5).apply_translation([1, 2, 3]).export(mesh_path)
    ckpt = tmp_path / "ball.ckpt"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sape_geom",
            "fit",
            str(mesh_path),
            "-o",
            str(tmp_path / "ball.ply"),
            "--steps",
            "300",
            "--resolution",
            "48",
            "--device",
            "cpu",
            "--json",
            "--checkpoint",
            str(ckpt),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    payload = json.loads(result.stdout)
    assert payload["metrics"]["iou"] > 0.9 and payload["watertight"]
    out = trimesh.load(tmp_path / "ball.ply")
    assert np.allclose(out.bounds.mean(axis=0), [1, 2, 3], atol=0.05)
    assert main(["extract", str(ckpt), "-o", str(tmp_path / "ball96.obj"), "--resolution", "96"]) == 0
    assert len(trimesh.load(tmp_path / "ball96.obj").faces) > len(out.faces)
    assert main(["extract", str(ckpt), "-o", str(tmp_path / "raw.ply"), "--resolution", "48", "--no-smooth"]) == 0
    raw = trimesh.load(tmp_path / "raw.ply")
    assert len(raw.faces) == len(out.faces) and not np.allclose(raw.vertices, out.vertices)


def test_batch_resume_and_failure_isolation(tmp_path):
    folder = tmp_path / "meshes"
    folder.mkdir()
    sphere(0.5).export(folder / "ball.ply")
    torus().export(folder / "ring.obj")
    (folder / "broken.stl").write_text("solid nothing\nendsolid nothing\n")
    out = tmp_path / "out"
    overrides = {k: v for k, v in TINY.items()}
    rows = run_batch(folder, out, "fast", workers=2, overrides={**overrides, "steps": 60}, progress=False)
    assert rows["ball"]["status"] == "ok" and rows["ring"]["status"] == "ok"
    assert rows["broken"]["status"] == "failed" and rows["broken"]["error"]
    assert (out / "ball.ply").is_file() and (out / "ring.ckpt").is_file()
    first = read_metrics(out / "metrics.csv")
    assert set(first) == {"ball", "ring", "broken"}
    assert float(first["ball"]["iou"]) > 0.5
    stamp = (out / "ball.ply").stat().st_mtime_ns
    again = run_batch(folder, out, "fast", workers=1, overrides={**overrides, "steps": 60}, progress=False)
    assert (out / "ball.ply").stat().st_mtime_ns == stamp  # finished meshes are skipped
    assert again["broken"]["status"] == "failed"


def test_clean_up_keeps_a_real_small_part_and_reports_removals():
    three = several_pieces()  # two spheres and a small cube
    fit = fit_occupancy(three, tiny_config())
    surface, stats = fit.extract_with_stats(96, colors=False)
    assert count_components(surface) == 3, stats
    assert stats.pieces_removed >= 0
    kept_all = fit_occupancy(three, tiny_config(remove_unsupported=False)).extract(96, colors=False)
    assert count_components(kept_all) >= count_components(surface)


def test_overlapping_parts_give_one_solid_without_bubbles():
    """A rod pushed through a ball (a kitbashed model): the rod's buried faces must not leave a zero of
    the distance inside the ball, where the surface would get a bubble."""
    ball = sphere(0.6)
    rod = trimesh.creation.cylinder(radius=0.12, height=1.8, sections=32)
    model = trimesh.util.concatenate([ball, rod])
    fit = fit_occupancy(model, tiny_config())
    assert "buried" in fit.reading["reason"], fit.reading
    surface = fit.extract(96, colors=False)
    assert count_components(surface) == 1
    assert mesh_metrics(surface, model, n_points=10_000, iou_points=10_000)["iou"] > 0.9


def test_welded_non_manifold_parts_give_a_closed_solid_on_them():
    """Boxes welded along an edge of four faces and across overlapping faces: read as a solid by winding
    number, extracted closed and manifold, and snapped onto the parts' outer surface."""
    parts = non_manifold_parts()
    _, counts = np.unique(np.sort(parts.edges, axis=1), axis=0, return_counts=True)
    assert counts.max() == 4  # the input is non-manifold
    fit = fit_occupancy(parts, tiny_config())
    assert fit.reading["mode"] == "solid"
    surface = fit.extract(96, colors=False)
    assert surface.is_watertight and surface.is_winding_consistent
    metrics = mesh_metrics(surface, parts, n_points=10_000, iou_points=10_000)
    assert metrics["iou"] > 0.95 and metrics["normal_angle_p50"] < 1.0, metrics


def test_short_run_has_few_pieces():
    # 100 steps: the learning rate is held for the first half (lr_hold), so even so short a run finds the
    # shape, whole (without the hold the field found nothing at all and the surface was empty)
    fit = fit_occupancy(torus(), tiny_config(steps=100, sigma=20.0))
    surface = fit.extract(96, colors=False)
    assert count_components(surface) <= 2
    assert mesh_metrics(surface, torus(), n_points=10_000, iou_points=10_000)["iou"] > 0.85


def test_open_hemisphere_is_read_as_a_closed_thin_shell():
    shell = hemisphere(4)
    fit = fit_occupancy(shell, tiny_config(steps=600))
    assert fit.reading["mode"] == "shell" and "holes" in fit.reading["reason"]
    for resolution in (64, 128):  # at 64 the sheet is thinner than a cell: it is extracted thicker, whole
        assert count_components(fit.extract(resolution, colors=False)) == 1, resolution
    surface = fit.extract(128, colors=False)
    assert surface.is_watertight
    sheet = fit.extract(256, colors=False)  # the sheet as read (thicker than a cell): no pinholes through it
    assert len(sheet.vertices) - len(sheet.edges_unique) + len(sheet.faces) == 2  # Euler: a sphere's
    # Snapped: both sides at the sheet's offset from the input (half a cell: the asked thickness is thinner).
    cell = 2.0 / 255
    offset = max(cast(float, fit.sheet_offset), SHEET_SIDE_CELLS * cell)
    queries = MeshQueries(fit.normalization.apply(shell.vertices), shell.faces)
    distance = np.sqrt(queries.squared_distance(fit.normalization.apply(sheet.vertices))[0])
    assert np.percentile(np.abs(distance - offset), 99) < 0.05 * cell
    metrics = mesh_metrics(surface, shell, n_points=20_000, iou_points=2_000)
    assert metrics["completeness"] < 0.01  # every part of the open sheet is covered
    assert surface.volume < 0.05 * shell.area  # thin: a sheet of a few percent of its size, not a solid cap
    solid = fit_occupancy(shell, tiny_config(steps=60, open_input="solid"))
    assert solid.reading["mode"] == "solid"


def test_a_sphere_missing_a_cap_is_a_solid_though_its_hole_is_large():
    """An open neck or a missing cap: the hole is over the hole-area limit, but the winding number tells
    inside from outside across nearly all of the surface, so the fit is a solid (closed over the hole)."""
    ball = sphere(0.8, 4)
    capless = trimesh.Trimesh(ball.vertices, ball.faces[ball.triangles_center[:, 2] < 0.9 * 0.8])
    fit = fit_occupancy(capless, tiny_config(steps=200))
    assert fit.reading["mode"] == "solid" and fit.reading["hole_area"] > 0.05, fit.reading
    assert fit.reading["winding_confidence"] > 0.9 and "winding number" in fit.reading["reason"]
    assert "holes closed" in fit.reading["reason"]  # distances to the closed surface: no jump over the hole
    surface = fit.extract(64, colors=False)
    assert count_components(surface) == 1
    assert mesh_metrics(surface, ball, n_points=5_000, iou_points=10_000)["iou"] > 0.9  # the ball, filled


def test_a_shell_gets_its_own_frequencies_and_batch_and_its_checkpoint_rebuilds_them(tmp_path):
    config = dataclasses.replace(tiny_config(steps=20, encoding="ff"), shell_num_frequencies=96, shell_batch_size=1000)
    fit = fit_occupancy(hemisphere(3), config)
    assert fit.reading["mode"] == "shell"
    assert fit.config.field == dataclasses.replace(config.field, num_frequencies=96)  # the encoding kept
    assert fit.config.field.encoding == "ff" and fit.config.batch_size == 1000
    loaded = OccupancyFit.load(fit.save(tmp_path / "shell.ckpt"), device="cpu")
    assert loaded.config.field.num_frequencies == 96
    points = np.random.default_rng(0).uniform(-1, 1, (500, 3))
    np.testing.assert_allclose(loaded.field(points), fit.field(points), atol=1e-6)
    solid = fit_occupancy(sphere(0.8), config)  # a closed input keeps the main field
    assert solid.config.field == config.field and solid.config.batch_size == config.batch_size


def test_a_fit_that_found_no_surface_writes_nothing_and_says_so(tmp_path, capsys):
    mesh_path = tmp_path / "ball.ply"
    sphere(0.5).export(mesh_path)
    out = tmp_path / "ball_sape.ply"
    code = main(
        [
            "fit",
            str(mesh_path),
            "-o",
            str(out),
            "--steps",
            "3",
            "--resolution",
            "32",
            "--device",
            "cpu",
            "--quiet",
            "--checkpoint",
            str(tmp_path / "ball.ckpt"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not out.exists() and not (tmp_path / "ball.ckpt").exists()
    assert err[-1].startswith("sape-geom fit: error: the fitted field has no surface after 3 training steps at 32^3"), (
        err
    )
    assert "train longer" in err[-1]


def _suzanne(levels: int) -> trimesh.Trimesh:
    """Blender's Suzanne with its separate eyes (open at the back), Catmull-Clark subdivided ``levels``
    times through a temporary object that is removed again."""
    bpy = pytest.importorskip("bpy")
    import bmesh

    data = bpy.data.meshes.new("suzanne_test")
    bm = bmesh.new()
    bmesh.ops.create_monkey(bm)
    bm.to_mesh(data)
    bm.free()
    obj = bpy.data.objects.new("suzanne_test", data)
    bpy.context.scene.collection.objects.link(obj)
    try:
        modifier = obj.modifiers.new("subdivide", "SUBSURF")
        modifier.levels = levels
        evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
        evaluated.calc_loop_triangles()
        vertices = np.array([v.co[:] for v in evaluated.vertices])
        faces = np.array([t.vertices[:] for t in evaluated.loop_triangles])
    finally:
        bpy.data.objects.remove(obj)
        bpy.data.meshes.remove(data)
    return trimesh.Trimesh(vertices, faces, process=False)


@pytest.mark.blender
@pytest.mark.parametrize("levels", [0, 1, 2])
def test_suzanne_with_its_eyes_is_read_as_a_solid(levels):
    from sape_geom.mesh.io import normalization_for
    from sape_geom.tasks.occupancy.fit import read_input

    monkey = _suzanne(levels)
    head = max(monkey.split(only_watertight=False), key=lambda piece: len(piece.faces))
    for mesh in (monkey, head):  # eyes or no eyes: only the head's own small holes count
        reading = read_input(normalization_for(mesh).apply(mesh.vertices), mesh.faces, occupancy_preset("fast"))
        assert reading["mode"] == "solid" and reading["hole_area"] < 0.03, reading
