"""Client side of the ``sape_geom.app.worker`` protocol: start a worker, read its events, stop it.

No ``bpy`` here (and never torch): the add-on's main thread calls :meth:`WorkerProcess.drain` from its
polling function; a reader thread moves the worker's JSON lines into a queue. The protocol itself is
specified in docs/protocol.md.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .job_settings import PROTOCOL_VERSION

FINAL_EVENTS = ("result", "error", "cancelled")

#: Seconds between a ``cancel`` line and SIGTERM, and between SIGTERM and SIGKILL.
CANCEL_GRACE_S = 5.0
TERMINATE_GRACE_S = 3.0


def addon_dir() -> Path:
    return Path(__file__).resolve().parent


def find_source_root(start: Path | None = None) -> Path | None:
    """The folder holding ``sape_geom/app/worker/`` when the add-on runs from a source checkout."""
    here = start or addon_dir()
    for parent in [here, *here.parents][:5]:
        if (parent / "sape_geom" / "app" / "worker" / "__main__.py").is_file():
            return parent
    return None


def bundled_lib(root: Path | None = None) -> Path | None:
    """The copy of sape_geom that the add-on zip carries for the worker (``worker_lib/``), if any."""
    lib = (root or addon_dir()) / "worker_lib"
    return lib if (lib / "sape_geom" / "app" / "worker" / "__main__.py").is_file() else None


def clean_path(text: str) -> str:
    """A path as typed or pasted: surrounding spaces and quotes dropped, ``~`` expanded."""
    path = (text or "").strip().strip("\"'").strip()
    return os.path.expanduser(path) if path else ""


def detect_worker_python(setup_python: str = "") -> tuple[str, str]:
    """The worker Python when none is chosen: ``(path, where it came from)``, or ``("", why none)``.

    Order: the ``SAPE_GEOM_PYTHON`` environment variable, the environment Set Up Worker made
    (``setup_python``), then a ``.venv`` of the source checkout the add-on runs from. A Python found on
    PATH is not guessed: it rarely has torch (see ``worker_find`` for the checked candidates).
    """
    env = clean_path(os.environ.get("SAPE_GEOM_PYTHON", ""))
    if env:
        return env, "SAPE_GEOM_PYTHON"
    if setup_python and Path(setup_python).exists():
        return setup_python, "Set Up Worker"
    root = find_source_root()
    if root is not None:
        for rel in (".venv/bin/python", ".venv/Scripts/python.exe"):
            cand = root / rel
            if cand.is_file():
                return str(cand), f"virtual environment in {root}"
    return "", "no worker set up: press Set Up Worker (SAPE tab > Setup, or the add-on preferences)"


def _is_blender_python(path: str) -> bool:
    # Blender's own interpreter lacks torch and must not host training; skip it when guessing.
    return "blender" in Path(path).name.lower()


def check_python(python: str) -> str | None:
    """None when ``python`` names an executable file, else a sentence saying what is wrong."""
    if not python:
        return "no worker Python is set: press Set Up Worker or choose one in the SAPE add-on preferences"
    is_name = os.sep not in python and "/" not in python
    found = shutil.which(python) if is_name else (python if Path(python).exists() else None)
    if not found:
        return f"worker Python not found: {python}"
    if not os.access(found, os.X_OK) or Path(found).is_dir():
        return f"worker Python is not an executable file: {python}"
    if is_store_stub(found):
        return f"{python} is the Microsoft Store placeholder, not a Python: press Set Up Worker instead"
    return None


def is_store_stub(path: str) -> bool:
    """Windows' ``WindowsApps\\python.exe``: an empty app-execution alias that opens the Store."""
    parts = [part.lower() for part in Path(path).parts]
    try:
        return "windowsapps" in parts and os.path.getsize(path) == 0
    except OSError:
        return False


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""What torch reads its CPU thread count from at start-up."""


def worker_threads(background: bool, cpus: int | None = None) -> int | None:
    """CPU threads for a worker started from Blender: all cores but one while Blender has a window (it
    draws the previews and the sidebar on a core of its own; torch's threads wait for the slowest one,
    so on 2 cores 2 threads beside a process busy on one core trained 1.75x slower than 1), torch's own choice when
    Blender runs in the background."""
    if background:
        return None
    cpus = os.cpu_count() if cpus is None else cpus
    return max(1, (cpus or 1) - 1)


def worker_env(threads: int | None = None) -> dict[str, str]:
    """Environment for the worker: unbuffered, and able to import sape_geom (the zip's copy, or the source
    checkout the add-on runs from) ahead of any other installed copy; ``threads`` CPU threads for torch
    unless the user set them."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if threads and not any(name in env for name in THREAD_VARIABLES):
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    env.pop("PYTHONHOME", None)  # Blender's own Python home must not leak into another interpreter
    lib = bundled_lib() or find_source_root()
    if lib is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(lib), *filter(None, [env.get("PYTHONPATH", "")])])
    return env


