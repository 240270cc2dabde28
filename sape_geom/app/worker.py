"""Run one sape_geom job in its own process and stream its events as JSON lines.

This is the face of the library that the Blender add-on (and any other front end that must keep torch
out of its own process) talks to. It never imports ``bpy``; torch is imported only inside the job.

Usage::

    python -m sape_geom.app.worker JOB.json

Job file
--------
A small JSON object::

    {
      "task": "fit_surface" | "extract" | "deform" | "check",
      "settings": {...},              # task options, see below
      "inputs": "in.npz",             # input arrays (relative paths are relative to the job file)
      "output_dir": "out",            # where result files go (created; default: the job file's folder)
      "stop_on_stdin_close": false    # true: treat end-of-file on stdin as "cancel" (the parent died)
    }

Settings and input arrays per task
----------------------------------
``check``
    No inputs. Reports the Python and torch versions and the devices torch can use.
``fit_surface``
    inputs: ``vertices`` (V, 3) float, ``faces`` (F, 3) int: a triangle mesh in any frame.
    settings: ``preset`` (str, default ``"fast"``); ``overrides`` (dict passed to
    ``occupancy_preset(preset, **overrides)``: encoding, sigma, steps, time_budget, device, seed,
    resolution); ``config`` (dict of dotted keys applied with ``sape_geom.config.replace`` for fields the
    overrides do not reach); ``resolution`` (extraction grid, default: the config's); ``colors`` (bool, default
    true); ``keep_largest`` (bool, default false: drop all but the largest piece);
    ``preview_every_s`` (float, default 3; 0 turns previews off); ``preview_resolution`` (default 48).
    Results: ``mesh.npz`` (``vertices`` (V, 3) float32 in the input's frame, ``faces`` (F, 3) int32,
    ``colors`` (V, 4) uint8 RGBA heat-map of the SAPE levels, empty when colours are off) and
    ``checkpoint.pt`` (load it with ``OccupancyFit.load``).
``extract``
    No inputs. settings: ``checkpoint`` (path), ``resolution`` (default: the fit's), ``colors``, ``keep_largest``,
    ``device``.
    Result: ``mesh.npz`` as above.
``deform``
    inputs: ``target_points`` (N, 2) float, optional ``source_points`` (M, 2) float (absent: the
    library's default circle). Instead of ``target_points`` the settings may name ``target_image``, a
    silhouette image (or polyline file) read with ``sape_geom.curve.load_contour`` and normalised
    (centred, radius 1, y up); results are then in that normalised frame. settings: ``config`` (dict for
    ``DeformConfig``, dotted keys allowed), ``steps`` (shortcut for the config's step count).
    Result: ``curves.npz`` with ``curve`` (P, 2) float32, ``levels`` (P,) or empty,
    ``snapshot_steps`` (S,) int64, ``snapshots`` (S, P, 2) float32, ``target`` (N, 2) float32.

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
    ``curves``, ``metrics``; ``check``: ``python``, ``executable``, ``sape_geom``, ``torch`` (version or
    null), ``devices`` (list such as ``["cpu", "cuda:0"]``), ``device_names``, ``ok``, ``reason``.
``{"event": "cancelled", "task"}``
    The job stopped because it was asked to; not an error.
``{"event": "error", "message", "type", "traceback"}``
    ``message`` is one line meant for the user.

Exit status: 0 after ``result``, 1 after ``error``, 2 when the job file itself cannot be read (an
``error`` event is still written), 3 after ``cancelled``.

Cancelling: write the line ``cancel`` to the worker's stdin, or send SIGTERM (SIGINT too). Training
checks between steps and ends with a ``cancelled`` event; a second SIGTERM ends the process at once.

Only the protocol is written to stdout: while the job runs, ``sys.stdout`` and file descriptor 1 are
redirected to stderr, so prints from libraries (and from C code) cannot corrupt the stream.
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, TextIO

PROTOCOL_VERSION = 1
TASKS = ("check", "fit_surface", "extract", "deform")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_JOB = 2
EXIT_CANCELLED = 3


class JobError(Exception):
    """The job file or its inputs cannot be used; the message is shown to the user as it is."""


# --------------------------------------------------------------------------------------------------
# Output channel and cancel flag
# --------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars / arrays and paths."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


class EventStream:
    """Writes protocol events to a private copy of the original stdout; thread-safe."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, event: str, **fields: Any) -> None:
        fields = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in fields.items()}
        line = json.dumps({"event": event, **fields}, default=_plain)
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (BrokenPipeError, ValueError):  # the reader went away; nothing left to tell
                pass


