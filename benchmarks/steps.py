"""Fewer steps: what a shorter ``fast`` fit gives once its surface is snapped onto the input.

Snapping (docs/method.md §6.3) takes the surface's position from the input wherever the field's surface
lies within a grid cell of it, so a field only has to find the shape, its pieces and its inside. Per mesh,
``fast`` fits with each step count (and the preset's 1000 steps without snapping, the surface as it was
before snapping, from the same field): IoU, Chamfer-L1, normal consistency, the normal angle's p50 and
p90, pieces against the input's, and the seconds of labels, training and extraction (snapping
included), each fit alone on the machine, 2 threads.

    .venv/bin/python benchmarks/steps.py                      # writes benchmarks/results/steps/
    .venv/bin/python benchmarks/steps.py --quick --out /tmp/steps   # a dry run: tiny fits of a sphere
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments.common import QUICK_FIT, markdown_table, script_context, write_outputs
from experiments.peers import suzanne
from experiments.surface_quality import meshes as surface_meshes

STEPS = (300, 500, 1000)
MESHES = ("bunny", "wave2", "bracket (CAD)", "three pieces", "overlapping parts", "Suzanne")
"""Solids of the surface benchmark (its open box is a shell, which is never snapped: a closed animal, the
terraced wave2, which short runs break into pieces, a CAD part, separate pieces, overlapping parts) and
Blender's Suzanne."""


def inputs(quick: bool) -> list:
    from sape_geom.mesh import shapes

    if quick:
        return [("sphere", shapes.sphere(0.8))]
    found = dict(surface_meshes())
    found["Suzanne"] = suzanne()
    return [(name, found[name]) for name in MESHES]


def main(argv: list[str] | None = None) -> int:
    from sape_geom import fit_occupancy, mesh_metrics
    from sape_geom.tasks.occupancy import occupancy_preset

    quick, ctx, folder = script_context(__doc__.splitlines()[0], "tiny fits of a sphere (a dry run)", "steps", argv)
    overrides = {**QUICK_FIT, "resolution": 64} if quick else {}
    step_counts = (100, 200) if quick else STEPS
    records = []
    for name, mesh in inputs(quick):
        for steps in step_counts:
            start = time.perf_counter()
            fit = fit_occupancy(mesh, occupancy_preset("fast", device="cpu", **{**overrides, "steps": steps}))
            surface, stats = fit.extract_with_stats(colors=False)
            seconds = time.perf_counter() - start
            variants = [("snapped", surface, seconds, stats.snap_s)]
            if steps == step_counts[-1]:  # the same field as before snapping existed
                plain = dataclasses.replace(fit, config=dataclasses.replace(fit.config, snap_to_input=False))
                unsnapped, plain_stats = plain.extract_with_stats(colors=False)
                plain_seconds = seconds - stats.extract_s + plain_stats.extract_s
                variants.append(("not snapped", unsnapped, plain_seconds, 0.0))
            for label, result, total, snap_s in variants:
                m = mesh_metrics(result, mesh, n_points=50_000, iou_points=50_000)
                record = {
                    "mesh": name,
                    "steps": steps,
                    "surface": label,
                    "read_as": fit.reading["mode"],
                    **{k: m[k] for k in ("iou", "chamfer_l1", "normal_consistency", "components")},
                    "angle_p50": m["normal_angle_p50"],
                    "angle_p90": m["normal_angle_p90"],
                    "pieces_input": m["components_input"],
                    "labels_s": fit.timings["labels_s"],
                    "train_s": fit.timings["train_s"],
                    "snap_s": snap_s,
                    "seconds": total,
                }
                print(record, flush=True)
                records.append(record)
    header = [
        "mesh",
        "steps",
        "surface",
        "IoU",
        "Chamfer-L1 (×1e-3)",
        "NC",
        "angle p50 (°)",
        "angle p90 (°)",
        "pieces (input)",
        "labels (s)",
        "training (s)",
        "snapping (s)",
        "seconds",
    ]
    rows = [
        [
            r["mesh"],
            r["steps"],
            r["surface"],
            r["iou"],
            1e3 * r["chamfer_l1"],
            r["normal_consistency"],
            r["angle_p50"],
            r["angle_p90"],
            f"{r['components']} ({r['pieces_input']})",
            r["labels_s"],
            r["train_s"],
            r["snap_s"],
            r["seconds"],
        ]
        for r in records
    ]
    preamble = (
        "`fast` preset, extraction at 256³, snapped onto the input (docs/method.md §6.3) unless the row says "
        "`not snapped`: that row is the longest run's own field extracted without snapping, the surface of "
        "the preset before snapping existed. Seconds: reading, labels, training and extraction (snapping "
        "included), each fit alone on the machine with 2 threads."
    )
    write_outputs(
        folder, "Fewer steps once snapped", preamble, markdown_table(header, rows, digits=4), {"rows": records}, ctx
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
