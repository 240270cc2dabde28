"""Training step cost and host syncs (issue 12): plain FF, SAPE on the fast preset's grid, SAPE on the
official 64^3 grid with more than 63 levels present, through ``sape_geom.nn.trainer.train`` itself.

Per case: the median milliseconds per step over ``--steps`` steps (at least two block boundaries are
crossed: the presets' own block periods), the mean cost of a boundary step, the projected time of the
quality protocol's 100k steps (block period 200), the operations dispatched per step and the host syncs
per step (a dispatch counter, ``sape_geom.nn.sync_counter``, on any device; on CUDA also the profiler's
synchronising runtime calls). Adam is the fused kernel on every device here (the trainer's default off
the CPU; on the CPU the trainer keeps the single-tensor loop, whose step counters are read on the host).

On a CUDA GPU the sizes are the protocol's (batch 5000, 4 x 256 MLP on 515 inputs); on the CPU, so that a
run takes a couple of minutes, batch 512 and width 64 (same 515 inputs, same grids), unless given.

    python benchmarks/gpu_train.py [--quick] [--json] [--write] [--device auto] [--threads 1]
        [--steps 2000] [--batch N] [--width N] [--tf32]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sape_geom.nn import trainer  # noqa: E402
from sape_geom.nn.model import EncodedField  # noqa: E402
from sape_geom.nn.sync_counter import SyncCounter  # noqa: E402
from sape_geom.tasks.occupancy import PRESETS  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "gpu_train"
PROTOCOL_STEPS = 100_000
PROTOCOL_PERIOD = 200
#: Case -> (preset whose field and progress settings are used, encoding, levels to scatter over the grid).
CASES = {
    "ff": ("quality", "ff", 0),
    "sape (fast grid)": ("fast", "sape", 0),
    "sape (64^3 grid, 101 levels)": ("quality", "sape", 100),
}


def _bce(prediction: torch.Tensor, target: torch.Tensor, _x: torch.Tensor):
    per_sample = torch.nn.functional.binary_cross_entropy_with_logits(prediction, target, reduction="none")[:, 0]
    return per_sample.mean(), per_sample


def build(case: str, steps: int, width: int, device: torch.device, tf32: bool) -> EncodedField:
    preset_name, encoding, levels = CASES[case]
    preset = PRESETS[preset_name]
    field = dataclasses.replace(
        preset.field, encoding=encoding, hidden_width=width, allow_tf32=tf32, precision="float32"
    )
    progress = preset.progress
    if levels:  # every node freezes at the first boundary, so the scattered levels stay all through the run
        progress = dataclasses.replace(progress, epsilon=1e9)
    model = EncodedField(3, 1, field, progress, steps, torch.Generator().manual_seed(0)).to(device)
    spatial = model.spatial
    if spatial is not None and levels:
        # Every level 0..levels held by some node, the pointer at the top: the mask's worst case.
        count = spatial.level.numel()
        order = torch.randperm(count, generator=torch.Generator().manual_seed(0))
        spatial.level.copy_((torch.arange(count) % (levels + 1))[order].to(spatial.level))
        spatial.current_block.fill_(levels)
        spatial._invalidate()
    return model


def batches(batch: int, device: torch.device, count: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    out = []
    for _ in range(count):
        x = torch.rand(batch, 3, generator=generator) * 2 - 1
        out.append((x.to(device), (x.norm(dim=1, keepdim=True) > 0.6).float().to(device)))
    return out


def boundary_steps(model: EncodedField, steps: int) -> set[int]:
    """1-based steps at which the controller crosses a block boundary."""
    spatial = model.spatial
    if spatial is None:
        return set()
    return {s for s in range(1, steps + 1) if s % spatial._period == 0}


def time_case(case: str, args, device: torch.device) -> dict:
    model = build(case, args.steps, args.width, device, args.tf32)
    levels_at_start = int(torch.unique(model.spatial.level).numel()) if model.spatial is not None else None
    data = batches(args.batch, device)
    cuda = device.type == "cuda"
    marks: list = []

    def next_batch(step: int):
        marks.append(torch.cuda.Event(enable_timing=True) if cuda else time.perf_counter())
        if cuda:
            marks[-1].record()
        return data[step % len(data)]

    warm = build(case, 30, args.width, device, args.tf32)  # warm-up: kernels, allocator, caches
    trainer.train(warm, lambda s: data[s % len(data)], _bce, lr=1e-4, steps=30, fused=True)
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    trainer.train(model, next_batch, _bce, lr=1e-4, steps=args.steps, fused=True)
    if cuda:
        end = torch.cuda.Event(enable_timing=True)
        end.record()
        torch.cuda.synchronize()
        marks.append(end)
        durations = [a.elapsed_time(b) for a, b in zip(marks, marks[1:])]
    else:
        marks.append(time.perf_counter())
        durations = [(b - a) * 1e3 for a, b in zip(marks, marks[1:])]
    wall = time.perf_counter() - start
    edges = boundary_steps(model, args.steps)
    inside = [d for step, d in enumerate(durations, start=1) if step not in edges]
    at_edges = [d for step, d in enumerate(durations, start=1) if step in edges]
    median = statistics.median(inside)
    boundary = statistics.fmean(at_edges) if at_edges else median
    projected = (PROTOCOL_STEPS * median + (PROTOCOL_STEPS // PROTOCOL_PERIOD) * (boundary - median)) / 1e3
    spatial = model.spatial
    return {
        "ms_per_step": median,
        "mean_ms_per_step": wall * 1e3 / args.steps,
        "boundary_ms": boundary if at_edges else None,
        "boundaries_crossed": len(edges),
        "levels_present": levels_at_start,
        "levels_present_at_end": int(torch.unique(spatial.level).numel()) if spatial is not None else None,
        "mask_path": (None if spatial is None else ("table" if spatial._smoothed_table() is not None else "stencil")),
        "projected_100k_s": projected,
        "steps": args.steps,
    }


def count_case(case: str, args, device: torch.device) -> dict:
    """Operations and host syncs per step over a run crossing two boundaries (the loss reads at the
    first and last steps and every LOSS_READ_INTERVAL_S are the trainer's, counted apart)."""
    model = build(case, args.steps, args.width, device, args.tf32)
    spatial = model.spatial
    period = spatial._period if spatial is not None else 50
    steps = 2 * period + 3
    data = batches(args.batch, device, count=4)
    counter = SyncCounter()
    marks: list[tuple[int, int]] = []

    def next_batch(step: int):
        marks.append((counter.ops, counter.total_syncs))
        return data[step % len(data)]

    before = trainer.LOSS_READ_INTERVAL_S
    trainer.LOSS_READ_INTERVAL_S = math.inf  # only the first and last steps read the loss
    try:
        with counter:
            trainer.train(model, next_batch, _bce, lr=1e-4, steps=steps, fused=True)
    finally:
        trainer.LOSS_READ_INTERVAL_S = before
    marks.append((counter.ops, counter.total_syncs))
    per_step = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks, marks[1:])]
    middle = per_step[1:-1]  # without the first and last steps' loss reads
    edges = boundary_steps(model, steps)
    inside = [p for step, p in enumerate(middle, start=2) if step not in edges]
    result = {
        "ops_per_step": statistics.median(p[0] for p in inside),
        "syncs_per_step": sum(p[1] for p in inside) / len(inside),
        "syncs_per_boundary": (
            sum(p[1] for step, p in enumerate(middle, start=2) if step in edges)
            / max(1, len(edges & set(range(2, steps))))
        ),
        "counted_steps": steps,
        "syncs_by_op": dict(counter.syncs),
    }
    if device.type == "cuda":
        result["profiler_syncs_per_step"] = profile_syncs(model, data)
    return result


