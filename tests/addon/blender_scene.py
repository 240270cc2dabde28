"""Helpers of the add-on tests: the scene, the runner's polling, fake worker Pythons, a stand-in layout.

Imported by the test modules of this folder (pytest puts it on ``sys.path``); the ``addon`` fixture is
in ``conftest.py``.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from layout_recorder import Recorder, draw_panels, labels, property_labels  # noqa: F401  (for the tests)

bpy = pytest.importorskip("bpy")

ROOT = Path(__file__).resolve().parents[2]
ADDON_PARENT = ROOT / "blender_addon"
NAME = "sape_geom_blender"

TINY_DEFORM = {
    "calibration_steps": 5,
    "points": 48,
    "snapshot_every": 5,
    "field.num_frequencies": 16,
    "field.hidden_width": 32,
    "progress.grid_resolution": 8,
    "max_target_samples": 200,
    "target_samples": 200,
    "device": "cpu",
}


def runner():
    return importlib.import_module(f"{NAME}.runner")


def drive(timeout: float = 120.0) -> None:
    """What Blender's timer would do: call poll() until it says the queue is empty."""
    poll = runner().poll
    deadline = time.monotonic() + timeout
    while (dt := poll()) is not None:
        assert time.monotonic() < deadline, f"jobs did not finish: {runner().RUNNER.state}"
        time.sleep(dt)


def drive_until(predicate, timeout: float = 60.0) -> None:
    poll = runner().poll
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"condition not reached: {runner().RUNNER.state}"
        assert poll() is not None, f"jobs ended early: {runner().RUNNER.state}"
        time.sleep(0.05)


def add_cube(name="Cube", location=(1.0, 2.0, 3.0), subsurf=True):
    bpy.ops.mesh.primitive_cube_add(size=2.0, location=location)
    obj = bpy.context.active_object
    obj.name = name
    if subsurf:
        obj.modifiers.new("Subdivision", "SUBSURF")
    return obj


def select_only(*objs):
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    for o in objs:
        o.select_set(True)
    bpy.context.view_layer.objects.active = objs[0] if objs else None


def snapshot_scene() -> dict:
    """Everything a failed or cancelled run must leave as it was."""
    objs = {}
    for o in bpy.data.objects:
        entry = {
            "matrix": [tuple(r) for r in o.matrix_world],
            "data": o.data.name if o.data else None,
            "modifiers": [m.name for m in o.modifiers],
            "collections": [c.name for c in o.users_collection],
        }
        if o.type == "MESH":
            co = np.empty(len(o.data.vertices) * 3, np.float32)
            o.data.vertices.foreach_get("co", co)
            entry["co"] = co.tobytes()
        objs[o.name] = entry
    return {
        "objects": objs,
        "collections": sorted(c.name for c in bpy.data.collections),
        "meshes": sorted(m.name for m in bpy.data.meshes),
        "curves": sorted(c.name for c in bpy.data.curves),
    }


def fake_worker(tmp_path: Path, body: str, name: str = "fakepy") -> str:
    """An executable standing in for the worker's Python (called as ``fakepy -m sape_geom.worker JOB``)."""
    path = tmp_path / name
    path.write_text(body)
    path.chmod(0o755)
    return str(path)


FAKE_PYTHON = textwrap.dedent(f"""\
    #!{sys.executable}
    # Speaks the worker protocol without training: fit returns the input mesh.
    import json, os, signal, sys, threading, time
    import numpy as np
    job = json.load(open(sys.argv[-1])); out = job["output_dir"]; s = job["settings"]; fake = s.get("fake", {{}})
    def emit(**e):
        sys.stdout.write(json.dumps(e) + "\\n"); sys.stdout.flush()
    if fake.get("ignore_term"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    cancel = threading.Event()
    def read():
        for line in sys.stdin:
            if line.strip() == "cancel" and not fake.get("ignore_cancel"):
                cancel.set()
    threading.Thread(target=read, daemon=True).start()
    emit(event="started", task=job["task"], protocol=1, pid=os.getpid())
    if job["task"] == "fit_surface":
        d = np.load(job["inputs"]); V, F = d["vertices"], d["faces"]
        steps = 10**9 if fake.get("hang") else 6
        for step in range(1, steps + 1):
            if cancel.is_set():
                emit(event="cancelled", task="fit_surface", reason="cancel requested"); sys.exit(3)
            emit(event="progress", step=step, total=steps, loss=1.0 / step, elapsed_s=0.01 * step, eta_s=1.0, stage="training")
            if step == 2:
                np.savez(out + "/preview_0001.npz", vertices=V * 0.9, faces=F, colors=np.zeros((0, 4), "u1"))
                emit(event="preview", path=out + "/preview_0001.npz", step=step)
                time.sleep(0.5)  # long enough for a poll to show it
            time.sleep(0.02)
        np.savez(out + "/mesh.npz", vertices=V, faces=F, colors=np.full((len(V), 4), 200, "u1"))
        with open(out + "/checkpoint.pt", "wb") as fh:
            np.savez(fh, vertices=V, faces=F)
        emit(event="result", task="fit_surface", mesh=out + "/mesh.npz", checkpoint=out + "/checkpoint.pt", metrics={{"iou": 1.0}})
    elif job["task"] == "extract":
        d = np.load(s["checkpoint"], allow_pickle=False)
        np.savez(out + "/mesh.npz", vertices=d["vertices"], faces=d["faces"], colors=np.zeros((0, 4), "u1"))
        emit(event="result", task="extract", mesh=out + "/mesh.npz")
    """)


def use_python(path: str) -> None:
    bpy.context.preferences.addons[NAME].preferences.worker_python = path


def fit_selected():
    return bpy.ops.sape.fit_selected()


def check_result(source, result, atol):
    from sape_geom_blender import convert

    assert result.users_collection[0].name == "SAPE Results"
    assert len(result.data.vertices) > 0 and len(result.data.polygons) > 0
    assert "sape_level" in result.data.color_attributes
    assert np.allclose(np.array(result.matrix_world), np.array(source.matrix_world))
    # the evaluated source (subdivision applied) in world space, against the result's world bounds
    vertices, _ = convert.mesh_world_arrays(source, bpy.context.evaluated_depsgraph_get())
    lo, hi = convert.mesh_world_bounds(result)
    assert np.allclose(lo, vertices.min(axis=0), atol=atol) and np.allclose(hi, vertices.max(axis=0), atol=atol)


def draw_panel(*names):
    """Calls of the sidebar's panels (default: the main panel and every sub-panel, in order)."""
    from sape_geom_blender import ui

    panels = [c for c in ui.classes if issubclass(c, bpy.types.Panel)]
    return draw_panels([c for c in panels if not names or c.bl_label in names], bpy.context)


def mod(name):
    """The add-on's module ``name`` (as enabled by the ``addon`` fixture)."""
    return importlib.import_module(f"{NAME}.{name}")


def texts(calls) -> str:
    """The texts of the labels among a recorder's ``calls``, joined by spaces."""
    return " ".join(text for text, _icon, _boxed in labels(calls))


def fit_with_fake(tmp_path, obj, fake=None, **settings):
    """Fit Selected on ``obj`` with the fake worker (``fake``: its options) and the panel's ``settings``."""
    use_python(fake_worker(tmp_path, FAKE_PYTHON))
    s = bpy.context.scene.sape_geom
    s.extra_settings = json.dumps({"fake": fake}) if fake else ""
    for key, value in settings.items():
        setattr(s, key, value)
    select_only(obj)
    assert bpy.ops.sape.fit_selected() == {"FINISHED"}
