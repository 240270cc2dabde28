#!/usr/bin/env bash
# Real-Blender UI check of the SAPE add-on (not part of `make test`).
#
#   scripts/blender_ui_check.sh OUT_DIR [WORKER_PYTHON]
#
# Installs Debian's Blender (3.4) and Xvfb when missing, builds the add-on zip, starts Blender with a UI
# on a virtual display, installs the zip through the legacy add-on path, selects Suzanne, presses the
# panel's "Fit Selected" (timers firing as in normal use), and writes to OUT_DIR:
#   panel_training.png  the window while training (progress bar / live preview)
#   panel_result.png    the window with the imported result and the SAPE tab open
#   report.json         what happened (objects made, messages, seconds)
#   blender.log         Blender's console output
# WORKER_PYTHON defaults to $SAPE_GEOM_PYTHON, then this repository's .venv/bin/python.
# Exit status 0 only when the result object was made and both screenshots exist.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(realpath -m "${1:?usage: scripts/blender_ui_check.sh OUT_DIR [WORKER_PYTHON]}")"
WORKER_PYTHON="${2:-${SAPE_GEOM_PYTHON:-$ROOT/.venv/bin/python}}"
mkdir -p "$OUT"
START=$(date +%s)

if ! command -v blender >/dev/null || ! command -v Xvfb >/dev/null || ! /usr/bin/python3 -c "import numpy" 2>/dev/null; then
    echo "installing Debian's blender, xvfb and numpy ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        blender xvfb x11-apps imagemagick xauth python3-numpy >/dev/null
fi

ZIP="$(/usr/bin/python3 "$ROOT/scripts/build_addon.py" --output-dir "$OUT/dist")"
SANDBOX="$(mktemp -d)"  # Blender's user folders (add-on install, prefs) go here, not into ~/.config
DISPLAY_NUM=":$((90 + RANDOM % 9))"
Xvfb "$DISPLAY_NUM" -screen 0 1400x900x24 +extension GLX -nolisten tcp >"$OUT/xvfb.log" 2>&1 &
XVFB_PID=$!
cleanup() { kill "$XVFB_PID" 2>/dev/null || true; rm -rf "$SANDBOX"; }
trap cleanup EXIT
sleep 1

cat >"$SANDBOX/ui_check.py" <<'PYEOF'
import json, os, sys, time, traceback
import addon_utils
import bpy

OUT = os.environ["SAPE_UI_OUT"]
ZIP = os.environ["SAPE_UI_ZIP"]
PYTHON = os.environ["SAPE_UI_WORKER_PYTHON"]
NAME = "sape_geom_blender"
T0 = time.monotonic()
report = {"blender": bpy.app.version_string, "steps": [], "messages": []}
shots = {}
# The "fast" preset needs minutes on 2 busy CPU cores; a smaller network and point set give a
# recognisable surface in about a minute (override with SAPE_UI_EXTRA, a JSON object).
SMALL_FIT = {"keep_largest": True, "config": {
    "points_per_set": 20000, "num_sets": 2, "batch_size": 2000, "lr": 3e-3, "lr_final": 3e-4,
    "field.hidden_width": 128, "field.hidden_layers": 3, "progress.grid_resolution": 16, "progress.num_blocks": 8}}
bpy.context.preferences.view.show_splash = False  # before the first redraw, or the splash covers the view


def log(text):
    report["steps"].append(f"{time.monotonic() - T0:6.1f}s {text}")
    print("UI-CHECK:", text, flush=True)


