"""Batch throughput on this machine: the local backend vs the Ray backend, same meshes and worker count.

    python benchmarks/batch_throughput.py [--meshes 4] [--workers 2] [--steps 80]

Both backends fit the same generated meshes with the same settings and the same torch threads per fit
(``cpu_count // workers``, which is what the local backend uses; Ray gets ``--cpus-per-fit`` equal to it).
Reported, as a Markdown table:

* meshes per minute of each backend (wall time of ``run_batch``) and the Ray / local ratio;
* Ray overhead per mesh: the driver's time from submitting a mesh to having its outputs written,
  minus the time the task spent in ``fit_mesh_file`` (``total_s``), averaged over the meshes; it holds
  the object-store transfers, scheduling, worker start-up and writing the outputs on the driver;
  a worker's first fit also pays importing torch and sape_geom, so it is shown apart from warm fits;
* the same "wall x workers - fitting time" per mesh for both backends, for a like-for-like view;
* the one-off start of the local Ray instance (``ray.init``), which a long-running cluster does not pay.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SMALL = {
    "points_per_set": 8000,
    "num_sets": 2,
    "batch_size": 1000,
    "resolution": 32,
    "device": "cpu",
    "seed": 0,
    "field.hidden_width": 64,
    "field.hidden_layers": 2,
    "field.sigma": 2.0,
}


def make_meshes(folder: Path, count: int) -> None:
    from sape_geom.mesh.shapes import sphere, torus

    folder.mkdir(parents=True)
    for i in range(count):
        mesh = sphere(0.4 + 0.03 * i, subdivisions=2) if i % 2 == 0 else torus(0.6 + 0.03 * i, 0.2)
        mesh.export(folder / f"shape{i}.ply")


def timed_batch(
    folder: Path, out: Path, workers: int, overrides: dict, backend: str, options: dict
) -> tuple[float, dict]:
    from sape_geom.app.batch import run_batch

    start = time.perf_counter()
    rows = run_batch(
        folder,
        out,
        "fast",
        workers=workers,
        overrides=overrides,
        backend=backend,
        backend_options=options,
        progress=False,
    )
    wall = time.perf_counter() - start
    bad = [name for name, row in rows.items() if row.get("status") != "ok"]
    if bad:
        sys.exit(f"{backend}: meshes failed: {[(n, rows[n].get('error')) for n in bad]}")
    return wall, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meshes", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=80)
    args = parser.parse_args(argv)

    import ray

    cpus = os.cpu_count() or 1
    threads = max(1, cpus // args.workers)
    overrides = {**SMALL, "steps": args.steps}
    with tempfile.TemporaryDirectory(prefix="sape_batch_bench_") as tmp:
        folder = Path(tmp) / "meshes"
        make_meshes(folder, args.meshes)

        local_wall, local_rows = timed_batch(folder, Path(tmp) / "local", args.workers, overrides, "local", {})

        start = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - start
        try:
            ray_wall, ray_rows = timed_batch(
                folder, Path(tmp) / "ray", args.workers, overrides, "ray", {"cpus_per_fit": threads, "gpus_per_fit": 0}
            )
        finally:
            ray.shutdown()

    n = args.meshes
    per_min = {"local": 60 * n / local_wall, "ray": 60 * n / ray_wall}
    ray_overheads = [float(row["ray_s"]) - float(row["total_s"]) for row in ray_rows.values()]

    def slack(wall: float, rows: dict) -> float:
        return (wall * min(args.workers, n) - sum(float(row["total_s"]) for row in rows.values())) / n

    def mean_fit(rows: dict) -> float:
        return statistics.mean(float(row["total_s"]) for row in rows.values())

    print(
        f"{n} meshes, {args.workers} workers, {threads} torch thread(s) per fit, {cpus} CPUs, "
        f"{args.steps} steps; Ray {ray.__version__}\n"
    )
    print(
        "| backend | wall (s) | meshes / min | ratio vs local | mean fit per mesh (s) | wall x workers - fit, per mesh (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| local | {local_wall:.1f} | {per_min['local']:.2f} | 1.00 | {mean_fit(local_rows):.2f} | {slack(local_wall, local_rows):.2f} |"
    )
    print(
        f"| ray | {ray_wall:.1f} | {per_min['ray']:.2f} | {per_min['ray'] / per_min['local']:.2f} | {mean_fit(ray_rows):.2f} | {slack(ray_wall, ray_rows):.2f} |"
    )
    print()
    print("| Ray overhead per mesh (submit -> outputs written, minus fitting) | seconds |")
    print("|---|---:|")
    print(f"| mean, all meshes | {statistics.mean(ray_overheads):.3f} |")
    print(f"| max, all meshes | {max(ray_overheads):.3f} |")
    for label, flag in (
        ("warm worker (imports done)", True),
        ("cold worker (first fit: imports torch, sape_geom)", False),
    ):
        part = [float(r["ray_s"]) - float(r["total_s"]) for r in ray_rows.values() if bool(r.get("ray_warm")) == flag]
        if part:
            print(f"| mean, {label}: {len(part)} mesh(es) | {statistics.mean(part):.3f} |")
    print(f"| one-off local `ray.init` (not in the rows above) | {ray_start:.1f} |")
    warm = [float(r["ray_s"]) - float(r["total_s"]) for r in ray_rows.values() if r.get("ray_warm")]
    cold = len(ray_overheads) - len(warm)
    print(
        f"\nMean Ray overhead per mesh over this run: {statistics.mean(ray_overheads):.2f} s "
        f"({'under' if statistics.mean(ray_overheads) < 1.0 else 'NOT under'} 1 s); it includes {cold} cold worker start(s), "
        "paid once per worker process, not per mesh."
    )
    if warm:
        print(
            f"Steady state (warm workers): {statistics.mean(warm):.3f} s per mesh "
            f"({'under' if statistics.mean(warm) < 1.0 else 'NOT under'} 1 s)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
