"""The worker's protocol: this documentation, ``PROTOCOL_VERSION`` and the exit codes, the event writer
(:class:`EventStream`) and the job-file reader (:func:`read_job`); the entry point is in :mod:`.main`.

The worker runs one sape_geom job in its own process and streams its events as JSON lines. This is
the face of the library that the Blender add-on (and any other front end that must keep torch out of
its own process) talks to. It never imports ``bpy``; torch is imported only inside the job.

Usage::

    python -m sape_geom.app.worker JOB.json

Job file
--------
A small JSON object::

    {
      "task": "fit_surface" | "extract" | "deform" | "deform_mesh" | "check",
      "settings": {...},              # task options, see below
      "inputs": "in.npz",             # input arrays (relative paths are relative to the job file)
      "output_dir": "out",            # where result files go (created; default: the job file's folder)
      "stop_on_stdin_close": false    # true: treat end-of-file on stdin as "cancel" (the parent died)
    }

Settings and input arrays per task
----------------------------------
An unknown setting, a missing required one or a value of the wrong type is an ``error`` event naming
it (the settings are parsed into one dataclass per task in ``sape_geom.app.worker.settings``).

``check``
    No inputs. Reports the Python and torch versions and the devices torch can use.
``fit_surface``
    inputs: ``vertices`` (V, 3) float, ``faces`` (F, 3) int: a triangle mesh in any frame.
    settings: ``preset`` (str, default ``"fast"``); ``overrides`` (dict passed to
    ``occupancy_preset(preset, **overrides)``: encoding, sigma, steps, time_budget, device, seed,
    resolution); ``config`` (dict of dotted keys applied with ``sape_geom.config.replace`` for fields the
    overrides do not reach); ``resolution`` (extraction grid, default: the config's); ``colors`` (bool, default
    true); ``keep_largest`` (bool, default false: drop all but the largest piece); ``face_budget`` (int or
    null: stop with an error when the field would give more faces, a noisy field; null = 20 x resolution^2 (at least 1M),
    0 = no limit); ``preview_every_s`` (float, default 3; 0 turns previews off); ``preview_resolution`` (default 48).
    Results: ``mesh.npz`` (``vertices`` (V, 3) float32 in the input's frame, ``faces`` (F, 3) int32,
    ``colors`` (V, 4) uint8 RGBA heat-map of the SAPE levels, empty when colours are off) and
    ``checkpoint.pt`` (load it with ``OccupancyFit.load``).
``extract``
    No inputs. settings: ``checkpoint`` (path), ``resolution`` (default: the fit's), ``colors``, ``keep_largest``,
    ``face_budget`` (null: the fit's), ``device``.
    Result: ``mesh.npz`` as above.
``deform``
    inputs: ``target_points`` (N, 2) float, optional ``target_offsets`` (K + 1,) int splitting it into K
    loops (outer contours and holes, found by nesting), optional ``source_points`` (M, 2) float (absent:
    the library's default circle, one per loop). Instead of ``target_points`` the settings may name
    ``target_image``, a silhouette image (or polyline file) read with ``sape_geom.curve.load_contours``
    (every loop) and normalised (centred, radius 1, y up); results are then in that normalised frame.
    settings: ``config`` (dict for ``DeformConfig``, dotted keys allowed), ``steps`` (shortcut for the
    config's step count). Every loop is deformed from its own source.
    Result: ``curves.npz`` with ``curve`` (P, 2) float32, ``levels`` (P,) or empty,
    ``snapshot_steps`` (S,) int64, ``snapshots`` (S, P, 2) float32, ``target`` (N, 2) float32, all of
    the largest outer loop; and every loop stacked: ``contour_points`` (sum P, 2), ``contour_offsets``
    (K + 1,), ``contour_holes`` (K,) bool, ``contour_levels`` (sum P,) or empty, ``contour_snapshots``
    (S, sum P, 2), ``contour_targets`` (sum N, 2) with ``contour_target_offsets`` (K + 1,).
``deform_mesh``
    inputs: ``source_vertices`` (V, 3) float, ``source_faces`` (F, 3) int, ``target_vertices``,
    ``target_faces``: two triangle meshes, each in any frame (docs/method.md §6.5).
    settings: ``config`` (dict for ``MeshDeformConfig``, dotted keys allowed), ``steps`` and
    ``snapshots`` (shortcuts for the config's). Only vertex positions change.
    Result: ``deformed.npz`` with ``vertices`` (V, 3) float32 in the target's frame, in the source's
    order, ``faces`` (F, 3) int32 (the source's), ``levels`` (V,) SAPE open fraction or empty,
    ``snapshot_steps`` (S,) int64 and ``snapshots`` (S, V, 3) float32 (the start, N evenly, the end).

Events (stdout, one JSON object per line, always with an ``"event"`` key)
------------------------------------------------------------------------
``{"event": "started", "protocol": 1, "task": ..., "pid": ...}``
    First line, before any heavy import.
``{"event": "progress", "step", "total", "loss", "elapsed_s", "eta_s", "stage"}``
    At most about ten per second; ``eta_s`` may be null.
``{"event": "preview", "path", "step"}``
    ``path`` is an npz like ``mesh.npz`` (no colours) from a coarse extraction, for live display.
``{"event": "result", "task", ...paths and plain values...}``
    ``fit_surface``: ``mesh``, ``checkpoint``, ``metrics``; ``extract``: ``mesh``; ``deform``:
    ``curves``, ``metrics``, ``contours`` (number of loops); ``deform_mesh``: ``mesh``, ``metrics``; ``check``: ``python``, ``executable``,
    ``sape_geom``, ``torch`` (version or null), ``devices`` (list such as ``["cpu", "cuda:0"]``),
    ``device_names``, ``ok``, ``reason``.
``{"event": "cancelled", "task"}``
    The job stopped because it was asked to; not an error.
``{"event": "error", "message", "type", "traceback"}``
    ``message`` is one line meant for the user.

Exit status: 0 after ``result``, 1 after ``error``, 2 when the job file itself cannot be read (an
``error`` event is still written), 3 after ``cancelled``.

Cancelling: write the line ``cancel`` to the worker's stdin, or send SIGTERM (SIGINT too). Training
checks between steps, labelling between chunks of points and extraction between batches of queries
(each well under two seconds), and the job ends with a ``cancelled`` event; a second SIGTERM ends the
process at once. ``output_dir`` is checked before any work: one that cannot be written is an ``error``.

Only the protocol is written to stdout: while the job runs, ``sys.stdout`` and file descriptor 1 are
redirected to stderr, so prints from libraries (and from C code) cannot corrupt the stream.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ...fileio import json_safe
from .registry import TASKS
from .settings import JobError

PROTOCOL_VERSION = 1

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_JOB = 2
EXIT_CANCELLED = 3


# --------------------------------------------------------------------------------------------------
# Output channel
# --------------------------------------------------------------------------------------------------


class EventStream:
    """Writes protocol events to a private copy of the original stdout; thread-safe."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps(json_safe({"event": event, **fields}), allow_nan=False)
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (BrokenPipeError, ValueError):  # the reader went away; nothing left to tell
                pass


