"""Local batch backend: worker processes on this machine, a crashed worker failing only its own mesh."""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any, Callable

from .jobs import MeshJob, failed_row, fit_or_fail


def run_local(jobs: list[MeshJob], workers: int, on_done: Callable[[dict[str, Any]], None]) -> None:
    """Processes on this machine; a crashed worker fails only the mesh it was fitting."""
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    crashed: list[MeshJob] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(fit_or_fail, job, threads): job for job in jobs}
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                job = futures.pop(future)
                try:
                    on_done(future.result())
                except BrokenProcessPool:
                    crashed.append(job)
    # Every job in flight died with a crashed pool: rerun them one at a time so only the culprit fails.
    for job in crashed:
        on_done(_run_isolated(job, threads))


def _run_isolated(job: MeshJob, threads: int) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        try:
            return pool.submit(fit_or_fail, job, threads).result()
        except BrokenProcessPool:
            return failed_row(job, "the worker process crashed while fitting this mesh")