def _take_over_stdout() -> TextIO:
    """Keep fd 1 for the protocol only: duplicate it, then point fd 1 and ``sys.stdout`` at stderr."""
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(proto_fd, "w", buffering=1, encoding="utf-8")


class CancelFlag:
    """Set by a ``cancel`` line on stdin, by SIGTERM/SIGINT, or (optionally) by stdin closing."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def watch_stdin(self, stream: TextIO, stop_on_close: bool) -> threading.Thread:
        def read() -> None:
            try:
                for line in stream:
                    if line.strip().lower() == "cancel":
                        self.set("cancel requested")
            except (OSError, ValueError):
                pass
            if stop_on_close:
                self.set("the parent process closed the worker's input")

        thread = threading.Thread(target=read, name="sape-worker-stdin", daemon=True)
        thread.start()
        return thread

    def install_signal_handlers(self) -> None:
        def handle(signum, _frame):
            if self.is_set() and signum == signal.SIGTERM:
                os._exit(128 + signum)  # second request: stop now
            self.set(f"signal {signal.Signals(signum).name}")

        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, handle)
            except (ValueError, OSError):  # not the main thread, or unsupported here
                pass


# --------------------------------------------------------------------------------------------------
# Job file
# --------------------------------------------------------------------------------------------------


def read_job(path: str | os.PathLike) -> dict[str, Any]:
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
    out = Path(job.get("output_dir") or base)
    return {
        "task": task,
        "settings": settings,
        "inputs": None if inputs in (None, "") else _resolve(base, inputs),
        "output_dir": out if out.is_absolute() else base / out,
        "stop_on_stdin_close": bool(job.get("stop_on_stdin_close", False)),
    }


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def _load_inputs(path: Path | None, required: tuple[str, ...]) -> dict[str, Any]:
    import numpy as np

    if path is None:
        if required:
            raise JobError(f"this task needs an 'inputs' npz with: {', '.join(required)}")
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise JobError(f"input file not found: {path}") from None
    except Exception as exc:
        raise JobError(f"cannot read input arrays from {path}: {exc}") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise JobError(f"input file {path} lacks array(s) {', '.join(missing)}; found: {', '.join(arrays) or 'none'}")
    return arrays


# --------------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------------


class Context:
    """What a task gets: settings, inputs, output folder, the event stream and the cancel flag."""

    def __init__(self, job: dict[str, Any], events: EventStream, cancel: CancelFlag):
        self.job = job
        self.settings: dict[str, Any] = job["settings"]
        self.output_dir: Path = job["output_dir"]
        self.events = events
        self.cancel = cancel

    def callbacks(self, on_model: Callable[[Any], None] | None = None):
        """``TrainCallbacks`` that stream throttled progress and answer the cancel flag."""
        from ..nn.trainer import TrainCallbacks

        last = [0.0]

        def on_progress(info) -> None:
            now = time.monotonic()
            final = info.step >= info.total
            if final or now - last[0] >= 0.1:
                last[0] = now
                self.events.emit(
                    "progress",
                    step=int(info.step),
                    total=int(info.total),
                    loss=_float_or_none(info.loss),
                    elapsed_s=_float_or_none(info.elapsed_s),
                    eta_s=_float_or_none(info.eta_s),
                    stage=str(info.stage),
                )
            if on_model is not None:
                on_model(info)

        return TrainCallbacks(on_progress=on_progress, should_cancel=self.cancel.is_set)


def _float_or_none(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _save_mesh(path: Path, mesh, colors: bool) -> Path:
    import numpy as np

    vertices = np.asarray(mesh.vertices, dtype=np.float32).reshape(-1, 3)
    faces = np.asarray(mesh.faces, dtype=np.int32).reshape(-1, 3)
    rgba = np.zeros((0, 4), dtype=np.uint8)
    if colors:
        vc = getattr(getattr(mesh, "visual", None), "vertex_colors", None)
        if vc is not None and len(vc) == len(vertices) and len(vertices):
            rgba = np.asarray(vc, dtype=np.uint8).reshape(len(vertices), -1)
            if rgba.shape[1] == 3:
                rgba = np.concatenate([rgba, np.full((len(rgba), 1), 255, np.uint8)], axis=1)
    tmp = path.with_name(path.stem + ".part.npz")
    np.savez(tmp, vertices=vertices, faces=faces, colors=rgba)
    os.replace(tmp, path)  # readers never see a half-written file
    return path


def task_check(ctx: Context) -> dict[str, Any]:
    from .. import __version__

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "sape_geom": __version__,
        "torch": None,
        "devices": [],
        "device_names": {},
        "ok": False,
        "reason": "",
    }
    try:
        import torch
    except Exception as exc:
        info["reason"] = f"torch cannot be imported in {sys.executable}: {exc}"
        return info
    info["torch"] = torch.__version__
    devices = ["cpu"]
    names = {"cpu": platform.processor() or platform.machine()}
    try:
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                devices.append(f"cuda:{i}")
                names[f"cuda:{i}"] = torch.cuda.get_device_name(i)
    except Exception as exc:  # a broken driver must not hide the CPU
        info["reason"] = f"CUDA probe failed: {exc}"
    try:
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            devices.append("mps")
            names["mps"] = "Apple Metal"
    except Exception:
        pass
    info["devices"] = devices
    info["device_names"] = names
    info["ok"] = True
    return info


def task_fit_surface(ctx: Context) -> dict[str, Any]:
    import numpy as np

    arrays = _load_inputs(ctx.job["inputs"], ("vertices", "faces"))  # checked before the heavy imports
    vertices = np.asarray(arrays["vertices"], dtype=np.float64)
    faces = np.asarray(arrays["faces"], dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
        raise JobError(f"'vertices' must be a non-empty (V, 3) array, got shape {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise JobError(f"'faces' must be a non-empty (F, 3) array of triangles, got shape {faces.shape}")
    if not np.isfinite(vertices).all():
        raise JobError("'vertices' contains NaN or infinite values")
    import trimesh

    from .. import config as config_mod
    from ..tasks.occupancy import fit_occupancy, occupancy_preset

    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)

    s = ctx.settings
    config = occupancy_preset(s.get("preset", "fast"), **dict(s.get("overrides") or {}))
    if s.get("config"):
        config = config_mod.replace(config, **dict(s["config"]))

    preview = _Previewer(ctx, every_s=float(s.get("preview_every_s", 3.0)),
                         resolution=int(s.get("preview_resolution", 48)), mesh=mesh, config=config)
    fit = fit_occupancy(mesh, config, callbacks=ctx.callbacks(on_model=preview))

    ctx.events.emit("progress", step=1, total=1, loss=None, elapsed_s=None, eta_s=0.0, stage="extract")
    colors = bool(s.get("colors", True))
    out = fit.extract(resolution=_resolution(s), colors=colors, keep_largest=bool(s.get("keep_largest", False)))
    preview.clean()
    _check_surface(out, s)
    mesh_path = _save_mesh(ctx.output_dir / "mesh.npz", out, colors)
    checkpoint = ctx.output_dir / "checkpoint.pt"
    fit.save(checkpoint)
    stats = getattr(fit, "stats", None)
    metrics = dict(getattr(fit, "timings", None) or {})
    if stats is not None:
        metrics.update(steps=getattr(stats, "steps", None), final_loss=getattr(stats, "final_loss", None))
    metrics.update(vertices=len(out.vertices), faces=len(out.faces))
    return {"mesh": str(mesh_path), "checkpoint": str(checkpoint), "metrics": _plain_metrics(metrics)}


def _check_surface(mesh, settings: dict[str, Any]) -> None:
    if len(mesh.faces) == 0:
        raise JobError(
            f"the fitted field has no surface at resolution {settings.get('resolution') or 'default'}: "
            "train longer (more steps or a larger time budget) or try another preset"
        )


def _resolution(settings: dict[str, Any]) -> int | None:
    """Extraction grid size from the settings; None = the config's own."""
    value = settings.get("resolution")
    return None if value in (None, 0) else int(value)


