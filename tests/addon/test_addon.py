"""The Blender add-on, driven in the bpy module (no event loop: tests call the polling function).

Real-worker tests use this interpreter (``sys.executable``), which has sape_geom and torch; the
failure paths use small fake "worker Pythons" written into tmp_path.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from blender_scene import (  # tests/addon/blender_scene.py
    ADDON_PARENT,
    FAKE_PYTHON,
    NAME,
    ROOT,
    TINY_DEFORM,
    add_cube,
    check_result,
    draw_panel,
    drive,
    drive_until,
    fake_worker,
    fit_selected,
    property_labels,
    runner,
    select_only,
    snapshot_scene,
    texts,
    use_python,
)

pytestmark = pytest.mark.blender

bpy = pytest.importorskip("bpy")


def test_fit_selected_with_fake_worker_builds_result_and_keeps_source(addon, tmp_path):
    use_python(fake_worker(tmp_path, FAKE_PYTHON))
    cube = add_cube()
    other = add_cube("Other", location=(-3.0, 0.0, 0.0), subsurf=False)
    select_only(cube, other)
    before = snapshot_scene()
    assert fit_selected() == {"FINISHED"}
    saw_preview = []

    def preview_seen():
        saw_preview.append(any(o.name.endswith("_sape_preview") for o in bpy.data.objects))
        return not runner().RUNNER.busy

    poll = runner().poll
    while (dt := poll()) is not None:
        preview_seen()
        time.sleep(dt)
    assert any(saw_preview), "the live preview never appeared"
    assert not any(o.name.endswith("_sape_preview") for o in bpy.data.objects), "preview left behind"
    after = snapshot_scene()
    for name, entry in before["objects"].items():
        assert after["objects"][name] == entry, f"{name} was changed"
    check_result(cube, bpy.data.objects["Cube_sape"], atol=1e-4)
    check_result(other, bpy.data.objects["Other_sape"], atol=1e-4)
    assert runner().RUNNER.state.done == 2 and runner().RUNNER.state.status == "Done"

    # Re-extract from the kept checkpoint, without refitting: the object keeps its name, gets new data
    result = bpy.data.objects["Cube_sape"]
    old_mesh = result.data.name
    select_only(result)
    bpy.context.scene.sape_geom.resolution = 48
    assert bpy.ops.sape.reextract() == {"FINISHED"}
    drive()
    assert bpy.data.objects["Cube_sape"].get("sape_resolution") == 48
    assert old_mesh not in bpy.data.meshes or bpy.data.objects["Cube_sape"].data.name == old_mesh
    assert len(result.data.polygons) > 0


def test_fit_selected_real_worker(addon):
    """A real (tiny, so rough) fit: the pipeline, the frame and the heat-map, not quality."""
    from sape_geom_blender import convert

    cube = add_cube()
    select_only(cube)
    s = bpy.context.scene.sape_geom
    s.budget, s.steps, s.resolution, s.device = "STEPS", 200, 24, "cpu"
    s.extra_settings = json.dumps({"preview_every_s": 0, "config": TINY_FIT_CONFIG})
    before = snapshot_scene()
    assert fit_selected() == {"FINISHED"}
    drive()
    messages = runner().RUNNER.state.messages
    assert "Cube_sape" in bpy.data.objects, messages
    result = bpy.data.objects["Cube_sape"]
    assert result.users_collection[0].name == "SAPE Results"
    assert len(result.data.vertices) > 0 and "sape_level" in result.data.color_attributes
    assert np.allclose(np.array(result.matrix_world), np.array(cube.matrix_world))
    # the extraction grid covers the source's bounding sphere (normalised radius 0.95 -> 1), so a
    # result outside it means a frame mix-up (local vs world, transform applied twice)
    vertices, _ = convert.mesh_world_arrays(cube, bpy.context.evaluated_depsgraph_get())
    center = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    radius = np.linalg.norm(vertices - center, axis=1).max() / 0.95
    lo, hi = convert.mesh_world_bounds(result)
    assert np.all(lo >= center - radius * 1.05) and np.all(hi <= center + radius * 1.05)
    assert os.path.isfile(result["sape_checkpoint"])
    for name, entry in before["objects"].items():
        assert snapshot_scene()["objects"][name] == entry


TINY_FIT_CONFIG = {
    "points_per_set": 5000,
    "num_sets": 1,
    "batch_size": 500,
    "field.num_frequencies": 64,
    "field.hidden_width": 64,
    "field.hidden_layers": 2,
    "progress.grid_resolution": 8,
    "progress.num_blocks": 4,
    "field.sigma": 5.0,  # at the preset's 20 this small field finds no more than a fragment in 200 steps
}


def test_deform_curve_real_worker_with_shape_keys(addon):
    bpy.ops.curve.primitive_bezier_circle_add(radius=2.0, location=(1.0, 1.0, 0.5))
    target = bpy.context.active_object
    s = bpy.context.scene.sape_geom
    s.target_kind, s.target_object, s.source_kind = "OBJECT", target, "CIRCLE"
    s.deform_steps = 10
    s.animate, s.animation_mode, s.frame_start, s.frame_end = True, "SHAPE_KEYS", 1, 20
    s.deform_extra_settings = json.dumps({"config": TINY_DEFORM})
    before = snapshot_scene()
    assert bpy.ops.sape.deform_curve() == {"FINISHED"}
    drive()
    result = bpy.data.objects.get(f"{target.name}_sape")
    assert result is not None, runner().RUNNER.state.messages
    assert result.type == "CURVE" and len(result.data.splines[0].points) == 48
    keys = result.data.shape_keys.key_blocks
    assert len(keys) >= 3 and keys[0].name == "Basis"
    co = np.empty(48 * 4, np.float32)
    result.data.splines[0].points.foreach_get("co", co)
    center = co.reshape(-1, 4)[:, :2].mean(axis=0)
    assert np.allclose(center, [1.0, 1.0], atol=0.6)  # lands on the target, in world space
    assert snapshot_scene()["objects"][target.name] == before["objects"][target.name]


def test_deform_a_curve_with_a_hole_makes_one_spline_per_loop(addon):
    # a target curve object of two splines (an outline and a hole) -> one result object, two splines
    data = bpy.data.curves.new("Ring", "CURVE")
    data.dimensions = "3D"
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    for radius in (2.0, 0.8):
        spline = data.splines.new("POLY")
        spline.points.add(len(t) - 1)
        co = np.stack([radius * np.cos(t), radius * np.sin(t), np.zeros_like(t), np.ones_like(t)], axis=1)
        spline.points.foreach_set("co", co.astype(np.float32).ravel())
        spline.use_cyclic_u = True
    target = bpy.data.objects.new("Ring", data)
    bpy.context.scene.collection.objects.link(target)
    s = bpy.context.scene.sape_geom
    s.target_kind, s.target_object, s.source_kind = "OBJECT", target, "CIRCLE"
    s.deform_steps = 10
    s.animate, s.animation_mode, s.frame_start, s.frame_end = True, "KEYFRAMES", 1, 10
    s.deform_extra_settings = json.dumps({"config": TINY_DEFORM})
    assert bpy.ops.sape.deform_curve() == {"FINISHED"}
    drive()
    result = bpy.data.objects.get("Ring_sape")
    assert result is not None, runner().RUNNER.state.messages
    splines = result.data.splines
    assert len(splines) == 2 and all(sp.use_cyclic_u for sp in splines)
    assert [len(sp.points) for sp in splines] == [48, 48]  # TINY_DEFORM's 48 points (the hole's floor too)

    def hole_at(frame):
        bpy.context.scene.frame_set(frame)
        co = np.empty(48 * 4, np.float32)
        result.data.splines[1].points.foreach_get("co", co)
        return co

    assert not np.allclose(hole_at(1), hole_at(10))  # the hole's spline is animated with the outline


# ------------------------------------------------------------------------------------------ refusals
def test_no_selection_non_mesh_and_empty_mesh_are_refused(addon):
    before = snapshot_scene()
    with pytest.raises(RuntimeError, match="select one or more mesh objects"):
        fit_selected()
    # the popup closes when the mouse moves: the panel's status line keeps the reason
    state = runner().RUNNER.state
    assert (state.status, state.level) == ("select one or more mesh objects to fit", "ERROR")
    bpy.ops.object.empty_add()
    select_only(bpy.context.active_object)
    with pytest.raises(RuntimeError, match="no mesh in the selection"):
        fit_selected()
    empty_mesh = bpy.data.objects.new("Nothing", bpy.data.meshes.new("Nothing"))
    bpy.context.scene.collection.objects.link(empty_mesh)
    select_only(empty_mesh)
    before = snapshot_scene()
    with pytest.raises(RuntimeError, match="'Nothing' has no faces"):
        fit_selected()
    assert "'Nothing' has no faces" in runner().RUNNER.state.status  # the newest refusal replaces the last
    assert snapshot_scene() == before
    assert not runner().RUNNER.busy


def test_missing_worker_python_is_refused(addon):
    use_python("/nonexistent/bin/python")
    cube = add_cube()
    select_only(cube)
    before = snapshot_scene()
    with pytest.raises(RuntimeError, match="worker Python not found"):
        fit_selected()
    assert snapshot_scene() == before


def test_check_operator_reports_torch_or_reason(addon, tmp_path):
    assert bpy.ops.sape.check_worker(wait=True) == {"FINISHED"}
    report = bpy.context.preferences.addons[NAME].preferences.check_report
    assert "torch" in report and "cpu" in report
    with pytest.raises(RuntimeError, match="not found"):
        bpy.ops.sape.check_worker(python=str(tmp_path / "missing-python"), wait=True)
    no_torch = fake_worker(tmp_path, "#!/bin/sh\necho 'No module named sape_geom' >&2\nexit 1\n")
    with pytest.raises(RuntimeError, match="cannot import sape_geom"):
        bpy.ops.sape.check_worker(python=no_torch, wait=True)


# ------------------------------------------------------------------------------------------ failures
@pytest.mark.parametrize(
    "body, expected",
    [
        ("#!/bin/sh\necho 'boom: no such thing' >&2\nexit 1\n", "exited with code 1"),
        (
            '#!/bin/sh\necho \'{"event": "started", "protocol": 1, "task": "fit_surface"}\'\nkill -9 $$\n',
            "killed (SIGKILL)",
        ),
    ],
)
def test_worker_crash_leaves_scene_as_it_was(addon, tmp_path, monkeypatch, body, expected):
    started = []

    class RecordingWorker(runner().WorkerProcess):
        def start(self):
            started.append(self)
            super().start()

    monkeypatch.setattr(runner(), "WorkerProcess", RecordingWorker)
    use_python(fake_worker(tmp_path, body))
    cube = add_cube()
    select_only(cube)
    before = snapshot_scene()
    assert fit_selected() == {"FINISHED"}
    drive()
    level, text = runner().RUNNER.state.messages[-1]
    assert level == "ERROR" and expected in text and "Cube" in text
    assert snapshot_scene() == before  # no result, no preview, no "SAPE Results" collection
    assert len(started) == 1 and started[0].proc.poll() is not None  # reaped: no process left behind


@pytest.mark.parametrize("stubborn", [False, True])
def test_cancel_removes_preview_and_stops_the_process(addon, tmp_path, monkeypatch, stubborn):
    worker_client = importlib.import_module(f"{NAME}.worker_client")
    monkeypatch.setattr(worker_client, "CANCEL_GRACE_S", 0.3)
    monkeypatch.setattr(worker_client, "TERMINATE_GRACE_S", 0.3)
    use_python(fake_worker(tmp_path, FAKE_PYTHON))
    fake = {"hang": True, "ignore_cancel": stubborn, "ignore_term": stubborn}
    bpy.context.scene.sape_geom.extra_settings = json.dumps({"fake": fake})
    cube, second = add_cube(), add_cube("Second", location=(5.0, 0.0, 0.0))
    select_only(cube, second)
    before = snapshot_scene()
    assert fit_selected() == {"FINISHED"}
    drive_until(lambda: any(o.name.endswith("_sape_preview") for o in bpy.data.objects))
    assert not cube.visible_get()  # hidden while its preview shows
    job = runner().RUNNER.current[1]
    assert bpy.ops.sape.cancel() == {"FINISHED"}
    drive(timeout=20)
    assert cube.visible_get() and second.visible_get() and "SAPE preview" not in bpy.data.materials
    assert job.proc.poll() is not None
    if stubborn:
        assert job.proc.returncode == -9  # escalated to SIGKILL
    assert snapshot_scene() == before
    assert runner().RUNNER.state.status == "Cancelled"
    assert not any("ERROR" == level for level, _ in runner().RUNNER.state.messages)  # a cancel is no error


def test_disabling_the_addon_stops_running_jobs(tmp_path):
    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    sys.path.insert(0, str(ADDON_PARENT)) if str(ADDON_PARENT) not in sys.path else None
    addon_utils.enable(NAME, default_set=True, handle_error=None)
    use_python(fake_worker(tmp_path, FAKE_PYTHON))
    bpy.context.scene.sape_geom.extra_settings = json.dumps({"fake": {"hang": True}})
    select_only(add_cube())
    fit_selected()
    drive_until(lambda: runner().RUNNER.state.progress > 0)
    job = runner().RUNNER.current[1]
    addon_utils.disable(NAME, default_set=True, handle_error=None)
    assert job.proc.poll() is not None
    assert not any(o.name.endswith("_sape_preview") for o in bpy.data.objects)


def test_panel_draws_fit_and_deform_boxes(addon, tmp_path):
    calls = draw_panel()
    props = [c[1][1] for c in calls if c[0] == "prop"]
    ops = [c[1][0] for c in calls if c[0] == "operator"]
    assert {"preset", "encoding", "resolution", "budget", "device", "target_kind", "deform_steps"} <= set(props)
    assert {"sape.fit_selected", "sape.deform_curve", "sape.setup_worker"} <= set(ops)
    assert "sape.reextract" not in ops  # the Result panel offers it when a result is active
    assert "sape.cancel" not in ops and not any(c[0] == "progress" for c in calls)

    bpy.context.scene.sape_geom.budget = "TIME"
    assert "time_budget" in [c[1][1] for c in draw_panel() if c[0] == "prop"]

    use_python(fake_worker(tmp_path, FAKE_PYTHON))
    bpy.context.scene.sape_geom.extra_settings = json.dumps({"fake": {"hang": True}})
    select_only(add_cube())
    fit_selected()
    drive_until(lambda: runner().RUNNER.state.progress > 0)
    calls = draw_panel()
    progress = [c for c in calls if c[0] == "progress"]
    assert progress and 0 < progress[0][2]["factor"] <= 1 and progress[0][2]["text"] == "Cube"
    labels = [c[2].get("text", "") for c in calls if c[0] == "label"]
    assert any(t.startswith("training ") for t in labels) and any(t.startswith("ETA ") for t in labels)
    kinds = [c[0] if c[0] != "operator" else c[1][0] for c in calls if c[0] in ("progress", "operator", "label")]
    assert kinds[kinds.index("progress") + 1] == "sape.cancel"  # right under the bar, whatever the text below
    bpy.ops.sape.cancel()
    drive(timeout=20)


def test_sidebar_labels_fit_their_half_of_a_split_row(addon):
    """Every property's label fits where the sidebar draws it at its default width: beside a checkbox, or
    in the left half of a split row (Blender cuts a longer one to 'Skip Smoot…', 'Target C…')."""
    from sape_geom_blender import text_fit

    s = bpy.context.scene.sape_geom
    shown = []
    for budget, kind, source, animate in (("STEPS", "OBJECT", "OBJECT", True), ("TIME", "IMAGE", "CIRCLE", False)):
        s.budget, s.target_kind, s.source_kind, s.animate = budget, kind, source, animate
        shown += property_labels(draw_panel())
    assert {"No Smoothing", "Curve", "Resolution"} <= {text for text, _ in shown}
    for text, checkbox in shown:
        assert text_fit.text_width(text) <= (text_fit.CHECKBOX_LABEL_PX if checkbox else text_fit.SPLIT_LABEL_PX), text
    assert text_fit.text_width("Target Curve") > text_fit.SPLIT_LABEL_PX  # what the sidebar cut
    assert text_fit.text_width("Skip Smoothing") > text_fit.CHECKBOX_LABEL_PX


def test_messages_wrap_to_the_sidebar_by_measured_width(addon):
    """Every line of a long message fits the sidebar's label width in the UI font, wide letters included;
    a word longer than a line (a path) is cut, and no word is lost."""
    from sape_geom_blender import text_fit

    width = text_fit.label_width()
    assert width == (text_fit.DEFAULT_REGION_PX - text_fit.LABEL_INSET_PX) * text_fit.ui_scale()
    assert text_fit.label_width(boxed=True) < width
    assert text_fit.wrap("Extracted at 256, 207896 faces", width)[0] == "Extracted at 256, 207896"
    for text in (
        "Suzanne_sape, from Suzanne_with_a_long_name",
        "WWWWW MMMMM WWWWW MMMMM WWWWW iiiii",
        "pip cannot reach https://pypi.example.org/simple/torch/ (NewConnectionError) with the package index",
        "/home/artist/.config/blender/4.2/scripts/addons/sape_geom_blender_data/worker_env/bin/python",
    ):
        lines = text_fit.wrap(text, width)
        assert all(text_fit.text_width(line) <= width for line in lines), lines
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")
        assert len(lines) > 1
    assert text_fit.wrap("", width) == [""]
    assert text_fit.wrap("Resolution", width) == ["Resolution"]


def test_fit_panel_shows_the_time_the_last_fit_here_gives(addon, tmp_path, monkeypatch):
    from sape_geom_blender import paths, results, ui

    monkeypatch.setattr(ui, "user_folder", lambda create=True: tmp_path)
    monkeypatch.setattr(paths, "user_folder", lambda create=True: tmp_path)

    def shown():
        return texts(draw_panel("Fit"))

    assert "known after a first Fast fit here" in shown()
    item = type("Item", (), {"settings": {"preset": "fast", "resolution": 256}})()
    results.remember_fit_time(item, {"steps": 1000, "labels_s": 5, "train_s": 50, "extract_s": 20, "device": "cpu"})
    assert "Expected about 75 s" in shown().replace("  ", " ")
    bpy.context.scene.sape_geom.budget = "STEPS"
    bpy.context.scene.sape_geom.steps = 3000
    assert "Expected about 3 min" in shown()


# ------------------------------------------------------------------------------------------ packaging
def test_built_zip_installs_as_extension_offline(tmp_path):
    import addon_utils

    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_addon.py"), "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    zip_path = Path(out)
    assert zip_path.is_file() and zip_path.name.startswith(NAME)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    module = f"bl_ext.user_default.{NAME}"
    try:
        result = bpy.ops.extensions.package_install_files(
            filepath=str(zip_path), repo="user_default", enable_on_install=True
        )
        assert result == {"FINISHED"}
        assert module in bpy.context.preferences.addons
        ext = importlib.import_module(module)
        assert ext.paths.get_preferences() is not None  # __package__-based lookup works
        assert hasattr(bpy.types.Scene, "sape_geom") and "SAPE_PT_main" in dir(bpy.types)
        # the extension's own user folder holds the worker environment; the zip's sape_geom is found
        assert ext.paths.user_folder() == Path(bpy.utils.extension_path_user(module))
        lib = ext.worker_client.bundled_lib()
        assert lib is not None and lib != ROOT and (lib / "sape_geom" / "app" / "worker" / "__main__.py").is_file()
        assert ext.worker_client.worker_env()["PYTHONPATH"].split(os.pathsep)[0] == str(lib)
    finally:
        addon_utils.disable(module, default_set=True, handle_error=None)
    assert not hasattr(bpy.types.Scene, "sape_geom")
