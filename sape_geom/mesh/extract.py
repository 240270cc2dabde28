"""Surface extraction by marching cubes with sparse coarse-to-fine field evaluation, in bounded memory.

``query`` callables take an (N,3) float32 array of points in the *unit frame* and return (N,) values,
positive = OUTSIDE, negative = inside (like an SDF; an occupancy network gives its logit of P(outside)).
The grid has ``resolution`` points per axis spanning ``bounds`` with both endpoints included.
Returned meshes are in the unit frame with outward-facing triangles.

Memory does not grow with the cube of the resolution: only the coarse grid is held whole; each finer
level is the trilinear interpolation of the one below plus the points queried at that level (kept as a
sorted list of grid indices and their values), and any slab of planes of any level is rebuilt from
those on demand. Refinement and marching cubes walk the grid slab by slab (:mod:`.marching`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import mcubes
import numpy as np
import trimesh
from scipy import ndimage

from ..errors import InputError, TrainingCancelled
from .marching import SlabMarcher

__all__ = ["FaceBudgetExceeded", "extract_surface", "extract_surface_dense", "face_budget"]

Query = Callable[[np.ndarray], Any]
Cancel = Callable[[], bool]

SLAB_BYTES = 32 << 20
"""About this many bytes of float64 values per slab of planes (at least one plane per slab)."""
FACES_PER_RESOLUTION_SQUARED = 20
"""Default face budget per ``resolution**2``. A smooth closed shape filling the unit frame gives about 8
(a sphere of radius 0.95: 7.5); a short noisy fit gave 58 at 256^3."""
MIN_FACE_BUDGET = 1_000_000
"""The default budget is never below this: a small grid cannot give a costly number of faces."""
FACES_PER_SURFACE_CELL = 2.0
"""Faces that one grid cell crossed by a smooth surface gives on average (measured on spheres: 1.9 to 2)."""


class FaceBudgetExceeded(InputError):
    """The field would give far more faces than its resolution suggests (a noisy field)."""


def face_budget(resolution: int, budget: int | None = None) -> int | None:
    """Faces allowed at ``resolution``: ``budget`` (0 = no limit) or, when None, the default
    :data:`FACES_PER_RESOLUTION_SQUARED` x ``resolution**2`` (at least :data:`MIN_FACE_BUDGET`)."""
    if budget is None:
        return max(MIN_FACE_BUDGET, FACES_PER_RESOLUTION_SQUARED * int(resolution) ** 2)
    if int(budget) < 0:
        raise InputError(f"face budget must be >= 0 (0 = no limit), got {budget}")
    return None if int(budget) == 0 else int(budget)


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


def _check_cancel(should_cancel: Cancel | None) -> None:
    if should_cancel is not None and should_cancel():
        raise TrainingCancelled("extraction cancelled")


def _coords(idx: tuple[np.ndarray, ...], res: int, lo: float, hi: float) -> np.ndarray:
    """Grid indices (three (N,) arrays) -> (N,3) float32 points in ``[lo, hi]^3``."""
    step = (hi - lo) / (res - 1)
    return (lo + np.stack(idx, axis=1) * step).astype(np.float32)


def _grid_points(flat: np.ndarray, axis: np.ndarray, res: int, lo: float, hi: float) -> np.ndarray:
    """Points of a level's grid (fine-grid indices ``axis`` on each axis) from their flat indices there."""
    return _coords(tuple(axis[i] for i in np.unravel_index(flat, (len(axis),) * 3)), res, lo, hi)


def _evaluate(query: Query, count: int, points: Callable[[int, int], np.ndarray], batch_size: int,
              should_cancel: Cancel | None = None) -> np.ndarray:
    """``query`` on ``count`` points made batch by batch by ``points(start, stop)``; (count,) float64, finite."""
    out = np.empty(count, dtype=np.float64)
    for start in range(0, count, batch_size):
        _check_cancel(should_cancel)
        chunk = points(start, min(count, start + batch_size))
        vals = np.asarray(query(chunk), dtype=np.float64).reshape(-1)
        if len(vals) != len(chunk):
            raise InputError(f"query returned {len(vals)} values for {len(chunk)} points")
        if not np.isfinite(vals).all():
            raise InputError("query returned NaN or infinite values")
        out[start:start + len(chunk)] = vals
    return out


