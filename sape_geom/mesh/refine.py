"""The sparse levels of coarse-to-fine extraction (:func:`.extract.extract_surface`): which cells of a
level the surface may cross, and the grid of each finer level as the trilinear interpolation of the one
below plus the points queried at that level, rebuilt slab by slab on demand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import check_cancel

Cancel = Callable[[], bool]


def coarse_stride(res: int, coarse_resolution: int | None) -> int:
    """Stride (in fine cells, a power of two) of the coarse grid that :func:`extract_surface` starts from."""
    coarse = max(2, int(coarse_resolution) if coarse_resolution else res // 8)
    return 1 << max(0, int(np.floor(np.log2(max(1.0, (res - 1) / max(coarse - 1, 1))))))


def _level_axis(res: int, stride: int) -> np.ndarray:
    """Fine-grid indices of one axis at a level of stride ``stride`` (always ends with ``res - 1``)."""
    return np.unique(np.append(np.arange(0, res, stride), res - 1))


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


def _flag_cells(
    values: np.ndarray, iso: float, margin: float | None, slack: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Cells (shape ``values.shape - 1``) that may contain the surface, and those its corners straddle.

    A cell is flagged when its corners straddle ``iso``, when its closest corner value is within
    ``slack`` times the cell's own value range of it (the surface may be reached within one cell wherever
    the field varies that much), or when it is within ``margin`` of it (a band of uncertain values, for
    fields whose small features can hide between coarse samples).
    """
    v = values - iso
    n0, n1, n2 = (n - 1 for n in v.shape)
    corners = [v[a : a + n0, b : b + n1, c : c + n2] for a in (0, 1) for b in (0, 1) for c in (0, 1)]
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
iso value inside it only if its corners straddle it; a distance is nearly linear across two fine cells, so a
quarter of the cell's value range is still generous: on fitted fields it gives the same mesh as 1 with
half the queries of that level (the bunny at 256^3: 0.73M instead of 1.42M; tested against dense)."""


def slack(stride: int, distance_margin: float | None) -> float:
    """``slack`` of :func:`_flag_cells` at a level of stride ``stride``: :data:`LAST_LEVEL_SLACK` for the
    last refinement of a distance field, 1 elsewhere."""
    return LAST_LEVEL_SLACK if stride == 2 and distance_margin is not None else 1.0


def ring(stride: int, distance_margin: float | None) -> bool:
    """Whether the flagged cells of a level of stride ``stride`` are dilated by one cell before refining.

    On a distance field the last refinement (cells of two fine cells) needs no safety ring: the field
    cannot turn within a cell without its corners showing it (tested against dense extraction).
    """
    return stride > 2 or distance_margin is None


class Levels:
    """The grid at every level: the coarse grid in full, finer levels as interpolation plus queried points."""

    def __init__(self, res: int, strides: list[int], slab_bytes: int) -> None:
        self.res, self.strides = res, strides
        self.axes = [_level_axis(res, s) for s in strides]
        self.coarse: np.ndarray | None = None
        self.queried: list[tuple[np.ndarray, np.ndarray]] = []  # level l >= 1: (sorted flat indices, values)
        self.slab_bytes = slab_bytes

    def slab_planes(self, level: int) -> int:
        n = len(self.axes[level])
        return max(1, self.slab_bytes // (8 * n * n))

    def planes(self, level: int, a: int, b: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Values of planes ``[a, b)`` of ``level`` and, with ``exact``, whether each point was queried."""
        if level == 0:
            assert self.coarse is not None  # extract_surface sets it before reading any plane
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
            assert below_exact is not None  # asked for with exact
            on_old = np.isin(new, old)
            at = np.searchsorted(old, new).clip(0, len(old) - 1)
            known = below_exact[np.ix_(at[a:b] - first, at, at)]
            known &= np.logical_and.outer(np.logical_and.outer(on_old[a:b], on_old), on_old)
        if level - 1 < len(self.queried):
            flat, vals = self.queried[level - 1]
            n2 = len(new) ** 2
            lo, hi = np.searchsorted(flat, [a * n2, b * n2])
            values.reshape(-1)[flat[lo:hi] - a * n2] = vals[lo:hi]
            if known is not None:  # exact
                known.reshape(-1)[flat[lo:hi] - a * n2] = True
        return values, known


def compact(flat: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A level's queried points as held until marching cubes: int32 indices where the level's grid
    allows, float32 values where they are float32 numbers (a network's output): 8 bytes a point instead
    of 16, which at 1024^3 (tens of millions of points) is hundreds of MB. Nothing is rounded."""
    if n**3 < 2**31:
        flat = flat.astype(np.int32)
    narrow = values.astype(np.float32)
    return flat, (narrow if np.array_equal(narrow, values) else values)


def refine(
    levels: Levels, level: int, iso: float, band: float | None, dilate: bool, slack: float, should_cancel: Cancel | None
) -> tuple[np.ndarray, int]:
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
    planes_per_slab = levels.slab_planes(level + 1)
    for p0 in range(0, n, planes_per_slab):
        check_cancel(should_cancel, "extraction")
        p1 = min(n, p0 + planes_per_slab)
        c0, c1 = int(lo_c[p0]), int(hi_c[p1 - 1]) + 1  # cells the points of planes [p0, p1) lie in
        f0, f1 = max(c0 - ring, 0), min(c1 + ring, n_cells)  # cells whose flags reach those
        values, known = levels.planes(level, f0, f1 + 1, exact=True)
        assert known is not None  # asked for with exact
        flagged, straddles = _flag_cells(values, iso, band, slack)
        crossed += int(straddles[max(counted - f0, 0) :].sum())
        counted = f1
        if dilate:
            flagged = ndimage.binary_dilation(flagged, structure=np.ones((3, 3, 3), bool))
        # A point is wanted when a flagged cell's closed span holds it: every cell's new points.
        cx, cy, cz = np.nonzero(flagged[c0 - f0 : c1 - f0])
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