class _Previewer:
    """Coarse extraction every few seconds from the model being trained, written as an npz."""

    def __init__(self, ctx: Context, every_s: float, resolution: int, mesh=None, config=None):
        self.ctx = ctx
        self.mesh = mesh
        self.config = config
        self.every_s = every_s
        self.resolution = resolution
        self.last = time.monotonic()
        self.count = 0
        self.paths: list[Path] = []
        self.failed = False

    def __call__(self, info) -> None:
        if self.every_s <= 0 or self.failed or getattr(info, "model", None) is None:
            return
        now = time.monotonic()
        if now - self.last < self.every_s or info.step >= info.total:
            return
        try:
            from ..tasks.occupancy import preview_mesh

            normalization = getattr(info, "normalization", None)
            if normalization is None:  # the frame fit_occupancy trains in (docs/method.md §6.3)
                from ..mesh.io import normalization_for

                normalization = normalization_for(self.mesh)

            mesh = preview_mesh(info.model, normalization, self.config, resolution=self.resolution)
            if len(mesh.faces) == 0:
                return
            self.count += 1
            path = _save_mesh(self.ctx.output_dir / f"preview_{self.count:04d}.npz", mesh, colors=False)
        except Exception as exc:  # a preview is a nicety: say so once on stderr and stop trying
            self.failed = True
            print(f"sape_geom.app.worker: preview disabled: {type(exc).__name__}: {exc}", file=sys.stderr)
            return
        finally:
            self.last = time.monotonic()
        self.paths.append(path)
        self.ctx.events.emit("preview", path=str(path), step=int(info.step))
        while len(self.paths) > 3:  # the reader has had seconds to load the old ones
            _unlink(self.paths.pop(0))

    def clean(self) -> None:
        for p in self.paths:
            _unlink(p)
        self.paths.clear()


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _metrics_of(result: Any) -> dict[str, Any]:
    return _plain_metrics(getattr(result, "metrics", None) or {})


