"""Inside Blender with a UI (started by scripts/blender_ui_check.sh): the add-on's acceptance test, done the
way a new artist does it, by timers firing as in normal use.

In order: install the zip; Set Up Worker against an unreachable package index (it must fail in the
add-on's words), then for real; Fit Selected refused three ways (nothing selected, a camera, an empty
mesh); a subdivided Suzanne fitted with the fast preset and live preview, its result scored against the
source with the project's metrics; a worker that fails on purpose; a fit cancelled by Esc, one by the
Cancel button and one by File > New; a curve deformed; a mesh deformed onto a target. After each: what
the panel and the status bar say, that "working" never outlives a job, that the artist's objects are as
they were, and (at every screenshot) that each label the sidebar draws fits its width, measured with
``blf`` in this Blender's UI font and scale. Pass/fail never depends on wall time: the report gives
seconds, CPU seconds and steps. Screenshots and report.json go to $SAPE_UI_OUT.
Environment: SAPE_UI_OUT, SAPE_UI_ZIP.
"""

import json
import os
import sys
import time

import addon_utils
import bpy
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from blender_ui_tools import (  # scripts/blender_ui_tools.py
    GIVE_UP_S,
    NAME,
    OUT,
    bar_text,
    changed,
    check,
    info_reports,
    log,
    mod,
    move_mouse,
    open_sape_tab,
    override,
    panel_calls,
    panel_text,
    press_escape,
    report,
    run,
    runner,
    score,
    screenshot,
    select,
    snapshot,
    wait_until,
    world_triangles,
)

ZIP = os.environ["SAPE_UI_ZIP"]
UNREACHABLE_INDEX = "http://127.0.0.1:9/simple"  # the discard port: refused at once
FAILURE = "the mesh has no inside: close its holes"


# ------------------------------------------------------------------------------------------ the checks
def install():
    bpy.ops.preferences.addon_install(filepath=ZIP, overwrite=True)
    addon_utils.enable(NAME, default_set=True, handle_error=None)
    log(f"add-on installed from {os.path.basename(ZIP)}; Blender's Python {sys.executable}")
    cube = bpy.data.objects.get("Cube")
    if cube is not None:
        bpy.data.objects.remove(cube)
    yield from open_sape_tab()


def set_up(index=""):
    """Press Set Up Worker with Package Index ``index`` and wait; the job, and every progress line shown."""
    mod("paths").get_preferences().package_index = index
    with override():
        result = bpy.ops.sape.setup_worker("INVOKE_DEFAULT")
    log(f"Set Up Worker (index {index or 'as configured'}) -> {result}")
    started, stages = time.monotonic(), []
    job = mod("setup_ops").JOBS["setup"]
    while not job.done:
        if not stages or stages[-1] != job.stage:
            stages.append(job.stage)
        if not index and "panel_setup.png" not in report["shots"] and time.monotonic() - started > 3.0:
            if job.progress > 0.2 or job.stage.startswith("Checking"):
                screenshot("panel_setup.png")
        yield 0.25
    yield 0.5  # the panel's redraw after the end
    seconds = round(time.monotonic() - started, 1)
    return job, stages, seconds


def unreachable_index():
    job, stages, seconds = yield from set_up(UNREACHABLE_INDEX)
    panel = panel_text()
    screenshot("panel_setup_failed.png")
    yield from move_mouse()  # the failure's popup goes, or it covers the sidebar's top in later shots
    raw = [s for s in stages if s.startswith(("WARNING", "ERROR", "Retrying("))]
    report["unreachable_index"] = {"error": job.error, "stages": stages, "seconds": seconds, "panel": panel}
    if job.reused:
        check("set-up against an unreachable index", True, "skipped: an existing environment was reused")
        return
    check(
        "set-up against an unreachable index",
        not job.ok and "cannot reach" in job.error and "Set-up failed" in panel and not raw,
        f"ok={job.ok}; panel: {panel[:160]!r}; pip's raw lines shown: {raw}",
    )


