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
from dataclasses import dataclass
from typing import Any

import mcubes
import numpy as np
import trimesh

from ..errors import InputError, check_cancel
from .marching import SlabMarcher
from .refine import Cancel, Levels, coarse_stride, compact, refine, ring, slack

__all__ = [
    "FaceBudgetExceeded",
    "GridStats",
    "extract_surface",
    "extract_surface_dense",
    "extract_surface_with_stats",
    "face_budget",
]

Query = Callable[[np.ndarray], Any]

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


@dataclass(frozen=True)
class GridStats:
    """What an extraction cost: the field values it asked for (over all levels; ``per_level``, coarse
    first), those of the dense grid, and its seconds (querying the field, and in all)."""

    evaluated: int
    dense: int
    per_level: tuple[int, ...]
    query_s: float
    time_s: float

    @property
    def fraction(self) -> float:
        """The share of the dense grid's points that were queried."""
        return self.evaluated / self.dense


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


def _coords(idx: tuple[np.ndarray, ...], res: int, lo: float, hi: float) -> np.ndarray:
    """Grid indices (three (N,) arrays) -> (N,3) float32 points in ``[lo, hi]^3``."""
    spacing = (hi - lo) / (res - 1)
    return (lo + np.stack(idx, axis=1) * spacing).astype(np.float32)


def _grid_points(flat: np.ndarray, axis: np.ndarray, res: int, lo: float, hi: float) -> np.ndarray:
    """Points of a level's grid (fine-grid indices ``axis`` on each axis) from their flat indices there."""
    return _coords(tuple(axis[i] for i in np.unravel_index(flat, (len(axis),) * 3)), res, lo, hi)


def _evaluate(
    query: Query,
    count: int,
    points: Callable[[int, int], np.ndarray],
    batch_size: int,
    should_cancel: Cancel | None = None,
) -> np.ndarray:
    """``query`` on ``count`` points made batch by batch by ``points(start, stop)``; (count,) float64, finite."""
    out = np.empty(count, dtype=np.float64)
    for start in range(0, count, batch_size):
        check_cancel(should_cancel, "extraction")
        chunk = points(start, min(count, start + batch_size))
        vals = np.asarray(query(chunk), dtype=np.float64).reshape(-1)
        if len(vals) != len(chunk):
            raise InputError(f"query returned {len(vals)} values for {len(chunk)} points")
        if not np.isfinite(vals).all():
            raise InputError("query returned NaN or infinite values")
        out[start : start + len(chunk)] = vals
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
    iso: float = 0.0,
    batch_size: int = 65536,
) -> trimesh.Trimesh:
    """Reference extraction: evaluate all ``resolution^3`` grid points, then PyMCubes on the whole grid."""
    res, lo, hi = _check_args(resolution, bounds, batch_size)
    idx = np.indices((res, res, res)).reshape(3, -1)
    values = _evaluate(query, res**3, lambda a, b: _coords(tuple(idx[:, a:b]), res, lo, hi), batch_size)
    verts, faces = mcubes.marching_cubes(values.reshape(res, res, res), float(iso))
    return _mesh(verts, faces, res, lo, hi)


def extract_surface(query: Query, resolution: int = 256, **options: Any) -> trimesh.Trimesh:
    """The mesh of :func:`extract_surface_with_stats` (same options), without what it cost."""
    return extract_surface_with_stats(query, resolution, **options)[0]


