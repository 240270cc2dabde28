"""The worker's protocol: ``PROTOCOL_VERSION`` and the exit codes, the event writer (:class:`EventStream`)
and the job-file reader (:func:`read_job`); the entry point is in :mod:`.main`. The protocol itself (job
file, settings and inputs per task, events, exit status, cancelling) is specified in docs/protocol.md.
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