def worker_ready():
    job, _stages, seconds = yield from set_up("")
    report["setup"] = {"ok": job.ok, "reused": job.reused, "error": job.error, "seconds": seconds, "info": job.info}
    check("set-up", job.ok, f"reused={job.reused} in {seconds} s {job.error}")
    if "panel_setup.png" not in report["shots"]:  # a reused environment is checked in seconds: its outcome
        screenshot("panel_setup.png")
    return job.ok


def refusals():
    """Fit Selected with nothing selected, a camera, an empty mesh: refused in the panel's status line and
    the status bar, and nothing of the scene changes."""
    bpy.ops.object.camera_add(location=(0, -8, 0))
    camera = bpy.context.active_object
    empty = bpy.data.objects.new("EmptyMesh", bpy.data.meshes.new("EmptyMesh"))
    bpy.context.scene.collection.objects.link(empty)
    for what, objs, expected in (
        ("nothing selected", (), "select one or more mesh objects"),
        ("a camera", (camera,), "is not a mesh"),
        ("an empty mesh", (empty,), "'EmptyMesh' has no faces"),
    ):
        select(*objs)
        before = snapshot()
        try:
            with override():
                result = bpy.ops.sape.fit_selected("INVOKE_DEFAULT")
        except RuntimeError:  # how bpy.ops tells a script that the operator reported an error
            result = {"CANCELLED"}
        yield 0.5
        panel, bar = panel_text(), bar_text()
        check(
            f"refused: {what}",
            result == {"CANCELLED"} and expected in panel and expected in bar and not changed(before),
            f"{result}; panel {panel[:100]!r}; status bar {bar!r}; changed {changed(before)}",
        )
    screenshot("panel_refused.png")
    yield from move_mouse()
    bpy.data.objects.remove(camera)
    bpy.data.objects.remove(empty)


def add_suzanne(location=(0.0, 0.0, 0.0), name="Suzanne"):
    bpy.ops.mesh.primitive_monkey_add(location=location)
    monkey = bpy.context.active_object
    monkey.name = name
    monkey.modifiers.new("Subdivision", "SUBSURF")
    return monkey


def start_fit(obj):
    s = bpy.context.scene.sape_geom
    s.preset, s.budget, s.live_preview, s.preview_every = "fast", "PRESET", True, 5.0
    select(obj)
    with override(active_object=obj, selected_objects=[obj]):
        return bpy.ops.sape.fit_selected("INVOKE_DEFAULT")


def cancel_place():
    """Index of Cancel among the sidebar's calls: the same whatever the progress text, or a click misses."""
    calls = panel_calls()
    return next(
        (k for k, (name, args, _) in enumerate(calls) if name == "operator" and args[:1] == ("sape.cancel",)), -1
    )


