"""``sape-geom deform-mesh``: deform a source mesh onto a target surface (docs/method.md §6.5)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ...config import ENCODINGS
from .common import compile_arg, report, usage_error


def add_deform_mesh(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``deform-mesh`` to an ``argparse`` sub-parser set."""
    from ...tasks.mesh_deform.config import FRAMES, MeshDeformConfig

    d = MeshDeformConfig()
    p = subparsers.add_parser(
        "deform-mesh",
        help="deform a mesh (a sphere, a template, a scan) onto another one, keeping its faces and UVs",
        description="Move the vertices of SOURCE onto the surface of TARGET with an encoded field over 3-D space "
        "(SAPE by default). Writes OUT (the source with its vertices moved: same faces, vertex order and UVs; "
        ".ply, .obj or .glb, in the target's frame), OUT_levels.ply (coloured by SAPE level), OUT_metrics.json "
        "and, with --snapshots N, OUT_snapshots.npz.",
    )
    p.add_argument("source", metavar="SOURCE", help="mesh to deform (OBJ, PLY, STL, OFF, GLB/GLTF)")
    p.add_argument("target", metavar="TARGET", help="mesh to deform onto")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="deformed mesh (.ply, .obj or .glb)")
    p.add_argument("--encoding", choices=ENCODINGS, default=d.field.encoding, help="input encoding (default: sape)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"Chamfer steps (default {d.steps})")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default 0)")
    p.add_argument("--lr", type=float, default=d.lr, help=f"learning rate (default {d.lr})")
    p.add_argument(
        "--calibration-steps",
        type=int,
        default=d.calibration_steps,
        help=f"at most this many calibration steps (default {d.calibration_steps}; 0 = none)",
    )
    p.add_argument(
        "--edge-weight", type=float, default=d.edge_weight, help=f"edge term weight (default {d.edge_weight})"
    )
    p.add_argument(
        "--frame",
        choices=FRAMES,
        default=d.frame,
        help="each: fit the source into the target's box (default); target: keep its place relative to the target",
    )
    p.add_argument("--snapshots", type=int, default=0, metavar="N", help="also keep N intermediate vertex arrays")
    p.add_argument("--device", default=d.device, help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps")
    compile_arg(p, d.field.compile)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads (default: torch's own; 1 is fastest on a busy 2-core machine)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run_deform_mesh)
    return p


def run_deform_mesh(args: argparse.Namespace) -> int:
    """Run ``sape-geom deform-mesh``; raises :class:`InputError` for bad input (the caller prints one line)."""
    from ...fileio import check_writable
    from ...tasks.mesh_deform import MeshDeformConfig, read_source, read_target
    from ...tasks.mesh_deform.outputs import output_paths

    if args.snapshots < 0:
        raise usage_error(f"--snapshots must be >= 0, got {args.snapshots}")
    if args.threads is not None and args.threads < 1:
        raise usage_error(f"--threads must be >= 1, got {args.threads}")
    d = MeshDeformConfig()
    config = dataclasses.replace(
        d,
        field=dataclasses.replace(d.field, encoding=args.encoding, compile=args.compile or d.field.compile),
        steps=args.steps,
        seed=args.seed,
        lr=args.lr,
        calibration_steps=args.calibration_steps,
        edge_weight=args.edge_weight,
        frame=args.frame,
        snapshots=args.snapshots,
        device=args.device,
    )
    for path in output_paths(args.out, args.snapshots > 0).values():  # before any work
        check_writable(path)
    source, target = read_source(args.source), read_target(args.target)

    from ...nn.trainer import TrainCallbacks, console_progress  # torch: imported only once the inputs are good
    from ...tasks.mesh_deform import deform_mesh
    from ...tasks.mesh_deform.outputs import save_outputs

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    cb = TrainCallbacks(
        on_progress=None if args.quiet else console_progress("deform-mesh"), progress_every=max(1, config.steps // 200)
    )
    result = deform_mesh(source, target, config, cb)
    paths = save_outputs(result, args.out)
    m = result.metrics
    lines = [
        f"Chamfer-L1 {m['chamfer_l1']:.5f}  normal consistency {m['normal_consistency']:.4f}  "
        f"flipped faces {100 * m['flipped_faces']:.2f} %  edge distortion p95 {m['edge_distortion_p95']:.3f}  "
        f"({m['steps']} steps, {result.timings['total_s']:.0f} s)",
    ]
    lines += [f"{kind}: {path}" for kind, path in paths.items()]
    report(args, {"metrics": m, "timings": result.timings, "outputs": paths}, lines)
    return 0
