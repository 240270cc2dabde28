#!/usr/bin/env bash
# Real-Blender check of the SAPE add-on as a new user meets it (not part of `make test`).
#
#   scripts/blender_ui_check.sh OUT_DIR
#
# Installs Debian's Blender (3.4), Xvfb and numpy when missing, builds the add-on zip and starts Blender
# with a UI on a virtual display, with a clean user profile (HOME is a new folder) and the system PATH.
# There scripts/blender_ui_check.py runs the add-on's acceptance test (its docstring lists every check):
# set-up against an unreachable index and for real, refusals, a fit scored against its source, a failing
# worker, Esc / Cancel / File > New mid-fit, Deform Curve, Deform onto Target, the status bar and panel after
# each, and every label's width measured with blf. Then the headless path runs in the same profile:
# `blender -b --python-expr "...setup_worker(wait=True)"` (which reuses the environment) and
# scripts/blender_batch.py without --worker-python. Writes to OUT_DIR:
#   panel_*.png       the window at each stage (setup, setup_failed, refused, training, result, error,
#                     cancelled, deform)
#   sidebar_*.png     the same, cropped to the sidebar and reduced (README shows four, < 300 KB)
#   report.json       every check with its outcome, times, CPU seconds, metrics; blender.log, batch.log
# Pass/fail never depends on wall time (a shared machine's load would decide it): the fit's seconds in the
# UI and headless, and its CPU seconds, are reported. SAPE_UI_REUSE_ENV=DIR links an existing environment
# in instead of building one (faster iteration; the unreachable-index check is then skipped).
# SAPE_UI_NO_EVENTS=1 starts Blender without event simulation (Esc and the SAPE tab then need a person).
# Exit status 0 only when every check passed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(realpath -m "${1:?usage: scripts/blender_ui_check.sh OUT_DIR}")"
mkdir -p "$OUT"
START=$(date +%s)

if ! command -v blender >/dev/null || ! command -v Xvfb >/dev/null || ! /usr/bin/python3 -c "import numpy" 2>/dev/null \
        || ! command -v convert >/dev/null; then
    echo "installing Debian's blender, xvfb, numpy and imagemagick ..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        blender xvfb x11-apps imagemagick xauth python3-numpy python3-venv >/dev/null
fi

ZIP="$(/usr/bin/python3 "$ROOT/scripts/build_addon.py" --output-dir "$OUT/dist")"
SANDBOX="$(mktemp -d)"  # the clean profile: Blender's user folders (add-on, prefs, worker) go here
CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
for n in $(seq 90 120); do  # a display nobody else uses (another check may still run beside this one)
    [ -e "/tmp/.X$n-lock" ] || [ -e "/tmp/.X11-unix/X$n" ] || { DISPLAY_NUM=":$n"; break; }
done
Xvfb "$DISPLAY_NUM" -screen 0 1400x900x24 +extension GLX -nolisten tcp >"$OUT/xvfb.log" 2>&1 &
XVFB_PID=$!
cleanup() { kill "$XVFB_PID" 2>/dev/null || true; rm -rf "$SANDBOX"; }
trap cleanup EXIT
sleep 1
kill -0 "$XVFB_PID" 2>/dev/null || { echo "Xvfb did not start on $DISPLAY_NUM (see $OUT/xvfb.log)"; exit 1; }

VERSION="$(blender -b --factory-startup --python-expr 'import bpy; print("V=%d.%d" % bpy.app.version[:2])' 2>/dev/null \
    | sed -n 's/^V=//p')"
if [ -n "${SAPE_UI_REUSE_ENV:-}" ]; then
    mkdir -p "$SANDBOX/.config/blender/$VERSION/scripts/sape_geom_blender_data"
    ln -s "$(realpath "$SAPE_UI_REUSE_ENV")" "$SANDBOX/.config/blender/$VERSION/scripts/sape_geom_blender_data/worker_env"
fi

