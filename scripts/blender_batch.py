"""Fit SAPE occupancy fields to mesh objects of a .blend file without the UI.

    blender -b scene.blend --python scripts/blender_batch.py -- \\
        [--objects NAME [NAME ...]] [--preset fast] [--worker-python PATH] --output fitted.blend
    python scripts/blender_batch.py -- --blend scene.blend ... --output fitted.blend   # the bpy module

Fits the named mesh objects (default: every mesh object) through the SAPE add-on and saves the file,
with the results in the "SAPE Results" collection, to --output; the opened file is not overwritten.
Training runs in a worker process, so Blender's own Python needs no torch (Debian's Blender 3.4 works).
The worker's interpreter is --worker-python, else $SAPE_GEOM_PYTHON, else the add-on preference, else
the environment Set Up Worker made (``bpy.ops.sape.setup_worker(wait=True)`` makes it headless), else a
source checkout's .venv. Uses the installed add-on when one is enabled, else the one in this repository.
Exit status: 0 when every object was fitted, 1 when some failed, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

import bpy

ADDON = "sape_geom_blender"
REPO_ADDONS = Path(__file__).resolve().parents[1] / "blender_addon"


def parse_args(argv: list[str], job_settings) -> argparse.Namespace:
    """The script's options; preset and device names come from the add-on's ``job_settings``."""
    parser = argparse.ArgumentParser(
        prog="blender -b FILE --python scripts/blender_batch.py --",
        description="Fit SAPE occupancy fields to mesh objects and save a new .blend.",
    )
    parser.add_argument("--objects", nargs="+", default=None, help="mesh objects to fit (default: all meshes)")
    parser.add_argument(
        "--preset",
        default=job_settings.DEFAULT_PRESET,
        choices=[p[0] for p in job_settings.PRESETS],
        help=f"occupancy preset (default: {job_settings.DEFAULT_PRESET})",
    )
    parser.add_argument("--encoding", default=None, help="encoding (default: the panel's, sape)")
    parser.add_argument("--resolution", type=int, default=None, help="extraction grid size")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    parser.add_argument("--time-budget", type=float, default=None, help="training seconds per object")
    parser.add_argument("--device", default=None, choices=[d[0] for d in job_settings.DEVICES])
    parser.add_argument("--extra", default="", help="JSON object merged into the worker job settings")
    parser.add_argument("--worker-python", default="", help="Python with sape_geom and torch")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up (cancel) after this many seconds")
    parser.add_argument(
        "--blend", default="", help="open this .blend first (for the bpy module, which has no file argument)"
    )
    parser.add_argument("--output", required=True, help="the .blend file to write")
    return parser.parse_args(argv)


def script_args() -> list[str]:
    return sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []


def enable_addon():
    """The enabled add-on module: an installed extension / add-on if there is one, else the repo's."""
    import addon_utils

    for name in bpy.context.preferences.addons.keys():
        if name == ADDON or name.endswith("." + ADDON):
            return importlib.import_module(name)
    if str(REPO_ADDONS) not in sys.path:
        sys.path.insert(0, str(REPO_ADDONS))
    module = addon_utils.enable(ADDON, default_set=True, handle_error=None)
    if module is None:
        raise SystemExit(f"blender_batch: cannot enable the {ADDON} add-on from {REPO_ADDONS}")
    return module


def main() -> int:
    addon = enable_addon()
    try:
        args = parse_args(script_args(), importlib.import_module(addon.__name__ + ".job_settings"))
    except SystemExit as exc:
        return 2 if exc.code else 0
    if args.blend:
        bpy.ops.wm.open_mainfile(filepath=str(Path(args.blend).resolve()))
    runner = importlib.import_module(addon.__name__ + ".runner")
    paths = importlib.import_module(addon.__name__ + ".paths")

    scene = bpy.context.scene
    if args.objects:
        missing = [n for n in args.objects if n not in bpy.data.objects]
        if missing:
            print(f"blender_batch: no object named {', '.join(missing)}", file=sys.stderr)
            return 2
        targets = [bpy.data.objects[n] for n in args.objects]
    else:
        targets = [o for o in scene.objects if o.type == "MESH"]
    if not targets:
        print("blender_batch: the file has no mesh objects to fit", file=sys.stderr)
        return 2

    # worker interpreter: --worker-python, then $SAPE_GEOM_PYTHON, then the preference / auto-detection
    python = args.worker_python or os.environ.get("SAPE_GEOM_PYTHON", "")
    if python:
        worker_client = importlib.import_module(addon.__name__ + ".worker_client")
        problem = worker_client.check_python(python)
        if problem:
            where = "--worker-python" if args.worker_python else "SAPE_GEOM_PYTHON"
            print(f"blender_batch: {where}: {problem}", file=sys.stderr)
            return 2
    prefs = paths.get_preferences()
    saved_python = prefs.worker_python if prefs is not None else ""
    if python and prefs is not None:
        prefs.worker_python = python  # in memory only: background Blender does not save preferences
    worker, where = paths.resolve_worker_python()
    print(f"blender_batch: worker Python {worker or '(none)'} ({where})")

    s = scene.sape_geom
    s.preset = args.preset
    for attr, value in (("encoding", args.encoding), ("resolution", args.resolution), ("device", args.device)):
        if value is not None:
            setattr(s, attr, value)
    if args.steps is not None:
        s.budget, s.steps = "STEPS", args.steps
    elif args.time_budget is not None:
        s.budget, s.time_budget = "TIME", args.time_budget
    s.live_preview = False
    if args.extra:
        json.loads(args.extra)  # fail early on bad JSON
        s.extra_settings = args.extra

    selection = [(o, o.select_get()) for o in bpy.context.view_layer.objects]
    active = bpy.context.view_layer.objects.active
    for o, _ in selection:
        o.select_set(False)
    for o in targets:
        if o.name in bpy.context.view_layer.objects:
            o.select_set(True)
    bpy.context.view_layer.objects.active = targets[0]
    t0 = time.monotonic()
    try:
        result = bpy.ops.sape.fit_selected()
    except RuntimeError as exc:  # the operator refused (reported as an error)
        print(f"blender_batch: {exc}", file=sys.stderr)
        result = {"CANCELLED"}
    finally:
        for o, was in selection:
            o.select_set(was)
        bpy.context.view_layer.objects.active = active
    if result != {"FINISHED"}:
        return 1

    last = ""
    deadline = time.monotonic() + args.timeout
    while (dt := runner.poll()) is not None:
        status = runner.RUNNER.state.status
        if status != last and not status.endswith("starting worker"):
            print(f"blender_batch: {status}", flush=True)
            last = status
        if time.monotonic() > deadline:
            print("blender_batch: timeout, cancelling", file=sys.stderr)
            runner.RUNNER.cancel()
            deadline = float("inf")
        time.sleep(dt)
    state = runner.RUNNER.state
    if prefs is not None:
        prefs.worker_python = saved_python
    errors = [text for level, text in state.messages if level == "ERROR"]
    output = Path(bpy.path.abspath(args.output)).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(output), copy=True)
    print(
        f"blender_batch: fitted {len(state.results)} of {len(targets)} object(s) in "
        f"{time.monotonic() - t0:.1f} s: {', '.join(state.results) or 'none'}; saved {output}"
    )
    for text in errors:
        print(f"blender_batch: {text}", file=sys.stderr)
    return 0 if len(state.results) == len(targets) and not errors else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.exit(code)
