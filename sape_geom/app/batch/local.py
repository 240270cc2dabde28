"""Local batch backend: worker processes on this machine, a crashed worker failing only its own mesh.

Workers end with the driver: each one asks the kernel to kill it when its parent dies (Linux) and
checks its parent every half second (elsewhere, or if that request failed), so a driver killed with
kill -9 leaves no worker fitting on. When the driver stops early (a full disk, Ctrl-C), the workers
still running are terminated.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

from .jobs import MeshJob, failed_row, fit_or_fail

PARENT_CHECK_S = 0.5


def watch_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` (the process that started it) is gone, however it died."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before we asked
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="sape-batch-parent", daemon=True).start()


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=watch_parent, initargs=(os.getpid(),)
    )


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and terminate the workers (the driver is stopping early)."""
    processes = list(getattr(pool, "_processes", {}).values())  # the executor has no public handle on them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


def run_local(jobs: list[MeshJob], workers: int, on_done: Callable[[dict[str, Any]], None]) -> None:
    """Processes on this machine; a crashed worker fails only the mesh it was fitting."""
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    crashed: list[MeshJob] = []
    pool = _pool(workers)
    try:
        futures = {pool.submit(fit_or_fail, job, threads): job for job in jobs}
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                job = futures.pop(future)
                try:
                    row = future.result()
                except BrokenProcessPool:
                    crashed.append(job)
                    continue
                on_done(row)
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)
    # Every job in flight died with a crashed pool: rerun them one at a time so only the culprit fails.
    for job in crashed:
        on_done(_run_isolated(job, threads))


def _run_isolated(job: MeshJob, threads: int) -> dict[str, Any]:
    pool = _pool(1)
    try:
        return pool.submit(fit_or_fail, job, threads).result()
    except BrokenProcessPool:
        return failed_row(job, "the worker process crashed while fitting this mesh")
    except BaseException:
        _stop(pool)
        raise
    finally:
        pool.shutdown(wait=True)
