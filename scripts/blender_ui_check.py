"""Inside Blender with a UI (started by scripts/blender_ui_check.sh): what a new user does, by timers.

Installs the zip, enables it, presses Set Up Worker and waits for it, fits a subdivided Suzanne with
the fast preset (Fit Selected, timers firing as in normal use), then makes a worker fail on purpose to
see its message in the panel, the status bar and the Info editor. Screenshots and report.json go to
$SAPE_UI_OUT. Environment: SAPE_UI_OUT, SAPE_UI_ZIP. The fit's time is judged by blender_ui_check.sh, against
the same fit run headless afterwards.
"""

import json
import os
import sys
import time
import traceback

import addon_utils
import bpy

OUT = os.environ["SAPE_UI_OUT"]
ZIP = os.environ["SAPE_UI_ZIP"]
FIT_GIVE_UP_S = 900.0
NAME = "sape_geom_blender"
T0 = time.monotonic()
report = {"blender": bpy.app.version_string, "steps": [], "shots": {}}
bpy.context.preferences.view.show_splash = False  # before the first redraw, or the splash covers the view


def log(text):
    report["steps"].append(f"{time.monotonic() - T0:6.1f}s {text}")
    print("UI-CHECK:", text, flush=True)


def finish(ok, why=""):
    report["ok"], report["why"] = ok, why
    report["seconds"] = round(time.monotonic() - T0, 1)
    with open(os.path.join(OUT, "report.json"), "w") as fh:
        json.dump(report, fh, indent=2, default=str)
    log(f"finished ok={ok} {why}")
    bpy.ops.wm.quit_blender()


def guard(fn):
    def wrapped():
        try:
            return fn()
        except Exception:
            report["error"] = traceback.format_exc()
            finish(False, "exception")
            return None

    return wrapped


def mod(name):
    return sys.modules[f"{NAME}.{name}"]


def view3d():
    win = bpy.context.window_manager.windows[0]
    area = max((a for a in win.screen.areas if a.type == "VIEW_3D"), key=lambda a: a.width * a.height)
    return win, area, next(r for r in area.regions if r.type == "WINDOW")


def override(**kw):
    win, area, region = view3d()
    return bpy.context.temp_override(window=win, area=area, region=region, screen=win.screen, **kw)


def screenshot(name):
    path = os.path.join(OUT, name)
    with override():
        bpy.ops.screen.screenshot(filepath=path)
    report["shots"][name] = path
    win, area, _ = view3d()  # crop box for README: the viewport's right part with the sidebar, full height
    report["crop"] = f"640x{win.height}+{area.x + area.width - 640}+0"
    log(f"screenshot {name}")


def open_sape_tab(steps=3):
    """Show the sidebar on its SAPE tab (Blender 3.4 has no API for the tab: ctrl+wheel over the sidebar
    cycles Item, Tool, View, SAPE; one simulated event per timer tick, or some are lost)."""
    win, area, _region = view3d()
    area.spaces.active.show_region_ui = True
    ui = next(r for r in area.regions if r.type == "UI")
    if hasattr(ui, "active_panel_category"):  # newer Blender
        ui.active_panel_category = "SAPE"
        return
    if os.environ.get("SAPE_UI_NO_EVENTS"):  # Blender started without event simulation: the tab stays
        return
    x, y = ui.x + ui.width - 10, ui.y + ui.height - 60 - 4 * steps  # over the tab strip; a new spot each time
    win.event_simulate("MOUSEMOVE", "NOTHING", x=x, y=y)
    win.event_simulate("WHEELDOWNMOUSE", "PRESS", ctrl=True, x=x, y=y)
    if steps > 1:
        bpy.app.timers.register(lambda: open_sape_tab(steps - 1), first_interval=0.6)


@guard
def install():
    bpy.ops.preferences.addon_install(filepath=ZIP, overwrite=True)
    addon_utils.enable(NAME, default_set=True, handle_error=None)
    log(f"add-on installed from {os.path.basename(ZIP)}; Blender's Python {sys.executable}")
    cube = bpy.data.objects.get("Cube")
    if cube is not None:
        bpy.data.objects.remove(cube)
    open_sape_tab()
    with override():
        result = bpy.ops.sape.setup_worker("INVOKE_DEFAULT")
    log(f"Set Up Worker -> {result}")
    report["setup_started"] = time.monotonic() - T0
    bpy.app.timers.register(watch_setup, first_interval=1.0)


@guard
def watch_setup():
    job = mod("setup_ops").JOBS["setup"]
    if not job.done:
        started = time.monotonic() - T0 - report["setup_started"]
        if (
            "panel_setup.png" not in report["shots"]
            and (job.progress > 0.2 or job.stage.startswith("Checking"))
            and started > 3.0
        ):
            screenshot("panel_setup.png")
        return 1.0
    report["setup"] = {
        "ok": job.ok,
        "reused": job.reused,
        "error": job.error,
        "info": job.info,
        "seconds": round(time.monotonic() - T0 - report["setup_started"], 1),
    }
    log(f"set-up finished: ok={job.ok} reused={job.reused} {job.error} in {report['setup']['seconds']} s")
    if not job.ok:
        screenshot("panel_setup_failed.png")
        finish(False, "set-up failed")
        return None
    if "panel_setup.png" not in report["shots"]:  # a reused environment is checked in seconds: its outcome
        screenshot("panel_setup.png")
    bpy.app.timers.register(fit, first_interval=1.5)
    return None