def profile_syncs(model: EncodedField, data) -> float | None:
    """CUDA only: synchronising runtime calls per step in 20 steps, from the profiler's event names."""
    try:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            trainer.train(model, lambda s: data[s % len(data)], _bce, lr=1e-4, steps=20, fused=True)
        names = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy ")
        calls = sum(
            e.count
            for e in prof.key_averages()
            if any(e.key.startswith(n.strip()) and ("Async" not in e.key) for n in names)
        )
        return max(0, calls - 3) / 20  # the loss reads at the first and last steps and the history
    except Exception:  # the profiler is optional; the dispatch counter stands
        return None


def environment(device: torch.device, args) -> dict:
    info = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
        "precision": "tf32 (network)" if args.tf32 and device.type == "cuda" else "float32",
        "adam": "fused",
        "batch": args.batch,
        "mlp": f"4 x {args.width} on 515 inputs",
        "steps": args.steps,
        "loss_read_interval_s": trainer.LOSS_READ_INTERVAL_S,
    }
    return info


def table(result: dict) -> str:
    env = result["environment"]
    lines = [
        "### Training step cost and host syncs",
        "",
        f"Device {env['device']} ({env['device_name']}), torch {env['torch']}, CUDA {env['cuda']}, "
        f"{env['threads']} CPU thread(s); {env['precision']}, Adam {env['adam']}; batch {env['batch']}, "
        f"MLP {env['mlp']}; {env['steps']} timed steps per case through `nn.trainer.train`.",
        "",
        "| case | ms per step (median) | boundary step (ms) | boundaries | levels (start, end) | mask path | ops per step | host syncs per step | host syncs per boundary | projected 100k steps (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["cases"].items():
        boundary = f"{r['boundary_ms']:.2f}" if r["boundary_ms"] is not None else "-"
        levels = f"{r['levels_present']}, {r['levels_present_at_end']}" if r["levels_present"] else "-"
        lines.append(
            f"| {name} | {r['ms_per_step']:.2f} | {boundary} | {r['boundaries_crossed']} | {levels} | "
            f"{r['mask_path'] or '-'} | {r['ops_per_step']:.0f} | {r['syncs_per_step']:.2f} | "
            f"{r['syncs_per_boundary']:.1f} | {r['projected_100k_s']:.0f} |"
        )
    lines += [
        "",
        "Host syncs are counted by a dispatch counter between block boundaries (scalar reads, data-dependent "
        "shapes, copies to the host, `.tolist()`); the trainer's own loss reads (first and last step, then "
        "every 0.1 s) are left out. On the CPU a SAPE boundary reads which levels the nodes hold (one "
        "`bincount`, `SpatialProgression.compact_levels`); on a GPU it reads nothing. The projection is 100 000 x the median step plus 500 boundaries at "
        "their measured extra cost (block period 200). On the CPU the sizes are reduced (see above), so "
        "the projection is for those sizes, not the protocol's; there the mask is applied one run of "
        "channels at a time (a gather along channels is slow on a CPU), which is most of the 64^3 case's "
        "operations, and on an accelerator one gather and one multiply. The 64^3 case scatters levels "
        "0..100 over the nodes, the pointer at 100, and freezes every node at the first boundary so they "
        "stay: its table would exceed 2^24 entries, so the folded stencil path runs.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2000, help="timed steps per case (at least 2000 for the record)")
    parser.add_argument("--quick", action="store_true", help="400 steps per case: a smoke run, not a record")
    parser.add_argument("--batch", type=int, default=None, help="default: 5000 on CUDA, 512 elsewhere")
    parser.add_argument("--width", type=int, default=None, help="MLP width; default: 256 on CUDA, 64 elsewhere")
    parser.add_argument("--tf32", action="store_true", help="FieldConfig.allow_tf32 (CUDA only)")
    parser.add_argument("--only", nargs="*", default=None, help="a subset of the case names")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--write", action="store_true", help=f"write table.md and results.json to {OUT}")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = trainer.choose_device(args.device)
    big = device.type == "cuda"
    args.batch = args.batch or (5000 if big else 512)
    args.width = args.width or (256 if big else 64)
    if args.quick:
        args.steps = 400
    result = {"environment": environment(device, args), "cases": {}}
    for name in CASES:
        if args.only and name not in args.only:
            continue
        case = time_case(name, args, device)
        case.update(count_case(name, args, device))
        result["cases"][name] = case
        if not args.json:
            print(
                f"{name}: {case['ms_per_step']:.2f} ms/step, {case['syncs_per_step']:.2f} syncs/step", file=sys.stderr
            )
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result))
    if args.write:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "results.json").write_text(json.dumps(result, indent=2) + "\n")
        (OUT / "table.md").write_text(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
