"""Training points and inside/outside labels (docs/method.md §6.3)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from sape_geom.errors import InputError
from sape_geom.mesh.io import normalization_for
from sape_geom.mesh.sampling import PointSetBuffer, inside_outside, sample_training_points


@pytest.fixture(scope="module")
def unit_sphere():
    mesh = trimesh.creation.icosphere(subdivisions=3)
    mesh.vertices = normalization_for(mesh).apply(mesh.vertices)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


@pytest.mark.parametrize("mode", ["hybrid", "area"])
def test_training_points_layout(unit_sphere, mode):
    V, F = unit_sphere
    n = 30_000
    pts = sample_training_points(V, F, n, seed=1, surface_sampling=mode)
    assert pts.shape == (n, 3) and pts.dtype == np.float32
    assert np.abs(pts).max() <= 1.0
    s = 2 * ((n // 3) // 2)
    radius = np.linalg.norm(pts, axis=1)
    near, far, uniform = radius[:s], radius[s : 2 * s], pts[2 * s :]
    assert np.abs(near - 0.95).mean() < 0.02  # sigma 0.01 around the surface
    assert 0.04 < np.abs(far - 0.95).mean() < 0.12  # sigma 0.1
    assert len(uniform) == n - 2 * s
    assert np.abs(uniform.mean(axis=0)).max() < 0.05 and uniform.min() < -0.95 and uniform.max() > 0.95
    # the two near sets perturb the same surface points
    assert np.linalg.norm(pts[:s] - pts[s : 2 * s], axis=1).mean() < 0.25


def test_training_points_are_seeded(unit_sphere):
    V, F = unit_sphere
    a = sample_training_points(V, F, 3000, seed=7)
    np.testing.assert_array_equal(a, sample_training_points(V, F, 3000, seed=7))
    assert not np.array_equal(a, sample_training_points(V, F, 3000, seed=8))
    with pytest.raises(InputError):
        sample_training_points(V, F, 3000, seed=7, surface_sampling="poisson")


def test_area_weighting_follows_area():
    # two triangles, the second has 9x the area: ~90 % of area-weighted samples land on it
    V = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [3, 0, 1], [0, 3, 1]], float)
    F = np.array([[0, 1, 2], [3, 4, 5]])
    pts = sample_training_points(V, F, 60_000, seed=0, surface_sampling="area")[:20_000]
    on_big = np.mean(np.abs(pts[:, 2] - 1) < 0.05)
    assert on_big == pytest.approx(0.9, abs=0.02)


def test_labels_of_sphere_are_exact(unit_sphere):
    V, F = unit_sphere
    pts = np.random.default_rng(0).uniform(-1, 1, (5000, 3))
    r = np.linalg.norm(pts, axis=1)
    clear = np.abs(r - 0.94) > 0.02  # away from the faceted surface
    inside = inside_outside(V, F, pts)
    assert inside.dtype == bool
    np.testing.assert_array_equal(inside[clear], r[clear] < 0.94)


def test_open_mesh_fast_labels_agree_with_exact(unit_sphere):
    V, F = unit_sphere
    centroids = V[F].mean(axis=1)
    open_faces = F[centroids[:, 2] < 0.8]  # cut a cap off: sphere with a hole
    pts = sample_training_points(V, open_faces, 6000, seed=3)
    fast = inside_outside(V, open_faces, pts)
    exact = inside_outside(V, open_faces, pts, exact=True)
    assert np.mean(fast == exact) > 0.99
    assert 0.1 < fast.mean() < 0.9


def test_point_set_buffer_reuses_sets_and_reshuffles(unit_sphere, monkeypatch):
    V, F = unit_sphere
    import sape_geom.mesh.sampling as sampling

    calls = []
    real = sampling.inside_outside
    monkeypatch.setattr(sampling, "inside_outside", lambda *a, **k: calls.append(1) or real(*a, **k))
    buf = PointSetBuffer(V, F, num_sets=2, n_points=900, seed=5)
    epochs = [buf.next_epoch() for _ in range(5)]
    assert buf.generated == 2 and len(calls) == 2  # labels computed once per set
    for pts, labels in epochs:
        assert pts.shape == (900, 3) and labels.shape == (900,) and labels.dtype == np.float32
    key = lambda p: np.sort(p.view(np.dtype((np.void, 12))).ravel())
    assert np.array_equal(key(epochs[0][0]), key(epochs[2][0]))  # epoch 2 reuses set 0
    assert not np.array_equal(epochs[0][0], epochs[2][0])  # in a new order
    assert not np.array_equal(key(epochs[0][0]), key(epochs[1][0]))  # set 1 differs
    # labels stay attached to their points; 1 = outside
    pts, labels = epochs[3]
    np.testing.assert_array_equal(labels == 1, ~inside_outside(V, F, pts))
    again = PointSetBuffer(V, F, num_sets=2, n_points=900, seed=5).next_epoch()
    np.testing.assert_array_equal(again[0], epochs[0][0])