def fit(suzanne):
    before = snapshot()
    cpu0, started = os.times(), time.monotonic()
    log(f"Fit Selected (fast preset) -> {start_fit(suzanne)}")
    preview, bars, places, last_training = {}, set(), set(), ""
    while runner().busy:
        state = runner().state
        bars.add(bar_text())
        places.add(cancel_place())
        last_training = state.status if state.stage == "training" else last_training
        if runner().preview.name and not preview:
            obj = bpy.data.objects.get(runner().preview.name)
            preview = {
                "name": runner().preview.name,
                "source_hidden": not suzanne.visible_get(),
                "material": [m.name for m in obj.data.materials if m] if obj else [],
            }
        if (
            "panel_training.png" not in report["shots"]
            and state.stage == "training"
            and (preview or state.progress > 0.3)
        ):
            screenshot("panel_training.png")
            log(f"while training: {state.status} (preview: {runner().preview.name})")
        if time.monotonic() - started > GIVE_UP_S:
            runner().cancel()
            check("fit", False, "no end after GIVE_UP_S: hung")
            return None
        yield 0.5
    yield 1.0  # the redraws after the end
    now = os.times()
    state = runner().state
    report["fit"] = {
        "seconds": round(time.monotonic() - started, 1),
        "blender_cpu_s": round(now.user + now.system - cpu0.user - cpu0.system, 1),
        "worker_cpu_s": round(now.children_user + now.children_system - cpu0.children_user - cpu0.children_system, 1),
        "status": state.status,
        "last_training_progress": last_training,  # its steps
        "messages": state.messages,
        "results": state.results,
        "preview": preview,
        "status_bar_while_busy": sorted(bars),
    }
    log(f"fit ended: {state.status}; {report['fit']}")
    working = mod("reports").WORKING
    check("fit", state.results and state.status == "Done", f"{state.status}; {state.results}")
    check(
        "status bar: working while the fit ran, gone after",
        bars == {working} and working not in bar_text(),
        f"while busy {sorted(bars)}; after {bar_text()!r}",
    )
    check(
        "status bar and panel: the newest outcome after a fit",
        "done" in bar_text() and "done ->" in panel_text(),
        f"status bar {bar_text()!r}; panel {panel_text()[:120]!r}",
    )
    check("Cancel stays at one place while busy", len(places - {-1}) == 1, f"indices {sorted(places)}")
    check(
        "live preview readable: own material, source hidden while it shows",
        preview.get("source_hidden") and mod("convert").PREVIEW_MATERIAL in preview.get("material", []),
        str(preview),
    )
    if not state.results:
        return None
    result = bpy.data.objects[state.results[0]]
    check("the source unchanged and visible again", not changed(before) and suzanne.visible_get(), str(changed(before)))
    metrics = score(result, suzanne)
    report["result"] = {
        "name": result.name,
        "faces": len(result.data.polygons),
        "smooth": all(p.use_smooth for p in result.data.polygons),
        "metrics": metrics,
    }
    check(
        "the result's surface against its source",
        report["result"]["smooth"]
        and metrics.get("components") == 1
        and metrics.get("chamfer_l1", 1) < 0.01
        and metrics.get("normal_consistency", 0) > 0.95
        and metrics.get("normal_angle_p50", 90) < 10,
        json.dumps(
            {
                k: metrics.get(k)
                for k in (
                    "iou",
                    "chamfer_l1",
                    "normal_consistency",
                    "normal_angle_p50",
                    "normal_angle_p90",
                    "components",
                    "error",
                )
            }
        ),
    )
    suzanne.hide_set(True)  # for the screenshot: the result alone
    select(result)
    with override():
        bpy.ops.view3d.view_selected()
    yield 1.0
    screenshot("panel_result.png")
    suzanne.hide_set(False)
    return result


def failing_worker(suzanne, result):
    """A worker that fails: its message in the panel, the status bar and the Info editor. The last fit's
    result is hidden for the screenshot (drawn over its source, the two z-fight; Hide Source avoids it)."""
    result.hide_set(True)
    bad = os.path.join(OUT, "failing_python")
    with open(bad, "w") as fh:
        fh.write(
            '#!/bin/sh\necho \'{"event": "started", "protocol": 1, "task": "fit_surface"}\'\n'
            f'echo \'{{"event": "error", "message": "{FAILURE}", "type": "X"}}\'\n'
        )
    os.chmod(bad, 0o755)
    prefs = mod("paths").get_preferences()
    kept, prefs.worker_python = prefs.worker_python, bad
    start_fit(suzanne)
    yield from wait_until(lambda: not runner().busy, timeout=60)
    shown = yield from wait_until(lambda: FAILURE in info_reports(), timeout=10)  # the report comes at an event
    screenshot("panel_error.png")
    prefs.worker_python = kept
    result.hide_set(False)
    yield from move_mouse()
    check(
        "a failing worker's message in the panel, the status bar and Info",
        shown and FAILURE in panel_text() and FAILURE in bar_text(),
        f"panel {panel_text()[:120]!r}; status bar {bar_text()!r}; in Info: {shown}",
    )


def cancelled_mid_fit(how, suzanne):
    """Start a fit, and once it trains cancel it by ``how``: Esc, the Cancel button, or File > New."""
    before, made_before = snapshot(), {o.name for o in bpy.data.objects if "_sape" in o.name}
    start_fit(suzanne)
    training = yield from wait_until(lambda: runner().state.stage == "training" and runner().state.progress > 0)
    if how == "Esc":
        press_escape()
    elif how == "Cancel":
        with override("UI"):
            bpy.ops.sape.cancel()
    else:
        with override():
            bpy.ops.wm.read_homefile()
    ended = yield from wait_until(lambda: not runner().busy, timeout=60)
    yield 1.0
    working = mod("reports").WORKING
    left = [o.name for o in bpy.data.objects if "_sape" in o.name and o.name not in made_before]
    panel, bar = panel_text(), bar_text()
    if how == "File > New":
        ok = "another file was opened" in bar and "Cancelled" not in panel and not left
    else:
        ok = panel.startswith("Cancelled") and "cancelled" in bar and not left and not changed(before)
        ok = ok and suzanne.visible_get()
    check(
        f"{how} mid-fit cancels it",
        training and ended and ok and working not in bar,
        f"panel {panel[:100]!r}; status bar {bar!r}; left {left}; changed {changed(before) if how != 'File > New' else '-'}",
    )
    if how == "Esc":
        screenshot("panel_cancelled.png")


