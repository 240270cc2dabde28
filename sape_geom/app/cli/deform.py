"""``sape-geom deform``: deform a closed source curve onto a target silhouette image or polyline."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from ...config import ENCODINGS
from ...curve import count_crossings, load_contours
from ...tasks.silhouette import DeformConfig, deform_shape, paper_config, save_outputs
from .common import compile_arg, report


def add_deform(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``deform`` to an ``argparse`` sub-parser set."""
    p = subparsers.add_parser(
        "deform",
        help="deform a circle (or another curve) onto a target silhouette (docs/method.md §6.4)",
        description="Deform a closed source curve onto a target silhouette image or polyline with an "
        "encoded MLP over the curve parameter. Every outer contour and hole of the target is deformed from "
        "its own source. Writes deformed.svg/.npz/.obj (all loops), overlay.png (coloured by SAPE level), "
        "metrics.json and, with --gif, optimisation.gif.",
    )
    _add_deform_arguments(p)
    p.set_defaults(handler=run_deform)
    return p


def _add_deform_arguments(p: argparse.ArgumentParser) -> None:
    d = DeformConfig()
    p.add_argument("target", metavar="TARGET", help="silhouette image (png/jpg/gif) or polyline (npz/txt/svg/obj)")
    p.add_argument("--source", default="circle", metavar="circle|PATH", help="source curve (default: circle)")
    p.add_argument("-o", "--output", "--out-dir", dest="output", required=True, metavar="OUT_DIR")
    p.add_argument("--encoding", choices=ENCODINGS, default=d.field.encoding)
    p.add_argument("--sigma", type=float, default=d.field.sigma)
    p.add_argument("--steps", type=int, default=None, help=f"stage-2 steps (default {d.steps}; --paper: 10000)")
    p.add_argument("--points", type=int, default=d.points)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--lr", type=float, default=None, help="stage-2 learning rate (default per encoding)")
    p.add_argument("--calibration-steps", type=int, default=d.calibration_steps)
    p.add_argument("--offset", action="store_true", help="learn an offset from the source (docs/method.md D2)")
    p.add_argument("--snapshot-every", type=int, default=d.snapshot_every)
    p.add_argument("--threshold", type=float, default=None, help="image grey threshold (default 240)")
    p.add_argument("--device", default=d.device)
    compile_arg(p, d.field.compile)
    p.add_argument("--gif", action="store_true", help="also write optimisation.gif")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> DeformConfig:
    d = paper_config() if getattr(args, "paper", False) else DeformConfig()
    chosen = {name: getattr(args, name, None) for name in ("steps", "lr", "loss", "fold_weight", "crossing_weight")}
    return dataclasses.replace(
        d,
        field=dataclasses.replace(
            d.field,
            encoding=args.encoding,
            sigma=float(args.sigma),
            compile=getattr(args, "compile", None) or d.field.compile,
        ),
        calibration_steps=args.calibration_steps,
        points=args.points,
        offset=bool(args.offset),
        snapshot_every=args.snapshot_every,
        seed=args.seed,
        device=args.device,
        **{name: value for name, value in chosen.items() if value is not None},
    )


def run_deform(args: argparse.Namespace) -> int:
    """Run ``sape-geom deform``; raises :class:`InputError` for bad input (the caller prints one line)."""
    config = config_from_args(args)
    target = load_contours(args.target, image_threshold=args.threshold)
    source = None if args.source in (None, "", "circle") else load_contours(args.source, args.threshold)
    crossings = count_crossings(target.loops)
    if crossings:
        print(
            f"sape-geom deform: warning: the target crosses itself {crossings} time(s); the deformed curve "
            "follows it and will cross too",
            file=sys.stderr,
        )

    from ...nn.trainer import TrainCallbacks, console_progress  # torch: imported only once the inputs are good

    cb = TrainCallbacks(
        on_progress=None if args.quiet else console_progress("deform"),
        progress_every=max(1, config.steps // 500),
    )
    result = deform_shape(target, config, sources=source, callbacks=cb)
    paths = save_outputs(result, args.output, target, gif=args.gif)
    m = result.metrics
    lines = [
        f"chamfer {m['chamfer']:.5f}  hausdorff {m['hausdorff']:.5f}  iou {m['iou']:.4f}  "
        f"self-intersections {m['self_intersections']} (the network's {m['network_self_intersections']}, "
        f"{m['points_cut']} points cut untangling)  ({m['steps']} steps, {m['steps_per_s']:.1f} steps/s, "
        f"{result.timings['total_s']:.0f} s)",
        f"contours {m['contours']} ({m['holes']} holes; {m['dropped_loops']} tiny loops left out)  "
        f"mean open fraction {m.get('mean_open_fraction', 1.0):.3f}  steps to within 5 %: {m['steps_to_5pct']}",
    ]
    lines += [f"{kind}: {path}" for kind, path in paths.items()]
    report(args, {"metrics": result.metrics, "timings": result.timings, "outputs": paths}, lines)
    return 0