def finish(ok):
    report["ok"] = ok
    report["seconds"] = round(time.monotonic() - T0, 1)
    with open(os.path.join(OUT, "report.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    bpy.ops.wm.quit_blender()


def view3d():
    win = bpy.context.window_manager.windows[0]
    area = max((a for a in win.screen.areas if a.type == "VIEW_3D"), key=lambda a: a.width * a.height)
    region = next(r for r in area.regions if r.type == "WINDOW")
    return win, area, region


def override(**kw):
    win, area, region = view3d()
    return bpy.context.temp_override(window=win, area=area, region=region, screen=win.screen, **kw)


def screenshot(name):
    path = os.path.join(OUT, name)
    with override():
        bpy.ops.screen.screenshot(filepath=path)
    shots[name] = path
    log(f"screenshot {name}")


def open_sape_tab():
    win, area, region = view3d()
    area.spaces.active.show_region_ui = True
    ui = next(r for r in area.regions if r.type == "UI")
    if hasattr(ui, "active_panel_category"):  # newer Blender
        ui.active_panel_category = "SAPE"
        return
    # Blender 3.4: ctrl+wheel over the sidebar cycles its tabs (Item, Tool, View, SAPE)
    x, y = ui.x + ui.width - 10, ui.y + ui.height - 60  # over the tab strip, not over a number field
    win.event_simulate("MOUSEMOVE", "NOTHING", x=x, y=y)
    for _ in range(3):
        win.event_simulate("WHEELDOWNMOUSE", "PRESS", ctrl=True, x=x, y=y)


def setup():
    try:
        bpy.context.preferences.view.show_splash = False
        bpy.ops.preferences.addon_install(filepath=ZIP, overwrite=True)
        addon_utils.enable(NAME, default_set=True, handle_error=None)
        prefs = bpy.context.preferences.addons[NAME].preferences
        prefs.worker_python = PYTHON
        log(f"add-on installed from {os.path.basename(ZIP)}, worker {PYTHON}")
        bpy.ops.mesh.primitive_monkey_add(location=(0, 0, 0))
        monkey = bpy.context.active_object
        monkey.modifiers.new("Subdivision", "SUBSURF")
        cube = bpy.data.objects.get("Cube")
        if cube is not None:
            cube.hide_set(True)
        for o in bpy.context.view_layer.objects:
            o.select_set(o is monkey)
        s = bpy.context.scene.sape_geom
        s.preset, s.budget, s.steps, s.resolution, s.device = "fast", "STEPS", 300, 96, "cpu"
        s.live_preview, s.preview_every = True, 2.0
        s.extra_settings = os.environ.get("SAPE_UI_EXTRA") or json.dumps(SMALL_FIT)
        open_sape_tab()
        with override(active_object=monkey, selected_objects=[monkey]):
            result = bpy.ops.sape.fit_selected("EXEC_DEFAULT")
        log(f"Fit Selected -> {result}")
        bpy.app.timers.register(watch, first_interval=0.5)
    except Exception:
        report["error"] = traceback.format_exc()
        finish(False)
    return None


def watch():
    runner = sys.modules[NAME + ".runner"]
    state = runner.RUNNER.state
    if time.monotonic() - T0 > 420:
        log("timeout")
        runner.RUNNER.cancel()
        finish(False)
        return None
    if runner.RUNNER.busy:
        preview = runner.RUNNER.preview_name
        if "panel_training.png" not in shots and (preview or state.progress > 0.5):
            screenshot("panel_training.png")
            log(f"status while training: {state.status} (preview: {preview})")
        return 0.5
    report["messages"] = state.messages
    report["results"] = state.results
    if not state.results:
        log(f"no result: {state.messages}")
        finish(False)
        return None
    result = bpy.data.objects[state.results[0]]
    report["result"] = {"name": result.name, "vertices": len(result.data.vertices),
                        "collection": result.users_collection[0].name,
                        "colors": list(result.data.color_attributes.keys())}
    bpy.data.objects["Suzanne"].hide_set(True)
    win, area, region = view3d()
    shading = area.spaces.active.shading
    shading.type = "SOLID"
    shading.color_type = "VERTEX" if "VERTEX" in [e.identifier for e in shading.bl_rna.properties["color_type"].enum_items] else "ATTRIBUTE"
    for o in bpy.context.view_layer.objects:
        o.select_set(o is result)
    bpy.context.view_layer.objects.active = result
    with override():
        bpy.ops.view3d.view_selected()
    log(f"result {report['result']}")
    bpy.app.timers.register(final_shot, first_interval=1.0)
    return None


def final_shot():
    screenshot("panel_result.png")
    finish(all(os.path.isfile(p) for p in shots.values()) and len(shots) == 2)
    return None


bpy.app.timers.register(setup, first_interval=1.0)
PYEOF

echo "running Blender UI on $DISPLAY_NUM (worker: $WORKER_PYTHON) ..."
set +e
DISPLAY="$DISPLAY_NUM" HOME="$SANDBOX" SAPE_UI_OUT="$OUT" SAPE_UI_ZIP="$ZIP" SAPE_UI_WORKER_PYTHON="$WORKER_PYTHON" \
    timeout 480 blender --factory-startup --enable-event-simulate --python "$SANDBOX/ui_check.py" >"$OUT/blender.log" 2>&1
CODE=$?
set -e
grep "UI-CHECK:" "$OUT/blender.log" || true
if [ -f "$OUT/panel_result.png" ]; then
    /usr/bin/convert "$OUT/panel_result.png" -crop 620x900+640+0 +repage "$OUT/panel_result_sidebar.png" 2>/dev/null || true
fi
echo "blender exit $CODE; took $(( $(date +%s) - START )) s; files in $OUT:"
ls "$OUT"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r.get('ok') else 1)" "$OUT/report.json"
