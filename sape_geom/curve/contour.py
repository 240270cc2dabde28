"""Closed 2-D curves: loading silhouettes and polylines, resampling, normalisation, metrics, writers.

Only numpy and Pillow are used here (no torch), so this module is cheap to import.

Conventions
-----------
* **Image pixel frame.** A pixel at array index ``[row, col]`` has its centre at ``(x, y) = (col, row)``:
  x points right, y points **down**. Contours traced from an image are in this frame, at the 0.5 level of
  the binary shape mask (crossings lie half-way between the centres of a shape and a background pixel).
* **Polyline files** (``.npz``, ``.npy``, ``.txt``/``.xy``/``.csv``, ``.obj``) are taken to be in a y-**up**
  frame; ``.svg`` user space is y-down like an image.
* **Normalised frame** (docs/method.md §6.4): bounding-box centre at the origin, farthest point at distance 1, and
  always **y-up**: :class:`CurveNormalization` flips y for y-down sources, so every curve in the
  normalised frame has the same handedness whatever file it came from. (The reference code keeps image
  y-down and never flips; the flip only changes how the numbers look, not the fit.)
* **Orientation.** :func:`resample_closed` returns counter-clockwise loops in a y-up frame, i.e. a positive
  shoelace area, and :func:`circle` follows the same rule, so a circle source never has to "turn inside
  out" to match a target.
* **Start point.** :func:`resample_closed` starts at the vertex with the largest x (ties: the one with the
  smallest |y|, then the smallest y). The circle starts just after angle 0, i.e. also at the largest x, so
  a source and a target resampled this way are parametrised alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Contour:
    """A closed polyline as loaded from a file (first point not repeated).

    ``points`` are in the file's own frame (image pixels for images). ``y_down`` says whether that frame's
    y axis points down (images, SVG); :meth:`normalization` flips it so the normalised frame is y-up.
    """

    points: np.ndarray
    """(N, 2) float64, N >= 3, finite."""
    kind: str = "polyline"
    """``image`` or ``polyline``."""
    y_down: bool = False
    image_size: tuple[int, int] | None = None
    """(width, height) in pixels for images, else None."""
    source: str = ""
    """The path it was read from ("" for in-memory curves)."""

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """``np.asarray(contour)`` gives its points."""
        return np.array(self.points, dtype=dtype) if copy else np.asarray(self.points, dtype=dtype)

    def __len__(self) -> int:
        return len(self.points)

    def normalization(self) -> CurveNormalization:
        """The docs/method.md §6.4 normalisation of these points (y flipped for y-down frames)."""
        return CurveNormalization.fit(self.points, flip_y=self.y_down)

    def frame_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "y_down": self.y_down,
            "image_size": list(self.image_size) if self.image_size else None,
            "source": self.source,
        }


DEFAULT_MIN_LOOP_AREA = 1e-4
"""Loops enclosing less than this fraction of the largest loop's area are dropped when a silhouette is
loaded (specks and pin-holes; the official silhouettes have a few of a pixel or so)."""


@dataclass(frozen=True)
class ContourSet:
    """Every closed loop of a silhouette: its outer contours and its holes, in the file's own frame.

    Loops are ordered by decreasing enclosed area. ``holes[k]`` says whether loop k bounds a hole (it lies
    inside an odd number of other loops), so the shape is the even-odd fill of all loops. ``dropped``
    counts the loops left out as too small (e.g. holes of a pixel or less) or degenerate.
    """

    loops: tuple[np.ndarray, ...]
    holes: tuple[bool, ...]
    kind: str = "polyline"
    y_down: bool = False
    image_size: tuple[int, int] | None = None
    source: str = ""
    dropped: int = 0

    def __post_init__(self) -> None:
        loops = tuple(clean_polyline(p, f"loop {k} of {self.source or 'the curve'}") for k, p in enumerate(self.loops))
        if not loops:
            raise InputError(f"{self.source or 'the curve'} has no closed loop")
        if len(self.holes) != len(loops):
            raise InputError(f"{len(self.holes)} hole flags for {len(loops)} loops")
        object.__setattr__(self, "loops", loops)
        object.__setattr__(self, "holes", tuple(bool(h) for h in self.holes))

    def __len__(self) -> int:
        return len(self.loops)

    @property
    def points(self) -> np.ndarray:
        """All loops' points stacked (for bounding boxes and the shared normalisation)."""
        return np.vstack(self.loops)

    def contour(self, k: int) -> Contour:
        """Loop ``k`` as a :class:`Contour` in the same frame."""
        return Contour(self.loops[k], self.kind, self.y_down, self.image_size, self.source)

    def largest(self) -> Contour:
        """The outer loop enclosing the largest area (what single-curve callers get)."""
        outer = [k for k, hole in enumerate(self.holes) if not hole]
        return self.contour(outer[0] if outer else 0)

    def normalization(self) -> CurveNormalization:
        """One normalisation for the whole shape (all loops' points), y flipped for y-down frames."""
        return CurveNormalization.fit(self.points, flip_y=self.y_down)

    @classmethod
    def from_loops(cls, loops: list[np.ndarray], min_area: float = DEFAULT_MIN_LOOP_AREA, **frame: Any) -> ContourSet:
        """Holes found by nesting; loops with an area below ``min_area`` x the largest one's are dropped."""
        kept: list[np.ndarray] = []
        dropped = 0
        for loop in loops:
            if not np.all(np.isfinite(np.asarray(loop, dtype=np.float64))):
                raise InputError(f"{frame.get('source') or 'the curve'} contains NaN or infinite coordinates")
            try:
                kept.append(clean_polyline(loop, "loop"))
            except InputError:
                dropped += 1
        if not kept:
            raise InputError(f"{frame.get('source') or 'the curve'} has no loop with 3 distinct points")
        areas = np.array([abs(signed_area(p)) for p in kept])
        keep = areas >= min_area * areas.max()
        keep[int(np.argmax(areas))] = True
        order = [int(k) for k in np.argsort(-areas, kind="stable") if keep[k]]
        chosen = [kept[k] for k in order]
        return cls(tuple(chosen), nesting_holes(chosen), dropped=dropped + int((~keep).sum()), **frame)


