"""The add-on's job queue: one worker at a time, results applied on Blender's main thread.

:func:`poll` is the whole event loop. In a Blender with a UI it is a ``bpy.app.timers`` callback; in
the bpy module (tests, ``blender -b``) nothing fires timers, so callers drive it themselves::

    while (dt := runner.poll()) is not None:
        time.sleep(dt)

Items are snapshots taken when queued (arrays already written to disk), so later edits of the user's
objects do not leak into a running fit, and the user's objects are only ever read. A result waits while
an object is in Edit or Sculpt Mode or a render runs (:func:`blocked`), lands only in the file it was
asked for (``generation``; opening a file cancels everything, see ``handlers``) and is one undo step.
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

from . import convert, reports, results
from .job_settings import PROTOCOL_VERSION
from .preview import Preview
from .worker_client import WorkerProcess, protocol_mismatch, worker_threads

POLL_INTERVAL_S = 0.2
PROGRESS_REDRAW_S = 1.0
"""Progress redraws the sidebar at most this often. The sidebar overlaps the 3D view, which redraws with
it: under software OpenGL a redraw costs about 0.15 CPU-s, so five a second took three quarters of a
core from the worker; once a second costs a sixth (measured under Xvfb, Blender 3.4)."""


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
    generation: int = 0  # the file it belongs to (Runner.generation when queued)


@dataclass
class State:
    status: str = ""
    level: str = ""  # of the status: "" while working, INFO, WARNING or ERROR at the end
    error: str = ""  # the last error's one line (the worker's message), "" while none
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
        self.preview = Preview()  # the running fit's live preview object, if any
        self.created_collection = False
        self.generation = 0
        self.pending: list[dict[str, Any]] = []  # events held back while the scene cannot be edited
        self.applied = False  # the running item's result is in the scene
        self.refused = False  # the running worker speaks another protocol: nothing of it is used
        self.redrawn_at = 0.0  # time.monotonic() of the last progress redraw
        self.redraw_owed = False  # progress arrived since then

    # ------------------------------------------------------------------ public
    @property
    def busy(self) -> bool:
        return self.current is not None or bool(self.queue)

    def submit(self, items: list[Item]) -> None:
        if not self.busy:
            self.state = State()
        for item in items:
            item.generation = self.generation
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
            if self.pending:  # a finished result still waiting for Object Mode: it never lands
                self.pending = []
                self.current[1].final = {"event": "cancelled", "reason": "cancelled while waiting"}
        ensure_timer()

    def shutdown(self) -> None:
        """Stop everything now (unregister, file load): no process and no preview object remain."""
        for item in self.queue:
            _remove_dir(item.work_dir)
        self.queue.clear()
        self.pending = []
        if self.current is not None:
            item, worker = self.current
            worker.stop()
            self._finish(item, worker, ok=False)
        self.current = None
        self.drop_preview()
        _redraw()

    def file_changed(self) -> None:
        """Another file is being opened (or File > New): cancel and tidy; later events are dropped."""
        labels = [i.label for i in self.queue] + ([self.current[0].label] if self.current else [])
        self.shutdown()
        self.generation += 1
        self.created_collection = False
        self.state = State()  # the new file's panel starts clean; the status bar says what was cancelled
        if labels:
            reports.notify("WARNING", f"SAPE: {', '.join(labels)} cancelled: another file was opened", show=False)

    def clear_outcome(self) -> None:
        """Forget the last run's outcome (not while busy): another action (a set-up) is the present now."""
        if not self.busy:
            self.state = State()

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
        events, self.pending = self.pending + worker.drain(), []
        for k, event in enumerate(events):
            reason = blocked() if event.get("event") in ("result", "preview") else ""
            if reason and event["event"] == "preview":
                continue  # a later preview will do
            if reason:
                self.pending = events[k:]
                self.state.status = f"{item.label}: result waits until {reason}"
                _redraw()
                break
            self._handle(item, event)
        if self.redraw_owed:
            self._redraw_progress()
        if worker.final is not None and not self.pending:
            self._finish(item, worker, ok=worker.final.get("event") == "result" and self.applied)
            self.current = None
            self._start_next()
            _redraw()  # now that the job is no longer current, so the status bar's "working" goes
        return POLL_INTERVAL_S if self.busy else None

    def _start_next(self) -> None:
        while self.current is None and self.queue:
            item = self.queue.popleft()
            worker = WorkerProcess(
                item.python,
                item.task,
                item.settings,
                item.work_dir,
                item.inputs,
                threads=worker_threads(bpy.app.background),
            )
            try:
                worker.start()
            except (OSError, ValueError) as exc:
                self.notify("ERROR", f"SAPE: {item.label}: {exc}")
                self.state.done += 1
                _remove_dir(item.work_dir)
                continue
            self.current = (item, worker)
            self.applied = self.refused = False
            self.state.progress, self.state.eta_s, self.state.stage = 0.0, None, "starting"
            self.state.status = f"{item.label}: starting worker"
        if self.current is None:
            self.drop_preview()
            self._tidy_collection()

    def _handle(self, item: Item, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if self.refused and kind in ("progress", "preview", "result"):
            return
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
            self.redraw_owed = True
        elif kind == "started":
            if event.get("protocol") != PROTOCOL_VERSION:
                self.notify("ERROR", f"SAPE: {item.label}: {protocol_mismatch(event.get('protocol'))}")
                self.refused = True
                self.current[1].cancel()
                return
            self.state.status = f"{item.label}: {item.task} started"
        elif kind == "preview" and item.kind == "fit" and self.preview.affordable():
            if item.generation == self.generation and self.preview.show(item, Path(event["path"]), self):
                _redraw()
        elif kind == "result":
            if item.generation != self.generation:
                return  # asked for in another file
            try:
                made = APPLY[item.kind](self, item, event)
            except Exception as exc:
                import traceback

                traceback.print_exc()
                self.notify("ERROR", f"SAPE: {item.label}: cannot use the result: {exc}")
                return
            self.applied = True
            self.state.results.append(made)
            results.undo_push(f"SAPE {ACTIONS.get(item.kind, item.kind)} {item.label}")
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
        self.drop_preview()
        self.state.done += 1
        self.state.progress = 1.0 if ok else 0.0
        self.state.eta_s = None
        final = (worker.final or {}).get("event", "")
        if self.state.error:  # "Done" only when everything worked; else the (last) error says why
            self.state.status, self.state.level = self.state.error, "ERROR"
        elif ok:
            self.state.status, self.state.level = "Done", "INFO"
        elif final == "cancelled" or (final == "result" and item.generation != self.generation):
            self.state.status, self.state.level = "Cancelled", "INFO"
        else:
            self.state.status, self.state.level = "Failed", "ERROR"
        _remove_dir(item.work_dir)  # a fit's checkpoint was moved out (results.keep_checkpoint)
        self._tidy_collection()  # its callers redraw once the job is no longer current

    def _redraw_progress(self) -> None:
        """Redraw for progress, at most every :data:`PROGRESS_REDRAW_S` (what is owed is drawn later)."""
        now = time.monotonic()
        if now - self.redrawn_at >= PROGRESS_REDRAW_S:
            self.redrawn_at, self.redraw_owed = now, False
            _redraw()

    def drop_preview(self) -> None:
        """Remove the live preview (and show its source again)."""
        self.preview.drop()

    def results_collection(self, scene):
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
    def notify(self, level: str, text: str, show: bool = True) -> None:
        """Keep a message for the panel (errors become the status) and show it (``reports.notify``)."""
        self.state.messages.append((level, text))
        del self.state.messages[:-50]
        if level == "ERROR":
            self.state.error = text.removeprefix("SAPE: ")
            self.state.status, self.state.level = self.state.error, "ERROR"
        reports.notify(level, text, show=show)


# ---------------------------------------------------------------------------------------- appliers
#: How each kind of item's result reaches the scene (``results``), and its name in the undo history.
APPLY = {
    "fit": results.apply_fit,
    "extract": results.apply_extract,
    "deform": results.apply_deform,
    "deform_mesh": results.apply_deform_mesh,
}
ACTIONS = {"fit": "Fit", "extract": "Re-extract", "deform": "Deform", "deform_mesh": "Deform onto Target"}


# ---------------------------------------------------------------------------------------- helpers
RUNNER = Runner()
RENDERING = {"active": False}  # set by the render handlers (see handlers.py)


def blocked() -> str:
    """Why results cannot go into the scene now ("" when they can): Edit/Sculpt Mode or a render."""
    if RENDERING["active"]:
        return "the render ends"
    for obj in bpy.data.objects:
        if obj.mode in ("EDIT", "SCULPT"):
            return f"'{obj.name}' leaves {obj.mode.title()} Mode"
    return ""


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
    reports.tag_redraw(RUNNER.busy)


def _remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
