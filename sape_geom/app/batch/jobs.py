"""One mesh of a batch: the job, fitting it into its outputs, and its row of ``metrics.csv``.

Both backends (:mod:`.local` and :mod:`.ray_backend`) run :func:`fit_mesh_file` on a :class:`MeshJob`
and report the row it returns.
"""

from __future__ import annotations

import csv
import errno
import os
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import InputError, OutputError
from ...fileio import atomic_write

MESH_SUFFIXES = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")
CSV_COLUMNS = [
    "name",
    "status",
    "input",
    "surface",
    "checkpoint",
    "preview",
    "iou",
    "chamfer_l1",
    "normal_consistency",
    "fscore",
    "components",
    "faces",
    "fit_s",
    "extract_s",
    "total_s",
    "steps",
    "device",
    "precision",
    "compiled",
    "host",
    "node",
    "error",
]


@dataclass(frozen=True)
class MeshJob:
    """One mesh to fit: where it is, where its outputs go, and the preset with overrides."""

    name: str
    input: str
    out_dir: str
    preset: str = "fast"
    overrides: dict[str, Any] = field(default_factory=dict)
    metrics: bool = True
    preview: bool = True


def list_meshes(input_dir: str | Path) -> list[Path]:
    """Mesh files directly in ``input_dir`` (sorted), by suffix."""
    folder = Path(input_dir)
    if not folder.is_dir():
        raise InputError(f"input folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)


def make_jobs(paths: Iterable[Path], out_dir: str | Path, preset: str, overrides: dict[str, Any]) -> list[MeshJob]:
    """One job per mesh; names are file stems, made unique with the suffix where two stems clash."""
    paths = list(paths)
    stems = [p.stem for p in paths]
    jobs = []
    for path, stem in zip(paths, stems):
        name = stem if stems.count(stem) == 1 else f"{stem}_{path.suffix.lstrip('.').lower()}"
        jobs.append(MeshJob(name, str(path.resolve()), str(Path(out_dir).resolve()), preset, dict(overrides)))
    return jobs


def fit_mesh_file(job: MeshJob, input_path: str | None = None) -> dict[str, Any]:
    """Fit one mesh and write ``<name>.ply``, ``<name>.ckpt`` and ``<name>.png``; returns its CSV row.

    ``input_path`` overrides ``job.input`` (a backend may have copied the file elsewhere). Raises on
    failure; :func:`fit_or_fail` turns that into a failed row.
    """
    import socket

    from ...mesh.io import load_mesh, save_mesh
    from ...mesh.metrics import mesh_metrics
    from ...tasks.occupancy import fit_occupancy, occupancy_preset

    start = time.perf_counter()
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mesh = load_mesh(input_path or job.input)
    config = occupancy_preset(job.preset, **job.overrides)
    fit = fit_occupancy(mesh, config)
    surface, stats = fit.extract_with_stats()
    surface_path = save_mesh(surface, out / f"{job.name}.ply")
    checkpoint_path = fit.save(out / f"{job.name}.ckpt")
    row: dict[str, Any] = {
        "name": job.name,
        "status": "ok",
        "input": job.input,
        "surface": str(surface_path),
        "checkpoint": str(checkpoint_path),
        "faces": len(surface.faces),
        "fit_s": round(fit.timings["fit_s"], 2),
        "extract_s": round(stats.extract_s, 2),
        "steps": fit.stats.steps if fit.stats else "",
        "device": str(fit.device),
        "precision": fit.model.precision,
        "compiled": fit.model.compiled,
        "host": socket.gethostname(),
    }
    if job.preview:
        from ...viz.render import render_mesh_png

        row["preview"] = str(
            render_mesh_png([mesh, surface], out / f"{job.name}.png", size=384, titles=["input", "SAPE fit"])
        )
    if job.metrics:
        metrics = mesh_metrics(surface, mesh)
        row.update(
            {key: round(float(metrics[key]), 6) for key in ("iou", "chamfer_l1", "normal_consistency", "fscore")}
        )
        row["components"] = int(metrics["components"])
    row["total_s"] = round(time.perf_counter() - start, 2)
    return row


def fit_or_fail(job: MeshJob, threads: int | None = None) -> dict[str, Any]:
    """:func:`fit_mesh_file` that never raises: a failure becomes a row with status ``failed``."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        return fit_mesh_file(job)
    except Exception as error:
        row = failed_row(job, f"{error.__class__.__name__}: {error}", traceback.format_exc())
        if stops_the_batch(error):
            row["stop"] = str(error)  # not a CSV column: the driver stops instead of failing every mesh
        return row


def failed_row(job: MeshJob, message: str, details: str = "") -> dict[str, Any]:
    row = {"name": job.name, "status": "failed", "input": job.input, "error": message.replace("\n", " ")[:500]}
    if details and os.environ.get("SAPE_GEOM_DEBUG"):
        row["error"] += " | " + details.replace("\n", " | ")[-1500:]
    return row


# ------------------------------------------------------------------------------------------- results
def read_metrics(path: str | Path) -> dict[str, dict[str, str]]:
    """Rows of an existing ``metrics.csv`` by mesh name (empty when there is none)."""
    path = Path(path)
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


def write_metrics(path: str | Path, rows: dict[str, dict[str, Any]]) -> None:
    """Rewrite ``metrics.csv`` atomically, rows sorted by name."""

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, CSV_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for name in sorted(rows):
                writer.writerow({key: rows[name].get(key, "") for key in CSV_COLUMNS})

    atomic_write(path, write)


def is_finished(row: dict[str, Any] | None) -> bool:
    return bool(row) and row.get("status") == "ok" and Path(str(row.get("surface", ""))).is_file()


STOP_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
"""Write errors that every later mesh would hit too (a full or read-only disk): the batch stops."""


def stops_the_batch(error: BaseException) -> bool:
    return isinstance(error, OutputError) and error.errno in STOP_ERRNOS


Backend = Callable[[list[MeshJob], int, Callable[[dict[str, Any]], None]], None]
"""Runs jobs (``workers`` at a time) and calls ``on_done(row)`` once per job, on the calling thread."""