def deform_curve():
    bpy.ops.curve.primitive_bezier_circle_add(radius=1.0, location=(0.0, 0.0, 0.0))
    target = bpy.context.active_object
    target.name, target.scale = "TargetCurve", (2.0, 1.0, 1.0)
    bpy.context.view_layer.update()  # matrix_world follows the scale
    s = bpy.context.scene.sape_geom
    s.target_kind, s.target_object, s.source_kind, s.deform_steps, s.animate = "OBJECT", target, "CIRCLE", 300, False
    before = snapshot()
    started = time.monotonic()
    with override():
        result = bpy.ops.sape.deform_curve()
    yield from wait_until(lambda: not runner().busy)
    made = bpy.data.objects.get("TargetCurve_sape")
    centre = None
    if made is not None and made.type == "CURVE":
        co = np.array([tuple(made.matrix_world @ p.co.xyz) for p in made.data.splines[0].points])
        centre = co.mean(axis=0).round(3).tolist()
    report["deform_curve"] = {"seconds": round(time.monotonic() - started, 1), "centre": centre}
    check(
        "Deform Curve",
        result == {"FINISHED"}
        and centre is not None
        and abs(centre[0]) < 0.3
        and abs(centre[1]) < 0.3
        and not changed(before)
        and "done" in bar_text(),
        f"{result}; {report['deform_curve']}; status bar {bar_text()!r}; changed {changed(before)}",
    )
    screenshot("panel_deform.png")


def deform_onto_target():
    bpy.ops.mesh.primitive_uv_sphere_add(segments=24, ring_count=12, radius=1.0, location=(0.0, 0.0, 0.0))
    source = bpy.context.active_object
    source.name = "Sphere"
    target = add_suzanne(location=(4.0, 0.0, 1.0), name="Target")
    bpy.context.view_layer.update()
    select(source, target, active=target)
    before = snapshot()
    started = time.monotonic()
    with override(active_object=target, selected_objects=[source, target]):
        result = bpy.ops.sape.deform_mesh(steps=150)
    yield from wait_until(lambda: not runner().busy)
    made = bpy.data.objects.get("Sphere_sape")
    detail = {"seconds": round(time.monotonic() - started, 1)}
    ok = False
    if made is not None:
        verts, _ = world_triangles(made)
        detail["origin"] = [round(v, 3) for v in made.matrix_world.translation]
        detail["mesh_centre"] = verts.mean(axis=0).round(3).tolist()
        origin_at_target = np.allclose(detail["origin"], [4.0, 0.0, 1.0], atol=1e-4)
        ok = origin_at_target and np.abs(verts.mean(axis=0) - [4.0, 0.0, 1.0]).max() < 0.6
    report["deform_onto_target"] = detail
    check(
        "Deform onto Target (origin at the target's)",
        result == {"FINISHED"} and ok and not changed(before),
        f"{result}; {detail}; status bar {bar_text()!r}",
    )


def main():
    yield from install()
    yield from unreachable_index()
    if not (yield from worker_ready()):
        return
    yield from refusals()
    suzanne = add_suzanne()
    result = yield from fit(suzanne)
    if result is None:
        return
    yield from failing_worker(suzanne, result)
    for how in ("Esc", "Cancel", "File > New"):  # File > New last: it leaves the new file's scene
        yield from cancelled_mid_fit(how, suzanne if how != "File > New" else bpy.data.objects["Suzanne"])
    yield from open_sape_tab()  # the new file's sidebar
    yield from deform_curve()
    yield from deform_onto_target()


run(main())
