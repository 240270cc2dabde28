"""The add-on's job queue: one worker at a time, results applied on Blender's main thread.

:func:`poll` is the whole event loop. In a Blender with a UI it is a ``bpy.app.timers`` callback; in
the bpy module (tests, ``blender -b``) nothing fires timers, so callers drive it themselves::

    while (dt := runner.poll()) is not None:
        time.sleep(dt)

Items are snapshots taken when queued (arrays already written to disk), so later edits of the user's
objects do not leak into a running fit, and the user's objects are only ever read.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from . import convert
from .worker_client import WorkerProcess

POLL_INTERVAL_S = 0.2
MAX_ANIMATION_KEYS = 40  # shape keys / keyframes per deformation animation


@dataclass
class Item:
    """One job waiting or running."""

    kind: str  # "fit" | "extract" | "deform"
    label: str  # what the status line calls it (source object name)
    task: str  # worker task
    python: str
    settings: dict[str, Any]
    work_dir: Path
    scene_name: str
    inputs: Path | None = None
    data: dict[str, Any] = field(default_factory=dict)  # kind-specific (matrix, target object, ...)


@dataclass
class State:
    status: str = ""
    progress: float = 0.0  # 0..1 of the running item
    eta_s: float | None = None
    stage: str = ""
    done: int = 0
    total: int = 0
    messages: list[tuple[str, str]] = field(default_factory=list)  # (level, text), newest last
    results: list[str] = field(default_factory=list)  # names of objects made


class Runner:
    def __init__(self) -> None:
        self.queue: deque[Item] = deque()
        self.current: tuple[Item, WorkerProcess] | None = None
        self.state = State()
        self.preview_name: str | None = None
        self.created_collection = False

    # ------------------------------------------------------------------ public
    @property
    def busy(self) -> bool:
        return self.current is not None or bool(self.queue)

    def submit(self, items: list[Item]) -> None:
        if not self.busy:
            self.state = State()
        self.queue.extend(items)
        self.state.total += len(items)
        self.state.status = f"Queued {len(items)} job(s)"
        ensure_timer()

    def cancel(self) -> None:
        """Drop queued items and ask the running worker to stop (escalates to SIGTERM/SIGKILL)."""
        dropped = len(self.queue)
        for item in self.queue:
            _remove_dir(item.work_dir)
        self.queue.clear()
        self.state.total -= dropped
        if self.current is not None:
            self.current[1].cancel()
            self.state.status = "Cancelling..."
        ensure_timer()

    def shutdown(self) -> None:
        """Stop everything now (unregister, file load): no process and no preview object remain."""
        for item in self.queue:
            _remove_dir(item.work_dir)
        self.queue.clear()
        if self.current is not None:
            item, worker = self.current
            worker.stop()
            self._finish(item, worker, ok=False)
        self.current = None
        self._drop_preview()

    def poll(self) -> float | None:
        """Drain worker events and apply them; seconds until the next call, or None when idle."""
        try:
            return self._poll()
        except Exception as exc:  # a timer that raises is unregistered for good: stop cleanly instead
            import traceback

            traceback.print_exc()
            self.notify("ERROR", f"SAPE: internal error: {exc}")
            self.shutdown()
            return None

    # ------------------------------------------------------------------ loop
    def _poll(self) -> float | None:
        if self.current is None:
            self._start_next()
        if self.current is None:
            return None
        item, worker = self.current
        for event in worker.drain():
            self._handle(item, event)
        if worker.final is not None:
            self._finish(item, worker, ok=worker.final.get("event") == "result")
            self.current = None
            self._start_next()
        return POLL_INTERVAL_S if self.busy else None

    def _start_next(self) -> None:
        while self.current is None and self.queue:
            item = self.queue.popleft()
            worker = WorkerProcess(item.python, item.task, item.settings, item.work_dir, item.inputs)
            try:
                worker.start()
            except (OSError, ValueError) as exc:
                self.notify("ERROR", f"SAPE: {item.label}: {exc}")
                self.state.done += 1
                _remove_dir(item.work_dir)
                continue
            self.current = (item, worker)
            self.state.progress, self.state.eta_s, self.state.stage = 0.0, None, "starting"
            self.state.status = f"{item.label}: starting worker"
        if self.current is None:
            self._drop_preview()
            self._tidy_collection()

    def _handle(self, item: Item, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "progress":
            total = max(1, int(event.get("total") or 1))
            step = int(event.get("step") or 0)
            self.state.progress = min(1.0, step / total)
            self.state.eta_s = event.get("eta_s")
            self.state.stage = str(event.get("stage") or "")
            loss = event.get("loss")
            text = f"{item.label}: {self.state.stage} {step}/{total}"
            if loss is not None:
                text += f", loss {loss:.4g}"
            if self.state.eta_s is not None:
                text += f", ETA {format_seconds(self.state.eta_s)}"
            self.state.status = text
            _redraw()
        elif kind == "started":
            self.state.status = f"{item.label}: {item.task} started"
        elif kind == "preview" and item.kind == "fit":
            self._show_preview(item, Path(event["path"]))
        elif kind == "result":
            try:
                made = APPLY[item.kind](self, item, event)
            except Exception as exc:
                import traceback

                traceback.print_exc()
                self.notify("ERROR", f"SAPE: {item.label}: cannot read the result: {exc}")
                return
            self.state.results.append(made)
            self.notify("INFO", f"SAPE: {item.label} done -> {made}")
        elif kind == "error":
            tb = event.get("traceback")
            if tb:
                print(f"SAPE worker traceback ({item.label}):\n{tb}", file=sys.stderr)
            self.notify("ERROR", f"SAPE: {item.label}: {event.get('message', 'the worker failed')}")
        elif kind == "cancelled":
            self.notify("INFO", f"SAPE: {item.label}: cancelled")
            for queued in self.queue:
                _remove_dir(queued.work_dir)
            self.state.total -= len(self.queue)
            self.queue.clear()
        elif kind == "log":
            print(f"SAPE worker: {event.get('text', '')}", file=sys.stderr)

    def _finish(self, item: Item, worker: WorkerProcess, ok: bool) -> None:
        self._drop_preview()
        self.state.done += 1
        self.state.progress = 1.0 if ok else 0.0
        self.state.eta_s = None
        final = (worker.final or {}).get("event", "")
        self.state.status = {"result": "Done", "cancelled": "Cancelled"}.get(final, "Failed")
        if ok and item.kind == "fit":
            # keep only the checkpoint (for Re-extract); inputs and meshes are in the .blend now
            for name in ("inputs.npz", "mesh.npz"):
                _unlink(item.work_dir / name)
        elif item.kind != "fit" or not ok:
            _remove_dir(item.work_dir)
        self._tidy_collection()
        _redraw()

    # ------------------------------------------------------------------ preview
    def _show_preview(self, item: Item, path: Path) -> None:
        try:
            with np.load(path) as data:
                vertices, faces = data["vertices"], data["faces"]
        except (OSError, KeyError, ValueError):
            return  # the worker may already have replaced it; the next one will do
        if len(faces) == 0:
            return
        scene = bpy.data.scenes.get(item.scene_name) or bpy.context.scene
        coll = self._collection(scene)
        matrix = item.data["matrix_world"]
        mesh = convert.build_mesh(f"{item.label}_sape_preview", convert.world_to_local(vertices, matrix), faces)
        obj = bpy.data.objects.get(self.preview_name) if self.preview_name else None
        if obj is None:
            obj = convert.new_object(f"{item.label}_sape_preview", mesh, coll, matrix)
            obj.display_type = "WIRE"
            obj.hide_render = True
            self.preview_name = obj.name
        else:
            convert.replace_mesh(obj, mesh)
        _redraw()

    def _drop_preview(self) -> None:
        if self.preview_name:
            convert.remove_object(bpy.data.objects.get(self.preview_name))
        self.preview_name = None

    def _collection(self, scene):
        existed = bpy.data.collections.get(convert.RESULTS_COLLECTION) is not None
        coll = convert.results_collection(scene)
        self.created_collection = self.created_collection or not existed
        return coll

    def _tidy_collection(self) -> None:
        if self.created_collection and self.current is None:
            coll = bpy.data.collections.get(convert.RESULTS_COLLECTION)
            if coll is not None and not coll.objects and not coll.children:
                bpy.data.collections.remove(coll)
                self.created_collection = False

    # ------------------------------------------------------------------ messages
    def notify(self, level: str, text: str) -> None:
        """Show a message in Blender's report area (via an operator) and keep it for the panel/tests."""
        self.state.messages.append((level, text))
        del self.state.messages[:-50]
        if level == "ERROR":
            self.state.status = text.removeprefix("SAPE: ")
        print(text, file=sys.stderr if level == "ERROR" else sys.stdout)
        try:
            bpy.ops.sape.report(level=level, message=text)
        except Exception:  # no window, or the add-on is being unregistered
            pass


