"""Compare SAPE, Fourier features (σ=5) and no encoding on the reference silhouettes (issues 4, 14).

Same steps, seed and settings for every run; prints one Markdown table (and writes it, plus the raw
numbers as JSON, when --out is given). ``--paper`` uses the paper's setting (subset Chamfer, no fold or
crossing term) instead of the defaults. Every loop of a target (holes, parts) is deformed. Example::

    .venv/bin/python benchmarks/silhouette_compare.py --steps 10000 --out out/silhouette_bench

Chamfer = mean of both directions' mean nearest-neighbour distance, normalised frame, against the target
contour resampled densely by arc length; ``chamfer_sum`` is the two terms added (the training loss's form).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sape_geom import config as config_mod
from sape_geom.curve import load_contours
from sape_geom.tasks.silhouette import DeformConfig, deform_shape, paper_config, save_outputs

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "assets" / "sape-official" / "silhouettes"
SHAPES = ("bat-5.gif", "bird-17.gif", "tree-9.gif", "denver.png")
ENCODINGS = ("sape", "ff", "none")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES))
    ap.add_argument("--encodings", nargs="+", default=list(ENCODINGS))
    ap.add_argument("--steps", type=int, default=None, help="default: the settings' own (defaults or --paper)")
    ap.add_argument("--paper", action="store_true", help="the paper's setting instead of the defaults")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sigma", type=float, default=5.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--out", type=Path, default=None, help="write table.md, results.json and per-run outputs")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    rows = []
    for shape in args.shapes:
        target = load_contours(args.root / shape)
        base = paper_config() if args.paper else DeformConfig()
        for enc in args.encodings:
            cfg = config_mod.replace(
                base,
                steps=args.steps or base.steps,
                seed=args.seed,
                device=args.device,
                snapshot_every=0,
                **{"field.encoding": enc, "field.sigma": args.sigma},
            )
            t0 = time.perf_counter()
            res = deform_shape(target, cfg)
            m = {k: v for k, v in res.metrics.items() if k != "per_contour"}
            m.update(shape=shape, wall_s=time.perf_counter() - t0, lr=cfg.learning_rate)
            rows.append(m)
            print(
                f"# {shape} {enc}: chamfer {m['chamfer']:.5f} iou {m['iou']:.4f} "
                f"self-int {m['self_intersections']} {m['steps_per_s']:.1f} steps/s",
                file=sys.stderr,
                flush=True,
            )
            if args.out is not None:
                save_outputs(res, args.out / f"{Path(shape).stem}_{enc}", target)
    lines = [
        f"{'Paper setting' if args.paper else 'Defaults'}; steps: {rows[0]['steps'] if rows else '-'} (+ calibration), "
        f"seed {args.seed}, σ {args.sigma}, device {args.device}, "
        f"threads {args.threads or 'default'}.",
        "",
        "| shape | encoding | Chamfer (mean) | Chamfer (sum) | Hausdorff | IoU | self-intersections | steps/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in rows:
        lines.append(
            f"| {m['shape']} | {m['encoding']} | {m['chamfer']:.5f} | {m['chamfer_sum']:.5f} | "
            f"{m['hausdorff']:.4f} | {m['iou']:.4f} | {m['self_intersections']} | {m['steps_per_s']:.1f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "table.md").write_text(table + "\n")
        (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
