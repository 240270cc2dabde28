"""Mesh metrics follow the Occupancy Networks conventions."""

from __future__ import annotations

import math

import pytest
import trimesh

from sape_geom.mesh.metrics import mesh_metrics

N = 20_000


@pytest.fixture(scope="module")
def sphere():
    return trimesh.creation.icosphere(subdivisions=4, radius=2.0)


def test_mesh_against_itself(sphere):
    m = mesh_metrics(sphere, sphere, n_points=N, iou_points=N)
    assert m["iou"] == 1.0
    assert m["chamfer_l1"] < 1e-9  # point-to-surface distances: no sampling floor
    assert m["normal_consistency"] > 0.99
    assert m["fscore"] == pytest.approx(1.0, abs=1e-3)
    assert m["components"] == 1


def test_slightly_larger_sphere(sphere):
    bigger = trimesh.creation.icosphere(subdivisions=4, radius=2.1)  # +5 %
    m = mesh_metrics(bigger, sphere, n_points=N, iou_points=N)
    # reference longest side becomes 1: radii 0.5 and 0.525
    assert m["iou"] == pytest.approx((0.5 / 0.525) ** 3, abs=0.02)
    assert m["chamfer_l1"] == pytest.approx(0.025, abs=2e-3)
    assert m["normal_consistency"] > 0.99
    assert m["fscore"] < 0.1  # 0.025 apart, threshold 0.01
    scaled = mesh_metrics(bigger.copy().apply_scale(10), sphere.copy().apply_scale(10), n_points=N, iou_points=N)
    assert scaled["chamfer_l1"] == pytest.approx(m["chamfer_l1"], rel=0.05)  # scale invariant


def test_metrics_are_seeded_and_count_components(sphere):
    extra = trimesh.creation.icosphere(subdivisions=1, radius=0.1).apply_translation([0, 0, 3])
    pred = trimesh.util.concatenate([sphere, extra])
    a = mesh_metrics(pred, sphere, n_points=5000, iou_points=5000, seed=3)
    b = mesh_metrics(pred, sphere, n_points=5000, iou_points=5000, seed=3)
    assert a == b and a["components"] == 2
    assert mesh_metrics(pred, sphere, n_points=5000, iou_points=5000, seed=4) != a


def test_empty_prediction_does_not_crash(sphere):
    m = mesh_metrics(trimesh.Trimesh(), sphere, n_points=N, iou_points=N)
    assert m["iou"] == 0.0 and math.isinf(m["chamfer_l1"]) and m["fscore"] == 0.0 and m["components"] == 0
    assert m["components_input"] == 1  # the fit summary prints it (it raised a KeyError for an empty fit)


def test_normal_angles_show_pits_that_normal_consistency_hides():
    import numpy as np

    box = trimesh.creation.box(extents=[1, 1, 1]).subdivide_to_size(0.02)
    clean = mesh_metrics(box, box, n_points=N, iou_points=N)
    assert clean["normal_angle_p50"] < 0.1 and clean["normal_angle_p90"] < 0.1 and clean["deviating_area"] == 0.0
    pitted = box.copy()
    top = np.flatnonzero(pitted.vertices[:, 2] > 0.499)
    rng = np.random.default_rng(0)
    for centre in pitted.vertices[rng.choice(top, 12, replace=False), :2]:  # a dozen small dents in the top
        near = top[np.linalg.norm(pitted.vertices[top, :2] - centre, axis=1) < 0.03]
        pitted.vertices[near, 2] -= 0.02
    m = mesh_metrics(pitted, box, n_points=N, iou_points=N)
    assert m["normal_consistency"] > 0.99  # the mean barely moves...
    assert 0.003 < m["deviating_area"] < 0.1  # ...while the dents' walls are steep
    assert m["normal_angle_p90"] < 1.0 and m["normal_angle_p50"] < 0.1  # most of the surface is untouched
