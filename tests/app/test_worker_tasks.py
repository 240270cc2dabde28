"""The worker's typed settings and its task outputs, run in this process (no subprocess)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_worker import TINY_DEFORM, TINY_FIT, flower  # pytest puts this folder on sys.path

from sape_geom.app.worker import (
    DeformSettings,
    ExtractSettings,
    FitSurfaceSettings,
    JobError,
    TaskContext,
    parse_settings,
)
from sape_geom.app.worker.curve_tasks import task_deform
from sape_geom.app.worker.surface_tasks import task_fit_surface
from sape_geom.errors import ConfigError


def test_settings_are_typed_with_the_documented_defaults():
    s = parse_settings(FitSurfaceSettings, "fit_surface", {"preview_every_s": 0, "resolution": None})
    assert s == FitSurfaceSettings(preview_every_s=0.0)
    assert isinstance(s.preview_every_s, float)
    assert (s.preset, s.colors, s.keep_largest, s.preview_resolution) == ("fast", True, False, 48)
    assert parse_settings(DeformSettings, "deform", {"steps": 7}).deform_config().steps == 7


@pytest.mark.parametrize(
    "cls, task, settings, message",
    [
        (
            FitSurfaceSettings,
            "fit_surface",
            {"resolutoin": 64},
            "unknown setting(s) for the fit_surface task: resolutoin; known: preset, overrides",
        ),
        (
            FitSurfaceSettings,
            "fit_surface",
            {"colors": "yes"},
            "settings.colors of the fit_surface task must be true or false, got 'yes'",
        ),
        (
            FitSurfaceSettings,
            "fit_surface",
            {"resolution": 64.5},
            "settings.resolution of the fit_surface task must be an integer or null, got 64.5",
        ),
        (
            FitSurfaceSettings,
            "fit_surface",
            {"overrides": [1, 2]},
            "settings.overrides of the fit_surface task must be a JSON object, got [1, 2]",
        ),
        (DeformSettings, "deform", {"steps": True}, "settings.steps of the deform task must be an integer or null"),
        (ExtractSettings, "extract", {"resolution": 32}, "the extract task needs settings.checkpoint"),
        (ExtractSettings, "extract", {"checkpoint": ""}, "must name a file written by fit_surface"),
    ],
)
def test_bad_settings_are_one_line_errors(cls, task, settings, message):
    with pytest.raises(JobError) as info:
        parse_settings(cls, task, settings)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_config_changes_reach_the_library_config():
    s = parse_settings(
        FitSurfaceSettings, "fit_surface", {"overrides": {"steps": 10}, "config": {"progress.epsilon": 0.5}}
    )
    config = s.occupancy_config()
    assert (config.steps, config.progress.epsilon) == (10, 0.5)
    with pytest.raises(ConfigError, match="unknown option"):
        FitSurfaceSettings(config={"train.batch_size": 2000}).occupancy_config()
    deform = DeformSettings(config={"steps": 5, "field.sigma": 3.0}, steps=9).deform_config()
    assert (deform.steps, deform.field.sigma) == (9, 3.0)  # the shortcut wins


def context(tmp_path: Path, settings: dict, arrays: dict | None = None) -> tuple[TaskContext, list]:
    inputs = None
    if arrays is not None:
        inputs = tmp_path / "inputs.npz"
        np.savez(inputs, **arrays)
    events: list = []
    out = tmp_path / "out"
    out.mkdir()
    return TaskContext(settings, inputs, out, lambda event, **f: events.append((event, f)), lambda: False), events


def test_deform_writes_curves_atomically(tmp_path, monkeypatch):
    settings = {"steps": 5, "config": TINY_DEFORM}
    ctx, events = context(tmp_path, settings, {"target_points": flower()})
    result = task_deform(ctx)
    assert Path(result["curves"]) == ctx.output_dir / "curves.npz"
    assert events[-1][0] == "progress" and events[-1][1]["step"] == 5

    def disk_full(handle, **arrays):
        handle.write(b"PK half an archive")
        raise OSError("disk full")

    for path in ctx.output_dir.iterdir():
        path.unlink()
    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="disk full"):
        task_deform(ctx)
    assert list(ctx.output_dir.iterdir()) == []  # nothing under the final name, no temporary file left


def test_fit_surface_streams_previews_and_removes_them(tmp_path):
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.8)
    settings = {**TINY_FIT, "preview_every_s": 0.02, "preview_resolution": 16}  # seconds: any machine previews
    ctx, events = context(tmp_path, settings, {"vertices": sphere.vertices + 5.0, "faces": sphere.faces})
    previews = []

    def emit(event, **fields):
        events.append((event, fields))
        if event == "preview":  # read it when announced, as the add-on does
            with np.load(fields["path"]) as data:
                previews.append((np.abs(data["vertices"] - 5.0).max(), data["faces"].shape, data["colors"].shape))

    result = task_fit_surface(TaskContext(ctx.settings, ctx.inputs, ctx.output_dir, emit, ctx.is_cancelled))
    assert previews, "no preview was written"
    for offset, faces, colors in previews:
        # in the input's frame: inside the extraction cube around the sphere (half-width 0.8 / 0.95)
        assert 0.2 < offset <= 0.8 / 0.95 + 1e-3 and faces[0] > 0 and colors == (0, 4)
    assert sorted(p.name for p in ctx.output_dir.iterdir()) == ["checkpoint.pt", "mesh.npz"]  # previews removed
    assert set(result["metrics"]) >= {"steps", "final_loss", "vertices", "faces", "fit_s"}


def test_deform_towards_an_image_or_polyline_file_works_in_its_normalised_frame(tmp_path):
    polyline = tmp_path / "flower.txt"
    np.savetxt(polyline, flower() * 40.0 + 300.0)  # some pixel-like frame
    ctx, _ = context(tmp_path, {"steps": 5, "config": TINY_DEFORM, "target_image": str(polyline)})
    with np.load(task_deform(ctx)["curves"]) as data:
        target, curve = data["target"], data["curve"]
    centre = (target.min(axis=0) + target.max(axis=0)) / 2
    assert np.allclose(centre, 0.0, atol=1e-5)  # centred, farthest point at 1 (y up)
    assert np.isclose(np.linalg.norm(target - centre, axis=1).max(), 1.0, atol=1e-5)
    assert np.abs(curve).max() < 3.0  # the curve lives in the same frame, not in pixels


def test_deform_several_loops_gives_one_curve_per_loop_and_keeps_the_old_keys(tmp_path):
    outer, hole = flower(), flower()[::-1] * 0.4
    offsets = np.array([0, len(outer), len(outer) + len(hole)])
    ctx, _ = context(
        tmp_path,
        {"steps": 5, "config": TINY_DEFORM},
        {"target_points": np.vstack([outer, hole]), "target_offsets": offsets},
    )
    result = task_deform(ctx)
    assert result["contours"] == 2 and result["metrics"]["holes"] == 1
    with np.load(result["curves"]) as data:
        o = data["contour_offsets"]
        assert len(o) == 3 and list(data["contour_holes"]) == [False, True]
        assert data["contour_points"].shape == (o[-1], 2)
        assert data["contour_snapshots"].shape[1:] == (o[-1], 2)
        np.testing.assert_allclose(data["curve"], data["contour_points"][: o[1]])  # old keys: the outline
        np.testing.assert_allclose(data["target"], outer, atol=1e-6)
    (tmp_path / "bad").mkdir()
    bad, _ = context(
        tmp_path / "bad",
        {"steps": 5, "config": TINY_DEFORM},
        {"target_points": outer, "target_offsets": np.array([0, 2, len(outer)])},
    )
    with pytest.raises(JobError, match="target_offsets"):
        task_deform(bad)
