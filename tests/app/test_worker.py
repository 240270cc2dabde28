"""The worker's JSON-line protocol, run as a real subprocess (``python -m sape_geom.app.worker``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sape_geom.app.worker import EXIT_BAD_JOB, EXIT_CANCELLED, EXIT_ERROR, EXIT_OK

ROOT = Path(__file__).resolve().parents[2]

#: A deformation small enough for a CPU test (the defaults are the paper's 10k steps).
TINY_DEFORM = {
    "calibration_steps": 5,
    "points": 48,
    "snapshot_every": 5,
    "field.num_frequencies": 16,
    "field.hidden_width": 32,
    "progress.grid_resolution": 8,
    "max_target_samples": 200,
    "target_samples": 200,
    "device": "cpu",
}


def write_job(tmp: Path, task: str, settings: dict | None = None, arrays: dict | None = None, **extra) -> Path:
    job = {"task": task, "settings": settings or {}, "output_dir": "out", **extra}
    if arrays is not None:
        np.savez(tmp / "inputs.npz", **arrays)
        job["inputs"] = "inputs.npz"
    path = tmp / "job.json"
    path.write_text(json.dumps(job))
    return path


def run_worker(job: Path, timeout: float = 120) -> tuple[int, list[dict], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "sape_geom.app.worker", str(job)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return proc.returncode, parse(proc.stdout), proc.stderr


def parse(stdout: str) -> list[dict]:
    events = [json.loads(line) for line in stdout.splitlines() if line.strip()]  # every line is JSON
    assert all("event" in e for e in events)
    return events


def flower(n: int = 200) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 1 + 0.3 * np.cos(5 * t)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def test_check_reports_versions_and_devices(tmp_path):
    code, events, _ = run_worker(write_job(tmp_path, "check"))
    assert code == EXIT_OK
    assert [e["event"] for e in events] == ["started", "result"]
    result = events[-1]
    assert result["ok"] is True
    assert result["torch"] and result["python"].startswith("3.")
    assert "cpu" in result["devices"]


def test_unreadable_job_file_is_an_error_event(tmp_path):
    (tmp_path / "job.json").write_text("{not json")
    code, events, _ = run_worker(tmp_path / "job.json")
    assert code == EXIT_BAD_JOB
    assert events[-1]["event"] == "error" and "cannot read job file" in events[-1]["message"]

    code, events, _ = run_worker(write_job(tmp_path, "bake_cake"))
    assert code == EXIT_BAD_JOB and "unknown task 'bake_cake'" in events[-1]["message"]


def test_bad_input_arrays_give_error_event_and_nonzero_exit(tmp_path):
    # faces missing: refused before torch is imported
    code, events, _ = run_worker(write_job(tmp_path, "fit_surface", arrays={"vertices": np.zeros((4, 3))}))
    assert code == EXIT_ERROR
    assert events[0]["event"] == "started"
    assert events[-1]["event"] == "error"
    assert "lacks array(s) faces" in events[-1]["message"]
    assert events[-1]["traceback"]

    code, events, _ = run_worker(
        write_job(
            tmp_path, "fit_surface", arrays={"vertices": np.zeros((0, 3)), "faces": np.zeros((0, 3), dtype=np.int64)}
        )
    )
    assert code == EXIT_ERROR and "non-empty" in events[-1]["message"]


def test_stray_prints_do_not_corrupt_the_protocol(tmp_path, monkeypatch):
    # A task that prints to stdout from Python and from C: every stdout line must still be an event.
    from sape_geom.app import worker

    script = tmp_path / "noisy.py"
    script.write_text(
        "import os, sys\n"
        "from sape_geom.app import worker\n"
        "def noisy(ctx):\n"
        "    print('hello from python')\n"
        "    os.write(1, b'hello from C\\n')\n"
        "    return {'ok': True}\n"
        "worker.TASK_FUNCTIONS['check'] = noisy\n"
        "raise SystemExit(worker.main(sys.argv[1:]))\n"
    )
    job = write_job(tmp_path, "check")
    proc = subprocess.run([sys.executable, str(script), str(job)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    events = parse(proc.stdout)
    assert [e["event"] for e in events] == ["started", "result"]
    assert "hello from python" in proc.stderr and "hello from C" in proc.stderr
    assert worker.PROTOCOL_VERSION == 1


def test_deform_streams_progress_and_writes_curves(tmp_path):
    job = write_job(
        tmp_path, "deform", settings={"steps": 10, "config": TINY_DEFORM}, arrays={"target_points": flower()}
    )
    code, events, stderr = run_worker(job)
    assert code == EXIT_OK, stderr
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "result"
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and progress[-1]["step"] == progress[-1]["total"] == 10
    assert {"loss", "eta_s", "stage"} <= set(progress[-1])
    with np.load(events[-1]["curves"]) as data:
        assert data["curve"].shape == (48, 2)
        assert data["snapshots"].shape[1:] == (48, 2) and len(data["snapshot_steps"]) >= 2


def _start(job: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sape_geom.app.worker", str(job)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )


def _wait_for_progress(proc: subprocess.Popen) -> list[dict]:
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["event"] == "progress" and seen[-1]["stage"] != "calibration":
            return seen
    raise AssertionError(f"worker ended before any progress: {seen}")


@pytest.mark.parametrize("how", ["stdin", "sigterm"])
def test_cancel_gives_cancelled_event(tmp_path, how):
    job = write_job(
        tmp_path, "deform", settings={"steps": 100000, "config": TINY_DEFORM}, arrays={"target_points": flower()}
    )
    proc = _start(job)
    try:
        _wait_for_progress(proc)
        if how == "stdin":
            proc.stdin.write("cancel\n")
            proc.stdin.flush()
        else:
            proc.send_signal(signal.SIGTERM)
        rest = parse(proc.stdout.read())
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == EXIT_CANCELLED
    assert rest[-1]["event"] == "cancelled"
    assert not any(e["event"] == "result" for e in rest)
    assert not (tmp_path / "out" / "curves.npz").exists()


def test_closing_stdin_cancels_when_asked(tmp_path):
    job = write_job(
        tmp_path,
        "deform",
        settings={"steps": 100000, "config": TINY_DEFORM},
        arrays={"target_points": flower()},
        stop_on_stdin_close=True,
    )
    proc = _start(job)
    try:
        _wait_for_progress(proc)
        proc.stdin.close()  # what happens when Blender dies
        rest = parse(proc.stdout.read())
        assert proc.wait(timeout=30) == EXIT_CANCELLED
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rest[-1]["event"] == "cancelled"


def test_fit_surface_tiny_sphere(tmp_path):
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.8)
    job = write_job(
        tmp_path,
        "fit_surface",
        settings=TINY_FIT,
        arrays={"vertices": np.asarray(sphere.vertices) + [1.0, 2.0, 3.0], "faces": np.asarray(sphere.faces)},
    )
    code, events, stderr = run_worker(job)
    assert code == EXIT_OK, stderr + json.dumps(events[-1])[:2000]
    assert any(e["event"] == "progress" for e in events)
    result = events[-1]
    assert result["event"] == "result" and os.path.isfile(result["checkpoint"])
    with np.load(result["mesh"]) as data:
        v, f, c = data["vertices"], data["faces"], data["colors"]
    assert len(v) > 0 and len(f) > 0 and c.shape == (len(v), 4) and c.dtype == np.uint8
    center = (v.min(axis=0) + v.max(axis=0)) / 2
    assert np.allclose(center, [1.0, 2.0, 3.0], atol=0.2)  # back in the input's frame
    # what the add-on's expected time is scaled from (blender_addon/.../estimate.py)
    metrics = result["metrics"]
    assert metrics["steps"] == 200 and metrics["device"] == "cpu"
    assert all(metrics[key] > 0 for key in ("labels_s", "train_s", "extract_s"))

    # re-extract from the checkpoint at another resolution, without refitting
    extract = write_job(tmp_path, "extract", settings={"checkpoint": result["checkpoint"], "resolution": 24})
    code, events, stderr = run_worker(extract)
    assert code == EXIT_OK, stderr
    with np.load(events[-1]["mesh"]) as data:
        assert len(data["faces"]) > 0


#: A surface fit small enough for a CPU test; adjusted to the occupancy module's option names.
TINY_FIT = {
    "preset": "fast",
    "overrides": {"steps": 200, "device": "cpu", "seed": 0},
    "config": {
        "points_per_set": 5000,
        "num_sets": 1,
        "batch_size": 500,
        "field.num_frequencies": 64,
        "field.hidden_width": 64,
        "field.hidden_layers": 2,
        "progress.grid_resolution": 8,
        "progress.num_blocks": 4,
    },
    "resolution": 32,
    "preview_every_s": 0.0,
}
