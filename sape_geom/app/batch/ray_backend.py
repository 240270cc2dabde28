"""Ray backend for :func:`sape_geom.app.batch.run_batch`: one Ray task per mesh, on one machine or a cluster.

No shared file system is assumed. The driver reads each mesh file and hands its bytes to the task
through the object store; the task writes them into a temporary folder on whatever node it runs on,
fits with :func:`~.jobs.fit_mesh_file`, and sends the outputs (surface ``.ply``,
``.ckpt`` and preview ``.png``) back as bytes, which the driver writes into the real output folder.

Failure handling matches the local backend: an exception inside the fit becomes a ``failed`` row
(same as :func:`~.jobs.fit_or_fail`); a task whose worker process or node dies is retried by
Ray up to ``max_retries`` times and then recorded as ``failed``. Either way the other meshes go on.

Ray is an optional extra (``pip install "sape-geom[ray]"``) and is imported only when this backend
is used. See ``docs/ray.md`` for what a cluster needs.
"""

from __future__ import annotations

import math
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ...errors import InputError
from ...fileio import atomic_write
from .jobs import Backend, MeshJob, failed_row, fit_mesh_file, stops_the_batch

INSTALL_HINT = 'the ray backend needs Ray: pip install "sape-geom[ray]"'
OUTPUT_KEYS = ("surface", "checkpoint", "preview")


def _import_ray():
    try:
        import ray
    except ImportError as error:
        raise InputError(f"{INSTALL_HINT} ({error})") from None
    return ray


def fit_threads(cpus_per_fit: float) -> int:
    """Torch threads for one fit: the whole CPUs the task asked for, at least one.

    The local backend passes ``cpu_count // workers`` threads; a Ray fit with the same thread count
    gives the same result.
    """
    return max(1, math.floor(cpus_per_fit))


def make_ray_backend(
    address: str | None = None,
    gpus_per_fit: float = 0,
    cpus_per_fit: float = 1,
    max_retries: int = 2,
) -> Backend:
    """A batch backend that fits each mesh as a Ray task with ``cpus_per_fit``/``gpus_per_fit`` resources.

    ``address``: ``"auto"`` or ``"HOST:PORT"`` of a running cluster; ``None`` starts a local Ray instance
    for the batch (and stops it afterwards). If Ray is already initialised in this process, that
    connection is used and left as it is. ``workers`` (given to the backend) caps tasks in flight.
    """
    _import_ray()  # fail before any work if Ray is missing
    if cpus_per_fit is None or cpus_per_fit <= 0:
        raise InputError(f"cpus_per_fit must be > 0, got {cpus_per_fit}")
    if gpus_per_fit is None or gpus_per_fit < 0:
        raise InputError(f"gpus_per_fit must be >= 0, got {gpus_per_fit}")
    if max_retries < 0:
        raise InputError(f"max_retries must be >= 0, got {max_retries}")
    threads = fit_threads(cpus_per_fit)

    def backend(jobs: list[MeshJob], workers: int, on_done: Callable[[dict[str, Any]], None]) -> None:
        ray = _import_ray()
        owned = _connect(ray, address)
        try:
            _run(ray, jobs, max(1, workers), on_done, threads, cpus_per_fit, gpus_per_fit, max_retries)
        finally:
            if owned:
                ray.shutdown()  # a local instance we started stops; a cluster we joined is only left

    return backend