# ---------------------------------------------------------------------------------------- appliers
def _apply_fit(runner: Runner, item: Item, event: dict[str, Any]) -> str:
    with np.load(event["mesh"]) as data:
        vertices, faces, colors = data["vertices"], data["faces"], data["colors"]
    if len(faces) == 0:
        raise ValueError("the extracted surface is empty (try more steps or another preset)")
    scene = bpy.data.scenes.get(item.scene_name) or bpy.context.scene
    matrix = item.data["matrix_world"]
    name = f"{item.label}_sape"
    mesh = convert.build_mesh(name, convert.world_to_local(vertices, matrix), faces, colors if len(colors) else None)
    mesh.materials.append(convert.heat_map_material())
    runner._drop_preview()
    obj = convert.new_object(name, mesh, runner._collection(scene), matrix)
    obj["sape_source"] = item.label
    obj["sape_checkpoint"] = str(event.get("checkpoint", ""))
    obj["sape_resolution"] = int(item.settings.get("resolution", 0))
    for key, value in (event.get("metrics") or {}).items():
        if isinstance(value, (int, float)):
            obj[f"sape_{key}"] = value
    return obj.name


def _apply_extract(runner: Runner, item: Item, event: dict[str, Any]) -> str:
    obj = bpy.data.objects.get(item.data["object"])
    if obj is None:
        raise ValueError(f"object '{item.data['object']}' no longer exists")
    with np.load(event["mesh"]) as data:
        vertices, faces, colors = data["vertices"], data["faces"], data["colors"]
    if len(faces) == 0:
        raise ValueError("the extracted surface is empty")
    matrix = item.data["matrix_world"]
    mesh = convert.build_mesh(obj.data.name, convert.world_to_local(vertices, matrix), faces,
                              colors if len(colors) else None)
    mesh.materials.append(convert.heat_map_material())
    convert.replace_mesh(obj, mesh)
    obj["sape_resolution"] = int(item.settings.get("resolution", 0))
    return obj.name