@guard
def fit():
    bpy.ops.mesh.primitive_monkey_add(location=(0, 0, 0))
    monkey = bpy.context.active_object
    monkey.modifiers.new("Subdivision", "SUBSURF")
    for o in bpy.context.view_layer.objects:
        o.select_set(o is monkey)
    s = bpy.context.scene.sape_geom
    s.preset, s.budget, s.live_preview, s.preview_every = "fast", "PRESET", True, 5.0
    report["fit_started"] = time.monotonic() - T0
    report["fit_cpu_start"] = os.times()
    with override(active_object=monkey, selected_objects=[monkey]):
        result = bpy.ops.sape.fit_selected("INVOKE_DEFAULT")
    log(f"Fit Selected (fast preset) -> {result}; worker {mod('paths').resolve_worker_python()}")
    bpy.app.timers.register(watch_fit, first_interval=0.5)


@guard
def watch_fit():
    run = mod("runner").RUNNER
    elapsed = time.monotonic() - T0 - report["fit_started"]
    if run.busy:
        training = run.state.stage == "training" and run.state.progress > 0.3
        if "panel_training.png" not in report["shots"] and (run.preview.name or training):
            screenshot("panel_training.png")
            log(f"while training: {run.state.status} (preview: {run.preview.name})")
        if elapsed > FIT_GIVE_UP_S:
            run.cancel()
            finish(False, f"fit did not finish in {elapsed:.0f} s")
            return None
        return 0.5
    state = run.state
    # CPU seconds over the fit: Blender's own (its drawing threads included) and the worker's (a child,
    # counted once reaped): where the time of a 2-core machine went
    now, then = os.times(), report.pop("fit_cpu_start")
    blender_cpu = now.user + now.system - then.user - then.system
    worker_cpu = now.children_user + now.children_system - then.children_user - then.children_system
    report["fit"] = {
        "seconds": round(elapsed, 1),
        "status": state.status,
        "messages": state.messages,
        "results": state.results,
        "blender_cpu_s": round(blender_cpu, 1),
        "worker_cpu_s": round(worker_cpu, 1),
    }
    log(
        f"fit finished in {elapsed:.1f} s: {state.status}; CPU seconds: Blender {blender_cpu:.0f}, "
        f"worker {worker_cpu:.0f}"
    )
    if not state.results:
        screenshot("panel_failed.png")
        finish(False, "no result")
        return None
    result = bpy.data.objects[state.results[0]]
    report["result"] = {
        "name": result.name,
        "faces": len(result.data.polygons),
        "smooth": all(p.use_smooth for p in result.data.polygons),
        "collection": result.users_collection[0].name,
        "undo_steps": [s for s in _undo_names()],
        # the source was hidden while its live preview showed and must be back now (Hide Source is off)
        "source_visible": bpy.data.objects["Suzanne"].visible_get(),
    }
    log(f"result {result.name}: source visible again: {report['result']['source_visible']}")
    if not report["result"]["source_visible"]:
        screenshot("panel_failed.png")
        finish(False, "the source stayed hidden after the fit")
        return None
    bpy.data.objects["Suzanne"].hide_set(True)  # for the screenshot: the result alone
    _win, _area, _region = view3d()
    for o in bpy.context.view_layer.objects:
        o.select_set(o is result)
    bpy.context.view_layer.objects.active = result
    with override():
        bpy.ops.view3d.view_selected()
    bpy.app.timers.register(result_shot, first_interval=1.0)
    return None


def _undo_names():
    try:
        return (
            [s.name for s in bpy.context.window_manager.undo_history]
            if hasattr(bpy.context.window_manager, "undo_history")
            else []
        )
    except Exception:
        return []


@guard
def result_shot():
    screenshot("panel_result.png")
    # now a worker that fails, to see its message where the artist looks
    bad = os.path.join(OUT, "failing_python")
    with open(bad, "w") as fh:
        fh.write(
            '#!/bin/sh\necho \'{"event": "started", "protocol": 1, "task": "fit_surface"}\'\n'
            'echo \'{"event": "error", "message": "the mesh has no inside: close its holes", "type": "X"}\'\n'
        )
    os.chmod(bad, 0o755)
    mod("paths").get_preferences().worker_python = bad
    suzanne = bpy.data.objects["Suzanne"]
    suzanne.hide_set(False)
    with override(active_object=suzanne, selected_objects=[suzanne]):
        bpy.ops.sape.fit_selected("INVOKE_DEFAULT")
    bpy.app.timers.register(error_shot, first_interval=3.0)


@guard
def error_shot():
    if mod("runner").RUNNER.busy:
        return 0.5
    expected = "the mesh has no inside: close its holes"
    report["info_editor"] = info_reports()
    report["info_tries"] = report.get("info_tries", 0) + 1
    if expected not in report["info_editor"] and report["info_tries"] < 20:
        return 0.5  # the report operator runs at the window's next event: later on a loaded machine
    screenshot("panel_error.png")
    report["error_status"] = mod("runner").RUNNER.state.status
    mod("paths").get_preferences().worker_python = ""  # the saved preferences keep the set-up worker
    ok_error = expected in report["error_status"] and expected in report["info_editor"]
    fit_ok = report["result"]["smooth"]
    why = "" if ok_error and fit_ok else f"error shown: {ok_error}; result smooth: {fit_ok}"
    finish(ok_error and fit_ok and len(report["shots"]) >= 4, why)
    return None


def info_reports() -> str:
    """What the Info editor lists (an area turned into an Info editor for a moment)."""
    win, area, region = view3d()
    old = area.type
    area.type = "INFO"
    try:
        region = next(r for r in area.regions if r.type == "WINDOW")
        with bpy.context.temp_override(window=win, area=area, region=region, screen=win.screen):
            bpy.ops.info.select_all(action="SELECT")
            bpy.ops.info.report_copy()
        return bpy.context.window_manager.clipboard
    finally:
        area.type = old


bpy.app.timers.register(install, first_interval=1.0)
