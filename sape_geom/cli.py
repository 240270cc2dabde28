"""Command line: ``sape-geom <command>`` (also ``python -m sape_geom``).

Each command is a thin face over a library call. Errors the user can fix print one line on stderr and
exit with status 2; a cancel (Ctrl-C) exits with 130. Progress bars go to stderr so ``--json`` output on
stdout stays one parseable object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from .config import ENCODINGS
from .errors import SapeGeomError, TrainingCancelled
from .fileio import json_safe

Handler = Callable[[argparse.Namespace], int]


def _common_training_args(parser: argparse.ArgumentParser, sigma: float | None = None) -> None:
    parser.add_argument("--encoding", default="sape", choices=ENCODINGS, help="input encoding (default: sape)")
    parser.add_argument("--sigma", type=float, default=sigma, help="Fourier-feature scale sigma")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _callbacks(args: argparse.Namespace, description: str):
    from .trainer import TrainCallbacks, console_progress

    if args.quiet:
        return TrainCallbacks()
    return TrainCallbacks(on_progress=console_progress(description), progress_every=1)


def _report(args: argparse.Namespace, payload: dict, lines: Sequence[str]) -> None:
    if args.json:
        print(json.dumps(json_safe(payload), sort_keys=True))
    else:
        for line in lines:
            print(line)


# ---------------------------------------------------------------------------------------- fit-signal
def _add_fit_signal(sub) -> None:
    parser = sub.add_parser("fit-signal", help="fit the 1D chirp of the method's first experiment")
    _common_training_args(parser, sigma=5.0)
    parser.add_argument("--out", "-o", default="out/signal", help="output folder (default out/signal)")
    parser.set_defaults(handler=_run_fit_signal)


def _run_fit_signal(args: argparse.Namespace) -> int:
    from . import config as cfg
    from .regression import SignalFitConfig, fit_signal, save_signal_plot

    changes = {"field.encoding": args.encoding, "seed": args.seed, "device": args.device}
    if args.sigma is not None:
        changes["field.sigma"] = args.sigma
    if args.steps is not None:
        changes["steps"] = args.steps
    config = cfg.replace(SignalFitConfig(), **changes)
    fit = fit_signal(config, _callbacks(args, "fit-signal"))
    plot = Path(args.out) / "signal.png"
    save_signal_plot(fit, plot)
    payload = {**fit.metrics, "plot": str(plot)}
    _report(args, payload, [f"dense MSE {fit.metrics['dense_mse']:.3g}, train MSE {fit.metrics['train_mse']:.3g}", f"wrote {plot}"])
    return 0


# ----------------------------------------------------------------------------------------- fit-image
def _add_fit_image(sub) -> None:
    parser = sub.add_parser("fit-image", help="fit an image from a fraction of its pixels (2D regression)")
    parser.add_argument("image", help="image file (PNG, JPG, ...)")
    _common_training_args(parser, sigma=20.0)
    parser.add_argument("--sample-rate", type=float, default=0.25, help="fraction of pixels to train on (default 0.25)")
    parser.add_argument("--out", "-o", default="out/image", help="output folder (default out/image)")
    parser.add_argument("--gif", action="store_true", help="also write an animation of the optimisation")
    parser.add_argument("--max-size", type=int, default=512, help="resize so the longer edge is at most this")
    parser.set_defaults(handler=_run_fit_image)


def _run_fit_image(args: argparse.Namespace) -> int:
    from . import config as cfg
    from .regression import ImageFitConfig, fit_image, load_image, save_image_outputs

    changes = {
        "field.encoding": args.encoding,
        "seed": args.seed,
        "device": args.device,
        "sample_rate": args.sample_rate,
        "max_size": args.max_size,
    }
    if args.sigma is not None:
        changes["field.sigma"] = args.sigma
    if args.steps is not None:
        changes["steps"] = args.steps
    config = cfg.replace(ImageFitConfig(), **changes)
    image = load_image(args.image, config.max_size)
    frame_every = max(1, config.steps // 50) if args.gif else 0
    fit = fit_image(image, config, _callbacks(args, "fit-image"), frame_every=frame_every)
    paths = save_image_outputs(fit, args.out, gif=args.gif)
    m = fit.metrics
    _report(
        args,
        {**m, "outputs": paths},
        [
            f"PSNR all pixels {m['psnr_all']:.2f} dB, held-out {m['psnr_held_out']:.2f} dB, train {m['psnr_train']:.2f} dB"
            f" ({m['steps']} steps, {m['seconds']:.1f} s)",
            f"wrote {', '.join(paths.values())}",
        ],
    )
    return 0


# ------------------------------------------------------------------------------------ fit / extract
def _add_fit(sub) -> None:
    parser = sub.add_parser("fit", help="fit a neural occupancy field to a mesh and extract its surface")
    parser.add_argument("mesh", help="mesh file (OBJ, PLY, STL, OFF, GLB/GLTF)")
    parser.add_argument("-o", "--out", help="output mesh (default: <mesh>_sape.ply next to the input)")
    parser.add_argument("--preset", default="fast", choices=("fast", "quality"), help="fast (CPU, ~1 min) or quality (official protocol, GPU)")
    _common_training_args(parser)
    parser.add_argument("--time-budget", type=float, default=None, help="seconds of training instead of --steps")
    parser.add_argument("--resolution", type=int, default=256, help="marching-cubes resolution (default 256)")
    _extraction_args(parser)
    parser.add_argument("--checkpoint", help="also save a checkpoint here (re-extract later with `sape-geom extract`)")
    parser.add_argument("--preview", help="also render a PNG preview (input and fit side by side)")
    parser.add_argument("--no-metrics", action="store_true", help="skip the metrics against the input")
    parser.set_defaults(handler=_run_fit)


def _extraction_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--heatmap", action="store_true", help="colour vertices by the SAPE frequency level")
    parser.add_argument("--keep-largest", action="store_true", help="keep only the largest connected piece")
    parser.add_argument("--max-faces", type=int, default=None, help="decimate to at most this many faces (pymeshlab)")


def _run_fit(args: argparse.Namespace) -> int:
    import time

    from .meshio import load_mesh, save_mesh
    from .occupancy import fit_occupancy, occupancy_preset

    if args.steps is not None and args.time_budget is not None:
        raise _usage("give --steps or --time-budget, not both")
    start = time.perf_counter()
    mesh = load_mesh(args.mesh)
    config = occupancy_preset(
        args.preset, encoding=args.encoding, sigma=args.sigma, steps=args.steps, time_budget=args.time_budget,
        resolution=args.resolution, device=args.device, seed=args.seed,
    )
    out = Path(args.out) if args.out else Path(args.mesh).with_name(Path(args.mesh).stem + "_sape.ply")
    fit = fit_occupancy(mesh, config, _callbacks(args, "fit"))
    surface, stats = fit.extract(colors=args.heatmap, keep_largest=args.keep_largest, max_faces=args.max_faces, return_stats=True)
    save_mesh(surface, out)
    total = time.perf_counter() - start
    payload = {
        "input": str(args.mesh),
        "output": str(out),
        "preset": args.preset,
        "encoding": config.field.encoding,
        "device": str(fit.device),
        "steps": fit.stats.steps if fit.stats else None,
        "vertices": len(surface.vertices),
        "faces": len(surface.faces),
        "watertight": bool(surface.is_watertight),
        "timings": {**{k: round(v, 3) for k, v in fit.timings.items()}, "extract_s": round(stats["extract_s"], 3), "total_s": round(total, 3)},
        "extraction": {"evaluated": stats.get("evaluated"), "dense": stats.get("dense")},
    }
    if args.checkpoint:
        payload["checkpoint"] = str(fit.save(args.checkpoint))
    if args.preview:
        from .render import render_mesh_png

        payload["preview"] = str(render_mesh_png([mesh, surface], args.preview, titles=["input", f"{config.field.encoding} fit"]))
    lines = [
        f"wrote {out} ({len(surface.faces)} faces, {'watertight' if surface.is_watertight else 'not watertight'})"
        f" in {total:.1f} s (training {fit.timings['train_s']:.1f} s, extraction {stats['extract_s']:.1f} s)"
    ]
    if not args.no_metrics:
        from .metrics import mesh_metrics

        metrics = mesh_metrics(surface, mesh)
        payload["metrics"] = metrics
        lines.append(
            f"IoU {metrics['iou']:.4f}  Chamfer-L1 {metrics['chamfer_l1']:.5f}  normal consistency"
            f" {metrics['normal_consistency']:.4f}  F-score@1% {metrics['fscore']:.4f}  pieces {metrics['components']}"
        )
    _report(args, payload, lines)
    return 0


def _add_extract(sub) -> None:
    parser = sub.add_parser("extract", help="re-extract the surface of a checkpoint at any resolution")
    parser.add_argument("checkpoint", help="checkpoint written by `sape-geom fit --checkpoint`")
    parser.add_argument("-o", "--out", required=True, help="output mesh (.ply, .obj, .stl, .off, .glb)")
    parser.add_argument("--resolution", type=int, default=256, help="marching-cubes resolution (default 256)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or mps (default: as fitted, else auto)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _extraction_args(parser)
    parser.set_defaults(handler=_run_extract)


def _run_extract(args: argparse.Namespace) -> int:
    from .meshio import save_mesh
    from .occupancy import OccupancyFit

    if not 8 <= args.resolution <= 2048:
        raise _usage(f"resolution must be between 8 and 2048, got {args.resolution}")
    fit = OccupancyFit.load(args.checkpoint, device=args.device or "auto")
    surface, stats = fit.extract(args.resolution, colors=args.heatmap, keep_largest=args.keep_largest,
                                 max_faces=args.max_faces, return_stats=True)
    save_mesh(surface, args.out)
    payload = {"output": args.out, "resolution": args.resolution, "faces": len(surface.faces), "extract_s": round(stats["extract_s"], 3)}
    _report(args, payload, [f"wrote {args.out} ({len(surface.faces)} faces at {args.resolution}^3, {stats['extract_s']:.1f} s)"])
    return 0


# -------------------------------------------------------------------------------------------- batch
def _add_batch(sub) -> None:
    parser = sub.add_parser("batch", help="fit every mesh in a folder (resumable; writes metrics.csv)")
    parser.add_argument("folder", help="folder of mesh files")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument("--preset", default="fast", choices=("fast", "quality"))
    parser.add_argument("--workers", type=int, default=1, help="meshes fitted at the same time")
    parser.add_argument("--encoding", default=None, choices=ENCODINGS)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--backend", default="local", choices=("local", "ray"), help="local processes or a Ray cluster")
    parser.add_argument("--address", default=None, help="Ray cluster address (auto, HOST:PORT); default: start a local one")
    parser.add_argument("--gpus-per-fit", type=float, default=0, help="Ray: GPUs requested per mesh")
    parser.add_argument("--cpus-per-fit", type=float, default=1, help="Ray: CPUs requested per mesh")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_run_batch)


def _run_batch(args: argparse.Namespace) -> int:
    from .batch import run_batch

    overrides = {k: v for k, v in {"encoding": args.encoding, "steps": args.steps, "resolution": args.resolution,
                                   "device": args.device, "seed": args.seed}.items() if v is not None}
    options = {}
    if args.backend == "ray":
        options = {"address": args.address, "gpus_per_fit": args.gpus_per_fit, "cpus_per_fit": args.cpus_per_fit}
    rows = run_batch(args.folder, args.out, args.preset, args.workers, overrides, args.backend, options, progress=not args.quiet)
    failed = sorted(name for name, row in rows.items() if row.get("status") != "ok")
    payload = {"meshes": len(rows), "ok": len(rows) - len(failed), "failed": failed, "metrics_csv": str(Path(args.out) / "metrics.csv")}
    lines = [f"{payload['ok']} of {len(rows)} meshes fitted; metrics in {payload['metrics_csv']}"]
    lines += [f"failed: {name}: {rows[name].get('error', '')}" for name in failed]
    _report(args, payload, lines)
    return 1 if failed else 0


# --------------------------------------------------------------------------------------------- demo
def default_demo_mesh() -> Path:
    """The Stanford bunny that pymeshlab ships (found without importing pymeshlab), else a generated shape."""
    import importlib.util

    spec = importlib.util.find_spec("pymeshlab")
    if spec and spec.submodule_search_locations:
        bunny = Path(list(spec.submodule_search_locations)[0]) / "tests" / "sample_meshes" / "bunny.obj"
        if bunny.is_file():
            return bunny
    from .shapes import write_demo_shape

    return write_demo_shape(Path.home() / ".cache" / "sape_geom" / "bumpy_torus.ply")


def _add_demo(sub) -> None:
    parser = sub.add_parser("demo", help="fit the built-in demo mesh (the Stanford bunny) with the fast preset")
    parser.add_argument("-o", "--out", default="out/demo", help="output folder (default out/demo)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    mesh = default_demo_mesh()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.json:
        print(f"demo: fitting {mesh} with the fast preset (SAPE) into {out}/", file=sys.stderr)
    fit_args = build_parser().parse_args(
        ["fit", str(mesh), "-o", str(out / f"{mesh.stem}_sape.ply"), "--heatmap", "--device", args.device,
         "--checkpoint", str(out / f"{mesh.stem}.ckpt"), "--preview", str(out / f"{mesh.stem}_preview.png")]
        + (["--quiet"] if args.quiet else []) + (["--json"] if args.json else [])
    )
    return _run_fit(fit_args)


def _usage(message: str):
    from .errors import InputError

    return InputError(message)


# ------------------------------------------------------------------------------------------- parser
def _add_deform(sub) -> None:
    from .silhouette import add_deform_command

    add_deform_command(sub)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sape-geom",
        description="Neural shape fitting with Spatially-Adaptive Progressive Encoding (SAPE).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for adder in (_add_demo, _add_fit, _add_extract, _add_batch, _add_deform, _add_fit_image, _add_fit_signal):
        adder(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except (TrainingCancelled, KeyboardInterrupt):
        print("sape-geom: cancelled", file=sys.stderr)
        return 130
    except SapeGeomError as error:
        print(f"sape-geom {args.command}: error: {error}", file=sys.stderr)
        return 2


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())