def _mesh(verts: np.ndarray, faces: np.ndarray, res: int, lo: float, hi: float) -> trimesh.Trimesh:
    """Marching-cubes output (grid index units) -> unit-frame mesh with outward faces."""
    verts = np.asarray(verts, dtype=np.float64)
    verts *= (hi - lo) / (res - 1)  # in place: at 1024^3 each copy of the mesh is hundreds of MB
    verts += lo
    # PyMCubes orients triangles for "positive inside"; our fields are positive outside, so flip.
    faces = np.asarray(faces, dtype=np.int64)
    faces[:, [0, 2]] = faces[:, [2, 0]]
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
    """Reference extraction: evaluate all ``resolution^3`` grid points, then PyMCubes on the whole grid."""
    res, lo, hi = _check_args(resolution, bounds, batch_size)
    t0 = time.perf_counter()
    idx = np.indices((res, res, res)).reshape(3, -1)
    values = _evaluate(query, res**3, lambda a, b: _coords(tuple(idx[:, a:b]), res, lo, hi), batch_size)
    t1 = time.perf_counter()
    verts, faces = mcubes.marching_cubes(values.reshape(res, res, res), float(level))
    mesh = _mesh(verts, faces, res, lo, hi)
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


def _upsample_axis(grid: np.ndarray, old: np.ndarray, new: np.ndarray, axis: int, first: int = 0) -> np.ndarray:
    """Linear interpolation of ``grid`` along ``axis`` from positions ``old`` to ``new`` (old ⊂ new).

    ``grid`` may hold only the old positions from index ``first`` on, along ``axis``.
    """
    i = np.clip(np.searchsorted(old, new, side="right") - 1, 0, len(old) - 2)
    w = (new - old[i]) / (old[i + 1] - old[i])
    shape = list(grid.shape)
    shape[axis] = len(new)
    out = np.empty(shape, dtype=np.float64)
    # At old nodes w == 0 and a * (1 - w) + b * w is a itself (values are finite; only the sign of a
    # zero may differ, which neither marching cubes nor the flags can see): copy those.
    at_node = np.nonzero(w == 0)[0]
    _put(out, at_node, np.take(grid, i[at_node] - first, axis=axis), axis)
    between = np.nonzero(w != 0)[0]
    if len(between):
        shape = [1, 1, 1]
        shape[axis] = -1
        wb = w[between].reshape(shape)
        a = np.take(grid, i[between] - first, axis=axis)
        a *= 1 - wb
        b = np.take(grid, i[between] + 1 - first, axis=axis)
        b *= wb
        a += b
        _put(out, between, a, axis)
    return out


def _put(out: np.ndarray, where: np.ndarray, values: np.ndarray, axis: int) -> None:
    """``out[..., where, ...] = values`` along ``axis``, by slicing when ``where`` is evenly spaced."""
    index: list[Any] = [slice(None)] * 3
    spacing = np.diff(where)
    if len(where) and (len(where) == 1 or (spacing == spacing[0]).all()):
        step = int(spacing[0]) if len(where) > 1 else 1
        index[axis] = slice(int(where[0]), int(where[-1]) + 1, step)
    else:
        index[axis] = where
    out[tuple(index)] = values


