"""Closed 2-D curves: loading silhouettes and polylines, resampling, normalisation, metrics, writers.

Only numpy and Pillow are used here (no torch), so this module is cheap to import.

Conventions
-----------
* **Image pixel frame.** A pixel at array index ``[row, col]`` has its centre at ``(x, y) = (col, row)``:
  x points right, y points **down**. Contours traced from an image are in this frame, at the 0.5 level of
  the binary shape mask (crossings lie half-way between the centres of a shape and a background pixel).
* **Polyline files** (``.npz``, ``.npy``, ``.txt``/``.xy``/``.csv``, ``.obj``) are taken to be in a y-**up**
  frame; ``.svg`` user space is y-down like an image.
* **Normalised frame** (spec §6.4): bounding-box centre at the origin, farthest point at distance 1, and
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
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .fileio import atomic_write
from .errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")
POLYLINE_SUFFIXES = (".npz", ".npy", ".txt", ".xy", ".csv", ".svg", ".obj")
DEFAULT_IMAGE_THRESHOLD = 240.0


# ----------------------------------------------------------------------------------------------------
# Data types
# ----------------------------------------------------------------------------------------------------


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

    def normalization(self) -> "CurveNormalization":
        """The spec §6.4 normalisation of these points (y flipped for y-down frames)."""
        return CurveNormalization.fit(self.points, flip_y=self.y_down)

    def frame_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "y_down": self.y_down,
            "image_size": list(self.image_size) if self.image_size else None,
            "source": self.source,
        }


@dataclass(frozen=True)
class CurveNormalization:
    """Maps a curve's own frame to the normalised frame and back (spec §6.4).

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
    def fit(cls, points: np.ndarray, flip_y: bool = False) -> "CurveNormalization":
        p = _as_points(points, "curve")
        lo, hi = p.min(axis=0), p.max(axis=0)
        center = (lo + hi) / 2.0
        scale = float(np.sqrt(((p - center) ** 2).sum(axis=1)).max())
        if not scale > 0:
            raise InputError("curve is degenerate: all points coincide")
        return cls((float(center[0]), float(center[1])), scale, flip_y)

    @classmethod
    def identity(cls) -> "CurveNormalization":
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
    def from_dict(cls, data: Mapping[str, Any]) -> "CurveNormalization":
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
    """The default source (spec §6.4): ``t = linspace(0, 2, n+2)[1:-1]``, points ``(cos πt, sin πt)``.

    Counter-clockwise in a y-up frame, starting just after angle 0 (the largest x).
    """
    if n < 3:
        raise InputError(f"a circle needs at least 3 points, got {n}")
    t = np.linspace(0.0, 2.0, n + 2)[1:-1]
    return np.stack([np.cos(np.pi * t), np.sin(np.pi * t)], axis=1)


def curve_parameter(n: int) -> np.ndarray:
    """The network input for ``n`` curve points: ``τ = t - 1 ∈ (-1, 1)`` with the circle's ``t``."""
    return np.linspace(0.0, 2.0, n + 2)[1:-1] - 1.0


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
    p = _as_points(points, what)
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


def _as_points(points: Any, what: str) -> np.ndarray:
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


# ----------------------------------------------------------------------------------------------------
# Marching squares on a binary mask
# ----------------------------------------------------------------------------------------------------

# Cell corners (x, y) in cell-local coordinates: TL, TR, BR, BL with bits 1, 2, 4, 8.
_CORNERS = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
# Cell edges: 0 = top (TL-TR), 1 = right (TR-BR), 2 = bottom (BL-BR), 3 = left (TL-BL); midpoints:
_EDGE_MID = np.array([[0.5, 0.0], [1.0, 0.5], [0.5, 1.0], [0.0, 0.5]])
_EDGE_CORNERS = ((0, 1), (1, 2), (3, 2), (0, 3))


