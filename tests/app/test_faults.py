"""Faults a studio meets (issue 16): two batches on one folder, a killed driver, outputs that cannot be
written (a file in the path, a read-only or full disk) and a cancel while extracting or labelling."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from sape_geom.app.batch import run_batch
from sape_geom.app.batch.jobs import read_metrics
from sape_geom.app.batch.lock import BatchLock, BatchLocked
from sape_geom.app.cli import main
from sape_geom.app.worker import EXIT_CANCELLED, CancelFlag, EventStream, run_job_file
from sape_geom.errors import OutputError
from sape_geom.fileio import is_temporary

ROOT = Path(__file__).resolve().parents[2]
#: A batch mesh in a couple of seconds: small network, few points, no dense grid; enough training to find
#: the shape (a fit without a surface writes nothing).
QUICK = {
    "steps": 200,
    "points_per_set": 3000,
    "num_sets": 1,
    "batch_size": 1000,
    "resolution": 24,
    "device": "cpu",
    "field.hidden_width": 128,
    "field.hidden_layers": 2,
    "sigma": 5.0,
}


def meshes(folder: Path, count: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        trimesh.creation.icosphere(subdivisions=2, radius=0.5 + 0.1 * index).export(folder / f"m{index}.obj")
    return folder


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


@contextlib.contextmanager
def mounted_tmpfs(path: Path, size: str):
    """A small tmpfs at ``path`` (needs root and mount rights; the test is skipped without them)."""
    path.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` made read-only for the block: a read-only remount (root) or no write permission."""
    if os.geteuid() == 0:
        with mounted_tmpfs(folder.parent / (folder.name + "_ro"), "4m") as mount:
            for item in folder.iterdir():
                shutil.copy2(item, mount / item.name)
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
            yield mount
    else:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_second_batch_on_the_same_folder_stops_at_once_and_a_killed_holder_frees_it(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from sape_geom.app.batch.lock import BatchLock\n"
            f"with BatchLock({str(out)!r}):\n    print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["batch", str(meshes(tmp_path / "in")), "-o", str(out), "--quiet"]) == 2
        assert sorted(p.name for p in out.iterdir()) == [".sape-geom-batch.lock"]  # refused before any fit
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "another sape-geom batch" in err[0] and f"pid {holder.pid}" in err[0]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with BatchLock(out):  # the kernel dropped the dead holder's lock
        with pytest.raises(BatchLocked):
            BatchLock(out).__enter__()


def test_a_killed_driver_leaves_no_worker_and_no_partial_output_and_the_rerun_finishes(tmp_path):
    folder, out = meshes(tmp_path / "in", 3), tmp_path / "out"
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sape_geom",
            "batch",
            str(folder),
            "-o",
            str(out),
            "--quiet",
            "--steps",
            "1000000",
            "--resolution",
            "24",
        ],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while not workers and time.monotonic() < deadline:
            time.sleep(0.5)
            workers = [
                pid for pid in children(driver.pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
            ]
        assert workers, "the batch started no worker"
        time.sleep(3)  # the worker is fitting its first mesh (a million steps: it cannot finish)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers), "a worker outlived its driver"
    for path in out.iterdir():  # only the lock and temporary files, never a partial file under a final name
        assert path.name == ".sape-geom-batch.lock" or is_temporary(path) or path.name == "metrics.csv", path
    rows = run_batch(folder, out, "fast", overrides=QUICK, progress=False)
    assert sorted(rows) == ["m0", "m1", "m2"] and all(row["status"] == "ok" for row in rows.values())
    assert not any(is_temporary(p) for p in out.iterdir())  # the killed run's temporary files are gone
    assert set(read_metrics(out / "metrics.csv")) == {"m0", "m1", "m2"}


def test_an_unwritable_output_path_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    import sape_geom.mesh.io as mesh_io

    mesh = tmp_path / "m.obj"
    trimesh.creation.icosphere(subdivisions=1).export(mesh)
    (tmp_path / "somefile").write_text("a file, not a folder")
    monkeypatch.setattr(mesh_io, "load_mesh", lambda *a, **k: pytest.fail("the mesh was loaded before the check"))
    for command in (
        ["fit", str(mesh), "-o", str(tmp_path / "somefile" / "x.ply")],
        ["fit", str(mesh), "-o", str(tmp_path / "ok.ply"), "--checkpoint", str(tmp_path / "somefile" / "c.ckpt")],
        ["fit", str(mesh), "-o", str(tmp_path / "x.xyz")],
        ["extract", str(tmp_path / "missing.ckpt"), "-o", str(tmp_path / "somefile" / "deep" / "x.ply")],
    ):
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"sape-geom {command[0]}: error:"), err
        assert "is a file, not a folder" in err[0] or "cannot write '.xyz'" in err[0]