def _plain_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    plain = {}
    for k, v in dict(metrics).items():
        f = _float_or_none(v)
        if f is not None:
            plain[str(k)] = f
        elif isinstance(v, (str, bool, int)):
            plain[str(k)] = v
    return plain


def task_extract(ctx: Context) -> dict[str, Any]:
    from ..tasks.occupancy import OccupancyFit

    s = ctx.settings
    checkpoint = s.get("checkpoint")
    if not checkpoint:
        raise JobError("the extract task needs settings.checkpoint (a file written by fit_surface)")
    if not Path(checkpoint).is_file():
        raise JobError(f"checkpoint not found: {checkpoint}")
    fit = OccupancyFit.load(checkpoint, device=s.get("device"))
    ctx.events.emit("progress", step=0, total=1, loss=None, elapsed_s=None, eta_s=None, stage="extract")
    colors = bool(s.get("colors", True))
    out = fit.extract(resolution=_resolution(s), colors=colors, keep_largest=bool(s.get("keep_largest", False)))
    _check_surface(out, s)
    return {"mesh": str(_save_mesh(ctx.output_dir / "mesh.npz", out, colors))}


def task_deform(ctx: Context) -> dict[str, Any]:
    import numpy as np

    s = ctx.settings
    arrays = _load_inputs(ctx.job["inputs"], ()) if ctx.job["inputs"] is not None else {}
    if s.get("target_image"):
        from ..curve import load_contour

        contour = load_contour(s["target_image"])
        # image pixels (y down) -> the normalised y-up frame: centred, farthest point at distance 1
        target = contour.normalization().apply(contour.points)
    elif "target_points" in arrays:
        target = np.asarray(arrays["target_points"], dtype=np.float64)
    else:
        raise JobError("the deform task needs input array 'target_points' or settings.target_image")
    if target.ndim != 2 or target.shape[1] != 2 or len(target) < 3:
        raise JobError(f"the target curve must be an (N, 2) array with N >= 3, got shape {target.shape}")
    source = arrays.get("source_points")
    if source is not None:
        source = np.asarray(source, dtype=np.float64)
        if source.ndim != 2 or source.shape[1] != 2 or len(source) < 3:
            raise JobError(f"the source curve must be an (M, 2) array with M >= 3, got shape {source.shape}")

    from .. import config as config_mod
    from ..tasks.silhouette import DeformConfig, deform_curve

    config = DeformConfig()
    if s.get("config"):
        config = config_mod.replace(config, **dict(s["config"]))
    if s.get("steps"):
        config = _with_steps(config, int(s["steps"]))
    result = deform_curve(target, config, source_points=source, callbacks=ctx.callbacks())

    snaps = list(getattr(result, "snapshots", None) or [])
    curve = np.asarray(result.curve, dtype=np.float32)
    levels = getattr(result, "levels", None)
    path = ctx.output_dir / "curves.npz"
    np.savez(
        path,
        curve=curve,
        levels=np.zeros(0, np.float32) if levels is None else np.asarray(levels, dtype=np.float32),
        snapshot_steps=np.asarray([int(step) for step, _ in snaps], dtype=np.int64),
        snapshots=(np.stack([np.asarray(p, dtype=np.float32) for _, p in snaps]) if snaps
                   else np.zeros((0,) + curve.shape, np.float32)),
        target=target.astype(np.float32),
    )
    return {"curves": str(path), "metrics": _metrics_of(result)}


