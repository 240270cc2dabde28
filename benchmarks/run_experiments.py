"""Reproduce the SAPE comparisons (issue 6): one command per experiment, each writing table.md,
results.json and figure.png into ``<out>/<experiment>/``.

    .venv/bin/python benchmarks/run_experiments.py encodings            # small size, CPU, minutes
    .venv/bin/python benchmarks/run_experiments.py all --size paper --device cuda

Experiments: encodings (1), sigma (2), sample_rate (3), occupancy (4), silhouette (5), performance (6).
``--size small`` (default) is sized for 2 CPU cores; ``--size paper`` uses the spec's settings (for a GPU).
Seeds are fixed (0) everywhere, so reruns agree up to floating-point and timing noise.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments.common import SIZES, Context, setup_torch  # noqa: E402

EXPERIMENTS = ("encodings", "sigma", "sample_rate", "occupancy", "silhouette", "performance")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment", choices=EXPERIMENTS + ("all",))
    ap.add_argument("--size", choices=SIZES, default="small")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared 2-core CPU)")
    args = ap.parse_args(argv)
    device = setup_torch(args.threads, args.device)
    ctx = Context(args.size, args.out, device, args.threads)
    names = EXPERIMENTS if args.experiment == "all" else (args.experiment,)
    for name in names:
        start = time.perf_counter()
        print(f"## {name} ({args.size}, {device})", flush=True)
        importlib.import_module(f"experiments.{name}").run(ctx)
        print(f"## {name} done in {time.perf_counter() - start:.0f} s -> {ctx.out / name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
