"""Sparse marching-cubes extraction equals the dense one; mesh utilities."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from in_memory_extract import extract_in_memory
from scipy.spatial import cKDTree

from sape_geom.errors import Cancelled, InputError
from sape_geom.mesh.cleanup import count_components, decimate, largest_component
from sape_geom.mesh.extract import (
    FaceBudgetExceeded,
    extract_surface,
    extract_surface_dense,
    extract_surface_with_stats,
    face_budget,
)
from sape_geom.mesh.marching import SlabMarcher
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
    sparse, stats = extract_surface_with_stats(field, res)
    dense = extract_surface_dense(field, res)
    assert len(sparse.vertices) == len(dense.vertices) > 0
    assert len(sparse.faces) == len(dense.faces)
    dist, _ = cKDTree(dense.vertices).query(sparse.vertices)
    assert dist.max() < 1e-6
    assert stats.dense == res**3 and stats.fraction == stats.evaluated / res**3
    assert stats.evaluated < (0.5 if res == 64 else 0.25) * res**3


def slab_field(p):
    """A slab 0.02 thick, far thinner than the coarse spacing at 128 (8 * 2/127 = 0.126)."""
    return np.maximum(np.abs(p[:, 2] - 0.013) - 0.01, np.abs(p[:, :2]).max(axis=1) - 0.5)


@pytest.mark.parametrize(
    "name, res, options, slab_bytes",
    [
        ("sphere", 192, {}, None),  # the default slabs: two per level at 192^3
        ("network", 97, {}, 1),  # one plane per slab
        ("torus", 90, {"distance_margin": 0.05}, 40_000),
        ("occupancy", 64, {"margin": 0.3}, 40_000),
        ("slab", 128, {"distance_margin": 0.05}, 200_000),
    ],
)
def test_streaming_equals_the_in_memory_extraction_bit_for_bit(name, res, options, slab_bytes):
    field = slab_field if name == "slab" else FIELDS[name]
    extra = {} if slab_bytes is None else {"slab_bytes": slab_bytes}
    mesh, stats = extract_surface_with_stats(field, res, **options, **extra)
    verts, faces, per_level = extract_in_memory(field, res, **options)
    assert list(stats.per_level) == list(per_level)  # the same points queried, level by level
    np.testing.assert_array_equal(mesh.vertices, -1.0 + verts * (2.0 / (res - 1)))
    np.testing.assert_array_equal(mesh.faces, faces[:, ::-1])
    assert len(mesh.faces) > 0


@pytest.mark.parametrize("seed", range(6))
def test_slab_marching_cubes_is_pymcubes_bit_for_bit(seed):
    import mcubes

    rng = np.random.default_rng(seed)
    volume = rng.normal(size=tuple(rng.integers(2, 14, 3)))
    if seed % 2:
        volume = np.round(volume)  # values exactly at the level, on the grid's faces too
    verts, faces = mcubes.marching_cubes(volume, 0.0)
    for planes in (1, 2, 5, 100):
        marcher = SlabMarcher(volume.shape)
        for a in range(0, volume.shape[0] - 1, planes):
            marcher.add(volume[a : min(volume.shape[0], a + planes + 1)], a)
        mine_v, mine_f = marcher.result()
        np.testing.assert_array_equal(mine_v, verts)
        np.testing.assert_array_equal(mine_f, np.asarray(faces, dtype=np.int64))


def test_a_corner_gap_removes_needles_and_keeps_the_surface_closed():
    """A sphere grazing grid points (radius 0.6 on a grid through +-0.6) makes needle triangles, some of
    no length at all. With a corner gap every edge is about the gap long at least, the mesh keeps its
    faces and stays closed, and the vertices slide along the surface: no farther from the sphere than
    plain marching cubes puts them."""
    res, cell = 31, 2.0 / 30

    def shortest_edge(mesh):
        return mesh.edges_unique_length.min() / cell

    def off_sphere(mesh):
        return np.abs(np.linalg.norm(mesh.vertices, axis=1) - 0.6).max() / cell

    plain = extract_surface(sphere_sdf, res)
    gapped = extract_surface(sphere_sdf, res, corner_gap=0.1)
    assert shortest_edge(plain) < 0.01 and shortest_edge(gapped) > 0.09
    assert gapped.is_watertight
    np.testing.assert_array_equal(gapped.faces, plain.faces)  # the same topology, vertex for vertex
    assert np.abs(gapped.vertices - plain.vertices).max() <= 0.1 * cell + 1e-12
    assert off_sphere(gapped) <= off_sphere(plain) + 0.002
    with pytest.raises(ValueError, match="corner_gap"):
        SlabMarcher((3, 3, 3), corner_gap=0.5)


def test_memory_does_not_follow_the_dense_grid():
    import tracemalloc

    res = 256
    tracemalloc.start()
    try:
        extract_surface(sphere_sdf, res, slab_bytes=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # What is held grows with the surface (res^2): the queried points and the mesh, 47 MB here, while the
    # dense float64 grid alone is 134 MB (the in-memory version held several such grids).
    assert peak < 0.5 * 8 * res**3


def test_a_noisy_field_stops_at_the_face_budget_before_the_fine_levels():
    calls = []

    def noisy(p):
        calls.append(len(p))
        return np.sin(40 * p[:, 0]) * np.sin(37 * p[:, 1]) * np.sin(33 * p[:, 2]) + 0.2

    with pytest.raises(FaceBudgetExceeded, match=r"face budget of 20,000.*0 for no limit"):
        extract_surface(noisy, 128, face_budget=20_000)
    assert sum(calls) < 0.05 * 128**3  # stopped on the coarse levels' estimate, not after the fine ones
    mesh = extract_surface(noisy, 64, face_budget=None)
    assert len(mesh.faces) > 20_000
    with pytest.raises(FaceBudgetExceeded, match="gives more than"):  # no coarse estimate: counted while marching
        extract_surface(noisy, 64, face_budget=len(mesh.faces) - 1, coarse_resolution=64)
    assert len(extract_surface(sphere_sdf, 128, face_budget=face_budget(128)).faces) > 0
    assert face_budget(256) == 20 * 256**2 and face_budget(64) == 1_000_000
    assert face_budget(256, 0) is None and face_budget(256, 5) == 5


def test_cancel_stops_extraction_between_batches():
    calls = []

    def field(p):
        calls.append(len(p))
        return sphere_sdf(p)

    with pytest.raises(Cancelled):
        extract_surface(field, 128, batch_size=4096, should_cancel=lambda: len(calls) >= 3)
    assert len(calls) == 3


def test_query_gets_float32_unit_points_in_batches():
    seen = []

    def field(p):
        seen.append((p.dtype, len(p), float(p.min()), float(p.max())))
        return sphere_sdf(p)

    extract_surface(field, 33, batch_size=1000)
    assert all(d == np.float32 and n <= 1000 and lo >= -1 and hi <= 1 for d, n, lo, hi in seen)
    assert min(s[2] for s in seen) == -1.0 and max(s[3] for s in seen) == 1.0


def test_thin_feature_between_coarse_samples_is_kept():
    sparse = extract_surface(slab_field, 128)
    dense = extract_surface_dense(slab_field, 128)
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