def _with_steps(config: Any, steps: int) -> Any:
    """Set the step count of a DeformConfig whatever the field is called (``steps`` or nested)."""
    from dataclasses import fields

    from .. import config as config_mod

    names = {f.name for f in fields(config)}
    for key in ("steps", "num_steps", "iterations"):
        if key in names:
            return config_mod.replace(config, **{key: steps})
    for key in ("train", "training", "trainer"):
        sub = getattr(config, key, None)
        if sub is not None and hasattr(sub, "steps"):
            return config_mod.replace(config, **{f"{key}.steps": steps})
    raise JobError(f"cannot set the number of steps on {type(config).__name__}; pass it in settings.config")


TASK_FUNCTIONS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "check": task_check,
    "fit_surface": task_fit_surface,
    "extract": task_extract,
    "deform": task_deform,
}


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def run_job(job_file: str | os.PathLike, events: EventStream, cancel: CancelFlag, stdin: TextIO | None) -> int:
    """Run one job, writing its events; returns the exit status."""
    try:
        job = read_job(job_file)
    except JobError as exc:
        events.emit("error", message=str(exc), type="JobError", traceback="")
        return EXIT_BAD_JOB
    events.emit("started", protocol=PROTOCOL_VERSION, task=job["task"], pid=os.getpid())
    if stdin is not None:
        cancel.watch_stdin(stdin, job["stop_on_stdin_close"])
    try:
        job["output_dir"].mkdir(parents=True, exist_ok=True)
        if cancel.is_set():
            raise _cancelled()
        result = TASK_FUNCTIONS[job["task"]](Context(job, events, cancel))
    except BaseException as exc:  # every way out must end with one final event
        if _is_cancel(exc) or (cancel.is_set() and isinstance(exc, KeyboardInterrupt)):
            events.emit("cancelled", task=job["task"], reason=cancel.reason or "cancelled")
            return EXIT_CANCELLED
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            raise
        events.emit("error", message=_user_message(exc), type=type(exc).__name__,
                    traceback=traceback.format_exc())
        return EXIT_ERROR
    if cancel.is_set() and job["task"] != "check":
        # cancelled after the last step check: the user asked to stop, so no result
        events.emit("cancelled", task=job["task"], reason=cancel.reason or "cancelled")
        return EXIT_CANCELLED
    events.emit("result", task=job["task"], **result)
    return EXIT_OK


def _cancelled() -> BaseException:
    try:
        from ..errors import TrainingCancelled

        return TrainingCancelled("cancelled before the job started")
    except ImportError:  # pragma: no cover
        return KeyboardInterrupt()


def _is_cancel(exc: BaseException) -> bool:
    try:
        from ..errors import TrainingCancelled
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, TrainingCancelled)


def _user_message(exc: BaseException) -> str:
    if isinstance(exc, JobError):
        return str(exc)
    try:
        from ..errors import SapeGeomError

        if isinstance(exc, SapeGeomError):
            return str(exc)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, ModuleNotFoundError):
        return f"missing Python module {exc.name!r} in {sys.executable}: {exc}"
    if isinstance(exc, MemoryError):
        return "out of memory; try a lower resolution or the 'fast' preset"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'no message'}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    proto = _take_over_stdout()
    events = EventStream(proto)
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        events.emit("error", message="usage: python -m sape_geom.app.worker JOB.json", type="UsageError", traceback="")
        return EXIT_BAD_JOB
    cancel = CancelFlag()
    cancel.install_signal_handlers()
    code = run_job(argv[0], events, cancel, sys.stdin)
    try:
        proto.flush()
    except (BrokenPipeError, ValueError):
        pass
    return code


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # daemon threads (the stdin reader) must not keep the process alive; skip slow interpreter teardown
    os._exit(code)
