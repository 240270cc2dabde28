"""Fit every mesh of a folder: per-mesh outputs, one ``metrics.csv``, resume and failure isolation.

Each mesh is fitted in a worker process (``--workers N`` at a time, the CPU threads split between them),
so a mesh that raises, or a worker that crashes, is recorded as failed while the rest go on. Meshes
already finished (a row with status ``ok`` and its surface file present) are skipped on a rerun.
Backends: ``local`` (processes on this machine) and ``ray`` (a Ray cluster, see :mod:`.ray_backend`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import InputError
from .jobs import MESH_SUFFIXES, Backend, is_finished, list_meshes, make_jobs, read_metrics, write_metrics


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
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "metrics.csv"
    rows: dict[str, dict[str, Any]] = read_metrics(csv_path)
    jobs = [job for job in make_jobs(paths, out, preset, overrides or {}) if not is_finished(rows.get(job.name))]
    run = _backend(backend, backend_options or {})

    from tqdm.auto import tqdm

    bar = tqdm(total=len(paths), initial=len(paths) - len(jobs), desc="meshes", unit="mesh", disable=not progress)

    def on_done(row: dict[str, Any]) -> None:
        rows[row["name"]] = row
        write_metrics(csv_path, rows)
        bar.set_postfix_str(f"{row['name']}: {row['status']}")
        bar.update(1)

    try:
        if jobs:
            run(jobs, workers, on_done)
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
