"""3-D mesh deformation (docs/method.md §6.5): reaches the target, follows its frame, keeps the source's
faces, order and UVs, and refuses bad input in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from sape_geom.config import replace
from sape_geom.errors import ConfigError, InputError
from sape_geom.tasks.mesh_deform import MeshDeformConfig, deform_mesh
from sape_geom.tasks.mesh_deform.loss import barycentric, random_barycentric

#: Small sizes: a 642-vertex sphere, a few hundred steps of a small network (seconds on two cores).
SMALL = dict(
    steps=120,
    calibration_steps=50,
    source_samples=1000,
    target_samples=20_000,
    target_per_step=2000,
    metric_points=5000,
    device="cpu",
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small(**changes) -> MeshDeformConfig:
    return replace(MeshDeformConfig(), **{**SMALL, **changes})


def ellipsoid(center=(0.0, 0.0, 0.0), scale: float = 1.0) -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(4)
    return trimesh.Trimesh(
        mesh.vertices * np.array([1.0, 0.6, 0.4]) * scale + np.asarray(center), mesh.faces, process=False
    )


def test_barycentric_coordinates_rebuild_the_point():
    rng = np.random.default_rng(0)
    tri = rng.normal(size=(50, 3, 3))
    w = random_barycentric(50, torch.Generator().manual_seed(0)).double().numpy()
    points = (tri * w[:, :, None]).sum(1)
    assert np.allclose(barycentric(points, tri), w, atol=1e-8)


def test_a_sphere_reaches_an_ellipsoid_and_keeps_its_faces():
    source = trimesh.creation.icosphere(3)
    result = deform_mesh(source, ellipsoid(), small())
    assert result.metrics["chamfer_l1"] < 0.01
    assert result.metrics["flipped_faces"] < 0.01
    assert np.array_equal(result.mesh.faces, source.faces)
    assert result.mesh.vertices.shape == source.vertices.shape
    assert result.levels is not None and result.levels.shape == (len(source.vertices),)


def test_a_moved_and_scaled_target_moves_and_scales_the_result():
    source = trimesh.creation.icosphere(2)
    config = small(steps=20, calibration_steps=10)
    a = deform_mesh(source, ellipsoid(), config)
    b = deform_mesh(source, ellipsoid(center=(3.0, -1.0, 2.0), scale=2.5), config)
    # Equal up to rounding, which 20 steps amplify to about 1e-3 of the size (libigl sees other numbers).
    assert np.abs(b.mesh.vertices - (a.mesh.vertices * 2.5 + [3.0, -1.0, 2.0])).max() < 0.01 * 2.5
    assert np.abs(a.vertices_normalized - b.vertices_normalized).max() < 0.01
    assert np.allclose(b.normalization.center, [3.0, -1.0, 2.0]) and np.isclose(
        a.normalization.scale / b.normalization.scale, 2.5
    )


def test_the_source_frame_does_not_matter_with_frame_each():
    source = trimesh.creation.icosphere(2)
    moved = trimesh.Trimesh(source.vertices * 7.0 - 4.0, source.faces, process=False)
    config = small(steps=10, calibration_steps=5)
    a, b = deform_mesh(source, ellipsoid(), config), deform_mesh(moved, ellipsoid(), config)
    assert np.abs(a.mesh.vertices - b.mesh.vertices).max() < 0.01


def test_snapshots_are_kept_evenly_with_the_start_and_the_end():
    result = deform_mesh(trimesh.creation.icosphere(1), ellipsoid(), small(steps=12, calibration_steps=2, snapshots=3))
    assert [s for s, _ in result.snapshots] == [0, 3, 6, 9, 12]
    assert all(v.shape == (42, 3) for _, v in result.snapshots)
    assert np.allclose(result.snapshots[-1][1], result.mesh.vertices)


@pytest.mark.parametrize("bad", ["nan", "no faces", "flat-empty"])
def test_bad_arrays_are_one_clear_error(bad):
    sphere = trimesh.creation.icosphere(1)
    V, F = np.array(sphere.vertices), np.array(sphere.faces)
    if bad == "nan":
        V[3] = np.nan
        source = (V, F)
    elif bad == "no faces":
        source = (V, np.zeros((0, 3), dtype=np.int64))
    else:
        source = (np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    with pytest.raises(InputError) as info:
        deform_mesh(source, ellipsoid(), small(steps=1))
    assert "\n" not in str(info.value)


def test_config_checks_its_values():
    with pytest.raises(ConfigError):
        MeshDeformConfig(steps=0)
    with pytest.raises(ConfigError):
        MeshDeformConfig(frame="world")
    with pytest.raises(ConfigError):
        MeshDeformConfig(edge_weight=-1.0)


def test_progress_reports_both_stages_and_cancel_stops_the_run():
    from sape_geom.errors import Cancelled
    from sape_geom.nn.trainer import TrainCallbacks

    stages = []
    deform_mesh(
        trimesh.creation.icosphere(1),
        ellipsoid(),
        small(steps=3, calibration_steps=2),
        TrainCallbacks(on_progress=lambda info: stages.append(info.stage)),
    )
    assert stages[0] == "calibration" and stages[-1] == "deform"
    with pytest.raises(Cancelled):
        deform_mesh(
            trimesh.creation.icosphere(1), ellipsoid(), small(steps=3), TrainCallbacks(should_cancel=lambda: True)
        )
