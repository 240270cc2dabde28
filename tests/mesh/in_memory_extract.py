"""The sparse extraction as it was before it streamed (issue 16): every level a dense grid in memory,
PyMCubes on the whole finest grid. Kept as the reference the streaming version must equal bit for bit."""

from __future__ import annotations

import math

import mcubes
import numpy as np
from scipy import ndimage

from sape_geom.mesh.refine import ring, slack  # the refinement rules are the library's; the machinery is not


def _coords(idx, res, lo, hi):
    step = (hi - lo) / (res - 1)
    return (lo + np.stack(idx, axis=1) * step).astype(np.float32)


def _evaluate(query, points, batch_size):
    out = np.empty(len(points), dtype=np.float64)
    for start in range(0, len(points), batch_size):
        chunk = points[start : start + batch_size]
        out[start : start + len(chunk)] = np.asarray(query(chunk), dtype=np.float64).reshape(-1)
    return out


def _coarse_step(res, coarse_resolution):
    coarse = max(2, int(coarse_resolution) if coarse_resolution else res // 8)
    return 1 << max(0, int(np.floor(np.log2(max(1.0, (res - 1) / max(coarse - 1, 1))))))


def _level_axis(res, step):
    return np.unique(np.append(np.arange(0, res, step), res - 1))


def _upsample_axis(grid, old, new, axis):
    i = np.clip(np.searchsorted(old, new, side="right") - 1, 0, len(old) - 2)
    w = (new - old[i]) / (old[i + 1] - old[i])
    shape = [1, 1, 1]
    shape[axis] = -1
    w = w.reshape(shape)
    return np.take(grid, i, axis=axis) * (1 - w) + np.take(grid, i + 1, axis=axis) * w


def _cells_of_points(old, new):
    n_cells = len(old) - 1
    right = np.searchsorted(old, new, side="right") - 1
    on_node = old[np.clip(right, 0, len(old) - 1)] == new
    hi = np.clip(right, 0, n_cells - 1)
    lo = np.clip(np.where(on_node, right - 1, right), 0, n_cells - 1)
    return lo, hi


def _flag_cells(values, level, margin, dilate=True, slack=1.0):
    v = values - level
    corners = [
        v[a : a + v.shape[0] - 1, b : b + v.shape[1] - 1, c : c + v.shape[2] - 1]
        for a in (0, 1)
        for b in (0, 1)
        for c in (0, 1)
    ]
    mn = np.minimum.reduce(corners)
    mx = np.maximum.reduce(corners)
    near = np.minimum(np.abs(mn), np.abs(mx))
    flagged = (mn <= 0) & (mx >= 0) | (near <= slack * (mx - mn))
    if margin is not None:
        flagged |= near <= margin
    return ndimage.binary_dilation(flagged, structure=np.ones((3, 3, 3), bool)) if dilate else flagged


def extract_in_memory(
    query,
    resolution,
    *,
    bounds=(-1.0, 1.0),
    level=0.0,
    batch_size=65536,
    coarse_resolution=None,
    margin=None,
    distance_margin=None,
):
    """(vertices (V, 3) in grid units, faces (F, 3) as PyMCubes gives them, per-level query counts)."""
    res, lo, hi = int(resolution), float(bounds[0]), float(bounds[1])
    step = _coarse_step(res, coarse_resolution)
    axis = _level_axis(res, step)
    grid_idx = np.meshgrid(axis, axis, axis, indexing="ij")
    values = _evaluate(query, _coords(tuple(g.ravel() for g in grid_idx), res, lo, hi), batch_size)
    values = values.reshape(len(axis), len(axis), len(axis))
    exact = np.ones(values.shape, dtype=bool)
    per_level = [int(values.size)]
    while step > 1:
        band = margin
        if distance_margin is not None and len(per_level) == 1:
            band = max(band or 0.0, min(distance_margin, math.sqrt(3.0) * step * (hi - lo) / (res - 1)))
        flagged = _flag_cells(
            values, level, band, dilate=ring(step, distance_margin), slack=slack(step, distance_margin)
        )
        step //= 2
        new = _level_axis(res, step)
        for ax in range(3):
            values = _upsample_axis(values, axis, new, ax)
        is_old = np.isin(new, axis)
        exact = exact[np.ix_(*[np.searchsorted(axis, new).clip(0, len(axis) - 1)] * 3)]
        exact &= np.logical_and.outer(np.logical_and.outer(is_old, is_old), is_old)
        lo_c, hi_c = _cells_of_points(axis, new)
        want = flagged
        for ax in range(3):
            want = np.take(want, lo_c, axis=ax) | np.take(want, hi_c, axis=ax)
        todo = np.nonzero(want & ~exact)
        pts = _coords(tuple(new[t] for t in todo), res, lo, hi)
        values[todo] = _evaluate(query, pts, batch_size)
        exact[todo] = True
        per_level.append(len(pts))
        axis = new
    verts, faces = mcubes.marching_cubes(np.ascontiguousarray(values, dtype=np.float64), float(level))
    return verts, np.asarray(faces, dtype=np.int64), per_level
