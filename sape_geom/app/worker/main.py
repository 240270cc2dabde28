"""The worker's entry point: :func:`main` (what ``python -m sape_geom.app.worker JOB.json`` runs),
:func:`run_job_file` (one job file from start to its final event and exit status), :class:`CancelFlag`
(a ``cancel`` line, a signal or stdin closing), the redirect that keeps stdout for the protocol, and
the one-line messages for errors. The protocol itself is documented in :mod:`.protocol`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from typing import TextIO

from ...errors import Cancelled, SapeGeomError
from ...fileio import check_writable, describe_os_error, output_error
from .context import TaskContext
from .protocol import EXIT_BAD_JOB, EXIT_CANCELLED, EXIT_ERROR, EXIT_OK, PROTOCOL_VERSION, EventStream, read_job
from .registry import TASK_FUNCTIONS
from .settings import JobError

# --------------------------------------------------------------------------------------------------
# Stdout and cancel flag
# --------------------------------------------------------------------------------------------------


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
# Entry point
# --------------------------------------------------------------------------------------------------


def run_job_file(job_file: str | os.PathLike, events: EventStream, cancel: CancelFlag, stdin: TextIO | None) -> int:
    """Run the job of one job file, writing its events; returns the exit status."""
    try:
        job = read_job(job_file)
    except JobError as exc:
        events.emit("error", message=str(exc), type="JobError", traceback="")
        return EXIT_BAD_JOB
    events.emit("started", protocol=PROTOCOL_VERSION, task=job.task, pid=os.getpid())
    if stdin is not None:
        cancel.watch_stdin(stdin, job.stop_on_stdin_close)
    try:
        check_writable(job.output_dir, folder=True)  # before any work: a result must not be lost at the end
        try:
            job.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise output_error(job.output_dir, error) from None
        if cancel.is_set():
            raise Cancelled("cancelled before the job started")
        context = TaskContext(job.settings, job.inputs, job.output_dir, events.emit, cancel.is_set)
        result = TASK_FUNCTIONS[job.task](context)
    except BaseException as exc:  # every way out must end with one final event
        if isinstance(exc, Cancelled) or (cancel.is_set() and isinstance(exc, KeyboardInterrupt)):
            events.emit("cancelled", task=job.task, reason=cancel.reason or "cancelled")
            return EXIT_CANCELLED
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            raise
        events.emit("error", message=_user_message(exc), type=type(exc).__name__, traceback=traceback.format_exc())
        return EXIT_ERROR
    if cancel.is_set() and job.task != "check":
        # cancelled after the last step check: the user asked to stop, so no result
        events.emit("cancelled", task=job.task, reason=cancel.reason or "cancelled")
        return EXIT_CANCELLED
    events.emit("result", task=job.task, **result)
    return EXIT_OK


def _user_message(exc: BaseException) -> str:
    if isinstance(exc, SapeGeomError):
        return str(exc)
    if isinstance(exc, ModuleNotFoundError):
        return f"missing Python module {exc.name!r} in {sys.executable}: {exc}"
    if isinstance(exc, MemoryError):
        return "out of memory; try a lower resolution or the 'fast' preset"
    if isinstance(exc, OSError):
        return describe_os_error(exc)
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
    code = run_job_file(argv[0], events, cancel, sys.stdin)
    try:
        proto.flush()
    except (BrokenPipeError, ValueError):
        pass
    return code
