"""The Ray batch backend against a real local Ray instance (2 CPUs), compared with the local backend."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import trimesh

from sape_geom.app.batch import jobs as batch_jobs
from sape_geom.app.batch import local as batch_local
from sape_geom.app.batch import run_batch
from sape_geom.app.batch.jobs import read_metrics
from sape_geom.app.cli import main
from sape_geom.mesh.shapes import sphere, torus

# Small enough to fit in seconds on a busy 2-core machine, smooth enough for a clean surface.
SMALL = {
    "steps": 200,
    "points_per_set": 8000,
    "num_sets": 2,
    "batch_size": 1000,
    "resolution": 32,
    "device": "cpu",
    "seed": 0,
    "field.hidden_width": 64,
    "field.hidden_layers": 2,
    "field.sigma": 2.0,
}


def _has_ray() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def ray_head():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _meshes(folder):
    folder.mkdir()
    sphere(0.5).export(folder / "ball.ply")
    torus().export(folder / "ring.obj")
    (folder / "broken.stl").write_text("solid nothing\nendsolid nothing\n")
    return folder


@pytest.mark.ray
@pytest.mark.skipif(not _has_ray(), reason='needs ray: pip install "sape-geom[ray]"')
def test_ray_matches_local_records_failure_and_resumes(ray_head, tmp_path, monkeypatch):
    folder = _meshes(tmp_path / "meshes")
    # Local backend with 2 workers gets cpu_count // 2 threads per fit: make that 1, like cpus_per_fit=1.
    monkeypatch.setattr(batch_local.os, "cpu_count", lambda: 2)
    local = run_batch(folder, tmp_path / "local", "fast", workers=2, overrides=SMALL, progress=False)
    options = {"cpus_per_fit": 1, "gpus_per_fit": 0}
    out = tmp_path / "ray"
    rows = run_batch(
        folder, out, "fast", workers=2, overrides=SMALL, backend="ray", backend_options=options, progress=False
    )

    head = ray_head.get_runtime_context().get_node_id()
    for name in ("ball", "ring"):
        assert local[name]["status"] == "ok" and rows[name]["status"] == "ok", (local[name], rows[name])
        assert rows[name]["node"] == head
        for key, suffix in (("surface", ".ply"), ("checkpoint", ".ckpt"), ("preview", ".png")):
            assert rows[name][key] == str(out / f"{name}{suffix}") and (out / f"{name}{suffix}").is_file()
        ours = trimesh.load(out / f"{name}.ply", force="mesh", process=False)
        theirs = trimesh.load(tmp_path / "local" / f"{name}.ply", force="mesh", process=False)
        assert ours.vertices.shape == theirs.vertices.shape and len(ours.faces) == len(theirs.faces)
        np.testing.assert_allclose(ours.vertices, theirs.vertices, atol=1e-5)
        assert rows[name]["iou"] == pytest.approx(local[name]["iou"], abs=1e-6)
    assert float(rows["ball"]["iou"]) > 0.5

    assert rows["broken"]["status"] == "failed" and local["broken"]["status"] == "failed"
    assert rows["broken"]["error"].startswith("InputError") and str(folder / "broken.stl") in rows["broken"]["error"]
    assert "sape_geom_ray_" not in rows["broken"]["error"]  # names the user's file, not the node's temp copy

    written = read_metrics(out / "metrics.csv")
    assert set(written) == {"ball", "ring", "broken"}
    assert written["ring"]["node"] == head and written["broken"]["status"] == "failed"

    stamps = {name: (out / f"{name}.ply").stat().st_mtime_ns for name in ("ball", "ring")}
    again = run_batch(
        folder, out, "fast", workers=2, overrides=SMALL, backend="ray", backend_options=options, progress=False
    )
    assert {name: (out / f"{name}.ply").stat().st_mtime_ns for name in ("ball", "ring")} == stamps  # skipped
    assert again["broken"]["status"] == "failed" and again["ball"]["status"] == "ok"


@pytest.mark.ray
@pytest.mark.skipif(not _has_ray(), reason='needs ray: pip install "sape-geom[ray]"')
def test_dead_worker_is_retried_then_recorded_failed(ray_head, tmp_path, monkeypatch):
    from sape_geom.app.batch import ray_backend as batch_ray
    from sape_geom.app.batch.ray_backend import make_ray_backend

    folder = tmp_path / "meshes"
    folder.mkdir()
    sphere(0.5).export(folder / "crash.ply")
    (folder / "broken.stl").write_text("solid nothing\nendsolid nothing\n")
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    original = batch_ray._task_body

    def dying(job, filename, data, threads):  # shipped to the worker by value (a local function)
        import os
        import uuid

        if job.name == "crash":
            (attempts / uuid.uuid4().hex).touch()
            os._exit(1)  # the worker process dies, as on a segfault or the OOM killer
        return original(job, filename, data, threads)

    monkeypatch.setattr(batch_ray, "_task_body", dying)
    jobs = batch_jobs.make_jobs(batch_jobs.list_meshes(folder), tmp_path / "out", "fast", SMALL)
    rows = {}
    make_ray_backend(cpus_per_fit=1, max_retries=1)(jobs, 2, lambda row: rows.__setitem__(row["name"], row))
    assert rows["crash"]["status"] == "failed" and "WorkerCrashedError" in rows["crash"]["error"], rows["crash"]
    assert len(list(attempts.iterdir())) == 2  # the first try and one retry
    assert rows["broken"]["status"] == "failed" and rows["broken"]["error"].startswith("InputError")


def test_ray_backend_without_ray_says_how_to_install(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "meshes"
    folder.mkdir()
    sphere(0.5).export(folder / "ball.ply")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    code = main(["batch", str(folder), "-o", str(tmp_path / "out"), "--backend", "ray", "--quiet"])
    assert code == 2
    assert 'pip install "sape-geom[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "out" / "ball.ply").exists()
