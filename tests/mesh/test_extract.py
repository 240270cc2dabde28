"""Sparse marching-cubes extraction equals the dense one; mesh utilities."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from sape_geom.errors import InputError
from sape_geom.mesh.cleanup import count_components, decimate, largest_component
from sape_geom.mesh.extract import extract_surface, extract_surface_dense
from sape_geom.viz.colors import colorize_by_values


def sphere_sdf(p):
    return np.linalg.norm(p, axis=1) - 0.6


def torus_sdf(p):
    q = np.stack([np.linalg.norm(p[:, [0, 2]], axis=1) - 0.5, p[:, 1]], axis=1)
    return np.linalg.norm(q, axis=1) - 0.15


def occupancy_sphere(p):
    """Like the occupancy net: sigmoid(logit_outside) - 0.5, saturating away from the surface."""
    return 1.0 / (1.0 + np.exp(-60.0 * sphere_sdf(p))) - 0.5


def _random_network():
    """A small random Fourier-feature MLP (numpy) perturbing a sphere: a bumpy, network-like field."""
    rng = np.random.default_rng(0)
    B = rng.normal(0, 3.0, (3, 32))
    W1, W2 = rng.normal(0, 0.3, (64, 64)), rng.normal(0, 0.3, (64,))

    def field(p):
        h = np.concatenate([np.sin(p @ B), np.cos(p @ B)], axis=1)
        return sphere_sdf(p) + 0.08 * np.tanh(np.tanh(h @ W1) @ W2)

    return field


FIELDS = {"sphere": sphere_sdf, "torus": torus_sdf, "occupancy": occupancy_sphere, "network": _random_network()}


CASES = [(name, res) for name in ("sphere", "torus", "occupancy") for res in (64, 128)] + [("network", 64)]


@pytest.mark.parametrize("name, res", CASES)
def test_sparse_equals_dense(name, res):
    field = FIELDS[name]
    sparse, stats = extract_surface(field, res, return_stats=True)
    dense = extract_surface_dense(field, res)
    assert len(sparse.vertices) == len(dense.vertices) > 0
    assert len(sparse.faces) == len(dense.faces)
    dist, _ = cKDTree(dense.vertices).query(sparse.vertices)
    assert dist.max() < 1e-6
    assert stats["dense"] == res**3
    assert stats["evaluated"] < (0.5 if res == 64 else 0.25) * res**3


def test_query_gets_float32_unit_points_in_batches():
    seen = []

    def field(p):
        seen.append((p.dtype, len(p), float(p.min()), float(p.max())))
        return sphere_sdf(p)

    extract_surface(field, 33, batch_size=1000)
    assert all(d == np.float32 and n <= 1000 and lo >= -1 and hi <= 1 for d, n, lo, hi in seen)
    assert min(s[2] for s in seen) == -1.0 and max(s[3] for s in seen) == 1.0


def test_thin_feature_between_coarse_samples_is_kept():
    # a slab 0.02 thick, far thinner than the coarse spacing (8 * 2/127 = 0.126)
    def slab(p):
        return np.maximum(np.abs(p[:, 2] - 0.013) - 0.01, np.abs(p[:, :2]).max(axis=1) - 0.5)

    sparse = extract_surface(slab, 128)
    dense = extract_surface_dense(slab, 128)
    assert len(sparse.vertices) == len(dense.vertices) > 0


def test_orientation_frame_and_volume():
    mesh = extract_surface(sphere_sdf, 64)
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 0.6**3, rel=0.02)  # > 0: outward faces
    np.testing.assert_allclose(np.linalg.norm(mesh.vertices, axis=1), 0.6, atol=0.01)
    shifted = extract_surface(lambda p: sphere_sdf(p - np.float32([0.2, 0, 0])), 64)
    assert shifted.vertices.mean(axis=0)[0] == pytest.approx(0.2, abs=0.01)  # axis 0 is x
    empty = extract_surface(lambda p: np.ones(len(p)), 32)
    assert len(empty.faces) == 0


def test_bad_query_and_arguments():
    with pytest.raises(InputError, match="NaN"):
        extract_surface(lambda p: np.full(len(p), np.nan), 16)
    with pytest.raises(InputError, match="values for"):
        extract_surface(lambda p: np.zeros(3), 16)
    with pytest.raises(InputError, match="resolution"):
        extract_surface(sphere_sdf, 1)


def test_components_and_largest():
    big = trimesh.creation.icosphere(subdivisions=2)
    small = trimesh.creation.icosphere(subdivisions=1, radius=0.2).apply_translation([3, 0, 0])
    both = trimesh.util.concatenate([big, small])
    assert count_components(both) == 2
    kept = largest_component(both)
    assert len(kept.faces) == len(big.faces) and count_components(kept) == 1
    assert count_components(trimesh.Trimesh()) == 0


def test_decimate_reduces_faces():
    pytest.importorskip("pymeshlab")
    mesh = extract_surface(sphere_sdf, 64)
    low = decimate(mesh, 2000)
    assert 1500 <= len(low.faces) <= 2000
    assert low.volume == pytest.approx(mesh.volume, rel=0.03)


def test_colorize_by_values():
    colors = colorize_by_values(np.zeros((4, 3)), [0.0, 0.5, 1.0, 7.0])
    assert colors.shape == (4, 4) and colors.dtype == np.uint8
    assert colors[0, 2] > colors[0, 0]  # low is blue
    assert colors[2, 0] > colors[2, 2]  # high is red
    np.testing.assert_array_equal(colors[3], colors[2])  # clamped
    with pytest.raises(InputError):
        colorize_by_values(np.zeros((2, 3)), [1.0])
