"""Reproduce the SAPE comparisons (issue 6): one command per experiment, each writing table.md,
results.json and figure.png into ``<out>/<experiment>/``.

    .venv/bin/python benchmarks/run_experiments.py encodings            # small size, CPU, minutes
    .venv/bin/python benchmarks/run_experiments.py all --size paper --device cuda

Experiments: encodings (1), sigma (2), sample_rate (3), occupancy (4), silhouette (5), performance (6),
surface_quality (7, also `benchmarks/surface_quality.py`), flat_faces (8), peers (9: needs the ``peers`` extra).
``--size small`` (default) is sized for 2 CPU cores; ``--size paper`` uses the method's settings (docs/method.md §7; for a GPU).
Seeds are fixed (0) everywhere, so reruns agree up to floating-point and timing noise.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments.common import SIZES, Context, setup_torch

EXPERIMENTS = (
    "encodings",
    "sigma",
    "sample_rate",
    "occupancy",
    "silhouette",
    "performance",
    "surface_quality",
    "flat_faces",
    "peers",
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "experiment",
        choices=EXPERIMENTS + ("all", "readme"),
        help="an experiment, all of them, or readme: assemble <out>/*/table.md into <out>/RESULTS.md "
        "(with --write-readme, also the body of README.md's '## Results' section)",
    )
    ap.add_argument("--write-readme", action="store_true")
    ap.add_argument("--size", choices=SIZES, default="small")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared 2-core CPU)")
    args = ap.parse_args(argv)
    if args.experiment == "readme":
        return write_results(args.out, args.write_readme)
    device = setup_torch(args.threads, args.device)
    ctx = Context(args.size, args.out, device, args.threads)
    names = EXPERIMENTS if args.experiment == "all" else (args.experiment,)
    for name in names:
        start = time.perf_counter()
        print(f"## {name} ({args.size}, {device})", flush=True)
        importlib.import_module(f"experiments.{name}").run(ctx)
        print(f"## {name} done in {time.perf_counter() - start:.0f} s -> {ctx.out / name}", flush=True)
    return 0


TITLES = {
    "encodings": "1. Encodings on 2D image regression",
    "sigma": "2. Robustness to the frequency range σ",
    "sample_rate": "3. Robustness to the sample rate",
    "occupancy": "4. 3D occupancy",
    "silhouette": "5. Silhouette deformation",
    "performance": "6. Performance",
    "surface_quality": "7. Surface quality on meshes of many kinds",
    "flat_faces": "8. Flat faces: where the bumps come from",
    "peers": "9. Against what users have: Voxel Remesh, screened Poisson, Manifold",
}
MEASUREMENTS = {
    # benchmarks of their own (not experiments of this script): results folder -> (title, command)
    "mesh_deform": ("10. Mesh deformation onto a target", "python benchmarks/mesh_deform.py"),
    "gpu_train": ("11. Training step cost and host syncs", "python benchmarks/gpu_train.py"),
    "stress": ("12. Stress: scale and faults", "python benchmarks/stress.py"),
    "speed": ("13. Fit speed per precision and compile setting", "python benchmarks/speed.py"),
    "specks": ("14. Specks: the needle triangles of marching cubes", "python benchmarks/specks.py"),
    "reading": ("15. Solid or shell: almost closed models and real sheets", "python benchmarks/reading.py"),
    "steps": ("16. Fewer steps once snapped", "python benchmarks/steps.py"),
}


REPO = Path(__file__).resolve().parents[1]


def results_text(out: Path) -> str:
    """The experiments' tables (with their figures) as one Markdown text: README's Results section body."""
    repo = REPO
    notes = out / "NOTES.md"
    parts = [notes.read_text().strip()] if notes.is_file() else []
    sections = {name: (TITLES[name], f"python benchmarks/run_experiments.py {name}") for name in EXPERIMENTS}
    for name, (title, command) in {**sections, **MEASUREMENTS}.items():
        table = out / name / "table.md"
        if not table.is_file():
            continue
        body = table.read_text().strip()
        if body.startswith("#"):
            body = body.split("\n", 1)[1].strip()  # drop the table's own title
        figure = out / name / "figure.png"
        shown = f"\n\n![{name}]({figure.resolve().relative_to(repo)})" if figure.is_file() else ""
        parts.append(f"### {title}\n\n`{command}`\n\n{body}{shown}")
    return "\n\n".join(parts) + "\n"


def results_file_text(text: str) -> str:
    """``RESULTS.md`` beside the tables: the same text with figure paths relative to it."""
    return text.replace("](benchmarks/results/", "](")


def readme_results(readme: str) -> tuple[str, str, str]:
    """README split into (up to its Results body, that body, the rest from the next section on)."""
    head, sep, rest = readme.partition("\n## Results\n")
    if not sep:
        raise SystemExit("README.md has no '## Results' section")
    body, nxt, tail = rest.partition("\n## ")
    return head + sep + "\n", body[1:] if body.startswith("\n") else body, ("\n## " + tail if nxt else "")


def write_results(out: Path, readme: bool) -> int:
    """Write ``RESULTS.md`` from the experiments' tables; with ``readme`` also README's Results section."""
    text = results_text(out)
    (out / "RESULTS.md").write_text(results_file_text(text))
    if readme:
        path = REPO / "README.md"
        head, _, tail = readme_results(path.read_text())
        path.write_text(head + text + tail)
    print(f"wrote {out / 'RESULTS.md'}" + (" and README.md's Results section" if readme else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
