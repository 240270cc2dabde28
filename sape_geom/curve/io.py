"""Reading closed curves from images and polyline files, and writing curves as SVG, NPZ and OBJ."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..fileio import atomic_write
from .contour import DEFAULT_MIN_LOOP_AREA, Contour, ContourSet, as_points, clean_polyline, signed_area
from .mask import contour_from_mask, image_mask, loops_from_mask
from .svg import is_number, load_svg_loops

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")
POLYLINE_SUFFIXES = (".npz", ".npy", ".txt", ".xy", ".csv", ".svg", ".obj")


def load_contour(path: str | os.PathLike, image_threshold: float | None = None) -> Contour:
    """Load the closed curve of a silhouette image or a polyline file: its largest outer loop.

    Images (PNG, JPG, GIF first frame, ...): the largest outer contour of the shape mask (see
    :func:`image_mask`), in pixel coordinates (y down). Polyline files: ``.npz`` (array ``points`` or the
    first array; split by ``contour_offsets`` when present), ``.npy``, ``.txt``/``.xy``/``.csv`` (x y rows;
    ``#`` comments and one header line allowed; a blank line, or a row repeating the loop's first point,
    ends a loop), ``.svg`` (the sub-paths of the ``<path>``/``<polygon>``/``<polyline>`` elements; y down),
    ``.obj`` (``v`` lines, and ``l`` elements giving the order when present). With several loops, the one
    enclosing the largest area. Raises :class:`InputError` with one line for every unusable input.
    """
    p, name, suffix = _checked_path(path)
    if suffix in IMAGE_SUFFIXES:
        mask = image_mask(p, image_threshold)
        pts = contour_from_mask(mask, f"image {name}")
        h, w = mask.shape
        return Contour(clean_polyline(pts, f"contour of {name}"), "image", True, (int(w), int(h)), name)
    return load_contours(p, min_area=0.0).largest()


def load_contours(
    path: str | os.PathLike, image_threshold: float | None = None, min_area: float = DEFAULT_MIN_LOOP_AREA
) -> ContourSet:
    """Every loop of a silhouette image or polyline file (outer contours and holes), see :class:`ContourSet`.

    Same formats as :func:`load_contour`. Loops enclosing less than ``min_area`` x the largest loop's area
    are dropped (and, for images, loops under ``MIN_IMAGE_LOOP_AREA`` square pixels).
    """
    p, name, suffix = _checked_path(path)
    if suffix in IMAGE_SUFFIXES:
        mask = image_mask(p, image_threshold)
        loops, holes, dropped = loops_from_mask(mask, f"image {name}", min_area)
        h, w = mask.shape
        return ContourSet(tuple(loops), tuple(holes), "image", True, (int(w), int(h)), name, dropped)
    try:
        if suffix in (".npz", ".npy"):
            loops, y_down = _load_numpy(p), False
        elif suffix == ".svg":
            loops, y_down = load_svg_loops(p), True
        elif suffix == ".obj":
            loops, y_down = _load_obj(p), False
        else:
            loops, y_down = _load_text(p), False
    except InputError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, ET.ParseError, KeyError) as exc:
        raise InputError(f"cannot read {name}: {exc}") from None
    if len(loops) == 1:
        loops = [clean_polyline(loops[0], f"polyline in {name}")]
    return ContourSet.from_loops(loops, min_area, kind="polyline", y_down=y_down, source=name)


def _checked_path(path: str | os.PathLike) -> tuple[Path, str, str]:
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
    return p, name, suffix


def _first_two_columns(arr: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 2 or a.shape[1] < 2:
        raise InputError(f"{name}: expected an (N, 2) array of points, got shape {a.shape}")
    try:
        return a[:, :2].astype(np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: points are not numeric") from None


def _load_numpy(p: Path) -> list[np.ndarray]:
    if p.suffix.lower() == ".npy":
        return [_first_two_columns(np.load(p, allow_pickle=False), str(p))]
    with np.load(p, allow_pickle=False) as data:
        keys = list(data.keys())
        if not keys:
            raise InputError(f"{p}: the .npz file holds no array")
        key = "points" if "points" in keys else keys[0]
        pts = _first_two_columns(data[key], f"{p} array {key!r}")
        if "contour_offsets" not in keys:
            return [pts]
        offsets = np.asarray(data["contour_offsets"]).astype(np.int64).ravel()
    if len(offsets) < 2 or offsets[0] != 0 or offsets[-1] != len(pts) or np.any(np.diff(offsets) <= 0):
        raise InputError(f"{p}: contour_offsets {offsets.tolist()} do not split the {len(pts)} points")
    return [pts[a:b] for a, b in zip(offsets[:-1], offsets[1:])]


def _load_text(p: Path) -> list[np.ndarray]:
    loops: list[list[list[float]]] = []
    rows: list[list[float]] = []

    def end_loop() -> None:
        nonlocal rows
        if rows:
            loops.append(rows)
        rows = []

    for lineno, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            end_loop()
            continue
        s = line.split("#", 1)[0].strip()
        if not s:
            continue
        parts = [t for t in re.split(r"[,;\s]+", s) if t]
        try:
            vals = [float(t) for t in parts]
        except ValueError:
            if not rows and not loops and lineno <= 2 and not any(is_number(t) for t in parts):
                continue  # header line
            raise InputError(f"{p} line {lineno}: not numbers: {line.strip()!r}") from None
        if len(vals) < 2:
            raise InputError(f"{p} line {lineno}: expected x y, got {line.strip()!r}")
        rows.append(vals[:2])
        if len(rows) > 3 and rows[-1] == rows[0]:
            end_loop()  # the loop came back to its first point
    end_loop()
    if not loops:
        raise InputError(f"{p} holds no points")
    return [np.asarray(r, dtype=np.float64) for r in loops]


def _load_obj(p: Path) -> list[np.ndarray]:
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
        return [v]
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
    return _chains(v, list(edges.values()), str(p))


def _chains(v: np.ndarray, edges: Iterable[tuple[int, int]], name: str) -> list[np.ndarray]:
    """Walk an undirected edge list into chains/loops (those of at least 3 points), largest area first.

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
    found: list[np.ndarray] = []
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
            found.append(v[chain])
    if not found:
        raise InputError(f"{name}: the line elements hold fewer than 3 connected points")
    return sorted(found, key=lambda c: -abs(signed_area(c)))