def _cells_of_points(old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each ``new`` position: the (up to two) ``old`` cells whose closed span contains it."""
    n_cells = len(old) - 1
    right = np.searchsorted(old, new, side="right") - 1  # cell starting at or before the point
    on_node = old[np.clip(right, 0, len(old) - 1)] == new
    hi = np.clip(right, 0, n_cells - 1)
    lo = np.clip(np.where(on_node, right - 1, right), 0, n_cells - 1)
    return lo, hi


def _flag_cells(values: np.ndarray, level: float, margin: float | None,
                slack: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Cells (shape ``values.shape - 1``) that may contain the surface, and those its corners straddle.

    A cell is flagged when its corners straddle ``level``, when its closest corner value is within
    ``slack`` times the cell's own value range of it (the surface may be reached within one cell wherever
    the field varies that much), or when it is within ``margin`` of it (a band of uncertain values, for
    fields whose small features can hide between coarse samples).
    """
    v = values - level
    n0, n1, n2 = (n - 1 for n in v.shape)
    corners = [v[a:a + n0, b:b + n1, c:c + n2] for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    mn, mx = corners[0].copy(), corners[0].copy()
    for corner in corners[1:]:  # pairwise, not a stacked copy of all eight
        np.minimum(mn, corner, out=mn)
        np.maximum(mx, corner, out=mx)
    near = np.minimum(np.abs(mn), np.abs(mx))
    straddles = (mn <= 0) & (mx >= 0)
    flagged = straddles | (near <= slack * (mx - mn))
    if margin is not None:
        flagged |= near <= margin
    return flagged, straddles


LAST_LEVEL_SLACK = 0.25
"""``slack`` of the last refinement on a distance field. A field that is linear across a cell reaches the
level inside it only if its corners straddle it; a distance is nearly linear across two fine cells, so a
quarter of the cell's value range is still generous: on fitted fields it gives the same mesh as 1 with
half the queries of that level (the bunny at 256^3: 0.73M instead of 1.42M; tested against dense)."""


def _slack(step: int, distance_margin: float | None) -> float:
    """``slack`` of :func:`_flag_cells` at a level of stride ``step``: :data:`LAST_LEVEL_SLACK` for the
    last refinement of a distance field, 1 elsewhere."""
    return LAST_LEVEL_SLACK if step == 2 and distance_margin is not None else 1.0


def _ring(step: int, distance_margin: float | None) -> bool:
    """Whether the flagged cells of a level of stride ``step`` are dilated by one cell before refining.

    On a distance field the last refinement (cells of two fine cells) needs no safety ring: the field
    cannot turn within a cell without its corners showing it (tested against dense extraction).
    """
    return step > 2 or distance_margin is None


class _Levels:
    """The grid at every level: the coarse grid in full, finer levels as interpolation plus queried points."""

    def __init__(self, res: int, steps: list[int], slab_bytes: int) -> None:
        self.res, self.steps = res, steps
        self.axes = [_level_axis(res, s) for s in steps]
        self.coarse: np.ndarray | None = None
        self.queried: list[tuple[np.ndarray, np.ndarray]] = []  # level l >= 1: (sorted flat indices, values)
        self.slab_bytes = slab_bytes

    def slab_planes(self, level: int) -> int:
        n = len(self.axes[level])
        return max(1, self.slab_bytes // (8 * n * n))

    def planes(self, level: int, a: int, b: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Values of planes ``[a, b)`` of ``level`` and, with ``exact``, whether each point was queried."""
        if level == 0:
            values = self.coarse[a:b]
            return values, (np.ones(values.shape, dtype=bool) if exact else None)
        old, new = self.axes[level - 1], self.axes[level]
        i = np.clip(np.searchsorted(old, new[a:b], side="right") - 1, 0, len(old) - 2)
        first, last = int(i.min()), int(i.max()) + 2
        below, below_exact = self.planes(level - 1, first, last, exact)
        values = _upsample_axis(below, old, new[a:b], 0, first)
        values = _upsample_axis(_upsample_axis(values, old, new, 1), old, new, 2)
        known = None
        if exact:
            on_old = np.isin(new, old)
            at = np.searchsorted(old, new).clip(0, len(old) - 1)
            known = below_exact[np.ix_(at[a:b] - first, at, at)]
            known &= np.logical_and.outer(np.logical_and.outer(on_old[a:b], on_old), on_old)
        if level - 1 < len(self.queried):
            flat, vals = self.queried[level - 1]
            n2 = len(new) ** 2
            lo, hi = np.searchsorted(flat, [a * n2, b * n2])
            values.reshape(-1)[flat[lo:hi] - a * n2] = vals[lo:hi]
            if exact:
                known.reshape(-1)[flat[lo:hi] - a * n2] = True
        return values, known


def _compact(flat: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A level's queried points as held until marching cubes: int32 indices where the level's grid
    allows, float32 values where they are float32 numbers (a network's output): 8 bytes a point instead
    of 16, which at 1024^3 (tens of millions of points) is hundreds of MB. Nothing is rounded."""
    if n**3 < 2**31:
        flat = flat.astype(np.int32)
    narrow = values.astype(np.float32)
    return flat, (narrow if np.array_equal(narrow, values) else values)


def _refine(levels: _Levels, level: int, iso: float, band: float | None, dilate: bool, slack: float,
            should_cancel: Cancel | None) -> tuple[np.ndarray, int]:
    """Flat indices (sorted) of the points of ``level + 1`` to query, and the cells of ``level`` that the
    surface crosses: points inside flagged cells (dilated by one cell if ``dilate``) not yet queried."""
    old, new = levels.axes[level], levels.axes[level + 1]
    n_cells, n = len(old) - 1, len(new)
    lo_c, hi_c = _cells_of_points(old, new)
    on_old = np.isin(new, old)
    at = np.searchsorted(old, new).clip(0, len(old) - 1)
    first = np.searchsorted(new, old[:-1])  # each cell's new points along an axis: first .. first + count - 1
    count = np.searchsorted(new, old[1:]) - first + 1  # 2 or 3
    offsets = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    ring = 1 if dilate else 0
    todo, crossed, counted = [], 0, 0
    step = levels.slab_planes(level + 1)
    for p0 in range(0, n, step):
        _check_cancel(should_cancel)
        p1 = min(n, p0 + step)
        c0, c1 = int(lo_c[p0]), int(hi_c[p1 - 1]) + 1  # cells the points of planes [p0, p1) lie in
        f0, f1 = max(c0 - ring, 0), min(c1 + ring, n_cells)  # cells whose flags reach those
        values, known = levels.planes(level, f0, f1 + 1, exact=True)
        flagged, straddles = _flag_cells(values, iso, band, slack)
        crossed += int(straddles[max(counted - f0, 0):].sum())
        counted = f1
        if dilate:
            flagged = ndimage.binary_dilation(flagged, structure=np.ones((3, 3, 3), bool))
        # A point is wanted when a flagged cell's closed span holds it: every cell's new points.
        cx, cy, cz = np.nonzero(flagged[c0 - f0:c1 - f0])
        cx += c0
        found = []
        for ox, oy, oz in offsets:  # one of the (up to) 3 x 3 x 3 points of every flagged cell at a time
            px = first[cx] + ox
            ok = (ox < count[cx]) & (oy < count[cy]) & (oz < count[cz]) & (px >= p0) & (px < p1)
            found.append((px[ok] * n + first[cy[ok]] + oy) * n + first[cz[ok]] + oz)
        flat = np.unique(np.concatenate(found))
        px, py, pz = np.unravel_index(flat, (n, n, n))
        done = on_old[px] & on_old[py] & on_old[pz]
        done[done] = known[at[px[done]] - f0, at[py[done]], at[pz[done]]]
        todo.append(flat[~done])
    return np.concatenate(todo), crossed


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
    face_budget: int | None = None,
    should_cancel: Cancel | None = None,
    slab_bytes: int = SLAB_BYTES,
    return_stats: bool = False,
) -> trimesh.Trimesh | tuple[trimesh.Trimesh, dict]:
    """Marching cubes of ``query`` at ``resolution^3`` without evaluating, or holding, the dense grid.

    ``margin`` (field units) widens the band of refined cells at every level, so that pieces smaller
    than a coarse cell are still found; ``distance_margin`` (for distance-like fields) does so on the
    coarse grid only, by one coarse cell diagonal capped at ``distance_margin``: a piece found there is
    refined further like any other surface. ``vertex_field`` maps values (monotonically, keeping
    ``level`` in place) before marching cubes, e.g. from a saturating squash of a logit, which keeps the
    refined band thin, back to the logit, which varies smoothly across the surface and places vertices well.

    A coarse grid (a subset of the fine grid, about ``coarse_resolution`` points per axis, default
    ``resolution/8``) is evaluated first; cells that may hold the surface (:func:`_flag_cells`, dilated
    by one cell except on the last refinement) are refined level by level, halving the stride, and only
    fine points inside flagged cells are queried, all points of a level in one pass of batches. Other
    points get the trilinear interpolation of their coarse cell, which keeps its sign, so marching cubes
    sees a consistent field. On smooth fields the mesh equals :func:`extract_surface_dense`'s.

    ``face_budget`` (None = no limit) stops with :class:`FaceBudgetExceeded` as soon as the surface
    cells of a level predict more faces, or marching cubes has made more; ``should_cancel`` is asked
    between batches of queries and between slabs (``TrainingCancelled``). ``slab_bytes`` bounds the
    values held per slab. Returns the mesh (unit frame, outward faces) and, with ``return_stats``,
    ``{"evaluated", "dense", "fraction", "per_level", "query_s", "time_s"}``.
    """
    res, lo, hi = _check_args(resolution, bounds, batch_size)
    t0 = time.perf_counter()
    steps = [_coarse_step(res, coarse_resolution)]
    while steps[-1] > 1:
        steps.append(steps[-1] // 2)
    levels = _Levels(res, steps, max(1, int(slab_bytes)))
    query_s = 0.0

    def budget_check(faces: float, what: str) -> None:
        if face_budget is not None and faces > face_budget:
            raise FaceBudgetExceeded(
                f"the field {what} {faces:,.0f} faces at {res}^3, over the face budget of {face_budget:,} "
                f"(a noisy field? train longer); raise the face budget, or set it to 0 for no limit, to "
                f"extract it anyway (--face-budget on the command line, face_budget in a config or job)")

    axis = levels.axes[0]
    n = len(axis)
    tq = time.perf_counter()
    coarse = _evaluate(query, n**3, lambda a, b: _grid_points(np.arange(a, b), axis, res, lo, hi), batch_size,
                       should_cancel)
    levels.coarse = coarse.reshape(n, n, n)
    query_s += time.perf_counter() - tq
    per_level = [int(n**3)]
    for index, step in enumerate(steps[:-1]):
        band = margin
        if distance_margin is not None and index == 0:
            band = max(band or 0.0, min(distance_margin, math.sqrt(3.0) * step * (hi - lo) / (res - 1)))
        todo, crossed = _refine(levels, index, level, band, _ring(step, distance_margin),
                                _slack(step, distance_margin), should_cancel)
        budget_check(FACES_PER_SURFACE_CELL * crossed * 4.0 ** (len(steps) - 1 - index), "would give about")
        new = levels.axes[index + 1]
        tq = time.perf_counter()
        values = _evaluate(query, len(todo), lambda a, b, todo=todo, new=new: _grid_points(todo[a:b], new, res, lo, hi), batch_size,
                           should_cancel)
        query_s += time.perf_counter() - tq
        levels.queried.append(_compact(todo, values, len(new)))
        per_level.append(len(todo))
    marcher = SlabMarcher((res, res, res), level)
    top, step = len(steps) - 1, levels.slab_planes(len(steps) - 1)
    for a in range(0, res - 1, step):
        _check_cancel(should_cancel)
        b = min(res - 1, a + step)
        planes = levels.planes(top, a, b + 1)[0]
        marcher.add(planes if vertex_field is None else vertex_field(planes), a)
        budget_check(marcher.faces_so_far, "gives more than")
    mesh = _mesh(*marcher.result(), res, lo, hi)
    evaluated = int(sum(per_level))
    stats = {"evaluated": evaluated, "dense": res**3, "fraction": evaluated / res**3,
             "per_level": per_level, "query_s": query_s, "time_s": time.perf_counter() - t0}
    return (mesh, stats) if return_stats else mesh
