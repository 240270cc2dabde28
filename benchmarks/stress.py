"""Stress: does sape-geom hold at scale and under faults? One row per case: held or failed, the peak RSS
of the process that did the work (its workers included), and the seconds it took.

    python benchmarks/stress.py [--out benchmarks/results/stress] [--cases extract_256,kill_resume ...]

Every case runs the command line (or the add-on's worker) in a fresh process, as a user would, with one
torch thread (``OMP_NUM_THREADS=1``) and small training budgets where the case is about memory or
faults rather than quality:

* ``extract_256/512/1024``: re-extract a fitted sphere (``fit --steps 300``) at that resolution; holds
  within 2 GB of peak RSS.
* ``input_100k/1m/5m``: fit a generated torus with fine ridges and noise of exactly that many faces with
  the fast preset (``--steps 300 --resolution 128``, enough for a real fit: at 100 steps the 100k torus came
  out at IoU 0.70); holds within 2 GB, with the labelling time
  reported and the metrics computed against the whole input.
* ``noisy_field``: a plain Fourier-feature field after 150 steps (sigma 60) re-extracted at 256^3 must
  stop at the face budget in one line, and go on with ``--face-budget 0`` (at 128^3, for time).
* ``kill_resume``: ``kill -9`` of a batch driver three times at different moments; no worker may
  outlive it, no file under a final name may be partial, and the rerun resumes and finishes.
* ``concurrent_batch``: a second batch on a folder in use stops at once in one line; the first finishes.
* ``read_only``: ``fit`` and ``batch`` into a read-only folder each print one line, before any work,
  and change nothing there (a read-only tmpfs as root, else a folder without write permission).
* ``full_disk``: a batch into a 1 MB tmpfs stops in one line and keeps the file already there
  (needs root to mount; reported as not run otherwise).
* ``cancel_labels`` / ``cancel_extract``: the worker gets ``cancel`` while labelling a 1M-face input,
  and its stdin closed while extracting at 1024^3; it must end with a ``cancelled`` event within 2 s.

Writes ``table.md`` and ``results.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stress_tools import (  # benchmarks/stress_tools.py
    CLI,
    ENV,
    LIMIT_MB,
    ROOT,
    Tracked,
    alive,
    children,
    complete,
    fitted_sphere,
    mount_tmpfs,
    one_line,
    run,
    small_meshes,
    sphere_mesh,
    torus_grid,
    umount,
)

subprocess.Popen = Tracked  # every run() above measures its process


# -------------------------------------------------------------------------------------------- cases
def case_extract(work: Path, resolution: int) -> dict:
    ckpt, failed = fitted_sphere(work)
    if failed:
        return {"held": False, "note": "the sphere fit failed: " + one_line(failed), **failed}
    result = run(
        CLI + ["extract", str(ckpt), "--resolution", str(resolution), "-o", str(work / f"x{resolution}.ply"), "--json"]
    )
    held = result["rc"] == 0 and result["peak_mb"] < LIMIT_MB
    faces = json.loads(result["stdout"])["faces"] if result["rc"] == 0 else None
    return {"held": held, "note": f"{faces} faces" if held else one_line(result), **result}


def case_input(work: Path, faces: int) -> dict:
    mesh = torus_grid(faces, work / f"torus_{faces}.ply")
    result = run(
        CLI
        + [
            "fit",
            str(mesh),
            "-o",
            str(work / f"torus_{faces}_fit.ply"),
            "--steps",
            "300",
            "--resolution",
            "128",
            "--json",
            "--quiet",
        ],
        timeout=1800,
    )
    if result["rc"] != 0:
        return {"held": False, "note": one_line(result), **result}
    payload = json.loads(result["stdout"])
    timings, metrics = payload["timings"], payload.get("metrics", {})
    note = (
        f"labels {timings['labels_s']:.0f} s, training {timings['train_s']:.0f} s, metrics on the whole input "
        f"({payload['faces']} faces fitted, IoU {metrics.get('iou', 0):.3f})"
    )
    return {"held": result["peak_mb"] < LIMIT_MB, "note": note, "timings": timings, **result}


def case_noisy(work: Path) -> dict:
    ckpt = work / "noisy.ckpt"
    fit = run(
        CLI
        + [
            "fit",
            str(sphere_mesh(work)),
            "-o",
            str(work / "noisy64.ply"),
            "--encoding",
            "ff",
            "--sigma",
            "60",
            "--steps",
            "150",
            "--resolution",
            "64",
            "--checkpoint",
            str(ckpt),
            "--keep-all",
            "--quiet",
            "--no-metrics",
        ]
    )
    stopped = run(CLI + ["extract", str(ckpt), "--resolution", "256", "-o", str(work / "noisy256.ply"), "--keep-all"])
    went_on = run(
        CLI
        + [
            "extract",
            str(ckpt),
            "--resolution",
            "128",
            "-o",
            str(work / "noisy128.ply"),
            "--keep-all",
            "--face-budget",
            "0",
            "--json",
        ]
    )
    held = (
        fit["rc"] == 0
        and stopped["rc"] == 2
        and "face budget" in one_line(stopped)
        and len(stopped["stderr"].strip().splitlines()) == 1
        and went_on["rc"] == 0
    )
    faces = json.loads(went_on["stdout"])["faces"] if went_on["rc"] == 0 else None
    return {
        "held": held,
        "seconds": stopped["seconds"],
        "peak_mb": stopped["peak_mb"],
        "note": f"256^3 stopped in {stopped['seconds']:.0f} s: {one_line(stopped)[:160]}...; with --face-budget 0 "
        f"at 128^3: {faces} faces in {went_on['seconds']:.0f} s",
        "runs": [fit, stopped, went_on],
    }


BATCH = ["--steps", "30", "--resolution", "32", "--quiet"]


def case_kill_resume(work: Path) -> dict:
    folder, out = small_meshes(work / "kill_in", 4), work / "kill_out"
    start, problems, kills = time.perf_counter(), [], []
    for delay in (4.0, 11.0, 19.0):
        driver = subprocess.Popen(
            CLI + ["batch", str(folder), "-o", str(out)] + BATCH,
            env=ENV,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(delay)
        workers = children(driver.pid)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 3
        while any(alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans = [p for p in workers if alive(p)]
        partial = [p.name for p in out.glob("*") if p.suffix in (".ply", ".ckpt", ".png") and not complete(p)]
        kills.append({"after_s": delay, "workers": len(workers), "orphans": len(orphans), "partial": partial})
        if orphans or partial:
            problems.append(f"kill after {delay} s: {len(orphans)} orphans, partial {partial}")
    rerun = run(CLI + ["batch", str(folder), "-o", str(out), "--json"] + BATCH)
    done = json.loads(rerun["stdout"]) if rerun["rc"] == 0 else {}
    leftovers = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    held = not problems and done.get("ok") == 4 and not leftovers
    moments = ", ".join(f"{k['after_s']:.0f} s ({k['workers']} child processes)" for k in kills)
    note = (
        f"killed after {moments}: no orphan, no partial file; rerun: {done.get('ok')} of 4 ok"
        if held
        else "; ".join(problems) or one_line(rerun)
    )
    return {
        "held": held,
        "seconds": time.perf_counter() - start,
        "peak_mb": rerun["peak_mb"],
        "note": note,
        "kills": kills,
    }


def case_concurrent(work: Path) -> dict:
    folder, out = small_meshes(work / "conc_in", 2), work / "conc_out"
    first = subprocess.Popen(
        CLI + ["batch", str(folder), "-o", str(out), "--json"] + BATCH,
        env=ENV,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    second = run(CLI + ["batch", str(folder), "-o", str(out)] + BATCH)
    out_first, _ = first.communicate(timeout=1200)
    ok = first.returncode == 0 and json.loads(out_first)["ok"] == 2
    held = (
        second["rc"] == 2 and "another sape-geom batch" in one_line(second) and second["seconds"] < 30 and ok
    )  # 30 s: a loaded machine takes long to import torch
    return {
        "held": held,
        "seconds": second["seconds"],
        "peak_mb": second["peak_mb"],
        "note": f"second batch: {one_line(second)[:150]}; first batch finished: {ok}",
    }


def case_read_only(work: Path) -> dict:
    folder = work / "ro"
    mounted = mount_tmpfs(folder, "size=4m")
    (folder / "earlier.ply").write_text("an earlier output")
    if mounted:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    else:
        folder.chmod(0o555)
    try:
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        fit = run(
            CLI + ["fit", str(sphere_mesh(work)), "-o", str(folder / "x.ply"), "--checkpoint", str(folder / "x.ckpt")]
        )
        batch = run(CLI + ["batch", str(small_meshes(work / "ro_in", 1)), "-o", str(folder)] + BATCH)
        after = {p.name: p.read_bytes() for p in folder.iterdir()}
    finally:
        umount(folder) if mounted else folder.chmod(0o755)
    lines = [one_line(fit), one_line(batch)]
    held = (
        fit["rc"] == 2 == batch["rc"]
        and before == after
        and max(fit["seconds"], batch["seconds"]) < 20
        and all(len(r["stderr"].strip().splitlines()) == 1 for r in (fit, batch))
    )
    return {
        "held": held,
        "seconds": fit["seconds"] + batch["seconds"],
        "peak_mb": max(fit["peak_mb"], batch["peak_mb"]),
        "note": ("read-only tmpfs" if mounted else "folder without write permission") + ": " + " / ".join(lines),
    }


def case_full_disk(work: Path) -> dict:
    folder = work / "full"
    if not mount_tmpfs(folder, "size=1m"):
        return {"held": None, "seconds": 0.0, "peak_mb": 0.0, "note": "not run: needs root to mount a small tmpfs"}
    try:
        (folder / "earlier.txt").write_text("kept")
        batch = run(CLI + ["batch", str(small_meshes(work / "full_in", 3)), "-o", str(folder)] + BATCH)
        kept = (folder / "earlier.txt").read_text() == "kept"
        temporaries = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    finally:
        umount(folder)
    held = (
        batch["rc"] == 2
        and "no space left" in one_line(batch)
        and kept
        and not temporaries
        and len(batch["stderr"].strip().splitlines()) == 1
    )
    return {"held": held, "seconds": batch["seconds"], "peak_mb": batch["peak_mb"], "note": one_line(batch)[:220]}


def _worker_cancel(work: Path, name: str, job: dict, trigger: str, how: str) -> dict:
    folder = work / name
    folder.mkdir(exist_ok=True)
    (folder / "job.json").write_text(json.dumps(job))
    proc = Tracked(
        [sys.executable, "-m", "sape_geom.app.worker", str(folder / "job.json")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ENV,
        cwd=ROOT,
    )
    asked, last, events = None, None, []
    for line in proc.stdout:
        event = json.loads(line)
        events.append(event["event"])
        if asked is None and str(event.get("stage", "")).startswith(trigger):
            time.sleep(1.0)  # well inside the stage
            asked = time.perf_counter()
            if how == "cancel":
                proc.stdin.write("cancel\n")
                proc.stdin.flush()
            else:
                proc.stdin.close()
        last = event
    proc.wait()
    after = time.perf_counter() - asked if asked else float("nan")
    held = asked is not None and last and last["event"] == "cancelled" and after < 2.0
    return {
        "held": bool(held),
        "seconds": after,
        "peak_mb": proc.peak_mb,
        "note": f"{how} {'line' if how == 'cancel' else 'stdin'} during {trigger}: {last and last['event']} "
        f"{after:.2f} s later ({(last or {}).get('reason', '')})",
    }


def case_cancel_labels(work: Path) -> dict:
    import numpy as np
    import trimesh

    mesh = trimesh.load(torus_grid(1_000_000, work / "torus_1000000.ply"), process=False)
    np.savez(work / "big.npz", vertices=mesh.vertices, faces=mesh.faces)
    job = {
        "task": "fit_surface",
        "inputs": str(work / "big.npz"),
        "output_dir": str(work / "cancel_labels"),
        "settings": {"overrides": {"steps": 50}, "preview_every_s": 0},
    }
    return _worker_cancel(work, "cancel_labels", job, "labels", "cancel")


def case_cancel_extract(work: Path) -> dict:
    ckpt, _ = fitted_sphere(work)
    job = {
        "task": "extract",
        "output_dir": str(work / "cancel_extract"),
        "stop_on_stdin_close": True,
        "settings": {"checkpoint": str(ckpt), "resolution": 1024, "colors": False},
    }
    return _worker_cancel(work, "cancel_extract", job, "extract", "close")


CASES = {
    "extract_256": lambda w: case_extract(w, 256),
    "extract_512": lambda w: case_extract(w, 512),
    "extract_1024": lambda w: case_extract(w, 1024),
    "input_100k": lambda w: case_input(w, 100_000),
    "input_1m": lambda w: case_input(w, 1_000_000),
    "input_5m": lambda w: case_input(w, 5_000_000),
    "noisy_field": case_noisy,
    "kill_resume": case_kill_resume,
    "concurrent_batch": case_concurrent,
    "read_only": case_read_only,
    "full_disk": case_full_disk,
    "cancel_labels": case_cancel_labels,
    "cancel_extract": case_cancel_extract,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "stress"))
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, in this order: " + ", ".join(CASES))
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed)")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start a new table (default: the cases run replace their rows in the existing one)",
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    work = Path(args.work or tempfile.mkdtemp(prefix="sape_stress_"))
    work.mkdir(parents=True, exist_ok=True)
    results, start = ({} if args.fresh else _previous(Path(args.out))), time.perf_counter()
    try:
        for name in args.cases.split(","):
            print(f"{name} ...", file=sys.stderr, flush=True)
            row = CASES[name](work)
            results[name] = {k: v for k, v in row.items() if k not in ("stdout", "stderr", "runs")}
            state = {True: "held", False: "FAILED", None: "not run"}[row["held"]]
            print(
                f"  {state}  {row['peak_mb']:.0f} MB  {row['seconds']:.1f} s  {row['note']}",
                file=sys.stderr,
                flush=True,
            )
            write_table(Path(args.out), results, time.perf_counter() - start)  # a cut run keeps what it measured
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    lines = write_table(Path(args.out), results, time.perf_counter() - start)
    print("\n".join(lines))
    return 0 if all(row["held"] is not False for row in results.values()) else 1


def _previous(out: Path) -> dict:
    """The rows of an earlier run in ``out`` (so that a case can be rerun alone), in the order of CASES."""
    path = out / "results.json"
    cases = json.loads(path.read_text()).get("cases", {}) if path.is_file() else {}
    return {name: cases[name] for name in CASES if name in cases}


def write_table(out: Path, results: dict, total: float) -> list[str]:
    """``table.md`` and ``results.json`` of the cases run so far."""
    out.mkdir(parents=True, exist_ok=True)
    import platform

    import torch

    lines = [
        f"Machine: {os.cpu_count()} CPU cores, {platform.machine()}, torch {torch.__version__}, one torch thread "
        f"per process; the last run took {total / 60:.1f} min (rows it did not run are kept from earlier runs). Peak RSS: the process that did the work and its workers "
        f"(limit {LIMIT_MB} MB). Load average when written: {os.getloadavg()[0]:.1f} (seconds grow with it; "
        f"memory does not).",
        "",
        "| case | result | peak RSS (MB) | seconds | notes |",
        "|---|---|---|---|---|",
    ]
    for name, row in sorted(results.items(), key=lambda item: list(CASES).index(item[0])):
        state = {True: "held", False: "**failed**", None: "not run"}[row["held"]]
        note = str(row["note"]).replace("|", "/")
        lines.append(f"| {name} | {state} | {row['peak_mb']:.0f} | {row['seconds']:.1f} | {note} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"total_s": total, "cases": results}, indent=1, default=str) + "\n")
    return lines


if __name__ == "__main__":
    sys.exit(main())
