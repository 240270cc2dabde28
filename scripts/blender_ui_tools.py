"""The plumbing of scripts/blender_ui_check.py, inside Blender with a UI: the report and its checks, a
generator driven by a timer, the window's areas, and what the artist sees (the sidebar's texts and
widths, the status bar's entry, the Info editor, screenshots) and the scoring of a result."""

import json
import os
import subprocess
import sys
import time
import traceback

import bpy
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "addon"))
from layout_recorder import draw_panels, labels, property_labels  # the tests' stand-in for UILayout

OUT = os.environ["SAPE_UI_OUT"]
NAME = "sape_geom_blender"
GIVE_UP_S = 1500.0  # a job that has not ended by then is reported as hung (not a timing criterion)
T0 = time.monotonic()
report = {"blender": bpy.app.version_string, "steps": [], "shots": {}, "checks": {}, "clipped": []}
bpy.context.preferences.view.show_splash = False  # before the first redraw, or the splash covers the view


# ------------------------------------------------------------------------------------------ plumbing
def log(text):
    report["steps"].append(f"{time.monotonic() - T0:6.1f}s {text}")
    print("UI-CHECK:", text, flush=True)


def check(name, ok, detail=""):
    """One acceptance item: kept in report["checks"]; the run passes only if all are ok."""
    report["checks"][name] = {"ok": bool(ok), "detail": detail}
    log(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")


def finish(why=""):
    check("labels fit the sidebar", not report["clipped"], f"{len(report['clipped'])} cut: {report['clipped'][:5]}")
    failed = [name for name, c in report["checks"].items() if not c["ok"]]
    report["ok"] = not failed and not why
    report["why"] = why or ", ".join(failed)
    report["seconds"] = round(time.monotonic() - T0, 1)
    with open(os.path.join(OUT, "report.json"), "w") as fh:
        json.dump(report, fh, indent=2, default=str)
    log(f"finished ok={report['ok']} {report['why']}")
    bpy.ops.wm.quit_blender()


def run(steps):
    """Drive the generator ``steps`` from a timer: each value it yields is the seconds until its next step.
    The timer is persistent: File > New, one of the checks, keeps it."""

    def tick():
        try:
            return next(steps)
        except StopIteration:
            finish()
        except Exception:
            report["error"] = traceback.format_exc()
            print(report["error"], flush=True)
            finish("exception")
        return None

    bpy.app.timers.register(tick, first_interval=1.0, persistent=True)


def wait_until(predicate, timeout=GIVE_UP_S, every=0.5):
    """Yield until ``predicate()`` holds (the result of ``yield from``: whether it did)."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        yield every
    return True


def mod(name):
    return sys.modules[f"{NAME}.{name}"]


def runner():
    return mod("runner").RUNNER


def view3d():
    win = bpy.context.window_manager.windows[0]
    area = max((a for a in win.screen.areas if a.type == "VIEW_3D"), key=lambda a: a.width * a.height)
    return win, area, next(r for r in area.regions if r.type == "WINDOW")


def override(region_type="WINDOW", **kw):
    win, area, _ = view3d()
    region = next(r for r in area.regions if r.type == region_type)
    return bpy.context.temp_override(window=win, area=area, region=region, screen=win.screen, **kw)


def select(*objs, active=None):
    for o in bpy.context.view_layer.objects:
        o.select_set(o in objs)
    bpy.context.view_layer.objects.active = active or (objs[0] if objs else None)


def snapshot():
    """The artist's objects as they are: name, type, place, mesh size and visibility."""
    return {
        o.name: (o.type, [tuple(r) for r in o.matrix_world], len(getattr(o.data, "vertices", ())), o.hide_get())
        for o in bpy.data.objects
        if "_sape" not in o.name
    }


def changed(before) -> list[str]:
    """Names of the artist's objects added, removed or changed since ``before`` (a :func:`snapshot`)."""
    now = snapshot()
    return sorted(name for name in before.keys() | now.keys() if before.get(name) != now.get(name))


# ------------------------------------------------------------------------------------------ what shows
def panel_calls():
    """What the SAPE sidebar draws now, recorded in the sidebar's own region (its real width)."""
    panels = [c for c in mod("ui").classes if issubclass(c, bpy.types.Panel)]
    with override("UI"):
        return draw_panels(panels, bpy.context)


def panel_text():
    return " ".join(text for text, _, _ in labels(panel_calls()))


def bar_text():
    """The status bar's SAPE entry (what ``ui.draw_status_bar`` draws)."""
    return mod("reports").status_bar_entry(runner().busy)[1]


def measure_labels(where):
    """Every label and property name the sidebar draws now against the width it gets, in this Blender's UI
    font at its UI scale (``text_fit``), in the sidebar region as it is: a cut one goes to report["clipped"]."""
    fit = mod("text_fit")
    calls = panel_calls()
    with override("UI"):
        scale = fit.ui_scale()
        for text, _icon, boxed in labels(calls):
            if text and fit.text_width(text) > fit.label_width(boxed) + 1:
                report["clipped"].append(f"{where}: label {text!r} ({fit.text_width(text):.0f} px)")
        for text, checkbox in property_labels(calls):
            room = (fit.CHECKBOX_LABEL_PX if checkbox else fit.SPLIT_LABEL_PX) * scale
            if fit.text_width(text) > room + 1:
                report["clipped"].append(f"{where}: property {text!r} ({fit.text_width(text):.0f} px)")
        report.setdefault("sidebar_px", region_width())


def region_width():
    _win, area, _ = view3d()
    return next(r.width for r in area.regions if r.type == "UI")


def screenshot(name):
    path = os.path.join(OUT, name)
    with override():
        bpy.ops.screen.screenshot(filepath=path)
    report["shots"][name] = path
    win, area, _ = view3d()  # crop box for README: the viewport's right part with the sidebar, full height
    report["crop"] = f"640x{win.height}+{area.x + area.width - 640}+0"
    measure_labels(name)
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
    for k in range(steps):
        x, y = ui.x + ui.width - 10, ui.y + ui.height - 60 - 4 * k  # over the tab strip; a new spot each time
        win.event_simulate("MOUSEMOVE", "NOTHING", x=x, y=y)
        win.event_simulate("WHEELDOWNMOUSE", "PRESS", ctrl=True, x=x, y=y)
        yield 0.6


def move_mouse():
    """Move the mouse across the viewport, as an artist does: an error's popup closes when it moves."""
    win, area, _ = view3d()
    for k in range(1, 4):
        x, y = area.x + area.width * k // 4, area.y + area.height // 2
        win.event_simulate("MOUSEMOVE", "NOTHING", x=x, y=y)
        yield 0.3


def press_escape():
    win, area, _ = view3d()
    x, y = area.x + area.width // 3, area.y + area.height // 2
    win.event_simulate("MOUSEMOVE", "NOTHING", x=x, y=y)
    win.event_simulate("ESC", "PRESS", x=x, y=y)
    win.event_simulate("ESC", "RELEASE", x=x, y=y)


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


def world_triangles(obj):
    """The evaluated mesh of ``obj`` (modifiers applied) as world-space vertices and triangles."""
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        mesh.calc_loop_triangles()
        co = np.empty(len(mesh.vertices) * 3, np.float64)
        mesh.vertices.foreach_get("co", co)
        tris = np.empty(len(mesh.loop_triangles) * 3, np.int64)
        mesh.loop_triangles.foreach_get("vertices", tris)
    finally:
        evaluated.to_mesh_clear()
    matrix = np.array(obj.matrix_world)
    return co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3], tris.reshape(-1, 3)


SCORE = """
import json, sys, numpy as np, trimesh
from sape_geom.mesh.metrics import mesh_metrics
data = np.load(sys.argv[1])
result = trimesh.Trimesh(data["result_v"], data["result_f"], process=False)
source = trimesh.Trimesh(data["source_v"], data["source_f"], process=False)
print(json.dumps(mesh_metrics(result, source, n_points=50000, iou_points=50000)))
"""


def score(result, source):
    """The project's surface metrics of ``result`` against ``source`` (both as the viewport shows them), run
    by the worker's Python, which has sape_geom."""
    rv, rf = world_triangles(result)
    sv, sf = world_triangles(source)
    path = os.path.join(OUT, "scored_meshes.npz")
    np.savez(path, result_v=rv, result_f=rf, source_v=sv, source_f=sf)
    python, _ = mod("paths").resolve_worker_python()
    done = subprocess.run(
        [python, "-c", SCORE, path], capture_output=True, text=True, env=mod("worker_client").worker_env(), timeout=600
    )
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])