EVENTS=--enable-event-simulate
[ -n "${SAPE_UI_NO_EVENTS:-}" ] && EVENTS=""
echo "running Blender $VERSION with a UI on $DISPLAY_NUM ${EVENTS:+(event simulation on)}..."
set +e
env -u SAPE_GEOM_PYTHON -u PYTHONPATH DISPLAY="$DISPLAY_NUM" HOME="$SANDBOX" PATH="$CLEAN_PATH" \
    SAPE_UI_OUT="$OUT" SAPE_UI_ZIP="$ZIP" \
    timeout 3600 blender $EVENTS --python "$ROOT/scripts/blender_ui_check.py" >"$OUT/blender.log" 2>&1
UI_CODE=$?
set -e
kill "$XVFB_PID" 2>/dev/null || true  # the display's work is done
grep "UI-CHECK:" "$OUT/blender.log" || true
CROP="$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('crop', '640x900+760+0'))" \
    "$OUT/report.json" 2>/dev/null || echo 640x900+760+0)"
for shot in "$OUT"/panel_*.png; do  # the viewport's right part with the sidebar, 256 colours
    [ -f "$shot" ] || continue
    name="$(basename "$shot")"
    convert "$shot" -crop "$CROP" +repage -colors 256 "PNG8:$OUT/sidebar_${name#panel_}" || true
done

echo "headless: setup_worker(wait=True), then blender_batch.py without --worker-python ..."
set +e
env -u SAPE_GEOM_PYTHON -u PYTHONPATH HOME="$SANDBOX" PATH="$CLEAN_PATH" timeout 300 blender -b --python-expr "
import sys, addon_utils, bpy
addon_utils.enable('sape_geom_blender', default_set=True, handle_error=None)
sys.exit(0 if bpy.ops.sape.setup_worker(wait=True) == {'FINISHED'} else 1)" >"$OUT/setup_headless.log" 2>&1
SETUP_CODE=$?
env -u SAPE_GEOM_PYTHON -u PYTHONPATH HOME="$SANDBOX" PATH="$CLEAN_PATH" timeout 1200 blender -b --python-expr "
import bpy
bpy.ops.mesh.primitive_monkey_add()
bpy.context.active_object.modifiers.new('Subdivision', 'SUBSURF')
bpy.data.objects.remove(bpy.data.objects['Cube'])
bpy.ops.wm.save_as_mainfile(filepath='$OUT/suzanne.blend')" >/dev/null 2>&1
env -u SAPE_GEOM_PYTHON -u PYTHONPATH HOME="$SANDBOX" PATH="$CLEAN_PATH" timeout 1200 blender -b "$OUT/suzanne.blend" \
    --python "$ROOT/scripts/blender_batch.py" -- --preset fast --output "$OUT/fitted.blend" >"$OUT/batch.log" 2>&1
BATCH_CODE=$?
set -e
grep -E "worker|fitted|SAPE" "$OUT/setup_headless.log" | tail -2 || true
grep -E "worker Python|fitted" "$OUT/batch.log" || true
echo "UI $UI_CODE, headless set-up $SETUP_CODE, batch $BATCH_CODE; took $(( $(date +%s) - START )) s; files in $OUT:"
ls "$OUT"
# The fit in the UI beside the same fit headless, just run: the add-on's own cost (redraws, previews) on top
# of the worker's, reported, not judged (both are wall times on a shared machine).
/usr/bin/python3 - "$OUT/report.json" "$OUT/batch.log" <<'PY' || true
import json, re, sys
fit = json.load(open(sys.argv[1]))["fit"]
headless = re.findall(r"fitted 1 of 1 object\(s\) in ([0-9.]+) s", open(sys.argv[2]).read())
print(f"fit: {fit['seconds']:.1f} s in the UI (CPU s: Blender {fit['blender_cpu_s']}, worker {fit['worker_cpu_s']}),"
      f" {float(headless[-1]) if headless else float('nan'):.1f} s headless; {fit['last_training_progress']}")
PY
/usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('report:', r.get('ok'), r.get('why')); sys.exit(0 if r.get('ok') else 1)" "$OUT/report.json"
[ "$SETUP_CODE" = 0 ] && [ "$BATCH_CODE" = 0 ]
