"""Fit every mesh of a folder: per-mesh outputs, one ``metrics.csv``, resume and failure isolation.

Each mesh is fitted in a worker process (``--workers N`` at a time, the CPU threads split between them),
so a mesh that raises, or a worker that crashes, is recorded as failed while the rest go on. Meshes
already finished (a row with status ``ok`` and its surface file present) are skipped on a rerun.
Backends: ``local`` (processes on this machine) and ``ray`` (a Ray cluster, see :mod:`.ray_backend`).

Crash safety: the output folder is checked before any work and locked for the batch (:mod:`.lock`: a
second batch on it stops with one line); every file is written under a temporary name and renamed, so
a driver killed at any moment (kill -9 too) leaves only complete files under final names, and the
temporary files it leaves are removed by the next run, which resumes; a full or read-only disk stops
the batch with one line and keeps what was written before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import InputError, OutputError
from ...fileio import check_writable, is_temporary, output_error
from .jobs import MESH_SUFFIXES, Backend, is_finished, list_meshes, make_jobs, read_metrics, write_metrics
from .lock import BatchLock


def run_batch(
    input_dir: str | Path,
    out_dir: str | Path,
    preset: str = "fast",
    workers: int = 1,
    overrides: dict[str, Any] | None = None,
    backend: str = "local",
    backend_options: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Fit every mesh in ``input_dir`` into ``out_dir``; returns all rows of ``metrics.csv`` by name."""
    from ...tasks.occupancy import occupancy_preset

    occupancy_preset(preset, **(overrides or {}))  # fail fast on a bad preset or override
    if workers < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    paths = list_meshes(input_dir)
    if not paths:
        raise InputError(f"no mesh files ({', '.join(MESH_SUFFIXES)}) in {input_dir}")
    out = Path(out_dir)
    check_writable(out, folder=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_error(out, error) from None
    run = _backend(backend, backend_options or {})
    with BatchLock(out):
        return _run_locked(paths, out, preset, workers, overrides or {}, run, progress)


def _run_locked(
    paths: list[Path], out: Path, preset: str, workers: int, overrides: dict[str, Any], run: Backend, progress: bool
) -> dict[str, dict[str, Any]]:
    for leftover in out.iterdir():  # temporary files of a run that was killed (the lock says none is running)
        if leftover.is_file() and is_temporary(leftover):
            leftover.unlink(missing_ok=True)
    csv_path = out / "metrics.csv"
    rows: dict[str, dict[str, Any]] = read_metrics(csv_path)
    jobs = [job for job in make_jobs(paths, out, preset, overrides) if not is_finished(rows.get(job.name))]

    from tqdm.auto import tqdm

    bar = tqdm(total=len(paths), initial=len(paths) - len(jobs), desc="meshes", unit="mesh", disable=not progress)

    def on_done(row: dict[str, Any]) -> None:
        rows[row["name"]] = row
        write_metrics(csv_path, rows)
        bar.set_postfix_str(f"{row['name']}: {row['status']}")
        bar.update(1)
        if row.get("stop"):
            raise OutputError(row["stop"])

    try:
        if jobs:
            run(jobs, workers, on_done)
    except OutputError as error:
        done = sum(1 for row in rows.values() if is_finished(row))
        stopped = OutputError(
            f"{error}; the batch stopped ({done} of {len(paths)} meshes done and kept; "
            f"rerun to resume once it can write)"
        )
        stopped.errno = error.errno
        raise stopped from None
    finally:
        bar.close()
    return rows


def _backend(name: str, options: dict[str, Any]) -> Backend:
    if name == "local":
        from .local import run_local

        return run_local
    if name == "ray":
        from .ray_backend import make_ray_backend

        return make_ray_backend(**options)
    raise InputError(f"unknown batch backend {name!r}; choose local or ray")
