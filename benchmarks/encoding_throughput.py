"""Training throughput per encoding at the 3D occupancy model size, and SAPE's overhead.

Each encoding trains the network of an occupancy preset (4x256 MLP) on batches of 5000 points in
[-1, 1]^3 with BCE on a sphere's occupancy, in its own subprocess (so peak memory is per encoding), on the
current device. Field and progress settings are the presets' own: the SAPE rows use the ``quality``
preset's (official) grid with every node at a different level, the worst case for the mask, and the
``fast`` preset's grid and blocks. Ratios are against plain Fourier features measured in the same run.

    python benchmarks/encoding_throughput.py [--steps 60] [--device auto] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

#: Case -> encoding, preset (default ``quality``) and how the SAPE levels are set before timing.
CASES = {
    "ff": {},
    "sape (official grid, worst case)": {"encoding": "sape", "scramble": True},
    "sape (official grid, 8 levels)": {"encoding": "sape", "levels": 8},
    "sape (fast preset grid)": {"encoding": "sape", "preset": "fast", "scramble": True},
    "progressive": {"encoding": "progressive"},
    "pe": {"encoding": "pe"},
    "rbf": {"encoding": "rbf"},
    "prbf": {"encoding": "prbf"},
    "none": {"encoding": "none"},
    "siren": {"encoding": "siren"},
}


def run_case(case: dict, steps: int, device: str, threads: int) -> dict:
    from dataclasses import replace

    import torch

    from sape_geom.nn.model import EncodedField
    from sape_geom.nn.trainer import choose_device
    from sape_geom.tasks.occupancy import PRESETS

    torch.set_num_threads(threads)
    dev = choose_device(device)
    preset = PRESETS[case.get("preset", "quality")]
    field = replace(preset.field, encoding=case.get("encoding", "ff"))
    model = EncodedField(3, 1, field, preset.progress, 100_000, torch.Generator().manual_seed(0)).to(dev)
    spatial = model.spatial
    if spatial is not None and (case.get("scramble") or case.get("levels")):
        top = len(spatial.block_ends) if case.get("scramble") else case["levels"]
        spatial.level.copy_(torch.randint(0, top, spatial.level.shape, generator=torch.Generator().manual_seed(0)))
        spatial._invalidate()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(1)
    batches = [torch.rand(5000, 3, generator=generator) * 2 - 1 for _ in range(8)]
    batches = [(x.to(dev), (x.norm(dim=1, keepdim=True) > 0.6).float().to(dev)) for x in batches]

    def step(i: int) -> None:
        x, y = batches[i % len(batches)]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y, reduction="none")
        optimizer.zero_grad()
        loss.mean().backward()
        optimizer.step()
        model.observe(x, loss.detach()[:, 0])

    for i in range(5):
        step(i)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    return {"steps_per_s": steps / seconds, "peak_mb": peak_mb, "device": str(dev)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None, help="subset of case names")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(CASES[args.case], args.steps, args.device, args.threads)))
        return
    results = {}
    names = [n for n in CASES if not args.only or n in args.only]
    for name in names:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--case",
                name,
                "--steps",
                str(args.steps),
                "--device",
                args.device,
                "--threads",
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    base = results.get("ff", {}).get("steps_per_s")
    device = next(iter(results.values()))["device"]
    print(
        f"Training throughput, 4x256 MLP, batch 5000, {args.steps} timed steps, device {device}, {args.threads} threads\n"
    )
    print("| encoding | steps/s | time per step vs ff | peak memory (MB) |")
    print("|---|---|---|---|")
    for name, r in results.items():
        ratio = f"{base / r['steps_per_s']:.2f}x" if base else "-"
        print(f"| {name} | {r['steps_per_s']:.1f} | {ratio} | {r['peak_mb']:.0f} |")


if __name__ == "__main__":
    main()