def _connect(ray, address: str | None) -> bool:
    """Initialise Ray unless it already is; True when this call initialised it (so we shut it down)."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"log_to_driver": False}  # keep the progress bar readable; logs stay in Ray's log folder
    if address:
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as error:
            raise InputError(f"cannot connect to the Ray cluster at {address!r}: {error}") from None
    else:
        ray.init(include_dashboard=False, **kwargs)
    return True


def _run(ray, jobs, workers, on_done, threads, cpus_per_fit, gpus_per_fit, max_retries) -> None:
    # Resolve the task body at call time (a test can swap it); Ray ships the function to the workers.
    task = ray.remote(_task_body).options(
        num_cpus=cpus_per_fit,
        num_gpus=gpus_per_fit,
        max_retries=max_retries,
        retry_exceptions=False,
        name="sape_geom_fit",
    )
    _warm_up(ray, min(workers, len(jobs)), cpus_per_fit, gpus_per_fit)
    queue = list(jobs)
    pending: dict[Any, tuple[MeshJob, float]] = {}
    while queue or pending:
        while queue and len(pending) < workers:
            job = queue.pop(0)
            started = time.perf_counter()
            try:
                data = Path(job.input).read_bytes()
            except OSError as error:
                on_done(failed_row(job, f"{error.__class__.__name__}: {error}"))
                continue
            pending[task.remote(job, Path(job.input).name, ray.put(data), threads)] = (job, started)
        if not pending:
            continue
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            job, started = pending.pop(ref)
            on_done(_collect(ray, ref, job, started, max_retries))


def _import_fitting_code() -> int:
    """Import torch and the fitting code in a Ray worker process; returns its process id."""
    import os

    import sape_geom.tasks.occupancy  # noqa: F401  (torch and the geometry libraries come with it)

    return os.getpid()


def _warm_up(ray, count: int, cpus_per_fit: float, gpus_per_fit: float) -> None:
    """Start ``count`` worker processes and import the fitting code in them once, before any mesh is
    timed: Ray reuses these processes for the fits, so the one-off start-up (about 5 s of imports per
    process) is not paid inside the first meshes."""
    if count < 1:
        return
    warm = ray.remote(_import_fitting_code).options(
        num_cpus=cpus_per_fit, num_gpus=gpus_per_fit, name="sape_geom_warm_up"
    )
    ray.get([warm.remote() for _ in range(count)])


def _collect(ray, ref, job: MeshJob, started: float, max_retries: int) -> dict[str, Any]:
    """The row of a finished task, its output files written into ``job.out_dir``."""
    try:
        row, files = ray.get(ref)
    except ray.exceptions.RayError as error:  # worker or node died (after the retries), object lost, ...
        kind = error.__class__.__name__
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return failed_row(
            job, f"Ray task failed ({kind}) after {max_retries} retries: {detail}", traceback.format_exc()
        )
    if row.get("status") == "ok":
        out = Path(job.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        try:
            for key, (filename, payload) in files.items():
                target = atomic_write(out / filename, lambda tmp, payload=payload: tmp.write_bytes(payload))
                row[key] = str(target)
        except OSError as error:
            node = row.get("node", "")
            row = failed_row(job, f"writing outputs failed: {error.__class__.__name__}: {error}")
            row["node"] = node
            if stops_the_batch(error):
                row["stop"] = str(error)  # a full or read-only disk: every later mesh would fail the same way
    row["ray_s"] = round(time.perf_counter() - started, 3)  # submit -> outputs written (not a CSV column)
    return row


def _task_body(
    job: MeshJob, filename: str, data: bytes, threads: int
) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    """Runs in a Ray worker: fit the mesh from bytes in a temporary folder, return (row, output files)."""
    import sys

    warm = "sape_geom.tasks.occupancy" in sys.modules  # False on a worker's first fit (it pays the imports)
    import ray
    import torch

    torch.set_num_threads(threads)
    node = ray.get_runtime_context().get_node_id()
    files: dict[str, tuple[str, bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="sape_geom_ray_") as tmp:
        source = Path(tmp) / "input" / filename
        source.parent.mkdir()
        source.write_bytes(data)
        try:
            row = fit_mesh_file(replace(job, out_dir=str(Path(tmp) / "out")), input_path=str(source))
        except Exception as error:
            # Name the user's file, not this node's temporary copy of it.
            message = f"{error.__class__.__name__}: {error}".replace(str(source), job.input)
            row = failed_row(job, message, traceback.format_exc().replace(str(source), job.input))
        else:
            for key in OUTPUT_KEYS:
                if row.get(key):
                    path = Path(row[key])
                    files[key] = (path.name, path.read_bytes())
    row["node"] = node
    row["ray_warm"] = warm  # not a CSV column; lets benchmarks split cold and warm overhead
    return row, files