# --------------------------------------------------------------------------------------------------
# Job file
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobFile:
    """A read and checked job file; its paths are absolute."""

    task: str
    settings: Mapping[str, Any]
    inputs: Path | None
    output_dir: Path
    stop_on_stdin_close: bool


def read_job(path: str | os.PathLike) -> JobFile:
    """Read and check a job file; relative paths become absolute against the job file's folder."""
    job_path = Path(path)
    try:
        job = json.loads(job_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JobError(f"job file not found: {job_path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JobError(f"cannot read job file {job_path}: {exc}") from None
    if not isinstance(job, dict):
        raise JobError(f"job file {job_path} must hold a JSON object, found {type(job).__name__}")
    task = job.get("task")
    if task not in TASKS:
        raise JobError(f"unknown task {task!r} in {job_path}; choose one of: {', '.join(TASKS)}")
    settings = job.get("settings", {}) or {}
    if not isinstance(settings, dict):
        raise JobError(f"'settings' must be a JSON object, found {type(settings).__name__}")
    base = job_path.resolve().parent
    inputs = job.get("inputs")
    return JobFile(
        task=task,
        settings=settings,
        inputs=None if inputs in (None, "") else base / inputs,
        output_dir=base / (job.get("output_dir") or base),
        stop_on_stdin_close=bool(job.get("stop_on_stdin_close", False)),
    )
