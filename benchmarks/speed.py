"""Fit speed per precision and compile setting: the cost of a training step and of a field query, and
whole fits end to end.

Per variant, in one run on one machine so that the ratios against float32 hold: a precision (``float32``,
``auto``, ``bfloat16``, ``float16``, and ``tf32`` = float32 with ``FieldConfig.allow_tf32``, CUDA only),
eager, or with ``+compile`` the training step through ``torch.compile`` (``FieldConfig.compile = "on"``;
every other variant is pinned eager, whatever the preset's ``auto`` would do on this device):

* cost: training steps per second of the ``fast`` preset's network at its batch (after 10 warm-up steps,
  whose seconds, compiling included, are reported too), and field queries per second at the extraction's
  batch (what a 256^3 extraction spends its time on);
* end to end (``--e2e``): ``fit_occupancy`` + ``extract`` with the ``fast`` preset on the bunny and
  three of the surface benchmark's meshes: labels, training, extraction, smoothing, steps/s, IoU,
  Chamfer-L1, normal consistency and pieces.

A variant that resolves to the same precision as one already measured (``auto`` on a machine without
native bf16 is float32) is not measured twice: it is the same computation, and on a shared machine a
second measurement would differ only by noise (10-20 % here).

    .venv/bin/python benchmarks/speed.py                        # writes benchmarks/results/speed/
    .venv/bin/python benchmarks/speed.py --variants float32,bfloat16 --e2e float32,bfloat16
    .venv/bin/python benchmarks/speed.py --variants float32,float32+compile --e2e float32,float32+compile
    .venv/bin/python benchmarks/speed.py --quick --out /tmp/speed  # seconds: small sizes (a dry run)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments.common import MESHES, Context, bunny_path, markdown_table, setup_torch, write_outputs

VARIANTS = ("float32", "auto", "bfloat16", "float16", "tf32")
COMPILED = "+compile"


def split_variant(variant: str) -> tuple[str, bool]:
    """(precision variant, compiled) of a variant name such as ``float32+compile``."""
    if variant.endswith(COMPILED):
        return variant[: -len(COMPILED)], True
    return variant, False


def variant_config(config, variant: str):
    """``config`` with the variant's precision (``tf32``: float32 with TF32 matrix products allowed) and
    compile setting (``on`` with ``+compile``, else ``off``)."""
    precision, compiled = split_variant(variant)
    field = dataclasses.replace(config.field, compile="on" if compiled else "off")
    if precision == "tf32":
        field = dataclasses.replace(field, precision="float32", allow_tf32=True)
    else:
        field = dataclasses.replace(field, precision=precision, allow_tf32=False)
    return dataclasses.replace(config, field=field)


def resolved(variant: str, device) -> str:
    """What the variant runs as on ``device`` (``auto`` resolved; ``+compile`` kept)."""
    from sape_geom.nn.precision import resolve_precision

    precision, compiled = split_variant(variant)
    if precision == "tf32":
        name = "tf32" if device.type == "cuda" else "float32"
    else:
        name = resolve_precision(precision, device)
    return name + (COMPILED if compiled else "")


def step_cost(config, device, steps: int, queries: int) -> dict:
    """Training steps/s of ``config``'s network on random points, and field queries per second."""
    import torch

    from sape_geom.nn.trainer import train
    from sape_geom.tasks.occupancy.config import build_model
    from sape_geom.tasks.occupancy.fit import _loss_function

    generator = torch.Generator().manual_seed(0)
    model = build_model(config, steps + 10, generator).to(device)
    x = (torch.rand(config.batch_size, 3, generator=generator) * 1.9 - 0.95).to(device)
    target = (x.norm(dim=1, keepdim=True) - 0.5).to(device)
    loss = _loss_function(config)
    # warm-up: compiling, kernels, allocator, caches
    warm_up = train(model, lambda step: (x, target), loss, lr=config.lr, steps=10)
    stats = train(model, lambda step: (x, target), loss, lr=config.lr, steps=steps)
    points = (torch.rand(queries, 3, generator=generator) * 2 - 1).to(device)
    model.evaluate(points[:32768])
    seconds = []
    for _ in range(3):  # the best of three: this machine is shared
        _sync(device)
        start = time.perf_counter()
        model.evaluate(points)
        _sync(device)
        seconds.append(time.perf_counter() - start)
    return {
        "steps_per_s": stats.steps_per_second,
        "queries_per_s": queries / min(seconds),
        "warm_up_s": warm_up.seconds,
        "compiled": model.compiled,
    }


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


