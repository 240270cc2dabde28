"""Fast-preset training speed of this checkout against an earlier commit, measured in the same run.

The earlier commit is checked out into a temporary ``git worktree`` (nothing in this checkout is
touched); each round trains the ``fast`` preset's model (its field, grid, batch and learning rates) on a
ball in a subprocess of each tree, alternating, and reports ``TrainStats.steps_per_second``. Fewer
points per set than the preset (``--points``) keep the labelling short; it does not change a step.

    python benchmarks/before_after.py OLD_COMMIT [--new NEW_COMMIT] [--steps 200] [--rounds 3] [--threads 1] [--json]

``--new`` checks out a second commit the same way instead of timing this checkout (whose files others
may be editing while it runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, torch
torch.set_num_threads(int(sys.argv[3]))
import sape_geom
from sape_geom.mesh.shapes import sphere
from sape_geom.tasks.occupancy import fit_occupancy, occupancy_preset
import statistics, time
from sape_geom.nn.trainer import TrainCallbacks
from sape_geom.errors import ConfigError
config = occupancy_preset("fast", steps=int(sys.argv[1]), points_per_set=int(sys.argv[2]), device="cpu")
from sape_geom import config as cfg
applied = {}
for key, value in json.loads(sys.argv[4]).items():  # --try-set: only where this tree's config has the field
    try:
        config = cfg.replace(config, **{key: value})
        applied[key] = value
    except ConfigError:
        pass
marks = []
callbacks = TrainCallbacks(on_progress=lambda info: marks.append(time.perf_counter()) if info.stage == "training" else None)
fit = fit_occupancy(sphere(0.8), config, callbacks)
steps = [b - a for a, b in zip(marks, marks[1:])]
print(json.dumps({"steps_per_s": fit.stats.steps_per_second, "median_step_ms": 1e3 * statistics.median(steps),
                  "final_loss": fit.stats.final_loss, "package": sape_geom.__file__, "applied": applied}))
"""


def run(tree: Path, args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(args.steps),
            str(args.points),
            str(args.threads),
            json.dumps({k: json.loads(v) for k, v in (item.split("=", 1) for item in args.try_set)}),
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["package"].startswith(str(tree)), result["package"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="the earlier commit")
    parser.add_argument("--new", default=None, help="a later commit instead of this checkout")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--try-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a preset override applied where the tree's config has the field (e.g. a setting "
        "added between the two commits, to compare like with like); VALUE is JSON",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sape_before_") as tmp:
        old = Path(tmp) / "old"
        new = Path(tmp) / "new" if args.new else ROOT
        trees = [(old, args.old)] + ([(new, args.new)] if args.new else [])
        for tree, commit in trees:
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True, capture_output=True
            )
        try:
            rounds = {"before": [], "after": []}
            for _ in range(args.rounds):
                rounds["before"].append(run(old, args))
                rounds["after"].append(run(new, args))
        finally:
            for tree, _ in trees:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    summary = {name: statistics.median(r["steps_per_s"] for r in runs) for name, runs in rounds.items()}
    step_ms = {name: statistics.median(r["median_step_ms"] for r in runs) for name, runs in rounds.items()}
    result = {
        "old": args.old,
        "new": args.new or "checkout",
        "steps": args.steps,
        "threads": args.threads,
        "rounds": rounds,
        "median_steps_per_s": summary,
        "ratio_after_over_before": summary["after"] / summary["before"],
        "median_step_ms": step_ms,
        "step_ms_ratio_after_over_before": step_ms["after"] / step_ms["before"],
    }
    if args.json:
        print(json.dumps(result))
    else:
        for name, runs in rounds.items():
            print(
                f"{name}: "
                + ", ".join(f"{r['steps_per_s']:.2f}" for r in runs)
                + f" steps/s (median {summary[name]:.2f})"
            )
        print(
            f"after / before: {result['ratio_after_over_before']:.3f} in steps/s; median step "
            f"{step_ms['before']:.1f} ms before, {step_ms['after']:.1f} ms after"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