def test_a_read_only_folder_gives_one_line_and_keeps_what_was_there(tmp_path, capsys):
    folder = tmp_path / "earlier"
    folder.mkdir()
    (folder / "m0.ply").write_text("an earlier surface")
    (folder / "metrics.csv").write_text("name,status,surface\nm0,ok,m0.ply\n")
    with read_only(folder) as locked:
        before = snapshot(locked)
        mesh = tmp_path / "m.obj"
        trimesh.creation.icosphere(subdivisions=1).export(mesh)
        assert main(["fit", str(mesh), "-o", str(locked / "x.ply"), "--steps", "5"]) == 2
        assert main(["batch", str(meshes(tmp_path / "in")), "-o", str(locked), "--quiet"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 2 and all(("read-only" in line or "permission denied" in line) for line in lines), lines
        assert snapshot(locked) == before


def test_a_full_disk_stops_the_batch_with_one_line_and_keeps_earlier_outputs(tmp_path, capsys):
    with mounted_tmpfs(tmp_path / "small", "200k") as out:
        (out / "earlier.txt").write_text("kept")
        # 200 steps: the preset's field finds the sphere (and the first write fills the disk)
        code = main(
            [
                "batch",
                str(meshes(tmp_path / "in", 3)),
                "-o",
                str(out),
                "--quiet",
                "--steps",
                "200",
                "--resolution",
                "24",
            ]
        )
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "no space left" in lines[0] and "rerun to resume" in lines[0], lines
        assert (out / "earlier.txt").read_text() == "kept"
        assert not any(is_temporary(p) for p in out.iterdir())
        with pytest.raises(OutputError, match="no space left"):
            run_batch(tmp_path / "in", out, "fast", overrides=QUICK, progress=False)


def _checkpoint(path: Path) -> Path:
    """An untrained field saved as a checkpoint: enough to time an extraction."""
    from sape_geom.mesh.io import Normalization
    from sape_geom.tasks.occupancy import OccupancyFit, occupancy_preset
    from sape_geom.tasks.occupancy.config import build_model

    config = occupancy_preset("fast", device="cpu", **{"field.hidden_width": 64, "field.hidden_layers": 2})
    return OccupancyFit(build_model(config, 10), Normalization(np.zeros(3), 1.0), config).save(path)


def _run_and_cancel(job: Path, when, stdin=None, close=None) -> tuple[int, list[tuple[str, dict]], int]:
    """Run a job in this process; cancel (or close stdin) once ``when(event, fields)`` is true.
    Returns the exit status, the events and how many events came after the one that asked to cancel.
    (How fast a cancel ends a job is measured by benchmarks/stress.py, not asserted here.)"""
    events: list[tuple[str, dict]] = []
    cancel = CancelFlag()
    asked = [0]

    class Stream(EventStream):
        def emit(self, event, **fields):
            events.append((event, fields))
            if not asked[0] and when(event, fields):
                asked[0] = len(events)
                threading.Timer(0.2, close or (lambda: cancel.set("cancel requested"))).start()

    code = run_job_file(job, Stream(sys.stderr), cancel, stdin)
    return code, events, len(events) - asked[0]


def test_cancel_during_extraction_ends_the_job_without_a_result(tmp_path):
    import json

    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {
                "task": "extract",
                "output_dir": "out",
                "settings": {"checkpoint": str(_checkpoint(tmp_path / "field.pt")), "resolution": 384, "colors": False},
            }
        )
    )
    code, events, after = _run_and_cancel(job, lambda event, f: f.get("stage") == "extract")
    assert code == EXIT_CANCELLED and events[-1][0] == "cancelled", events[-3:]
    assert after == 1 and not (tmp_path / "out" / "mesh.npz").exists()  # nothing but the cancel came after


def test_a_closed_stdin_during_labelling_ends_the_job_before_training(tmp_path):
    import json

    sphere = trimesh.creation.icosphere(subdivisions=5)
    np.savez(tmp_path / "inputs.npz", vertices=sphere.vertices, faces=sphere.faces)
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {
                "task": "fit_surface",
                "inputs": "inputs.npz",
                "output_dir": "out",
                "stop_on_stdin_close": True,
                "settings": {"overrides": {"steps": 5, "device": "cpu"}, "preview_every_s": 0},
            }
        )
    )
    read_fd, write_fd = os.pipe()
    stdin = os.fdopen(read_fd)
    code, events, after = _run_and_cancel(
        job,
        lambda event, f: str(f.get("stage", "")).startswith("labels"),
        stdin=stdin,
        close=lambda: os.close(write_fd),
    )
    assert code == EXIT_CANCELLED and events[-1][0] == "cancelled", events[-3:]
    assert "closed" in events[-1][1]["reason"] and after >= 1
    assert not any(fields.get("stage") == "training" for _, fields in events)  # it ended during labelling