MESH_NAMES = ("bunny", "slic3r", "bracket", "overlapping", "sphere")


def meshes(names: list[str]) -> list[tuple[str, object]]:
    """(label, mesh) of ``names``: the bunny, the official Slic3r part, two generated hard cases, a sphere."""
    from sape_geom import load_mesh
    from sape_geom.mesh import shapes

    makers = {
        "bunny": lambda: ("bunny", load_mesh(bunny_path())),
        "slic3r": lambda: ("Slic3r part", load_mesh(next(MESHES.glob("Slic3r*.stl")))),
        "bracket": lambda: ("bracket (CAD)", shapes.bracket()),
        "overlapping": lambda: ("overlapping parts", shapes.overlapping_parts()),
        "sphere": lambda: ("sphere", shapes.sphere(0.8)),
    }
    return [makers[name]() for name in names]


def end_to_end(name: str, mesh, config) -> dict:
    from sape_geom import fit_occupancy, mesh_metrics

    start = time.perf_counter()
    fit = fit_occupancy(mesh, config)
    surface, stats = fit.extract_with_stats(colors=False)
    total = time.perf_counter() - start
    metrics = mesh_metrics(surface, mesh)
    return {
        "mesh": name,
        "precision": fit.model.precision,
        "compiled": fit.model.compiled,
        "total_s": total,
        "labels_s": fit.timings["labels_s"],
        "train_s": fit.timings["train_s"],
        "extract_s": stats.extract_s - stats.smooth_s,
        "smooth_s": stats.smooth_s,
        "steps": fit.stats.steps,
        "steps_per_s": fit.stats.steps_per_second,
        "iou": metrics["iou"],
        "chamfer_l1": metrics["chamfer_l1"],
        "nc": metrics["normal_consistency"],
        "pieces": metrics["components"],
        "pieces_input": metrics["components_input"],
        "faces": len(surface.faces),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--variants",
        default="float32,auto,bfloat16,float32+compile",
        help=f"comma-separated, of {', '.join(VARIANTS)}, each also with {COMPILED}, for the cost table",
    )
    ap.add_argument("--e2e", default="float32,auto,float32+compile", help="variants fitted end to end (empty: none)")
    ap.add_argument("--preset", default="fast", help="the occupancy preset timed (fast, quality, paper)")
    ap.add_argument(
        "--meshes",
        default="bunny,slic3r,bracket,overlapping",
        help=f"comma-separated, of {', '.join(MESH_NAMES)} (--quick: sphere)",
    )
    ap.add_argument("--name", default="speed", help="results folder under --out")
    ap.add_argument(
        "--sets",
        type=int,
        default=None,
        help="point sets instead of the preset's (labelling time; the steps and batch stay the preset's)",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (2: what a user's fit uses here)")
    ap.add_argument("--cost-steps", type=int, default=40)
    ap.add_argument("--quick", action="store_true", help="small sizes: a dry run in seconds")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args(argv)
    import torch

    from sape_geom.nn.precision import native_bf16
    from sape_geom.tasks.occupancy import occupancy_preset

    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    e2e = [v.strip() for v in args.e2e.split(",") if v.strip()]
    for variant in chosen + e2e:
        if split_variant(variant)[0] not in VARIANTS:
            raise SystemExit(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}, each with {COMPILED}")
    names = ["sphere"] if args.quick else [n.strip() for n in args.meshes.split(",") if n.strip()]
    if set(names) - set(MESH_NAMES):
        raise SystemExit(
            f"unknown mesh(es) {sorted(set(names) - set(MESH_NAMES))}; choose from {', '.join(MESH_NAMES)}"
        )
    ctx = Context("quick" if args.quick else "small", args.out, setup_torch(args.threads, args.device), args.threads)
    device = torch.device(ctx.device)
    config = occupancy_preset(args.preset, device=ctx.device, num_sets=args.sets)
    if args.quick:
        config = occupancy_preset(
            args.preset, device=ctx.device, steps=300, points_per_set=20_000, num_sets=2, batch_size=2000, resolution=64
        )
    queries = 65_536 if args.quick else 262_144
    cost_rows, costs, measured = [], {}, {}
    for variant in chosen:  # a variant that runs as one measured already is that measurement (not noise again)
        precision = resolved(variant, device)
        if precision not in measured:
            measured[precision] = step_cost(
                variant_config(config, variant), device, 5 if args.quick else args.cost_steps, queries
            )
        costs[variant] = {"variant": variant, "precision": precision, **measured[precision]}
        print(costs[variant], flush=True)
    base = costs.get("float32")
    for c in costs.values():
        cost_rows.append(
            [
                c["variant"],
                c["precision"],
                "yes" if c["compiled"] else "no",
                c["warm_up_s"],
                c["steps_per_s"],
                c["steps_per_s"] / base["steps_per_s"] if base else None,
                c["queries_per_s"] / 1e3,
                c["queries_per_s"] / base["queries_per_s"] if base else None,
            ]
        )
    runs, done = [], {}
    for name, mesh in meshes(names):
        for variant in e2e:
            precision = resolved(variant, device)
            if (name, precision) in done:
                continue
            row = {"variant": variant, **end_to_end(name, mesh, variant_config(config, variant))}
            done[(name, precision)] = row
            runs.append(row)
            print(row, flush=True)
    e2e_rows = []
    for row in runs:
        reference = done.get((row["mesh"], "float32"))
        e2e_rows.append(
            [
                row["mesh"],
                f"{row['variant']} ({row['precision']}{', compiled' if row['compiled'] else ''})",
                row["total_s"],
                row["total_s"] / reference["total_s"] if reference else None,
                row["labels_s"],
                row["train_s"],
                row["extract_s"],
                row["smooth_s"],
                row["steps_per_s"],
                row["iou"],
                1e3 * row["chamfer_l1"],
                row["nc"],
                f"{row['pieces']} ({row['pieces_input']})",
            ]
        )
    folder = ctx.folder(args.name)
    cpu = "native" if native_bf16(torch.device("cpu")) else "no native"
    preamble = (
        f"`{args.preset}` preset ({config.steps} steps, batch {config.batch_size}, {config.num_sets} point sets "
        f"of {config.points_per_set}, extraction at "
        f"{config.resolution}^3 with smoothing); this CPU has {cpu} bf16, so `auto` is "
        f"{resolved('auto', device)} on {device.type}. Ratios are against float32 in the same run, "
        "every case alone on the machine."
    )
    table = (
        "Cost of a step and of a query:\n\n"
        + markdown_table(
            ["variant", "runs as", "compiled", "first 10 steps s", "steps/s", "x float32", "k queries/s", "x float32"],
            cost_rows,
            2,
        )
        + "\n\nEnd to end:\n\n"
        + markdown_table(
            [
                "mesh",
                "variant",
                "total s",
                "x float32",
                "labels s",
                "training s",
                "extraction s",
                "smoothing s",
                "steps/s",
                "IoU",
                "Chamfer-L1 (1e-3)",
                "NC",
                "pieces (input)",
            ],
            e2e_rows,
            3,
        )
    )
    write_outputs(
        folder,
        "Fit speed per precision and compile setting",
        preamble,
        table,
        {"costs": list(costs.values()), "runs": runs},
        ctx,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