def _build_case_table() -> np.ndarray:
    """(16, 2, 2) table of directed segments (edge_from, edge_to) per case; -1 = no segment.

    Segments are directed so that the shape lies on the algebraic left, ``cross(b - a, c - a) > 0`` for
    shape corners c (in x-right / y-down pixel coordinates). Saddles (5, 10) connect the two shape corners
    (8-connected shape, like OpenCV's contour finder).
    """
    table = -np.ones((16, 2, 2), dtype=np.int64)
    for case in range(16):
        inside = [(case >> k) & 1 == 1 for k in range(4)]
        crossed = [e for e, (c0, c1) in enumerate(_EDGE_CORNERS) if inside[c0] != inside[c1]]
        if not crossed:
            continue
        if len(crossed) == 2:
            pairs = [tuple(crossed)]
        elif case == 5:  # TL and BR inside, joined: cut off TR (top-right) and BL (bottom-left)
            pairs = [(0, 1), (2, 3)]
        else:  # case 10: TR and BL inside, joined: cut off TL and BR
            pairs = [(0, 3), (1, 2)]
        for k, (ea, eb) in enumerate(pairs):
            a, b = _EDGE_MID[ea], _EDGE_MID[eb]
            # orient with a corner not on the segment's line; for cut-off corners use that corner
            best = None
            for c in range(4):
                cr = (b[0] - a[0]) * (_CORNERS[c][1] - a[1]) - (b[1] - a[1]) * (_CORNERS[c][0] - a[0])
                if abs(cr) > 1e-9 and (best is None or abs(cr) < abs(best[1])):
                    best = (c, cr)  # the nearest corner decides (the one cut off, for corner cuts)
            c, cr = best
            want_left = inside[c]
            if (cr > 0) != want_left:
                ea, eb = eb, ea
            table[case, k] = (ea, eb)
    return table


_CASE_TABLE = _build_case_table()