def _loops(points: Any, what: str) -> list[np.ndarray]:
    """One (N, 2) array, or a list of them (several loops), as a list of checked arrays."""
    if isinstance(points, np.ndarray) and points.ndim == 2:
        return [as_points(points, what)]
    loops = [as_points(p, f"{what} loop {k}") for k, p in enumerate(points)]
    if not loops:
        raise InputError(f"{what} has no loop")
    return loops


def save_curve_svg(
    points: Any,
    path: str | os.PathLike,
    *,
    y_down: bool = True,
    size: tuple[int, int] | None = None,
    target: Any = None,
    stroke: str = "#d62728",
    stroke_width: float | None = None,
) -> Path:
    """Write the closed curve(s) as one SVG ``<path>`` (optionally over a grey-filled ``target``).

    ``points`` and ``target`` are an (N, 2) array or a list of loops; several loops become sub-paths of
    one path with ``fill-rule="evenodd"``, so holes stay holes. ``y_down=True`` means the coordinates are
    already in a y-down frame (image pixels) and are written as they are; with ``y_down=False``
    (normalised, y-up) y is negated for display. ``size`` = (width, height) gives the viewBox (e.g. the
    image size); otherwise the bounding box plus a 5 % margin.
    """
    sgn = np.array([1.0, 1.0 if y_down else -1.0])
    p = [q * sgn for q in _loops(points, "curve")]
    t = None if target is None else [q * sgn for q in _loops(target, "target")]
    if size is not None:
        x0, y0, w, h = 0.0, 0.0, float(size[0]), float(size[1])
    else:
        allp = np.vstack(p if t is None else p + t)
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        m = 0.05 * float(max(hi - lo))
        x0, y0, w, h = lo[0] - m, lo[1] - m, hi[0] - lo[0] + 2 * m, hi[1] - lo[1] + 2 * m
    sw = stroke_width if stroke_width is not None else max(w, h) / 400.0

    def d_of(loops: list[np.ndarray]) -> str:
        return " ".join("M " + " L ".join(f"{x:.6g} {y:.6g}" for x, y in q) + " Z" for q in loops)

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{x0:.6g} {y0:.6g} {w:.6g} {h:.6g}" '
        f'width="{max(1, round(w)) if size else 512}" height="{max(1, round(h)) if size else round(512 * h / w)}">',
    ]
    if t is not None:
        parts.append(f'<path d="{d_of(t)}" fill="#d9d9d9" fill-rule="evenodd" stroke="none"/>')
    parts.append(f'<path d="{d_of(p)}" fill="none" fill-rule="evenodd" stroke="{stroke}" stroke-width="{sw:.6g}"/>')
    parts.append("</svg>\n")
    text = "\n".join(parts)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def save_curve_npz(points: Any, path: str | os.PathLike, *, holes: Sequence[bool] | None = None, **extra: Any) -> Path:
    """Write ``points`` (and any extra arrays / JSON-able values given as keywords) to an ``.npz``.

    Several loops are stored end to end in ``points`` with ``contour_offsets`` (K + 1 indices: loop k is
    ``points[offsets[k]:offsets[k + 1]]``) and ``contour_holes`` (K flags); :func:`load_contours` splits
    them again. Per-point extras (levels, snapshots, ...) should be stacked the same way.
    """
    loops = _loops(points, "curve")
    offsets = np.concatenate([[0], np.cumsum([len(q) for q in loops])]).astype(np.int64)
    flags = np.zeros(len(loops), dtype=bool) if holes is None else np.asarray(holes, dtype=bool)
    if len(flags) != len(loops):
        raise InputError(f"{len(flags)} hole flags for {len(loops)} loops")
    arrays = {"points": np.vstack(loops), "contour_offsets": offsets, "contour_holes": flags}
    for k, v in extra.items():
        arrays[k] = np.asarray(v)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return atomic_write(path, write)


def save_curve_obj(points: Any, path: str | os.PathLike, z: float = 0.0) -> Path:
    """Write the closed curve(s) as OBJ vertices plus one ``l`` element per loop that returns to its first
    vertex (each loop also gets its own ``o contour_<k>`` object name)."""
    loops = _loops(points, "curve")
    lines = ["# closed polyline(s) written by sape_geom"]
    start = 1
    for k, q in enumerate(loops):
        if len(loops) > 1:
            lines.append(f"o contour_{k}")
        lines += [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y in q]
        idx = range(start, start + len(q))
        lines.append("l " + " ".join(str(i) for i in idx) + f" {start}")
        start += len(q)
    text = "\n".join(lines) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))
