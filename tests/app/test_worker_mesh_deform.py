"""The worker's ``deform_mesh`` task: in this process, and once through the protocol in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from test_worker import run_worker  # pytest puts this folder on sys.path

from sape_geom.app.worker import TASKS, DeformMeshSettings, JobError, TaskContext, parse_settings
from sape_geom.app.worker.mesh_tasks import task_deform_mesh

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {
    "calibration_steps": 5,
    "source_samples": 200,
    "target_samples": 5000,
    "target_per_step": 500,
    "metric_points": 2000,
    "device": "cpu",
}


def meshes() -> dict[str, np.ndarray]:
    source = trimesh.creation.icosphere(2)
    target = trimesh.creation.icosphere(3)
    return {
        "source_vertices": source.vertices * 3.0,
        "source_faces": source.faces,
        "target_vertices": target.vertices * [1.0, 0.6, 0.4] + 10.0,
        "target_faces": target.faces,
    }


def context(tmp_path: Path, settings: dict, arrays: dict) -> tuple[TaskContext, list]:
    np.savez(tmp_path / "inputs.npz", **arrays)
    (tmp_path / "out").mkdir()
    events: list = []
    return TaskContext(
        settings, tmp_path / "inputs.npz", tmp_path / "out", lambda event, **f: events.append((event, f)), lambda: False
    ), events


def test_the_task_is_registered_and_its_settings_are_typed():
    assert "deform_mesh" in TASKS
    s = parse_settings(DeformMeshSettings, "deform_mesh", {"steps": 7, "config": {"field.encoding": "ff"}})
    assert s.mesh_config().steps == 7 and s.mesh_config().field.encoding == "ff"
    with pytest.raises(JobError, match="colour"):
        parse_settings(DeformMeshSettings, "deform_mesh", {"colour": True})


def test_deformed_vertices_keep_the_source_order_in_the_target_frame(tmp_path):
    arrays = meshes()
    ctx, events = context(tmp_path, {"steps": 4, "snapshots": 2, "config": TINY}, arrays)
    result = task_deform_mesh(ctx)
    with np.load(result["mesh"]) as data:
        assert data["vertices"].shape == arrays["source_vertices"].shape
        assert np.array_equal(data["faces"], arrays["source_faces"])
        assert np.abs(data["vertices"].mean(axis=0) - 10.0).max() < 0.5  # in the target's frame
        assert data["snapshots"].shape == (4, len(arrays["source_vertices"]), 3)
        assert list(data["snapshot_steps"]) == [0, 1, 3, 4]
        assert data["levels"].shape == (len(arrays["source_vertices"]),)
    assert events[-1][0] == "progress" and events[-1][1]["stage"] == "deform"
    assert "chamfer_l1" in result["metrics"]


def test_a_source_without_faces_is_one_error_line_through_the_protocol(tmp_path):
    arrays = {**meshes(), "source_faces": np.zeros((0, 3), dtype=np.int64)}
    np.savez(tmp_path / "in.npz", **arrays)
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {"task": "deform_mesh", "settings": {"steps": 2, "config": TINY}, "inputs": "in.npz", "output_dir": "out"}
        )
    )
    code, events, _ = run_worker(job)
    assert code == 1 and events[-1]["event"] == "error"
    assert "no faces" in events[-1]["message"] and "\n" not in events[-1]["message"]
    assert not (tmp_path / "out" / "deformed.npz").exists()