def _apply_deform(runner: Runner, item: Item, event: dict[str, Any]) -> str:
    with np.load(event["curves"]) as data:
        curve_pts = data["curve"]
        snap_steps, snaps = data["snapshot_steps"], data["snapshots"]
    scene = bpy.data.scenes.get(item.scene_name) or bpy.context.scene
    z = float(item.data.get("z", 0.0))
    scale = float(item.data.get("scale", 1.0))
    center = np.asarray(item.data.get("center", (0.0, 0.0)), dtype=np.float64)

    def to_world(p):
        return np.asarray(p, dtype=np.float64) * scale + center

    name = f"{item.label}_sape"
    curve = convert.build_curve(name, to_world(curve_pts), z)
    obj = convert.new_object(name, curve, runner._collection(scene))
    anim = item.data.get("animate")
    if anim and len(snaps):
        start, end = item.data["frame_start"], item.data["frame_end"]
        seq = [np.asarray(s) for s in snaps]
        if not np.allclose(seq[-1], curve_pts):
            seq.append(np.asarray(curve_pts))
        if len(seq) > MAX_ANIMATION_KEYS:  # e.g. 10k steps kept every 50: keep an even subset
            keep = np.unique(np.linspace(0, len(seq) - 1, MAX_ANIMATION_KEYS).round().astype(int))
            seq = [seq[i] for i in keep]
        frames = np.linspace(start, end, len(seq)) if len(seq) > 1 else np.array([start])
        pairs = [(float(f), to_world(p)) for f, p in zip(frames, seq)]
        if anim == "SHAPE_KEYS":
            convert.animate_with_shape_keys(obj, pairs, z)
        else:
            convert.animate_with_keyframes(obj, pairs, z)
    obj["sape_steps"] = int(snap_steps[-1]) if len(snap_steps) else int(item.settings.get("steps", 0))
    return obj.name


APPLY = {"fit": _apply_fit, "extract": _apply_extract, "deform": _apply_deform}


# ---------------------------------------------------------------------------------------- helpers
RUNNER = Runner()


def poll() -> float | None:
    """The timer callback; also what tests and batch scripts call in a loop."""
    return RUNNER.poll()


def ensure_timer() -> None:
    try:
        if not bpy.app.timers.is_registered(poll):
            bpy.app.timers.register(poll, first_interval=0.05)
    except Exception:
        pass


def stop_timer() -> None:
    try:
        if bpy.app.timers.is_registered(poll):
            bpy.app.timers.unregister(poll)
    except Exception:
        pass


def run_until_idle(timeout: float = 600.0) -> None:
    """Drive :func:`poll` without an event loop (bpy module, ``blender -b``)."""
    deadline = time.monotonic() + timeout
    while (dt := poll()) is not None:
        if time.monotonic() > deadline:
            RUNNER.cancel()
            deadline = time.monotonic() + 30.0
        time.sleep(dt)


def new_work_dir(base: str = "") -> Path:
    root = Path(bpy.path.abspath(base)) if base else Path(tempfile.gettempdir()) / "sape_geom_blender"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="job_", dir=root))


def format_seconds(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _redraw() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
