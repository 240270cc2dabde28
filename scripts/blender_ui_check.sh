#!/usr/bin/env bash
# Real-Blender check of the SAPE add-on as a new user meets it (not part of `make test`).
#
#   scripts/blender_ui_check.sh OUT_DIR
#
# Installs Debian's Blender (3.4), Xvfb and numpy when missing, builds the add-on zip and starts Blender
# with a UI on a virtual display, with a clean user profile (HOME is a new folder) and the system PATH.
# There scripts/blender_ui_check.py installs the zip, presses Set Up Worker (pip reaching the machine's
# configured package index: torch and the other dependencies into the profile's user folder), fits a
# subdivided Suzanne with the fast preset (Fit Selected), and
# makes a worker fail to see its message in the panel, the status bar and the Info editor. Then the
# headless path runs in the same profile: `blender -b --python-expr "...setup_worker(wait=True)"` (which
# now reuses the environment) and scripts/blender_batch.py without --worker-python. Writes to OUT_DIR:
#   panel_setup.png, panel_training.png, panel_result.png, panel_error.png   the window at each stage
#   sidebar_*.png     the same, cropped to the sidebar and reduced (what README shows, < 300 KB)
#   report.json       what happened (times, messages, result), blender.log, batch.log
# SAPE_UI_REUSE_ENV=DIR links an existing environment in instead of building one (faster iteration;
# Set Up Worker then checks and reuses it). SAPE_UI_FIT_RATIO (default 2.0): how much longer the fit may take
# in the UI than the same fit headless, run afterwards in the same check. SAPE_UI_NO_EVENTS=1 starts Blender without event simulation,
# which keeps Blender busy on a whole core under Xvfb: the fit's time is then what a user's idle Blender
# gives, but the screenshots show the sidebar on its first tab instead of SAPE's. Exit status 0 only when every step worked.
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
DISPLAY_NUM=":$((90 + RANDOM % 9))"
Xvfb "$DISPLAY_NUM" -screen 0 1400x900x24 +extension GLX -nolisten tcp >"$OUT/xvfb.log" 2>&1 &
XVFB_PID=$!
cleanup() { kill "$XVFB_PID" 2>/dev/null || true; rm -rf "$SANDBOX"; }
trap cleanup EXIT
sleep 1

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
    timeout 1500 blender $EVENTS --python "$ROOT/scripts/blender_ui_check.py" >"$OUT/blender.log" 2>&1
UI_CODE=$?
set -e
grep "UI-CHECK:" "$OUT/blender.log" || true
CROP="$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('crop', '640x900+760+0'))" \
    "$OUT/report.json" 2>/dev/null || echo 640x900+760+0)"
for shot in setup training result error; do
    if [ -f "$OUT/panel_$shot.png" ]; then  # the viewport's right part with the sidebar, 256 colours
        convert "$OUT/panel_$shot.png" -crop "$CROP" +repage -colors 256 "PNG8:$OUT/sidebar_$shot.png" || true
    fi
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
/usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('report:', r.get('ok'), r.get('why')); sys.exit(0 if r.get('ok') else 1)" "$OUT/report.json"
# The fit in the UI against the same fit headless, just run: the add-on's own cost (redraws, previews)
# on top of the worker's. Event simulation keeps Blender on about one of the two cores by itself.
/usr/bin/python3 - "$OUT/report.json" "$OUT/batch.log" "${SAPE_UI_FIT_RATIO:-2.0}" <<'PY'
import json, re, sys
ui_s = json.load(open(sys.argv[1]))["fit"]["seconds"]
headless_s = float(re.findall(r"fitted 1 of 1 object\(s\) in ([0-9.]+) s", open(sys.argv[2]).read())[-1])
ratio, limit = ui_s / headless_s, float(sys.argv[3])
print(f"fit: {ui_s:.1f} s in the UI, {headless_s:.1f} s headless: {ratio:.2f}x (at most {limit:.2f}x)")
sys.exit(0 if ratio <= limit else 1)
PY
[ "$SETUP_CODE" = 0 ] && [ "$BATCH_CODE" = 0 ]
