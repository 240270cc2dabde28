"""Cost of one stage-2 step of the silhouette deformation for each loss variant (issue 14).

Times the same number of Chamfer steps (no calibration) on one silhouette with: the paper's subset
Chamfer, the exact point-to-polyline Chamfer, + the fold term, + the crossing term (the defaults).
Prints milliseconds per step; the ratios compare runs made one after the other in the same process.

    .venv/bin/python benchmarks/silhouette_step_cost.py --steps 300
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from sape_geom import config as config_mod
from sape_geom.curve import load_contour
from sape_geom.tasks.silhouette import DeformConfig, deform_curve

DEFAULT_TARGET = (
    Path(__file__).resolve().parents[2] / "shared" / "assets" / "sape-official" / "silhouettes" / "bat-5.gif"
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=Path, default=DEFAULT_TARGET)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--points", type=int, default=DeformConfig().points, help="curve points (the paper's: 500)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    target = load_contour(args.target)
    d = DeformConfig()
    variants = (
        ("subset Chamfer (paper)", dict(loss="subset", fold_weight=0.0, crossing_weight=0.0)),
        ("exact Chamfer", dict(loss="exact", fold_weight=0.0, crossing_weight=0.0)),
        ("exact + fold", dict(loss="exact", fold_weight=d.fold_weight, crossing_weight=0.0)),
        (
            "exact + fold + crossing (defaults)",
            dict(loss="exact", fold_weight=d.fold_weight, crossing_weight=d.crossing_weight),
        ),
    )
    rows = []
    for label, changes in variants:
        cfg = config_mod.replace(
            d, steps=args.steps, points=args.points, calibration_steps=0, snapshot_every=0, device="cpu", **changes
        )
        res = deform_curve(target, cfg)
        rows.append((label, 1000.0 / res.timings["steps_per_s"]))
    base = rows[0][1]
    print(f"{args.target.name}, {args.steps} steps, {args.threads} thread(s), {args.points} points")
    print("| loss | ms / step | x paper |\n|---|---|---|")
    for label, ms in rows:
        print(f"| {label} | {ms:.2f} | {ms / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
