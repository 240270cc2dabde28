"""Mesh deformation benchmark (issue 15, docs/method.md §6.5): SAPE vs plain Fourier features vs no encoding.

    .venv/bin/python benchmarks/mesh_deform.py                 # writes benchmarks/results/mesh_deform/
    .venv/bin/python benchmarks/mesh_deform.py --steps 200     # equal steps for every encoding (default 400)

Three source -> target pairs: a level-5 icosphere onto the Stanford bunny (a figure), the same sphere onto
a mechanical part (the official Slic3r test part, genus 0), and the cow onto the bunny (one figure onto
another of the same genus). Every encoding runs the default ``MeshDeformConfig`` with only the encoding
changed: equal steps, samples, terms and learning rate. The table gives the metrics of
``tasks/mesh_deform/metrics.py`` and the seconds end to end; the figure shows the target and each result
(and SAPE's level heat-map: blue = few frequencies open, red = many). README's Results section is
regenerated from the table with ``run_experiments.py readme --write-readme``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments.common import (
    MESHES,
    Context,
    bunny_path,
    image_grid,
    markdown_table,
    save_png,
    setup_torch,
    write_outputs,
)

ENCODINGS = (("SAPE", "sape"), ("FF", "ff"), ("no encoding", "none"))
TILE = 240


def pairs() -> list[tuple[str, object, object]]:
    """(name, source, target): meshes that ship with pymeshlab and the official mechanical part."""
    import trimesh

    from sape_geom import load_mesh

    sphere = trimesh.creation.icosphere(5)
    bunny = load_mesh(bunny_path())
    part = load_mesh(MESHES / "Slic3r_friendly_pt5_scale_tilted.stl")
    cow = bunny_path().parent / "cow.obj"
    return [("sphere -> bunny", sphere, bunny), ("sphere -> part", sphere, part), ("cow -> bunny", cow, bunny)]


COLUMNS = (
    "pair",
    "encoding",
    "Chamfer-L1",
    "normal consistency",
    "flipped %",
    "turned %",
    "edge dist. p50",
    "edge dist. p95",
    "edge dist. p99",
    "IoU",
    "open fraction",
    "seconds",
)


def run(ctx: Context, steps: int) -> dict:
    from sape_geom import MeshDeformConfig, deform_mesh
    from sape_geom.config import replace
    from sape_geom.tasks.mesh_deform.outputs import level_mesh
    from sape_geom.viz.render import render_mesh_image

    folder = ctx.folder("mesh_deform")
    records, tiles, labels = [], [], []
    for name, source, target in pairs():
        row_tiles, row_labels = [], []
        sape_levels = None
        for label, encoding in ENCODINGS:
            config = replace(MeshDeformConfig(), steps=steps, device=ctx.device, **{"field.encoding": encoding})
            start = time.perf_counter()
            result = deform_mesh(source, target, config)
            seconds = time.perf_counter() - start
            m = result.metrics
            record = {
                "pair": name,
                "encoding": label,
                "seconds": seconds,
                "steps": steps,
                "metrics": m,
                "timings": result.timings,
            }
            records.append(record)
            print(
                f"{name:16s} {label:12s} chamfer {m['chamfer_l1']:.5f} nc {m['normal_consistency']:.4f} "
                f"flipped {100 * m['flipped_faces']:.2f} % edge p95 {m['edge_distortion_p95']:.3f} ({seconds:.0f} s)",
                flush=True,
            )
            if row_tiles == []:
                row_tiles.append(render_mesh_image(result_target(target), size=TILE))
                row_labels.append(f"{name}\ntarget")
            row_tiles.append(render_mesh_image(result.mesh, size=TILE, smooth=False))
            row_labels.append(f"{label}\nChamfer {m['chamfer_l1']:.4f}, flipped {100 * m['flipped_faces']:.1f} %")
            if encoding == "sape":
                sape_levels = level_mesh(result)
        row_tiles.append(render_mesh_image(sape_levels, size=TILE, smooth=False))
        row_labels.append("SAPE level\nblue few, red many")
        tiles.append(row_tiles)
        labels.append(row_labels)
    save_png(image_grid(tiles, labels), folder / "figure.png")
    write_table(ctx, records)
    return {"runs": records}


def write_table(ctx: Context, records: list[dict]) -> None:
    """``table.md`` (with sentences generated from the numbers) and ``results.json`` from the runs."""
    steps = records[0]["steps"] if records else 0
    rows = []
    for r in records:
        m = r["metrics"]
        rows.append(
            (
                r["pair"],
                r["encoding"],
                m["chamfer_l1"],
                m["normal_consistency"],
                100 * m["flipped_faces"],
                100 * m["turned_faces"],
                m["edge_distortion_p50"],
                m["edge_distortion_p95"],
                m["edge_distortion_p99"],
                m["iou"],
                m.get("mean_open_fraction", 1.0),
                r["seconds"],
            )
        )
    preamble = (
        f"Each encoding with the default `MeshDeformConfig` (docs/method.md §6.5) and only the encoding "
        f"changed: {steps} Chamfer steps, the same samples, terms and learning rate (seed 0). Metrics in the "
        "target's box (longest side 1): Chamfer-L1 both ways, normal consistency, flipped faces (inside out "
        "against the target's normal), faces turned over 90 degrees from the source, percentiles of the "
        "edge-length distortion |log(l'/l) - log s|, IoU; seconds end to end (metrics included). Sources: a "
        "level-5 icosphere (10 242 vertices) and the cow (2 903); targets: the bunny (56 172 faces) and the "
        "Slic3r test part (69 760 faces)."
    )
    table = markdown_table(COLUMNS, rows, digits=4) + "\n\n" + summary(records, ctx.threads)
    write_outputs(ctx.folder("mesh_deform"), "Mesh deformation onto a target", preamble, table, {"runs": records}, ctx)


def summary(records: list[dict], threads: int) -> str:
    """Sentences with the numbers of the table (generated, never typed): the issue's targets on the
    icosphere -> bunny run and SAPE against FF on every pair."""
    by = {(r["pair"], r["encoding"]): r for r in records}
    lines = []
    sape = by.get(("sphere -> bunny", "SAPE"))
    if sape is not None:
        m = sape["metrics"]
        checks = [
            (f"Chamfer-L1 {m['chamfer_l1']:.4f}", m["chamfer_l1"] <= 0.005, "<= 0.005"),
            (f"normal consistency {m['normal_consistency']:.3f}", m["normal_consistency"] >= 0.95, ">= 0.95"),
            (f"flipped faces {100 * m['flipped_faces']:.2f} %", m["flipped_faces"] <= 0.01, "<= 1 %"),
            (f"{sape['seconds']:.0f} s end to end on {threads} thread(s)", sape["seconds"] <= 120, "<= 120 s"),
        ]
        said = "; ".join(f"{text} ({'meets' if ok else 'misses'} {goal})" for text, ok, goal in checks)
        lines.append(f"Level-5 icosphere onto the bunny, default settings (SAPE): {said}.")
    for pair in dict.fromkeys(r["pair"] for r in records):
        a, b = by.get((pair, "SAPE")), by.get((pair, "FF"))
        if a is None or b is None:
            continue
        ma, mb = a["metrics"], b["metrics"]
        lines.append(
            f"{pair}: SAPE against FF, Chamfer-L1 {ma['chamfer_l1']:.4f} vs {mb['chamfer_l1']:.4f}, flipped faces "
            f"{100 * ma['flipped_faces']:.2f} % vs {100 * mb['flipped_faces']:.2f} %, edge distortion p95 "
            f"{ma['edge_distortion_p95']:.3f} vs {mb['edge_distortion_p95']:.3f}, normal consistency "
            f"{ma['normal_consistency']:.3f} vs {mb['normal_consistency']:.3f}."
        )
    return "\n\n".join(lines)


def result_target(target):
    """The target as a Trimesh (a path is read)."""
    from sape_geom.tasks.mesh_deform import read_target

    return read_target(target)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400, help="Chamfer steps for every encoding (default 400)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--device", default="cpu", help="auto, cpu, cuda, mps (default cpu: the distances are on the CPU)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared 2-core CPU)")
    ap.add_argument(
        "--table-only",
        action="store_true",
        help="rewrite table.md from the runs in results.json (after a change to the table's text)",
    )
    args = ap.parse_args(argv)
    if args.table_only:
        saved = json.loads((args.out / "mesh_deform" / "results.json").read_text())
        write_table(Context("small", args.out, saved["device"], saved["threads"]), saved["runs"])
        return 0
    device = setup_torch(args.threads, args.device)
    run(Context("small", args.out, device, args.threads), args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
