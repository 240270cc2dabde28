"""Occupancy training data: point sampling and inside/outside labels (docs/method.md §6.3).

All coordinates are in the *unit frame* (see :mod:`sape_geom.mesh.io`): the mesh is expected to be
normalised already and points live in ``[-1, 1]^3``.
"""

from __future__ import annotations

from typing import Any

import igl
import numpy as np

from ..errors import InputError

__all__ = [
    "PointSetBuffer",
    "inside_outside",
    "sample_surface",
    "sample_training_points",
    "winding_number",
]

_SURFACE_MODES = ("hybrid", "area")


def _as_vf(vertices: Any, faces: Any) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous (float64 (n,3), int64 (m,3)) copies as libigl wants them."""
    V = np.ascontiguousarray(vertices, dtype=np.float64)
    F = np.ascontiguousarray(faces, dtype=np.int64)
    if V.ndim != 2 or V.shape[1] != 3 or F.ndim != 2 or F.shape[1] != 3 or len(F) == 0:
        raise InputError(f"need vertices (n,3) and triangle faces (m,3), got {V.shape} and {F.shape}")
    return V, F


def sample_surface(
    vertices: Any, faces: Any, n: int, rng: np.random.Generator, *, mode: str = "area"
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform points on triangles: returns (points (n,3) float64, face index (n,) int64).

    ``mode="area"`` picks triangles with probability proportional to area; ``"uniform"`` picks every
    triangle with equal probability (the second half of the hybrid sampler, docs/method.md §6.3). Same frame as ``vertices``.
    """
    V, F = _as_vf(vertices, faces)
    tri = V[F]  # (m,3,3)
    if mode == "area":
        area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        total = area.sum()
        if not total > 0:
            raise InputError("cannot sample a surface whose faces all have zero area")
        cdf = np.cumsum(area / total)
        face = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(F) - 1)
    elif mode == "uniform":
        face = rng.integers(0, len(F), size=n)
    else:
        raise InputError(f"unknown triangle selection mode {mode!r} (use 'area' or 'uniform')")
    uv = rng.random((n, 2))
    flip = uv.sum(axis=1) > 1.0
    uv[flip] = 1.0 - uv[flip]
    t = tri[face]
    pts = t[:, 0] + uv[:, :1] * (t[:, 1] - t[:, 0]) + uv[:, 1:] * (t[:, 2] - t[:, 0])
    return pts, face.astype(np.int64)


def sample_training_points(
    vertices: Any, faces: Any, n_points: int, seed: Any = 0, *, surface_sampling: str = "hybrid"
) -> np.ndarray:
    """docs/method.md §6.3 training points in the unit frame: (n_points, 3) float32, clamped to ``[-1,1]^3``.

    ``S = 2*floor(floor(n/3)/2)`` surface points; rows ``[0,S)`` are surface + N(0, 0.01^2) noise, rows
    ``[S,2S)`` the *same* surface points + N(0, 0.1^2), the rest uniform in ``[-1,1]^3``.
    ``surface_sampling="hybrid"`` (the method's): half the surface points choose their triangle by area, half
    uniformly; ``"area"``: all by area. ``seed`` is anything ``np.random.default_rng`` accepts.
    """
    if surface_sampling not in _SURFACE_MODES:
        raise InputError(f"surface_sampling must be one of {_SURFACE_MODES}, got {surface_sampling!r}")
    n_points = int(n_points)
    if n_points < 3:
        raise InputError(f"n_points must be at least 3, got {n_points}")
    rng = np.random.default_rng(seed)
    half = (n_points // 3) // 2
    if surface_sampling == "hybrid":
        a, _ = sample_surface(vertices, faces, half, rng, mode="area")
        b, _ = sample_surface(vertices, faces, half, rng, mode="uniform")
        surface = np.concatenate([a, b])
    else:
        surface, _ = sample_surface(vertices, faces, 2 * half, rng, mode="area")
    near = surface + rng.normal(0.0, 0.01, surface.shape)
    far = surface + rng.normal(0.0, 0.1, surface.shape)
    uniform = rng.uniform(-1.0, 1.0, (n_points - 2 * len(surface), 3))
    pts = np.concatenate([near, far, uniform])
    return np.clip(pts, -1.0, 1.0).astype(np.float32)


def winding_number(vertices: Any, faces: Any, points: Any, exact: bool = False) -> np.ndarray:
    """Generalised winding number of the mesh at each point: (n,) float64; ~1 inside, ~0 outside.

    ``exact=False`` uses libigl's fast (hierarchical) approximation, ``exact=True`` the exact sum.
    """
    V, F = _as_vf(vertices, faces)
    P = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    if len(P) == 0:
        return np.zeros(0, dtype=np.float64)
    return igl.winding_number(V, F, P) if exact else igl.fast_winding_number(V, F, P)


def inside_outside(
    vertices: Any, faces: Any, points: Any, exact: bool = False, *, threshold: float = 0.5
) -> np.ndarray:
    """Inside labels (n,) bool, True = inside: winding number > ``threshold``.

    Works for open and non-manifold meshes. Mesh and points must be in the same frame. (The original
    code labels "outside" as winding number < 0.9; pass ``threshold=0.9`` for that convention.)
    """
    return winding_number(vertices, faces, points, exact=exact) > threshold


class PointSetBuffer:
    """docs/method.md §6.3 data schedule: ``num_sets`` labelled point sets, generated lazily and reused in turn.

    Epoch ``e`` uses set ``e % num_sets``; set ``i`` is sampled and labelled the first time it is used
    and cached afterwards (labels are never recomputed). Each epoch returns a fresh permutation of its
    set. Everything is seeded by ``seed``. Points are in the unit frame.
    """

    def __init__(
        self,
        vertices: Any,
        faces: Any,
        *,
        num_sets: int = 10,
        n_points: int = 1_000_000,
        seed: int = 0,
        exact: bool = False,
        threshold: float = 0.5,
        surface_sampling: str = "hybrid",
    ) -> None:
        if num_sets < 1:
            raise InputError(f"num_sets must be at least 1, got {num_sets}")
        self.vertices, self.faces = _as_vf(vertices, faces)
        self.num_sets, self.n_points = int(num_sets), int(n_points)
        self.exact, self.threshold, self.surface_sampling = exact, threshold, surface_sampling
        children = np.random.SeedSequence(seed).spawn(self.num_sets + 1)
        self._set_seeds = children[:-1]
        self._perm_rng = np.random.default_rng(children[-1])
        self._sets: list[tuple[np.ndarray, np.ndarray] | None] = [None] * self.num_sets
        self.epoch = 0
        self.generated = 0  # number of sets sampled and labelled so far

    def get_set(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Set ``index`` unshuffled: (points (n,3) float32, inside (n,) bool), generated on first use."""
        cached = self._sets[index]
        if cached is None:
            pts = sample_training_points(
                self.vertices, self.faces, self.n_points, self._set_seeds[index],
                surface_sampling=self.surface_sampling,
            )
            inside = inside_outside(self.vertices, self.faces, pts, exact=self.exact, threshold=self.threshold)
            cached = (pts, inside)
            self._sets[index] = cached
            self.generated += 1
        return cached

    def next_epoch(self) -> tuple[np.ndarray, np.ndarray]:
        """Points (n,3) float32 and labels (n,) float32 with **1 = outside** (the method's target), shuffled."""
        pts, inside = self.get_set(self.epoch % self.num_sets)
        self.epoch += 1
        perm = self._perm_rng.permutation(len(pts))
        return pts[perm], (~inside[perm]).astype(np.float32)
