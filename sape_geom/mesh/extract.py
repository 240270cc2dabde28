"""Surface extraction by marching cubes (PyMCubes) with sparse coarse-to-fine field evaluation.

``query`` callables take an (N,3) float32 array of points in the *unit frame* and return (N,) values,
positive = OUTSIDE, negative = inside (like an SDF; an occupancy network gives its logit of P(outside)).
The grid has ``resolution`` points per axis spanning ``bounds`` with both endpoints included.
Returned meshes are in the unit frame with outward-facing triangles.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import mcubes
import numpy as np
import trimesh
from scipy import ndimage

from ..errors import InputError

__all__ = ["extract_surface", "extract_surface_dense"]

Query = Callable[[np.ndarray], Any]


def _check_args(resolution: int, bounds: tuple[float, float], batch_size: int) -> tuple[int, float, float]:
    res = int(resolution)
    lo, hi = float(bounds[0]), float(bounds[1])
    if res < 2:
        raise InputError(f"resolution must be at least 2, got {resolution}")
    if not hi > lo:
        raise InputError(f"bounds must be (low, high) with low < high, got {bounds}")
    if int(batch_size) < 1:
        raise InputError(f"batch_size must be positive, got {batch_size}")
    return res, lo, hi


def _evaluate(query: Query, points: np.ndarray, batch_size: int) -> np.ndarray:
    """Call ``query`` on (N,3) float32 ``points`` in batches; returns (N,) float64, checked finite."""
    out = np.empty(len(points), dtype=np.float64)
    for start in range(0, len(points), batch_size):
        chunk = points[start:start + batch_size]
        vals = np.asarray(query(chunk), dtype=np.float64).reshape(-1)
        if len(vals) != len(chunk):
            raise InputError(f"query returned {len(vals)} values for {len(chunk)} points")
        out[start:start + len(chunk)] = vals
    if not np.isfinite(out).all():
        raise InputError("query returned NaN or infinite values")
    return out


def _coords(idx: tuple[np.ndarray, ...], res: int, lo: float, hi: float) -> np.ndarray:
    """Grid indices (three (N,) arrays) -> (N,3) float32 points in ``[lo, hi]^3``."""
    step = (hi - lo) / (res - 1)
    return (lo + np.stack(idx, axis=1) * step).astype(np.float32)


def _mesh_from_grid(values: np.ndarray, level: float, lo: float, hi: float) -> trimesh.Trimesh:
    """Marching cubes on a (res,res,res) grid (axis 0 = x); outward faces, unit-frame vertices."""
    res = values.shape[0]
    verts, faces = mcubes.marching_cubes(np.ascontiguousarray(values, dtype=np.float64), float(level))
    verts = lo + verts * ((hi - lo) / (res - 1))
    # PyMCubes orients triangles for "positive inside"; our fields are positive outside, so flip.
    faces = np.ascontiguousarray(faces[:, ::-1], dtype=np.int64)
    return trimesh.Trimesh(verts, faces, process=False)


def extract_surface_dense(
    query: Query,
    resolution: int = 256,
    *,
    bounds: tuple[float, float] = (-1.0, 1.0),
    level: float = 0.0,
    batch_size: int = 65536,
    return_stats: bool = False,
) -> trimesh.Trimesh | tuple[trimesh.Trimesh, dict]:
    """Reference extraction: evaluate all ``resolution^3`` grid points, then marching cubes."""
    res, lo, hi = _check_args(resolution, bounds, batch_size)
    t0 = time.perf_counter()
    idx = np.indices((res, res, res)).reshape(3, -1)
    values = _evaluate(query, _coords(tuple(idx), res, lo, hi), batch_size).reshape(res, res, res)
    t1 = time.perf_counter()
    mesh = _mesh_from_grid(values, level, lo, hi)
    stats = {"evaluated": res**3, "dense": res**3, "fraction": 1.0,
             "query_s": t1 - t0, "time_s": time.perf_counter() - t0}
    return (mesh, stats) if return_stats else mesh


def _coarse_step(res: int, coarse_resolution: int | None) -> int:
    """Stride (in fine cells, a power of two) of the coarse grid that :func:`extract_surface` starts from."""
    coarse = max(2, int(coarse_resolution) if coarse_resolution else res // 8)
    return 1 << max(0, int(np.floor(np.log2(max(1.0, (res - 1) / max(coarse - 1, 1))))))


def _level_axis(res: int, step: int) -> np.ndarray:
    """Fine-grid indices of one axis at a level of stride ``step`` (always ends with ``res - 1``)."""
    return np.unique(np.append(np.arange(0, res, step), res - 1))


def _upsample_axis(grid: np.ndarray, old: np.ndarray, new: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``grid`` along ``axis`` from positions ``old`` to ``new`` (old ⊂ new)."""
    i = np.clip(np.searchsorted(old, new, side="right") - 1, 0, len(old) - 2)
    w = (new - old[i]) / (old[i + 1] - old[i])
    shape = [1, 1, 1]
    shape[axis] = -1
    w = w.reshape(shape)
    # at old nodes w == 0, so the result is exactly the old value (values are finite)
    return np.take(grid, i, axis=axis) * (1 - w) + np.take(grid, i + 1, axis=axis) * w


