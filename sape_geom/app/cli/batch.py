"""``sape-geom batch``: fit every mesh of a folder, resumable, on local processes or a Ray cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...config import ENCODINGS
from ...tasks.occupancy.config import PRESETS
from .common import report


def add_batch(sub) -> None:
    parser = sub.add_parser("batch", help="fit every mesh in a folder (resumable; writes metrics.csv)")
    parser.add_argument("folder", help="folder of mesh files")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument("--preset", default="fast", choices=tuple(PRESETS))
    parser.add_argument("--workers", type=int, default=1, help="meshes fitted at the same time")
    parser.add_argument("--encoding", default=None, choices=ENCODINGS)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--face-budget",
        type=int,
        default=None,
        metavar="FACES",
        help="stop a mesh whose field would give more faces (default 20 x resolution^2, at least 1M; 0 = no limit)",
    )
    parser.add_argument("--backend", default="local", choices=("local", "ray"), help="local processes or a Ray cluster")
    parser.add_argument(
        "--address", default=None, help="Ray cluster address (auto, HOST:PORT); default: start a local one"
    )
    parser.add_argument("--gpus-per-fit", type=float, default=0, help="Ray: GPUs requested per mesh")
    parser.add_argument("--cpus-per-fit", type=float, default=1, help="Ray: CPUs requested per mesh")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_batch)


def _run_batch(args: argparse.Namespace) -> int:
    from ..batch import run_batch

    overrides = {
        k: v
        for k, v in {
            "encoding": args.encoding,
            "steps": args.steps,
            "resolution": args.resolution,
            "device": args.device,
            "seed": args.seed,
            "face_budget": args.face_budget,
        }.items()
        if v is not None
    }
    options = {}
    if args.backend == "ray":
        options = {"address": args.address, "gpus_per_fit": args.gpus_per_fit, "cpus_per_fit": args.cpus_per_fit}
    rows = run_batch(
        args.folder, args.out, args.preset, args.workers, overrides, args.backend, options, progress=not args.quiet
    )
    failed = sorted(name for name, row in rows.items() if row.get("status") != "ok")
    payload = {
        "meshes": len(rows),
        "ok": len(rows) - len(failed),
        "failed": failed,
        "metrics_csv": str(Path(args.out) / "metrics.csv"),
    }
    lines = [f"{payload['ok']} of {len(rows)} meshes fitted; metrics in {payload['metrics_csv']}"]
    lines += [f"failed: {name}: {rows[name].get('error', '')}" for name in failed]
    report(args, payload, lines)
    return 1 if failed else 0
