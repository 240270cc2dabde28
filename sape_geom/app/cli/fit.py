"""``sape-geom fit``, ``extract`` and ``demo``: fitting a field to a mesh and extracting its surface."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...config import PRECISIONS
from ...mesh.smoothing import FEATURE_ANGLE
from ...tasks.occupancy.config import OPEN_INPUT_MODES, PRESETS, TARGETS
from .common import callbacks, common_training_args, compile_arg, report, usage_error

if TYPE_CHECKING:  # the command line starts without torch
    from ...tasks.occupancy.surface import ExtractionStats


def add_fit(sub) -> None:
    parser = sub.add_parser("fit", help="fit a neural field to a mesh and extract its surface")
    parser.add_argument("mesh", help="mesh file (OBJ, PLY, STL, OFF, GLB/GLTF)")
    parser.add_argument("-o", "--out", help="output mesh (default: <mesh>_sape.ply next to the input)")
    parser.add_argument(
        "--preset",
        default="fast",
        choices=tuple(PRESETS),
        help="fast (CPU, about a minute), quality (the method's budgets, for a GPU) or paper (the "
        "method exactly: occupancy target, no clean-up)",
    )
    common_training_args(parser)
    parser.add_argument("--time-budget", type=float, default=None, help="seconds of training instead of --steps")
    _precision_arg(parser, "(default: the preset's; auto = bfloat16 where the device computes it natively)")
    compile_arg(parser, "the preset's")
    parser.add_argument("--resolution", type=int, default=256, help="marching-cubes resolution (default 256)")
    parser.add_argument(
        "--target", choices=TARGETS, default=None, help="what the network learns (default: the preset's)"
    )
    parser.add_argument(
        "--open-input",
        choices=OPEN_INPUT_MODES,
        default=None,
        help="read the input as a solid, as a thin shell, or decide from its holes (default: the preset's)",
    )
    parser.add_argument(
        "--shell-thickness",
        type=float,
        default=None,
        help="thickness of the sheet an input read as a shell comes out as, a fraction of the bounding-box "
        f"diagonal; each side at least half a grid cell from the input (default {PRESETS['fast'].shell_thickness:g})",
    )
    _extraction_args(parser)
    parser.add_argument("--checkpoint", help="also save a checkpoint here (re-extract later with `sape-geom extract`)")
    parser.add_argument("--preview", help="also render a PNG preview (input and fit side by side)")
    parser.add_argument("--no-metrics", action="store_true", help="skip the metrics against the input")
    parser.set_defaults(handler=_run_fit)


def _precision_arg(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--precision", choices=PRECISIONS, default=None, help=f"precision of the network's matrix products {default}"
    )


def _extraction_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep-all",
        action="store_true",
        help="keep every extracted piece (default: drop pieces away from the input surface)",
    )
    parser.add_argument(
        "--no-smooth",
        action="store_true",
        help="keep the surface as marching cubes gives it (default: smoothed where it bends by "
        f"less than {FEATURE_ANGLE:g} degrees, edges kept; the paper preset never smooths)",
    )
    parser.add_argument(
        "--no-snap",
        action="store_true",
        help="keep the field's own surface (default: a solid's surface is put onto the input where it lies "
        "within a grid cell of it, creases sharpened; the paper preset never snaps)",
    )
    parser.add_argument("--heatmap", action="store_true", help="colour vertices by the SAPE frequency level")
    parser.add_argument("--keep-largest", action="store_true", help="keep only the largest connected piece")
    parser.add_argument("--max-faces", type=int, default=None, help="decimate to at most this many faces (pymeshlab)")
    parser.add_argument(
        "--face-budget",
        type=int,
        default=None,
        metavar="FACES",
        help="stop when the field would give more faces than this (a noisy field); default 20 x "
        "resolution^2, at least 1M (a fit's own setting for extract), 0 = no limit",
    )


def _run_fit(args: argparse.Namespace) -> int:
    import time

    from ...mesh.io import load_mesh, save_mesh
    from ...tasks.occupancy import fit_occupancy, occupancy_preset

    if args.steps is not None and args.time_budget is not None:
        raise usage_error("give --steps or --time-budget, not both")
    start = time.perf_counter()
    out = Path(args.out) if args.out else Path(args.mesh).with_name(Path(args.mesh).stem + "_sape.ply")
    _check_outputs(out, args.checkpoint, args.preview)  # before any work: a fit must not be lost at the end
    config = occupancy_preset(
        args.preset,
        encoding=args.encoding,
        sigma=args.sigma,
        steps=args.steps,
        time_budget=args.time_budget,
        resolution=args.resolution,
        device=args.device,
        seed=args.seed,
        target=args.target,
        open_input=args.open_input,
        shell_thickness=args.shell_thickness,
        remove_unsupported=False if args.keep_all else None,
        smooth_surface=False if args.no_smooth else None,
        snap_to_input=False if args.no_snap else None,
        face_budget=args.face_budget,
        precision=args.precision,
        compile=args.compile,
    )
    mesh = load_mesh(args.mesh)
    fit = fit_occupancy(mesh, config, callbacks(args, "fit"))
    if not args.json:
        print(f"input read as a {fit.reading['mode']}: {fit.reading['reason']}", file=sys.stderr)
    surface, stats = fit.extract_with_stats(
        colors=args.heatmap, keep_largest=args.keep_largest, max_faces=args.max_faces
    )
    save_mesh(surface, out)
    total = time.perf_counter() - start
    payload = {
        "input": str(args.mesh),
        "output": str(out),
        "preset": args.preset,
        "encoding": config.field.encoding,
        "device": str(fit.device),
        "precision": fit.model.precision,
        "compiled": fit.model.compiled,
        "steps": fit.stats.steps if fit.stats else None,
        "vertices": len(surface.vertices),
        "faces": len(surface.faces),
        "watertight": bool(surface.is_watertight),
        "timings": {
            **{k: round(v, 3) for k, v in fit.timings.items()},
            "extract_s": round(stats.extract_s, 3),
            "total_s": round(total, 3),
        },
        "extraction": {"evaluated": stats.grid.evaluated, "dense": stats.grid.dense},
        "target": config.target,
        "input_read_as": fit.reading["mode"],
        "input_reading": fit.reading["reason"],
        "pieces_removed": stats.pieces_removed,
        "snapped_vertices": stats.snapped_vertices,
    }
    if args.checkpoint:
        payload["checkpoint"] = str(fit.save(args.checkpoint))
    if args.preview:
        from ...viz.render import render_mesh_png

        payload["preview"] = str(
            render_mesh_png([mesh, surface], args.preview, titles=["input", f"{config.field.encoding} fit"])
        )
    lines = [
        f"wrote {out} ({len(surface.faces)} faces, {'watertight' if surface.is_watertight else 'not watertight'})"
        f" in {total:.1f} s (labels {fit.timings['labels_s']:.1f} s, training {fit.timings['train_s']:.1f} s,"
        f" extraction {stats.extract_s:.1f} s;"
        f" {stats.pieces_removed} unsupported pieces removed{_snap_note(stats)})"
    ]
    if not args.no_metrics:
        from ...mesh.metrics import mesh_metrics

        metrics = mesh_metrics(surface, mesh)
        payload["metrics"] = metrics
        lines.append(
            f"IoU {metrics['iou']:.4f}  Chamfer-L1 {metrics['chamfer_l1']:.5f}  normal consistency"
            f" {metrics['normal_consistency']:.4f}  F-score@1% {metrics['fscore']:.4f}  F-score@0.5%"
            f" {metrics['fscore_fine']:.4f}  normal angle p50 {metrics['normal_angle_p50']:.1f} p90"
            f" {metrics['normal_angle_p90']:.1f} deg  pieces {metrics['components']} (input {metrics['components_input']})"
        )
    report(args, payload, lines)
    return 0


def _snap_note(stats: ExtractionStats) -> str:
    """What snapping did, for the summary line ('' when it did not run)."""
    if stats.snapped is None:
        return ""
    snap = stats.snapped
    return (
        f"; {snap.snapped} vertices put onto the input, {snap.on_creases} of them onto its creases,"
        f" {snap.flipped} edges flipped toward its normals"
    )


def _check_outputs(mesh_path: Path, *others: str | None) -> None:
    """Every output can be written (suffix, folders, permissions, a read-only disk), or one error line now."""
    from ...fileio import check_writable
    from ...mesh.io import SAVE_SUFFIXES

    if mesh_path.suffix.lower() not in SAVE_SUFFIXES:
        raise usage_error(f"{mesh_path}: cannot write '{mesh_path.suffix}' (supported: {', '.join(SAVE_SUFFIXES)})")
    for path in (mesh_path, *others):
        if path:
            check_writable(path)


def add_extract(sub) -> None:
    parser = sub.add_parser("extract", help="re-extract the surface of a checkpoint at any resolution")
    parser.add_argument("checkpoint", help="checkpoint written by `sape-geom fit --checkpoint`")
    parser.add_argument("-o", "--out", required=True, help="output mesh (.ply, .obj, .stl, .off, .glb)")
    parser.add_argument("--resolution", type=int, default=256, help="marching-cubes resolution (default 256)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or mps (default: as fitted, else auto)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _precision_arg(parser, "(default: as fitted)")
    _extraction_args(parser)
    parser.set_defaults(handler=_run_extract)


def _run_extract(args: argparse.Namespace) -> int:
    from ...mesh.io import save_mesh
    from ...tasks.occupancy import OccupancyFit

    if not 8 <= args.resolution <= 2048:
        raise usage_error(f"resolution must be between 8 and 2048, got {args.resolution}")
    _check_outputs(Path(args.out))
    fit = OccupancyFit.load(args.checkpoint, device=args.device or "auto")
    changes: dict[str, Any] = {"remove_unsupported": False} if args.keep_all else {}
    if args.no_smooth:
        changes["smooth_surface"] = False
    if args.no_snap:
        changes["snap_to_input"] = False
    if args.precision:
        fit.model.set_precision(args.precision)
        changes["field"] = fit.model.config
    if changes:
        fit = dataclasses.replace(fit, config=dataclasses.replace(fit.config, **changes))
    surface, stats = fit.extract_with_stats(
        args.resolution,
        colors=args.heatmap,
        keep_largest=args.keep_largest,
        max_faces=args.max_faces,
        face_budget=args.face_budget,
    )
    save_mesh(surface, args.out)
    payload = {
        "output": args.out,
        "resolution": args.resolution,
        "faces": len(surface.faces),
        "precision": fit.model.precision,
        "extract_s": round(stats.extract_s, 3),
        "pieces_removed": stats.pieces_removed,
        "snapped_vertices": stats.snapped_vertices,
    }
    report(
        args,
        payload,
        [f"wrote {args.out} ({len(surface.faces)} faces at {args.resolution}^3, {stats.extract_s:.1f} s)"],
    )
    return 0


def default_demo_mesh() -> Path:
    """The Stanford bunny that pymeshlab ships (found without importing pymeshlab), else a generated shape."""
    import importlib.util

    spec = importlib.util.find_spec("pymeshlab")
    if spec and spec.submodule_search_locations:
        bunny = Path(next(iter(spec.submodule_search_locations))) / "tests" / "sample_meshes" / "bunny.obj"
        if bunny.is_file():
            return bunny
    from ...mesh.shapes import write_demo_shape

    return write_demo_shape(Path.home() / ".cache" / "sape_geom" / "bumpy_torus.ply")


def add_demo(sub) -> None:
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
    parser = argparse.ArgumentParser(prog="sape-geom demo")
    add_fit(parser.add_subparsers())
    fit_args = parser.parse_args(
        [
            "fit",
            str(mesh),
            "-o",
            str(out / f"{mesh.stem}_sape.ply"),
            "--heatmap",
            "--device",
            args.device,
            "--checkpoint",
            str(out / f"{mesh.stem}.ckpt"),
            "--preview",
            str(out / f"{mesh.stem}_preview.png"),
        ]
        + (["--quiet"] if args.quiet else [])
        + (["--json"] if args.json else [])
    )
    return _run_fit(fit_args)