class WorkerProcess:
    """One worker process running one job file; every method is for the main thread except the reader."""

    def __init__(
        self,
        python: str,
        task: str,
        settings: dict[str, Any],
        work_dir: str | os.PathLike,
        inputs: str | os.PathLike | None = None,
        threads: int | None = None,
    ):
        self.python = python
        self.threads = threads
        self.task = task
        self.settings = settings
        self.work_dir = Path(work_dir)
        self.inputs = None if inputs is None else Path(inputs)
        self.proc: subprocess.Popen | None = None
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.final: dict[str, Any] | None = None
        self.cancel_requested_at: float | None = None
        self._terminated_at: float | None = None
        self._reader: threading.Thread | None = None
        self._eof = False
        self._stderr_file = None

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        """Write the job file and start the worker; raises OSError/ValueError with a clear message."""
        problem = check_python(self.python)
        if problem:
            raise ValueError(problem)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        job_file = self.work_dir / "job.json"
        job = {
            "task": self.task,
            "settings": self.settings,
            "inputs": None if self.inputs is None else str(self.inputs),
            "output_dir": str(self.work_dir),
            "stop_on_stdin_close": True,
        }
        job_file.write_text(json.dumps(job, indent=1), encoding="utf-8")
        self._stderr_file = open(self.work_dir / "worker_stderr.log", "wb")
        try:
            self.proc = subprocess.Popen(
                [self.python, "-m", "sape_geom.app.worker", str(job_file)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr_file,
                cwd=str(self.work_dir),
                env=worker_env(self.threads),
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0,
            )
        except OSError as exc:
            self._stderr_file.close()
            raise OSError(f"cannot start the worker with {self.python}: {exc.strerror or exc}") from None
        self._reader = threading.Thread(target=self._read, name="sape-geom-worker-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                event = json.loads(line)
                if not isinstance(event, dict) or "event" not in event:
                    raise ValueError
            except ValueError:
                event = {"event": "log", "text": line}
            self.events.put(event)
        self.events.put({"event": "_eof"})

    # ------------------------------------------------------------------ main-thread side
    @property
    def running(self) -> bool:
        return self.proc is not None and self.final is None

    def drain(self) -> list[dict[str, Any]]:
        """Events received since the last call, ending with a synthetic final event if the worker died.

        Once a ``result``, ``error`` or ``cancelled`` event has been returned the job is over
        (``self.final`` holds it) and the process has been reaped.
        """
        out: list[dict[str, Any]] = []
        if self.proc is None or self.final is not None:
            return out
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            if event["event"] == "_eof":
                self._eof = True
                continue
            out.append(event)
            if event["event"] in FINAL_EVENTS:
                self.final = event
                break
        if self.final is None:
            self._escalate_cancel()
        if self.final is None and self._eof:
            self.final = self._death_event()
            out.append(self.final)
        if self.final is not None:
            self._reap()
        return out

    def _death_event(self) -> dict[str, Any]:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self.cancel_requested_at is not None:
            return {"event": "cancelled", "task": self.task, "reason": "stopped by the user"}
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            message = f"the worker process was killed ({name})"
        else:
            message = f"the worker process exited with code {code} without a result"
        tail = self.stderr_tail()
        if tail:
            message += f": {tail[-1]}"
        return {"event": "error", "message": message, "type": "WorkerDied", "traceback": "\n".join(tail)}

    def stderr_tail(self, lines: int = 15) -> list[str]:
        try:
            text = (self.work_dir / "worker_stderr.log").read_text("utf-8", "replace")
        except OSError:
            return []
        return [ln for ln in text.strip().splitlines() if ln.strip()][-lines:]

    def cancel(self) -> None:
        """Ask the worker to stop between steps; it is terminated if it does not within the grace time."""
        if not self.running or self.cancel_requested_at is not None:
            return
        self.cancel_requested_at = time.monotonic()
        try:
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write(b"cancel\n")
            self.proc.stdin.flush()
        except (OSError, ValueError, AssertionError):
            self._terminate()

    def _escalate_cancel(self) -> None:
        if self.cancel_requested_at is None or self.proc is None:
            return
        now = time.monotonic()
        if self._terminated_at is None and now - self.cancel_requested_at > CANCEL_GRACE_S:
            self._terminate()
        elif self._terminated_at is not None and now - self._terminated_at > TERMINATE_GRACE_S:
            self.proc.kill()

    def _terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._terminated_at = time.monotonic()
            self.proc.terminate()

    def stop(self, timeout: float = 3.0) -> None:
        """End the process now (unregister, shutdown): cancel, terminate, kill; always reaps it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.cancel()
            try:
                self.proc.wait(timeout=min(1.0, timeout))
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if self.final is None:
            self.final = {"event": "cancelled", "task": self.task, "reason": "stopped"}
        self._reap()

    def _reap(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if self._stderr_file is not None and not self._stderr_file.closed:
            self._stderr_file.close()


def run_check(
    python: str, work_dir: str | os.PathLike, timeout: float = 120.0, threads: int | None = None
) -> dict[str, Any]:
    """Run the ``check`` job and wait for it (call it from a thread in a UI); returns its result, with
    ``ok`` false and a one-line ``reason`` when the Python cannot run this add-on's worker. ``threads`` as
    a fit would get them, so that the result's ``threads`` is what a fit uses."""
    worker = WorkerProcess(python, "check", {}, work_dir, threads=threads)
    try:
        worker.start()
    except (OSError, ValueError) as exc:
        return {"ok": False, "reason": str(exc)}
    deadline = time.monotonic() + timeout
    while worker.running and time.monotonic() < deadline:
        for event in worker.drain():
            if event["event"] == "started" and event.get("protocol") != PROTOCOL_VERSION:
                worker.stop()
                return {"ok": False, "reason": protocol_mismatch(event.get("protocol"))}
            if event["event"] == "result":
                info = dict(event)
                if info.get("ok") is False and not info.get("reason"):
                    info["reason"] = "the worker check failed"
                return info
            if event["event"] in ("error", "cancelled"):
                reason = event.get("message") or event.get("reason") or "failed"
                missing = re.findall(r"No module named '?([\w.]+)'?", "\n".join(worker.stderr_tail()))
                if missing and missing[-1].split(".")[0] == "sape_geom":
                    reason = f"{python} cannot import sape_geom (install it there, or pick another Python)"
                elif missing:
                    reason = f"{python} lacks the module {missing[-1]}: press Set Up Worker, or pick another Python"
                return {"ok": False, "reason": reason}
        time.sleep(0.05)
    worker.stop()
    return {"ok": False, "reason": f"the check did not finish within {timeout:.0f} s"}


def protocol_mismatch(version: Any) -> str:
    return (
        f"the worker speaks protocol {version}, this add-on needs {PROTOCOL_VERSION}: its sape_geom is another "
        "version (press Set Up Worker, or update sape_geom there)"
    )