def extract_surface_with_stats(
    query: Query,
    resolution: int = 256,
    *,
    bounds: tuple[float, float] = (-1.0, 1.0),
    iso: float = 0.0,
    batch_size: int = 65536,
    coarse_resolution: int | None = None,
    margin: float | None = None,
    distance_margin: float | None = None,
    vertex_field: Callable[[np.ndarray], np.ndarray] | None = None,
    face_budget: int | None = None,
    should_cancel: Cancel | None = None,
    slab_bytes: int = SLAB_BYTES,
    corner_gap: float = 0.0,
) -> tuple[trimesh.Trimesh, GridStats]:
    """Marching cubes of ``query`` at ``resolution^3`` without evaluating, or holding, the dense grid.

    ``margin`` (field units) widens the band of refined cells at every level, so that pieces smaller
    than a coarse cell are still found; ``distance_margin`` (for distance-like fields) does so on the
    coarse grid only, by one coarse cell diagonal capped at ``distance_margin``: a piece found there is
    refined further like any other surface. ``vertex_field`` maps values (monotonically, keeping
    ``iso`` in place) before marching cubes, e.g. from a saturating squash of a logit, which keeps the
    refined band thin, back to the logit, which varies smoothly across the surface and places vertices well.

    A coarse grid (a subset of the fine grid, about ``coarse_resolution`` points per axis, default
    ``resolution/8``) is evaluated first; cells that may hold the surface (:func:`_flag_cells`, dilated
    by one cell except on the last refinement) are refined level by level, halving the stride, and only
    fine points inside flagged cells are queried, all points of a level in one pass of batches. Other
    points get the trilinear interpolation of their coarse cell, which keeps its sign, so marching cubes
    sees a consistent field. On smooth fields the mesh equals :func:`extract_surface_dense`'s.

    ``face_budget`` (None = no limit) stops with :class:`FaceBudgetExceeded` as soon as the surface
    cells of a level predict more faces, or marching cubes has made more; ``should_cancel`` is asked
    between batches of queries and between slabs (:class:`~sape_geom.errors.Cancelled`). ``slab_bytes`` bounds the
    values held per slab; ``corner_gap``: see :class:`.marching.SlabMarcher`. Returns the mesh (unit
    frame, outward faces) and what it cost (:class:`GridStats`).
    """
    res, lo, hi = _check_args(resolution, bounds, batch_size)
    t0 = time.perf_counter()
    strides = [coarse_stride(res, coarse_resolution)]
    while strides[-1] > 1:
        strides.append(strides[-1] // 2)
    levels = Levels(res, strides, max(1, int(slab_bytes)))
    query_s = 0.0

    def budget_check(faces: float, what: str) -> None:
        if face_budget is not None and faces > face_budget:
            raise FaceBudgetExceeded(
                f"the field {what} {faces:,.0f} faces at {res}^3, over the face budget of {face_budget:,} "
                f"(a noisy field? train longer); raise the face budget, or set it to 0 for no limit, to "
                f"extract it anyway (--face-budget on the command line, face_budget in a config or job)"
            )

    axis = levels.axes[0]
    n = len(axis)
    tq = time.perf_counter()
    coarse = _evaluate(
        query, n**3, lambda a, b: _grid_points(np.arange(a, b), axis, res, lo, hi), batch_size, should_cancel
    )
    levels.coarse = coarse.reshape(n, n, n)
    query_s += time.perf_counter() - tq
    per_level = [int(n**3)]
    for index, stride in enumerate(strides[:-1]):
        band = margin
        if distance_margin is not None and index == 0:
            band = max(band or 0.0, min(distance_margin, math.sqrt(3.0) * stride * (hi - lo) / (res - 1)))
        todo, crossed = refine(
            levels, index, iso, band, ring(stride, distance_margin), slack(stride, distance_margin), should_cancel
        )
        budget_check(FACES_PER_SURFACE_CELL * crossed * 4.0 ** (len(strides) - 1 - index), "would give about")
        new = levels.axes[index + 1]
        tq = time.perf_counter()
        values = _evaluate(
            query,
            len(todo),
            lambda a, b, todo=todo, new=new: _grid_points(todo[a:b], new, res, lo, hi),
            batch_size,
            should_cancel,
        )
        query_s += time.perf_counter() - tq
        levels.queried.append(compact(todo, values, len(new)))
        per_level.append(len(todo))
    marcher = SlabMarcher((res, res, res), iso, corner_gap)
    top, planes_per_slab = len(strides) - 1, levels.slab_planes(len(strides) - 1)
    for a in range(0, res - 1, planes_per_slab):
        check_cancel(should_cancel, "extraction")
        b = min(res - 1, a + planes_per_slab)
        planes = levels.planes(top, a, b + 1)[0]
        marcher.add(planes if vertex_field is None else vertex_field(planes), a)
        budget_check(marcher.faces_so_far, "gives more than")
    mesh = _mesh(*marcher.result(), res, lo, hi)
    return mesh, GridStats(int(sum(per_level)), res**3, tuple(per_level), query_s, time.perf_counter() - t0)
