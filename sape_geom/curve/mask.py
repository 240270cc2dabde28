"""Binary shape masks: reading a silhouette image into a mask, and tracing its contours (marching squares).

Contours come out in the image pixel frame of :mod:`sape_geom.curve.contour` (x right, y down, at the 0.5
level of the mask).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from .contour import DEFAULT_MIN_LOOP_AREA, signed_area

DEFAULT_IMAGE_THRESHOLD = 240.0
"""Grey level at or below which a pixel of a dark-on-light image is shape (docs/method.md §6.4)."""


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
            assert best is not None  # a line misses at least one corner of the square
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
    """The outer loop (positive area in trace_mask's convention) enclosing the largest area (fixes docs/method.md B10)."""
    best, best_area = None, 0.0
    for loop in loops:
        if len(loop) < 3:
            continue
        a = signed_area(loop)
        if a > best_area:
            best, best_area = loop, a
    return best


def image_mask(path: str | os.PathLike, image_threshold: float | None = None) -> np.ndarray:
    """The boolean shape mask of a silhouette image (True = shape).

    * RGBA / palette with transparency: when most border pixels are transparent the shape is the opaque
      part (alpha >= 128); otherwise the image is composited over white first.
    * Grey = mean of the RGB channels (docs/method.md §6.4).
    * Dark-on-light (border median grey >= 128): shape = grey <= threshold (default 240, the method's value).
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


MIN_IMAGE_LOOP_AREA = 2.0
"""Loops of an image enclosing fewer square pixels than this are dropped: a hole or speck of one or two
pixels is noise, and too small for a curve to be deformed onto."""


def loops_from_mask(
    mask: np.ndarray, what: str = "image", min_area: float = DEFAULT_MIN_LOOP_AREA
) -> tuple[list[np.ndarray], list[bool], int]:
    """Every outer contour and hole of a boolean mask, largest first, in pixel coordinates.

    Returns ``(loops, holes, dropped)``: holes are the loops :func:`trace_mask` gives a negative area;
    loops under ``min_area`` x the largest area or under :data:`MIN_IMAGE_LOOP_AREA` px² are dropped.
    """
    m = _check_mask(mask, what)
    loops = [p for p in trace_mask(m) if len(p) >= 3]
    areas = np.array([signed_area(p) for p in loops])
    size = np.abs(areas)
    keep = (size >= max(MIN_IMAGE_LOOP_AREA, min_area * size.max())) | (areas == areas.max())
    order = [int(k) for k in np.argsort(-size, kind="stable") if keep[k]]
    return [loops[k] for k in order], [bool(areas[k] < 0) for k in order], int((~keep).sum())


def _check_mask(mask: np.ndarray, what: str) -> np.ndarray:
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise InputError(f"{what}: mask must be 2-D, got shape {m.shape}")
    if not m.any():
        raise InputError(f"{what} has no shape: every pixel is background (blank image)")
    if m.all():
        raise InputError(f"{what} has no closed contour: the shape covers the whole image")
    return m


def contour_from_mask(mask: np.ndarray, what: str = "image") -> np.ndarray:
    """The largest outer contour of a boolean mask (holes ignored), in pixel coordinates."""
    loop = largest_outer_loop(trace_mask(_check_mask(mask, what)))
    if loop is None or len(loop) < 3:  # pragma: no cover - a non-empty mask always has an outer loop
        raise InputError(f"{what} has no closed contour")
    return loop