def nesting_holes(loops: list[np.ndarray]) -> tuple[bool, ...]:
    """Whether each loop lies inside an odd number of the others (tested at its first vertex)."""
    return tuple(
        sum(point_in_polygon(loop[:1], other)[0] for j, other in enumerate(loops) if j != k) % 2 == 1
        for k, loop in enumerate(loops)
    )


def point_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) bool: inside the closed polygon by the crossing-number (even-odd) rule."""
    q = np.asarray(points, dtype=np.float64)[:, None, :]
    a = np.asarray(polygon, dtype=np.float64)[None]
    b = np.roll(a, -1, axis=1)
    straddle = (a[..., 1] > q[..., 1]) != (b[..., 1] > q[..., 1])
    dy = np.where(straddle, b[..., 1] - a[..., 1], 1.0)
    x_cross = a[..., 0] + (q[..., 1] - a[..., 1]) * (b[..., 0] - a[..., 0]) / dy
    return (straddle & (q[..., 0] < x_cross)).sum(axis=1) % 2 == 1


@dataclass(frozen=True)
class CurveNormalization:
    """Maps a curve's own frame to the normalised frame and back (docs/method.md §6.4).

    ``apply(p) = ((p - center) * (1, s_y)) / scale`` with ``s_y = -1`` when ``flip_y`` else ``1``:
    bounding-box centre to the origin, farthest point at distance 1, y up. ``invert`` is its exact inverse.
    """

    center: tuple[float, float]
    scale: float
    flip_y: bool = False

    def __post_init__(self) -> None:
        c = tuple(float(v) for v in self.center)
        if len(c) != 2 or not all(math.isfinite(v) for v in c):
            raise InputError(f"normalisation centre must be two finite numbers, got {self.center!r}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise InputError(f"normalisation scale must be finite and > 0, got {self.scale!r}")
        object.__setattr__(self, "center", c)
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "flip_y", bool(self.flip_y))

    @classmethod
    def fit(cls, points: np.ndarray, flip_y: bool = False) -> CurveNormalization:
        p = as_points(points, "curve")
        lo, hi = p.min(axis=0), p.max(axis=0)
        center = (lo + hi) / 2.0
        scale = float(np.sqrt(((p - center) ** 2).sum(axis=1)).max())
        if not scale > 0:
            raise InputError("curve is degenerate: all points coincide")
        return cls((float(center[0]), float(center[1])), scale, flip_y)

    @classmethod
    def identity(cls) -> CurveNormalization:
        return cls((0.0, 0.0), 1.0, False)

    def _sign(self) -> np.ndarray:
        return np.array([1.0, -1.0 if self.flip_y else 1.0])

    def apply(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return (p - np.asarray(self.center)) * self._sign() / self.scale

    def invert(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return p * self._sign() * self.scale + np.asarray(self.center)

    def to_dict(self) -> dict[str, Any]:
        return {"center": list(self.center), "scale": self.scale, "flip_y": self.flip_y}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CurveNormalization:
        unknown = set(data) - {"center", "scale", "flip_y"}
        if unknown:
            raise InputError(f"unknown normalisation key(s): {', '.join(sorted(unknown))}")
        try:
            return cls(tuple(data["center"]), float(data["scale"]), bool(data.get("flip_y", False)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"bad normalisation record {dict(data)!r}: {exc}") from None


# ----------------------------------------------------------------------------------------------------
# Basic geometry
# ----------------------------------------------------------------------------------------------------


def signed_area(points: np.ndarray) -> float:
    """Shoelace area of the closed polyline: > 0 for counter-clockwise in a y-up frame."""
    p = np.asarray(points, dtype=np.float64)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def curve_length(points: np.ndarray) -> float:
    p = np.asarray(points, dtype=np.float64)
    return float(np.linalg.norm(np.roll(p, -1, axis=0) - p, axis=1).sum())


def circle(n: int) -> np.ndarray:
    """The default source (docs/method.md §6.4): ``t = linspace(0, 2, n+2)[1:-1]``, points ``(cos πt, sin πt)``.

    Counter-clockwise in a y-up frame, starting just after angle 0 (the largest x).
    """
    if n < 3:
        raise InputError(f"a circle needs at least 3 points, got {n}")
    t = np.linspace(0.0, 2.0, n + 2)[1:-1]
    return np.stack([np.cos(np.pi * t), np.sin(np.pi * t)], axis=1)


def curve_parameter(n: int, at: np.ndarray | None = None) -> np.ndarray:
    """The network input for ``n`` curve points: ``τ = t - 1 ∈ (-1, 1)`` with the circle's ``t``; with
    ``at``, at those (fractional) point positions instead of ``0 .. n - 1`` (position ``n`` is ``τ = 1``,
    where the closed curve comes back to its first point)."""
    k = np.arange(n, dtype=np.float64) if at is None else np.asarray(at, dtype=np.float64)
    return (k + 1.0) * (2.0 / (n + 1)) - 1.0


def resample_closed(points: np.ndarray, n: int, *, orient: bool = True, start: str = "max_x") -> np.ndarray:
    """Resample a closed polyline to ``n`` points equally spaced by arc length.

    With ``orient`` the loop is made counter-clockwise (positive shoelace area, i.e. CCW in a y-up frame).
    ``start="max_x"`` begins at the vertex with the largest x (ties: smallest |y|, then smallest y); the
    samples sit at arc lengths ``L·(k + ½)/n`` from it, matching the circle's half-step offset.
    ``start="keep"`` begins at the first given vertex.
    """
    p = clean_polyline(points, "curve")
    if n < 3:
        raise InputError(f"need at least 3 resampled points, got {n}")
    if orient and signed_area(p) < 0:
        p = p[::-1]
    if start == "max_x":
        key = np.lexsort((p[:, 1], np.abs(p[:, 1]), -p[:, 0]))
        p = np.roll(p, -int(key[0]), axis=0)
    elif start != "keep":
        raise InputError(f"unknown start rule {start!r}; use 'max_x' or 'keep'")
    closed = np.vstack([p, p[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    if not total > 0:
        raise InputError("curve is degenerate: zero length")
    s = (np.arange(n) + 0.5) * (total / n)
    idx = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    frac = (s - cum[idx]) / np.where(seg[idx] > 0, seg[idx], 1.0)
    return closed[idx] + (closed[idx + 1] - closed[idx]) * frac[:, None]


def clean_polyline(points: Any, what: str = "polyline") -> np.ndarray:
    """Validate and tidy a closed polyline: (N,2) float64, finite, no repeated consecutive points,
    no repeated closing point, at least 3 distinct points and a non-zero extent."""
    p = as_points(points, what)
    keep = np.ones(len(p), dtype=bool)
    keep[1:] = np.any(p[1:] != p[:-1], axis=1)
    p = p[keep]
    while len(p) > 1 and np.array_equal(p[0], p[-1]):
        p = p[:-1]
    if len(p) < 3:
        raise InputError(f"{what} has fewer than 3 distinct points ({len(p)})")
    if np.all(p.max(axis=0) - p.min(axis=0) == 0):
        raise InputError(f"{what} is degenerate: all points coincide")
    return p


def as_points(points: Any, what: str) -> np.ndarray:
    try:
        p = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{what} is not a numeric array") from None
    if p.ndim != 2 or p.shape[1] != 2:
        raise InputError(f"{what} must have shape (N, 2), got {p.shape}")
    if len(p) < 3:
        raise InputError(f"{what} has fewer than 3 points ({len(p)})")
    if not np.all(np.isfinite(p)):
        raise InputError(f"{what} contains NaN or infinite coordinates")
    return p
