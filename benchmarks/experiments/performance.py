"""Experiment 6: performance ratios, each pair measured in the same run on the same machine.

* training throughput per encoding and SAPE's overhead (``benchmarks/encoding_throughput.py``, one subprocess
  per encoding);
* sparse vs dense surface extraction of the same trained field (network queries, time, identical mesh?);
* inside/outside labels by the fast vs the exact winding number (time, agreement);
* end-to-end time to a target volumetric IoU, SAPE vs FF, the IoU measured from the network's own
  predictions on fixed uniform points (evaluation time excluded).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .common import REPO, Context, bunny_path, markdown_table, write_outputs

THROUGHPUT_CASES = (
    "ff",
    "sape (fast preset grid)",
    "sape (official grid, 8 levels)",
    "sape (official grid, worst case)",
    "progressive",
    "pe",
    "rbf",
    "prbf",
    "none",
    "siren",
)


def settings(size: str) -> dict:
    if size == "paper":
        return {
            "throughput_steps": 60,
            "extract_res": 256,
            "label_points": 200_000,
            "preset": "quality",
            "ttiou_overrides": {},
            "targets": (0.9, 0.95, 0.98),
            "snapshot_every": 1000,
            "iou_points": 200_000,
        }
    return {
        "throughput_steps": 40,
        "extract_res": 96,
        "label_points": 20_000,
        "preset": "fast",
        "ttiou_overrides": {"steps": 600, "batch_size": 2500, "points_per_set": 100_000, "num_sets": 2},
        "targets": (0.85, 0.9, 0.95),
        "snapshot_every": 25,
        "iou_points": 30_000,
    }


def throughput(ctx: Context, steps: int) -> list[dict]:
    script = REPO / "benchmarks" / "encoding_throughput.py"
    out = subprocess.run(
        [
            sys.executable,
            str(script),
            "--steps",
            str(steps),
            "--device",
            ctx.device,
            "--threads",
            str(ctx.threads),
            "--only",
            *THROUGHPUT_CASES,
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    rows = []
    for line in out.stdout.splitlines():
        m = re.match(r"\| (.+?) \| ([\d.]+) \| ([\d.]+)x \| (\d+) \|", line)
        if m:
            rows.append({"encoding": m[1], "steps_per_s": float(m[2]), "time_vs_ff": float(m[3]), "peak_mb": int(m[4])})
    return rows


def _trained_bunny(ctx: Context, s: dict, encoding: str = "sape", callbacks=None):
    from sape_geom import fit_occupancy, load_mesh, occupancy_preset

    mesh = load_mesh(bunny_path())
    cfg = dataclasses.replace(
        occupancy_preset(s["preset"], encoding=encoding, device=ctx.device), **s["ttiou_overrides"]
    )
    return mesh, fit_occupancy(mesh, cfg, callbacks)


def extraction(fit, res: int) -> dict:

    from sape_geom.mesh.extract import extract_surface_dense, extract_surface_with_stats
    from sape_geom.tasks.occupancy import outside_probability

    model = fit.model.eval()

    def query(points: np.ndarray) -> np.ndarray:
        return outside_probability(model, points) - 0.5

    sparse, s_stats = extract_surface_with_stats(query, res)
    start = time.perf_counter()
    dense = extract_surface_dense(query, res)
    dense_s = time.perf_counter() - start
    same = sparse.vertices.shape == dense.vertices.shape and sparse.faces.shape == dense.faces.shape
    diff = float("nan")
    if same and len(dense.vertices):
        diff = float(np.abs(np.sort(sparse.vertices, axis=0) - np.sort(dense.vertices, axis=0)).max())
    from sape_geom.mesh.cleanup import count_components

    return {
        "resolution": res,
        "sparse_evaluated": s_stats.evaluated,
        "dense_evaluated": res**3,
        "sparse_s": s_stats.time_s,
        "dense_s": dense_s,
        "same_size": same,
        "max_vertex_diff": diff,
        "faces": len(dense.faces),
        "sparse_faces": len(sparse.faces),
        "dense_components": count_components(dense),
        "sparse_components": count_components(sparse),
    }


def labels(n: int) -> dict:
    from sape_geom import load_mesh
    from sape_geom.mesh.io import normalization_for
    from sape_geom.mesh.sampling import inside_outside, sample_training_points

    mesh = load_mesh(bunny_path())
    V = normalization_for(mesh).apply(mesh.vertices)
    pts = sample_training_points(V, mesh.faces, n, np.random.SeedSequence(0))
    t0 = time.perf_counter()
    fast = inside_outside(V, mesh.faces, pts, exact=False)
    t1 = time.perf_counter()
    exact = inside_outside(V, mesh.faces, pts, exact=True)
    t2 = time.perf_counter()
    return {
        "points": n,
        "faces": len(mesh.faces),
        "fast_s": t1 - t0,
        "exact_s": t2 - t1,
        "agreement": float((fast == exact).mean()),
    }


def time_to_iou(ctx: Context, s: dict, encoding: str) -> dict:
    import torch

    from sape_geom import load_mesh
    from sape_geom.mesh.io import normalization_for
    from sape_geom.mesh.sampling import inside_outside
    from sape_geom.nn.trainer import TrainCallbacks

    mesh = load_mesh(bunny_path())
    V = normalization_for(mesh).apply(mesh.vertices)
    pts = np.random.default_rng(0).uniform(-1, 1, (s["iou_points"], 3)).astype(np.float32)
    inside = inside_outside(V, mesh.faces, pts)
    state = {"t0": None, "eval_s": 0.0, "curve": []}

    def on_progress(info) -> None:
        if info.stage == "training" and state["t0"] is None:
            state["t0"] = time.perf_counter() - info.elapsed_s

    @torch.no_grad()
    def on_snapshot(step: int, model) -> None:
        now = time.perf_counter()
        train_s = now - state["t0"] - state["eval_s"]
        pred_inside = (model.evaluate(torch.from_numpy(pts).to(ctx.device), 32768)[:, 0] < 0).cpu().numpy()
        union = np.count_nonzero(pred_inside | inside)
        iou = np.count_nonzero(pred_inside & inside) / union if union else 0.0
        state["curve"].append((step, train_s, float(iou)))
        model.train()
        state["eval_s"] += time.perf_counter() - now

    callbacks = TrainCallbacks(on_progress=on_progress, snapshot_every=s["snapshot_every"], on_snapshot=on_snapshot)
    _, fit = _trained_bunny(ctx, s, encoding, callbacks)
    reached = {}
    for target in s["targets"]:
        hit = next(((step, t) for step, t, iou in state["curve"] if iou >= target), None)
        reached[str(target)] = (
            None
            if hit is None
            else {"steps": hit[0], "train_s": hit[1], "end_to_end_s": fit.timings["labels_s"] + hit[1]}
        )
    return {
        "encoding": encoding,
        "labels_s": fit.timings["labels_s"],
        "curve": state["curve"],
        "final_iou": state["curve"][-1][2] if state["curve"] else float("nan"),
        "reached": reached,
        "fit": fit,
    }


def run(ctx: Context) -> dict:
    s = settings(ctx.size)
    folder = ctx.folder("performance")
    print("# throughput", flush=True)
    tput = throughput(ctx, s["throughput_steps"])
    print("# time to IoU", flush=True)
    tt = [time_to_iou(ctx, s, enc) for enc in ("ff", "sape")]
    print("# extraction", flush=True)
    ext = extraction(tt[1].pop("fit"), s["extract_res"])
    tt[0].pop("fit")
    print("# labels", flush=True)
    lab = labels(s["label_points"])

    parts = [
        "**Training throughput** (occupancy model: 4x256 MLP, batch 5000, "
        f"{s['throughput_steps']} timed steps per encoding, `benchmarks/encoding_throughput.py`):",
        "",
        markdown_table(
            ["encoding", "steps/s", "time per step vs FF", "peak memory (MB)"],
            [[r["encoding"], r["steps_per_s"], f"{r['time_vs_ff']:.2f}x", r["peak_mb"]] for r in tput],
            2,
        ),
    ]
    parts += [
        "",
        f"**Extraction** of the same SAPE field (bunny) at {ext['resolution']}³:",
        "",
        markdown_table(
            ["method", "network queries", "time (s)"],
            [
                ["sparse (coarse-to-fine)", ext["sparse_evaluated"], ext["sparse_s"]],
                ["dense", ext["dense_evaluated"], ext["dense_s"]],
                [
                    "ratio dense / sparse",
                    ext["dense_evaluated"] / ext["sparse_evaluated"],
                    ext["dense_s"] / ext["sparse_s"],
                ],
            ],
            2,
        ),
        "",
        f"Same mesh: {ext['same_size'] and ext['max_vertex_diff'] < 1e-6} (sparse {ext['sparse_faces']} faces in "
        f"{ext['sparse_components']} components, dense {ext['faces']} faces in {ext['dense_components']} components).",
    ]
    parts += [
        "",
        f"**Inside/outside labels** for {lab['points']} training points of the bunny ({lab['faces']} faces):",
        "",
        markdown_table(
            ["winding number", "time (s)", "points/s"],
            [
                ["fast (hierarchical)", lab["fast_s"], lab["points"] / lab["fast_s"]],
                ["exact", lab["exact_s"], lab["points"] / lab["exact_s"]],
                ["ratio exact / fast", lab["exact_s"] / lab["fast_s"], "-"],
            ],
            3,
        ),
        "",
        f"Labels agree on {lab['agreement']:.2%} of the points.",
    ]
    o = s["ttiou_overrides"]
    rows = []
    for target in s["targets"]:
        hits = [r["reached"][str(target)] for r in tt]
        cells = []
        for hit in hits:
            cells += ["not reached", "-"] if hit is None else [hit["steps"], hit["end_to_end_s"]]
        ratio = hits[1]["end_to_end_s"] / hits[0]["end_to_end_s"] if all(hits) else "-"
        rows.append([target, *cells, ratio])
    names = [r["encoding"].upper() for r in tt]
    final = ", ".join(f"{n} {r['final_iou']:.3f}" for n, r in zip(names, tt))
    parts += [
        "",
        f"**End-to-end time to a target IoU** on the bunny (preset `{s['preset']}`{' with ' + str(o) if o else ''}): "
        f"labelling + training until the network's own inside/outside on {s['iou_points']} uniform points of "
        f"the unit cube reaches the IoU, checked every {s['snapshot_every']} steps (evaluation time excluded). "
        f"Final IoU: {final}.",
        "",
        markdown_table(
            [
                "target IoU",
                f"{names[0]} steps",
                f"{names[0]} end-to-end (s)",
                f"{names[1]} steps",
                f"{names[1]} end-to-end (s)",
                f"ratio {names[1]} / {names[0]}",
            ],
            rows,
            2,
        ),
        "",
    ]
    table = "\n".join(parts)
    _plot(tt, tput, s, folder / "figure.png")
    write_outputs(
        folder,
        "Performance",
        "Every ratio below compares two measurements made in the same run.",
        table,
        {"throughput": tput, "extraction": ext, "labels": lab, "time_to_iou": tt},
        ctx,
    )
    return {}


def _plot(tt: list[dict], tput: list[dict], s: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    names = [r["encoding"].replace(" (", "\n(") for r in tput]
    a.barh(names[::-1], [r["steps_per_s"] for r in tput][::-1], color="#4a7bd0")
    a.set_xlabel("training steps/s (batch 5000)")
    a.tick_params(axis="y", labelsize=7)
    for r in tt:
        curve = r["curve"]
        b.plot([c[1] for c in curve], [c[2] for c in curve], "o-", ms=3, label=r["encoding"])
    for target in s["targets"]:
        b.axhline(target, color="grey", ls="--", lw=0.8)
    b.set_xlabel("training time (s, evaluation excluded)")
    b.set_ylabel("volumetric IoU (network)")
    b.set_title("bunny: IoU vs time")
    b.legend()
    b.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