def _cells_of_points(old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each ``new`` position: the (up to two) ``old`` cells whose closed span contains it."""
    n_cells = len(old) - 1
    right = np.searchsorted(old, new, side="right") - 1  # cell starting at or before the point
    on_node = old[np.clip(right, 0, len(old) - 1)] == new
    hi = np.clip(right, 0, n_cells - 1)
    lo = np.clip(np.where(on_node, right - 1, right), 0, n_cells - 1)
    return lo, hi


def _flag_cells(values: np.ndarray, level: float, margin: float | None, dilate: bool = True) -> np.ndarray:
    """Cells (shape ``values.shape - 1``) that may contain the surface, dilated by one cell if ``dilate``.

    A cell is flagged when its corners straddle ``level``, when its closest corner value is within the
    cell's own value range of it (the surface may be reached within one cell wherever the field varies
    that much), or when it is within ``margin`` of it (a band of uncertain values, for fields whose
    small features can hide between coarse samples).
    """
    v = values - level
    corners = [v[a:a + v.shape[0] - 1, b:b + v.shape[1] - 1, c:c + v.shape[2] - 1]
               for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    mn = np.minimum.reduce(corners)
    mx = np.maximum.reduce(corners)
    near = np.minimum(np.abs(mn), np.abs(mx))
    flagged = (mn <= 0) & (mx >= 0) | (near <= (mx - mn))
    if margin is not None:
        flagged |= near <= margin
    return ndimage.binary_dilation(flagged, structure=np.ones((3, 3, 3), bool)) if dilate else flagged


def extract_surface(
    query: Query,
    resolution: int = 256,
    *,
    bounds: tuple[float, float] = (-1.0, 1.0),
    level: float = 0.0,
    batch_size: int = 65536,
    coarse_resolution: int | None = None,
    margin: float | None = None,
    distance_margin: float | None = None,
    vertex_field: Callable[[np.ndarray], np.ndarray] | None = None,
    return_stats: bool = False,
) -> trimesh.Trimesh | tuple[trimesh.Trimesh, dict]:
    """Marching cubes of ``query`` at ``resolution^3`` without evaluating the whole dense grid.

    ``margin`` (field units) widens the band of refined cells at every level, so that pieces smaller
    than a coarse cell are still found; ``distance_margin`` (for distance-like fields) does so on the
    coarse grid only, by one coarse cell diagonal capped at ``distance_margin``: a piece found there is
    refined further like any other surface. ``vertex_field`` maps values (monotonically, keeping
    ``level`` in place) before marching cubes, e.g. from a saturating squash of a logit, which keeps the
    refined band thin, back to the logit, which varies smoothly across the surface and places vertices well.

    A coarse grid (a subset of the fine grid, about ``coarse_resolution`` points per axis, default
    ``resolution/8``) is evaluated first; cells that may hold the surface (:func:`_flag_cells`, dilated
    by one cell) are refined level by level, halving the stride, and only fine points inside flagged
    cells are queried. Other points get the trilinear interpolation of their coarse cell, which keeps
    its sign, so marching cubes sees a consistent field. On smooth fields the mesh equals
    :func:`extract_surface_dense`'s. Returns the mesh (unit frame, outward faces) and, with
    ``return_stats``, ``{"evaluated", "dense", "fraction", "per_level", "query_s", "time_s"}``.
    """
    res, lo, hi = _check_args(resolution, bounds, batch_size)
    step = _coarse_step(res, coarse_resolution)
    t0 = time.perf_counter()
    query_s = 0.0
    axis = _level_axis(res, step)
    grid_idx = np.meshgrid(axis, axis, axis, indexing="ij")
    tq = time.perf_counter()
    values = _evaluate(query, _coords(tuple(g.ravel() for g in grid_idx), res, lo, hi), batch_size)
    query_s += time.perf_counter() - tq
    values = values.reshape(len(axis), len(axis), len(axis))
    exact = np.ones(values.shape, dtype=bool)
    per_level = [int(values.size)]
    while step > 1:
        band = margin
        if distance_margin is not None and len(per_level) == 1:
            band = max(band or 0.0, min(distance_margin, math.sqrt(3.0) * step * (hi - lo) / (res - 1)))
        # On a distance field the last refinement (cells of two fine cells) needs no safety ring: the
        # field cannot turn within a cell without its corners showing it (tested against dense extraction).
        flagged = _flag_cells(values, level, band, dilate=step > 2 or distance_margin is None)
        step //= 2
        new = _level_axis(res, step)
        for ax in range(3):
            values = _upsample_axis(values, axis, new, ax)
        is_old = np.isin(new, axis)
        exact = exact[np.ix_(*[np.searchsorted(axis, new).clip(0, len(axis) - 1)] * 3)]
        exact &= np.logical_and.outer(np.logical_and.outer(is_old, is_old), is_old)
        lo_c, hi_c = _cells_of_points(axis, new)
        want = flagged
        for ax in range(3):  # a point is wanted if any cell containing it is flagged
            want = np.take(want, lo_c, axis=ax) | np.take(want, hi_c, axis=ax)
        todo = np.nonzero(want & ~exact)
        tq = time.perf_counter()
        pts = _coords(tuple(new[t] for t in todo), res, lo, hi)
        values[todo] = _evaluate(query, pts, batch_size)
        query_s += time.perf_counter() - tq
        exact[todo] = True
        per_level.append(int(len(pts)))
        axis = new
    mesh = _mesh_from_grid(values if vertex_field is None else vertex_field(values), level, lo, hi)
    evaluated = int(sum(per_level))
    stats = {"evaluated": evaluated, "dense": res**3, "fraction": evaluated / res**3,
             "per_level": per_level, "query_s": query_s, "time_s": time.perf_counter() - t0}
    return (mesh, stats) if return_stats else mesh