def trace_mask(mask: np.ndarray) -> list[np.ndarray]:
    """All closed boundary loops of a boolean mask, in pixel coordinates (x = column, y = row).

    The mask is padded with background, so every loop is closed. Loops at the 0.5 level: each vertex is the
    midpoint between a shape pixel centre and a background pixel centre. Outer boundaries come out with a
    positive shoelace area in (x, y-down) numbers (clockwise on screen) and holes negative.
    """
    m = np.pad(np.asarray(mask, dtype=bool), 1)
    H, W = m.shape
    case = (m[:-1, :-1] * 1 + m[:-1, 1:] * 2 + m[1:, 1:] * 4 + m[1:, :-1] * 8).astype(np.int64)
    rows, cols = np.nonzero((case != 0) & (case != 15))
    cs = case[rows, cols]
    # global crossing ids: horizontal grid edge between (i,j)-(i,j+1): i*W + j ; vertical (i,j)-(i+1,j):
    # H*W + i*W + j
    n_h = H * W

    def edge_id(e: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.select(
            [e == 0, e == 1, e == 2, e == 3],
            [r * W + c, n_h + r * W + (c + 1), (r + 1) * W + c, n_h + r * W + c],
        )

    starts, ends = [], []
    for k in range(2):
        seg = _CASE_TABLE[cs, k]
        ok = seg[:, 0] >= 0
        r, c = rows[ok], cols[ok]
        starts.append(edge_id(seg[ok, 0], r, c))
        ends.append(edge_id(seg[ok, 1], r, c))
    start = np.concatenate(starts)
    end = np.concatenate(ends)
    if len(start) == 0:
        return []
    nxt = dict(zip(start.tolist(), end.tolist()))
    if len(nxt) != len(start):  # pragma: no cover - a consistent table never produces this
        raise RuntimeError("marching squares produced a crossing with two outgoing segments")
    loops: list[np.ndarray] = []
    visited: set[int] = set()
    for s in start.tolist():
        if s in visited:
            continue
        ids = []
        cur = s
        while cur not in visited:
            visited.add(cur)
            ids.append(cur)
            cur = nxt[cur]
        ids_a = np.asarray(ids)
        horiz = ids_a < n_h
        local = np.where(horiz, ids_a, ids_a - n_h)
        i, j = local // W, local % W
        x = np.where(horiz, j + 0.5, j) - 1.0  # undo the padding
        y = np.where(horiz, i, i + 0.5) - 1.0
        loops.append(np.stack([x, y], axis=1).astype(np.float64))
    return loops


def largest_outer_loop(loops: Sequence[np.ndarray]) -> np.ndarray | None:
    """The outer loop (positive area in trace_mask's convention) enclosing the largest area (fixes B10)."""
    best, best_area = None, 0.0
    for loop in loops:
        if len(loop) < 3:
            continue
        a = signed_area(loop)
        if a > best_area:
            best, best_area = loop, a
    return best


# ----------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------


def image_mask(path: str | os.PathLike, image_threshold: float | None = None) -> np.ndarray:
    """The boolean shape mask of a silhouette image (True = shape).

    * RGBA / palette with transparency: when most border pixels are transparent the shape is the opaque
      part (alpha >= 128); otherwise the image is composited over white first.
    * Grey = mean of the RGB channels (spec §6.4).
    * Dark-on-light (border median grey >= 128): shape = grey <= threshold (default 240, the spec's value).
      Light-on-dark (border median < 128): shape = grey >= 255 - threshold (mirrored, so anti-aliased or
      grey light shapes are kept; the reference inverts ``grey <= 240`` instead, which keeps only
      near-white pixels).
    """
    from PIL import Image, UnidentifiedImageError

    thr = DEFAULT_IMAGE_THRESHOLD if image_threshold is None else float(image_threshold)
    if not (0.0 <= thr <= 255.0):
        raise InputError(f"image threshold must be in [0, 255], got {image_threshold!r}")
    try:
        with Image.open(path) as im:
            im.seek(0)
            im.load()
            mode = im.mode
            if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                arr = np.asarray(im, dtype=np.float64)
                top = arr.max()
                grey = arr * (255.0 / top) if top > 255 else arr
                alpha = None
            else:
                has_alpha = mode in ("RGBA", "LA", "PA") or "transparency" in im.info
                rgba = np.asarray(im.convert("RGBA"), dtype=np.float64)
                alpha = rgba[..., 3] if has_alpha else None
                grey = rgba[..., :3].mean(axis=2)
    except (OSError, UnidentifiedImageError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read image {os.fspath(path)}: {exc}") from None
    if grey.ndim != 2 or min(grey.shape) < 2:
        raise InputError(f"image {os.fspath(path)} is too small: {grey.shape}")

    def border(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])

    if alpha is not None and alpha.min() < 255:
        if np.median(border(alpha)) < 128:
            return alpha >= 128
        a = alpha / 255.0
        grey = grey * a + 255.0 * (1.0 - a)
    if np.median(border(grey)) >= 128:
        return grey <= thr
    return grey >= 255.0 - thr


def contour_from_mask(mask: np.ndarray, what: str = "image") -> np.ndarray:
    """The largest outer contour of a boolean mask (holes ignored), in pixel coordinates."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise InputError(f"{what}: mask must be 2-D, got shape {m.shape}")
    if not m.any():
        raise InputError(f"{what} has no shape: every pixel is background (blank image)")
    if m.all():
        raise InputError(f"{what} has no closed contour: the shape covers the whole image")
    loop = largest_outer_loop(trace_mask(m))
    if loop is None or len(loop) < 3:  # pragma: no cover - a non-empty mask always has an outer loop
        raise InputError(f"{what} has no closed contour")
    return loop


def load_contour(path: str | os.PathLike, image_threshold: float | None = None) -> Contour:
    """Load the closed curve of a silhouette image or a polyline file.

    Images (PNG, JPG, GIF first frame, ...): the largest outer contour of the shape mask (see
    :func:`image_mask`), in pixel coordinates (y down). Polyline files: ``.npz`` (array ``points`` or the
    first array), ``.npy``, ``.txt``/``.xy``/``.csv`` (x y rows; ``#`` comments and one header line
    allowed), ``.svg`` (the largest closed sub-path of the ``<path>``/``<polygon>``/``<polyline>``
    elements; y down), ``.obj`` (``v`` lines, and ``l`` elements giving the order when present).
    Raises :class:`InputError` with one line for every unusable input.
    """
    p = Path(path)
    name = os.fspath(path)
    suffix = p.suffix.lower()
    if suffix not in IMAGE_SUFFIXES and suffix not in POLYLINE_SUFFIXES:
        raise InputError(
            f"unknown file type {suffix or '(none)'!r} for {name}; use an image "
            f"({', '.join(IMAGE_SUFFIXES)}) or a polyline ({', '.join(POLYLINE_SUFFIXES)})"
        )
    if not p.is_file():
        raise InputError(f"no such file: {name}")
    if suffix in IMAGE_SUFFIXES:
        mask = image_mask(p, image_threshold)
        pts = contour_from_mask(mask, f"image {name}")
        h, w = mask.shape
        return Contour(clean_polyline(pts, f"contour of {name}"), "image", True, (int(w), int(h)), name)
    try:
        if suffix in (".npz", ".npy"):
            pts, y_down = _load_numpy(p), False
        elif suffix == ".svg":
            pts, y_down = _load_svg(p), True
        elif suffix == ".obj":
            pts, y_down = _load_obj(p), False
        else:
            pts, y_down = _load_text(p), False
    except InputError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, ET.ParseError, KeyError) as exc:
        raise InputError(f"cannot read {name}: {exc}") from None
    return Contour(clean_polyline(pts, f"polyline in {name}"), "polyline", y_down, None, name)


def _first_two_columns(arr: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 2 or a.shape[1] < 2:
        raise InputError(f"{name}: expected an (N, 2) array of points, got shape {a.shape}")
    try:
        return a[:, :2].astype(np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: points are not numeric") from None


def _load_numpy(p: Path) -> np.ndarray:
    if p.suffix.lower() == ".npy":
        return _first_two_columns(np.load(p, allow_pickle=False), str(p))
    with np.load(p, allow_pickle=False) as data:
        keys = list(data.keys())
        if not keys:
            raise InputError(f"{p}: the .npz file holds no array")
        key = "points" if "points" in keys else keys[0]
        return _first_two_columns(data[key], f"{p} array {key!r}")


def _load_text(p: Path) -> np.ndarray:
    rows = []
    for lineno, line in enumerate(p.read_text().splitlines(), 1):
        s = line.split("#", 1)[0].strip()
        if not s:
            continue
        parts = [t for t in re.split(r"[,;\s]+", s) if t]
        try:
            vals = [float(t) for t in parts]
        except ValueError:
            if not rows and lineno <= 2 and not any(_is_number(t) for t in parts):
                continue  # header line
            raise InputError(f"{p} line {lineno}: not numbers: {line.strip()!r}") from None
        if len(vals) < 2:
            raise InputError(f"{p} line {lineno}: expected x y, got {line.strip()!r}")
        rows.append(vals[:2])
    if not rows:
        raise InputError(f"{p} holds no points")
    return np.asarray(rows, dtype=np.float64)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _load_obj(p: Path) -> np.ndarray:
    verts: list[list[float]] = []
    lines: list[list[int]] = []
    for lineno, line in enumerate(p.read_text().splitlines(), 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        tag = parts[0]
        try:
            if tag == "v":
                if len(parts) < 3:
                    raise ValueError("a vertex needs at least x y")
                verts.append([float(parts[1]), float(parts[2])])
            elif tag == "l":
                idx = [int(t.split("/")[0]) for t in parts[1:]]
                lines.append(idx)
        except ValueError as exc:
            raise InputError(f"{p} line {lineno}: {exc}") from None
    if not verts:
        raise InputError(f"{p} holds no vertices")
    v = np.asarray(verts, dtype=np.float64)
    if not lines:
        return v
    n = len(v)
    edges: dict[tuple[int, int], tuple[int, int]] = {}  # insertion-ordered, deduplicated
    for idx in lines:
        res = []
        for i in idx:
            j = i - 1 if i > 0 else n + i
            if not 0 <= j < n:
                raise InputError(f"{p}: line element refers to vertex {i}, only {n} exist")
            res.append(j)
        for a, b in zip(res[:-1], res[1:]):
            if a != b:
                edges.setdefault((min(a, b), max(a, b)), (a, b))
    return _largest_chain(v, list(edges.values()), str(p))


def _largest_chain(v: np.ndarray, edges: Iterable[tuple[int, int]], name: str) -> np.ndarray:
    """Walk an undirected edge list into chains/loops and return the one enclosing the largest area.

    The walk keeps the file's order: open chains start at their first-listed end, loops at their
    first-listed vertex and go towards the vertex that followed it in the file.
    """
    adj: dict[int, list[int]] = {}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    if any(len(nb) > 2 for nb in adj.values()):
        raise InputError(f"{name}: the line elements branch (a vertex has more than two neighbours)")
    seen: set[int] = set()
    best, best_area = None, -1.0
    # start at chain ends first so open chains are walked from one end
    order = [k for k in adj if len(adj[k]) == 1] + list(adj)
    for s in order:
        if s in seen:
            continue
        chain = [s]
        seen.add(s)
        prev, cur = None, s
        while True:
            nbs = [x for x in adj[cur] if x != prev and x not in seen]
            if not nbs:
                break
            prev, cur = cur, nbs[0]
            chain.append(cur)
            seen.add(cur)
        if len(chain) >= 3:
            area = abs(signed_area(v[chain]))
            if area > best_area:
                best, best_area = v[chain], area
    if best is None:
        raise InputError(f"{name}: the line elements hold fewer than 3 connected points")
    return best


# --- SVG -------------------------------------------------------------------------------------------

_SVG_TOKEN = re.compile(r"[MmLlHhVvZzCcSsQqTtAa]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SVG_ARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "Z": 0, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7}


def _load_svg(p: Path) -> np.ndarray:
    root = ET.parse(p).getroot()
    subpaths: list[np.ndarray] = []
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag == "path" and el.get("d"):
            subpaths.extend(parse_svg_path(el.get("d", "")))
        elif tag in ("polygon", "polyline") and el.get("points"):
            nums = [float(t) for t in re.findall(_SVG_TOKEN.pattern, el.get("points", "")) if _is_number(t)]
            if len(nums) % 2:
                raise InputError(f"{p}: <{tag}> has an odd number of coordinates")
            subpaths.append(np.asarray(nums, dtype=np.float64).reshape(-1, 2))
    subpaths = [s for s in subpaths if len(s) >= 3]
    if not subpaths:
        raise InputError(f"{p}: no <path>, <polygon> or <polyline> with at least 3 points")
    if len(subpaths) == 1:
        return subpaths[0]
    areas = [abs(signed_area(s)) if np.all(np.isfinite(s)) else -1 for s in subpaths]
    return subpaths[int(np.argmax(areas))]


def parse_svg_path(d: str, curve_samples: int = 16) -> list[np.ndarray]:
    """Flatten an SVG path ``d`` string into a list of polylines (one per sub-path).

    Supports M/L/H/V/Z/C/S/Q/T/A in absolute and relative form; curves and arcs are sampled with
    ``curve_samples`` points each. Transforms are not applied.
    """
    tokens = _tokenize_svg(d)
    out: list[np.ndarray] = []
    cur_pts: list[np.ndarray] = []
    pos = np.zeros(2)
    start = np.zeros(2)
    last_ctrl: np.ndarray | None = None
    last_cmd = ""
    i = 0
    cmd = None
    ts = np.linspace(0.0, 1.0, curve_samples + 1)[1:]

    def flush() -> None:
        nonlocal cur_pts
        if cur_pts:
            out.append(np.asarray(cur_pts, dtype=np.float64))
        cur_pts = []

    while i < len(tokens):
        tok = tokens[i]
        if isinstance(tok, str):
            cmd = tok
            i += 1
            if cmd in "Zz":
                pos = start.copy()
                flush()
                last_ctrl, last_cmd = None, "Z"
                continue
        elif cmd is None:
            raise InputError("SVG path does not start with a command")
        up = cmd.upper()
        rel = cmd.islower()
        nargs = _SVG_ARGS[up]
        args = tokens[i : i + nargs]
        if len(args) < nargs or any(isinstance(a, str) for a in args):
            raise InputError(f"SVG path command {cmd!r} has too few numbers")
        a = np.asarray(args, dtype=np.float64)
        i += nargs
        base = pos if rel else np.zeros(2)
        if up == "M":
            flush()
            pos = base + a
            start = pos.copy()
            cur_pts.append(pos.copy())
            cmd = "l" if rel else "L"  # further pairs are implicit line-tos
            last_ctrl = None
        elif up in "LHV":
            if up == "L":
                pos = base + a
            elif up == "H":
                pos = np.array([a[0] + (pos[0] if rel else 0.0), pos[1]])
            else:
                pos = np.array([pos[0], a[0] + (pos[1] if rel else 0.0)])
            if not cur_pts:
                cur_pts.append(start.copy())
            cur_pts.append(pos.copy())
            last_ctrl = None
        elif up in "CS":
            if up == "C":
                c1, c2, end = base + a[0:2], base + a[2:4], base + a[4:6]
            else:
                c1 = 2 * pos - last_ctrl if (last_ctrl is not None and last_cmd in "CS") else pos.copy()
                c2, end = base + a[0:2], base + a[2:4]
            t = ts[:, None]
            pts = (1 - t) ** 3 * pos + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t**2 * c2 + t**3 * end
            if not cur_pts:
                cur_pts.append(pos.copy())
            cur_pts.extend(pts)
            pos, last_ctrl = end, c2
        elif up in "QT":
            if up == "Q":
                c1, end = base + a[0:2], base + a[2:4]
            else:
                c1 = 2 * pos - last_ctrl if (last_ctrl is not None and last_cmd in "QT") else pos.copy()
                end = base + a[0:2]
            t = ts[:, None]
            pts = (1 - t) ** 2 * pos + 2 * (1 - t) * t * c1 + t**2 * end
            if not cur_pts:
                cur_pts.append(pos.copy())
            cur_pts.extend(pts)
            pos, last_ctrl = end, c1
        elif up == "A":
            end = base + a[5:7]
            pts = _svg_arc(pos, a[0], a[1], a[2], a[3] != 0, a[4] != 0, end, curve_samples)
            if not cur_pts:
                cur_pts.append(pos.copy())
            cur_pts.extend(pts)
            pos, last_ctrl = end, None
        last_cmd = up
    flush()
    return out


def _tokenize_svg(d: str) -> list:
    """Tokens of a path string; arc flags may be written without separators (``a1 1 0 011 1``)."""
    raw = _SVG_TOKEN.findall(d)
    tokens: list = []
    cmd = None
    argi = 0
    k = 0
    while k < len(raw):
        t = raw[k]
        k += 1
        if t.isalpha():
            cmd, argi = t, 0
            tokens.append(t)
            continue
        if cmd is not None and cmd.upper() == "A" and argi % 7 in (3, 4) and len(t) > 1 and t[0] in "01":
            # a flag glued to what follows
            tokens.append(float(t[0]))
            raw.insert(k, t[1:])
            argi += 1
            continue
        tokens.append(float(t))
        argi += 1
    return tokens


def _svg_arc(p0, rx, ry, phi_deg, large, sweep, p1, samples) -> np.ndarray:
    """Points along an SVG elliptical arc (endpoint parametrisation, SVG 1.1 appendix F.6)."""
    rx, ry = abs(rx), abs(ry)
    if rx == 0 or ry == 0 or np.allclose(p0, p1):
        return np.asarray([p1], dtype=np.float64)
    phi = math.radians(phi_deg % 360.0)
    cp, sp = math.cos(phi), math.sin(phi)
    dx, dy = (p0 - p1) / 2.0
    x1p, y1p = cp * dx + sp * dy, -sp * dx + cp * dy
    lam = x1p**2 / rx**2 + y1p**2 / ry**2
    if lam > 1:
        rx, ry = rx * math.sqrt(lam), ry * math.sqrt(lam)
    num = rx**2 * ry**2 - rx**2 * y1p**2 - ry**2 * x1p**2
    den = rx**2 * y1p**2 + ry**2 * x1p**2
    coef = math.sqrt(max(0.0, num / den)) if den > 0 else 0.0
    if large == sweep:
        coef = -coef
    cxp, cyp = coef * rx * y1p / ry, -coef * ry * x1p / rx
    mid = (p0 + p1) / 2.0
    cx, cy = cp * cxp - sp * cyp + mid[0], sp * cxp + cp * cyp + mid[1]

    def ang(u, v):
        return math.atan2(u[0] * v[1] - u[1] * v[0], u[0] * v[0] + u[1] * v[1])

    v1 = ((x1p - cxp) / rx, (y1p - cyp) / ry)
    v2 = ((-x1p - cxp) / rx, (-y1p - cyp) / ry)
    th1 = ang((1.0, 0.0), v1)
    dth = ang(v1, v2)
    if not sweep and dth > 0:
        dth -= 2 * math.pi
    elif sweep and dth < 0:
        dth += 2 * math.pi
    th = th1 + dth * np.linspace(0.0, 1.0, samples + 1)[1:]
    x = cx + rx * np.cos(th) * cp - ry * np.sin(th) * sp
    y = cy + rx * np.cos(th) * sp + ry * np.sin(th) * cp
    pts = np.stack([x, y], axis=1)
    pts[-1] = p1
    return pts


# ----------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------


def nearest_distances(a: np.ndarray, b: np.ndarray, block: int = 4_000_000) -> np.ndarray:
    """For every point of ``a`` the Euclidean distance to its nearest point of ``b`` (blocked numpy)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    rows = max(1, block // max(1, len(b)))
    out = np.empty(len(a))
    bb = (b**2).sum(axis=1)
    for s in range(0, len(a), rows):
        aa = a[s : s + rows]
        d2 = (aa**2).sum(axis=1)[:, None] + bb[None, :] - 2.0 * aa @ b.T
        out[s : s + rows] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def count_self_intersections(points: np.ndarray, block: int = 256) -> int:
    """Number of pairs of non-adjacent segments of the closed polyline that properly cross.

    Touching at an end point or collinear overlap does not count (proper intersections only).
    """
    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    if n < 4:
        return 0
    a0 = p
    a1 = np.roll(p, -1, axis=0)
    total = 0
    idx = np.arange(n)
    for s in range(0, n, block):
        i = idx[s : s + block]
        P0, P1 = a0[i][:, None, :], a1[i][:, None, :]
        Q0, Q1 = a0[None, :, :], a1[None, :, :]

        def orient(u, v, w):
            return (v[..., 0] - u[..., 0]) * (w[..., 1] - u[..., 1]) - (v[..., 1] - u[..., 1]) * (
                w[..., 0] - u[..., 0]
            )

        d1 = orient(P0, P1, Q0)
        d2 = orient(P0, P1, Q1)
        d3 = orient(Q0, Q1, P0)
        d4 = orient(Q0, Q1, P1)
        cross = (d1 * d2 < 0) & (d3 * d4 < 0)
        j = idx[None, :]
        ii = i[:, None]
        valid = (j > ii + 1) & ~((ii == 0) & (j == n - 1))
        total += int((cross & valid).sum())
    return total


def rasterize_polygon(points: np.ndarray, bbox: tuple[float, float, float, float], size: int = 512) -> np.ndarray:
    """Boolean (size, size) fill of the closed polygon over ``bbox = (xmin, ymin, xmax, ymax)``."""
    from PIL import Image, ImageDraw

    xmin, ymin, xmax, ymax = bbox
    span = max(xmax - xmin, ymax - ymin, 1e-12)
    p = (np.asarray(points, dtype=np.float64) - [xmin, ymin]) / span * (size - 1)
    img = Image.new("1", (size, size), 0)
    ImageDraw.Draw(img).polygon([tuple(map(float, q)) for q in p], fill=1, outline=1)
    return np.asarray(img, dtype=bool)


def polygon_iou(a: np.ndarray, b: np.ndarray, size: int = 512) -> float:
    """IoU of the filled polygons rasterised at ``size`` x ``size`` over their joint bounding box."""
    both = np.vstack([a, b])
    lo, hi = both.min(axis=0), both.max(axis=0)
    bbox = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
    ma, mb = rasterize_polygon(a, bbox, size), rasterize_polygon(b, bbox, size)
    union = np.logical_or(ma, mb).sum()
    return float(np.logical_and(ma, mb).sum() / union) if union else 0.0


def curve_metrics(pred: np.ndarray, target: np.ndarray, iou_size: int = 512) -> dict[str, float | int]:
    """Metrics of a predicted closed curve against a target (both in the normalised frame).

    * ``chamfer``: ``(mean_p min_q |p-q| + mean_q min_p |q-p|) / 2`` (symmetric, Euclidean, mean of both
      directions); pass the full target contour as ``target``;
    * ``chamfer_sum``: the two terms added (the training loss's form);
    * ``hausdorff``: the larger of both directed maxima;
    * ``iou``: filled polygons rasterised at ``iou_size``² over their joint bounding box (Pillow);
    * ``self_intersections``: of ``pred`` (see :func:`count_self_intersections`).
    """
    p = _as_points(pred, "predicted curve")
    q = _as_points(target, "target curve")
    d_pq = nearest_distances(p, q)
    d_qp = nearest_distances(q, p)
    return {
        "chamfer": float(0.5 * (d_pq.mean() + d_qp.mean())),
        "chamfer_sum": float(d_pq.mean() + d_qp.mean()),
        "hausdorff": float(max(d_pq.max(), d_qp.max())),
        "iou": polygon_iou(p, q, iou_size),
        "self_intersections": count_self_intersections(p),
    }


# ----------------------------------------------------------------------------------------------------
# Writers
# ----------------------------------------------------------------------------------------------------


def save_curve_svg(
    points: np.ndarray,
    path: str | os.PathLike,
    *,
    y_down: bool = True,
    size: tuple[int, int] | None = None,
    target: np.ndarray | None = None,
    stroke: str = "#d62728",
    stroke_width: float | None = None,
) -> Path:
    """Write the closed curve as an SVG ``<path>`` (optionally over a grey-filled ``target``).

    ``y_down=True`` means the coordinates are already in a y-down frame (image pixels) and are written
    as they are; with ``y_down=False`` (normalised, y-up) y is negated for display. ``size`` = (width,
    height) gives the viewBox (e.g. the image size); otherwise the bounding box plus a 5 % margin.
    """
    p = _as_points(points, "curve")
    sgn = np.array([1.0, 1.0 if y_down else -1.0])
    p = p * sgn
    t = None if target is None else _as_points(target, "target") * sgn
    if size is not None:
        x0, y0, w, h = 0.0, 0.0, float(size[0]), float(size[1])
    else:
        allp = p if t is None else np.vstack([p, t])
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        m = 0.05 * float(max(hi - lo))
        x0, y0, w, h = lo[0] - m, lo[1] - m, hi[0] - lo[0] + 2 * m, hi[1] - lo[1] + 2 * m
    sw = stroke_width if stroke_width is not None else max(w, h) / 400.0

    def d_of(q: np.ndarray) -> str:
        return "M " + " L ".join(f"{x:.6g} {y:.6g}" for x, y in q) + " Z"

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{x0:.6g} {y0:.6g} {w:.6g} {h:.6g}" '
        f'width="{max(1, round(w)) if size else 512}" height="{max(1, round(h)) if size else round(512 * h / w)}">',
    ]
    if t is not None:
        parts.append(f'<path d="{d_of(t)}" fill="#d9d9d9" stroke="none"/>')
    parts.append(f'<path d="{d_of(p)}" fill="none" stroke="{stroke}" stroke-width="{sw:.6g}"/>')
    parts.append("</svg>\n")
    text = "\n".join(parts)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def save_curve_npz(points: np.ndarray, path: str | os.PathLike, **extra: Any) -> Path:
    """Write ``points`` (and any extra arrays / JSON-able values given as keywords) to an ``.npz``."""
    p = _as_points(points, "curve")
    arrays = {"points": p}
    for k, v in extra.items():
        arrays[k] = np.asarray(v)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return atomic_write(path, write)


def save_curve_obj(points: np.ndarray, path: str | os.PathLike, z: float = 0.0) -> Path:
    """Write the closed curve as OBJ vertices plus one ``l`` element that returns to the first vertex."""
    p = _as_points(points, "curve")
    lines = ["# closed polyline written by sape_geom"]
    lines += [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y in p]
    lines.append("l " + " ".join(str(i + 1) for i in range(len(p))) + " 1")
    text = "\n".join(lines) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def coolwarm(values: np.ndarray) -> np.ndarray:
    """Blue (0, few frequencies) to red (1, many) as uint8 RGB: the package's shared map (``colors``)."""
    from .colors import coolwarm as _shared

    return _shared(np.asarray(values, dtype=np.float64))


class _Canvas:
    """Maps curve coordinates into a square image with a margin (y flipped when ``y_up``)."""

    def __init__(self, pts: np.ndarray, size: int, y_up: bool, margin: float = 0.06):
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        self.center = (lo + hi) / 2.0
        self.span = float(max(hi - lo).max()) or 1.0
        self.size = size
        self.scale = size * (1 - 2 * margin) / self.span
        self.sy = -1.0 if y_up else 1.0

    def __call__(self, p: np.ndarray) -> list[tuple[float, float]]:
        q = (np.asarray(p, dtype=np.float64) - self.center) * [1.0, self.sy] * self.scale + self.size / 2.0
        return [tuple(map(float, r)) for r in q]


def _render(target: np.ndarray, curve: np.ndarray | None, canvas: _Canvas, levels=None, width: int = 2):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (canvas.size, canvas.size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.polygon(canvas(target), fill=(205, 205, 205), outline=(150, 150, 150))
    if curve is not None:
        pts = canvas(curve)
        n = len(pts)
        if levels is None:
            draw.line(pts + [pts[0]], fill=(20, 20, 20), width=width, joint="curve")
        else:
            cols = coolwarm(levels)
            for k in range(n):
                draw.line([pts[k], pts[(k + 1) % n]], fill=tuple(int(c) for c in cols[k]), width=width + 1)
    return img


def draw_overlay_png(
    target: np.ndarray,
    curve: np.ndarray,
    path: str | os.PathLike,
    levels: np.ndarray | None = None,
    size: int = 512,
    *,
    y_up: bool = True,
) -> Path:
    """PNG: the target polygon filled light grey, the curve drawn on top.

    With ``levels`` (one value in [0, 1] per curve point, e.g. the SAPE open fraction) each segment is
    coloured with :func:`coolwarm` (blue = few frequencies, red = many); otherwise the curve is black.
    ``y_up=True`` for normalised-frame coordinates, ``False`` for image pixels.
    """
    t = _as_points(target, "target")
    c = _as_points(curve, "curve")
    if levels is not None:
        levels = np.asarray(levels, dtype=np.float64).reshape(-1)
        if len(levels) != len(c):
            raise InputError(f"levels has {len(levels)} values for {len(c)} curve points")
    canvas = _Canvas(np.vstack([t, c]), int(size), y_up)
    img = _render(t, c, canvas, levels, width=max(1, size // 256))
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


def save_gif(
    frames_of_curves: Sequence[np.ndarray],
    target: np.ndarray,
    path: str | os.PathLike,
    *,
    size: int = 256,
    duration_ms: int = 60,
    y_up: bool = True,
    levels: Sequence[np.ndarray | None] | None = None,
) -> Path:
    """Animated GIF of a sequence of curves over the filled target (one frame per curve, fixed framing)."""
    from PIL import Image

    if len(frames_of_curves) == 0:
        raise InputError("save_gif needs at least one frame")
    t = _as_points(target, "target")
    frames = [_as_points(f, "curve frame") for f in frames_of_curves]
    canvas = _Canvas(np.vstack([t] + frames), int(size), y_up)
    images = []
    for k, f in enumerate(frames):
        lv = None if levels is None else levels[k]
        images.append(_render(t, f, canvas, lv, width=max(1, size // 256)).convert("P", palette=Image.ADAPTIVE))

    def write(tmp: str) -> None:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)

    return atomic_write(path, write)


__all__ = [
    "Contour",
    "CurveNormalization",
    "load_contour",
    "image_mask",
    "contour_from_mask",
    "trace_mask",
    "largest_outer_loop",
    "resample_closed",
    "clean_polyline",
    "circle",
    "curve_parameter",
    "signed_area",
    "curve_length",
    "parse_svg_path",
    "nearest_distances",
    "count_self_intersections",
    "rasterize_polygon",
    "polygon_iou",
    "curve_metrics",
    "save_curve_svg",
    "save_curve_npz",
    "save_curve_obj",
    "coolwarm",
    "draw_overlay_png",
    "save_gif",
]
