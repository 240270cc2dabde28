"""Drawing closed curves over their target: overlay PNGs and optimisation GIFs (Pillow)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..curve.contour import as_points
from ..errors import InputError
from ..fileio import atomic_write
from .colors import coolwarm


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
        return [(float(x), float(y)) for x, y in q]


def _loops(points, what: str) -> list[np.ndarray]:
    """An (N, 2) array or a list of loops, as a list of checked (N, 2) arrays."""
    if isinstance(points, np.ndarray) and points.ndim == 2:
        return [as_points(points, what)]
    return [as_points(p, what) for p in points]


def _render(
    target: list[np.ndarray],
    curves: list[np.ndarray] | None,
    canvas: _Canvas,
    levels=None,
    width: int = 2,
    legend: bool = False,
):
    from PIL import Image, ImageChops, ImageDraw

    size = (canvas.size, canvas.size)
    fill = Image.new("1", size, 0)
    for loop in target:  # even-odd: holes cut out of the grey fill
        layer = Image.new("1", size, 0)
        ImageDraw.Draw(layer).polygon(canvas(loop), fill=1)
        fill = ImageChops.logical_xor(fill, layer)
    img = Image.new("RGB", size, (255, 255, 255))
    img.paste((205, 205, 205), mask=fill)
    draw = ImageDraw.Draw(img)
    for loop in target:
        pts = canvas(loop)
        draw.line(pts + [pts[0]], fill=(150, 150, 150), width=1)
    for k, curve in enumerate(curves or []):
        pts = canvas(curve)
        n = len(pts)
        if levels is None or levels[k] is None:
            draw.line(pts + [pts[0]], fill=(20, 20, 20), width=width, joint="curve")
        else:
            cols = coolwarm(levels[k])
            for i in range(n):
                draw.line([pts[i], pts[(i + 1) % n]], fill=tuple(int(c) for c in cols[i]), width=width + 1)
    if legend:
        _legend(draw, canvas.size)
    return img


def _legend(draw, size: int) -> None:
    """A colour bar: share of the encoding's frequencies open at the curve point (SAPE level)."""
    x0, y0, w, h = 8, size - 30, min(160, size // 3), 8
    cols = coolwarm(np.linspace(0.0, 1.0, w))
    for i in range(w):
        draw.line([(x0 + i, y0), (x0 + i, y0 + h)], fill=tuple(int(c) for c in cols[i]))
    grey = (60, 60, 60)
    draw.text((x0, y0 - 12), "frequencies open (SAPE level)", fill=grey)
    draw.text((x0, y0 + h + 1), "few", fill=grey)
    draw.text((x0 + w - 14, y0 + h + 1), "all", fill=grey)


def draw_overlay_png(
    target,
    curve,
    path: str | os.PathLike,
    levels=None,
    size: int = 512,
    *,
    y_up: bool = True,
    legend: bool | None = None,
) -> Path:
    """PNG: the target filled light grey (even-odd over its loops, so holes stay white), the curve on top.

    ``target`` and ``curve`` are an (N, 2) array or a list of loops. With ``levels`` (per curve loop, one
    value in [0, 1] per point, e.g. the SAPE open fraction) each segment is coloured with
    :func:`coolwarm` (blue = few frequencies, red = many) and a colour bar is drawn (``legend``, default:
    when levels are given); otherwise the curve is black. ``y_up=True`` for normalised-frame coordinates,
    ``False`` for image pixels.
    """
    t = _loops(target, "target")
    c = _loops(curve, "curve")
    lv = _levels(levels, c)
    canvas = _Canvas(np.vstack(t + c), int(size), y_up)
    img = _render(t, c, canvas, lv, width=max(1, size // 256), legend=lv is not None if legend is None else legend)
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


def _levels(levels, curves: list[np.ndarray]) -> list[np.ndarray | None] | None:
    if levels is None:
        return None
    if isinstance(levels, np.ndarray) and levels.ndim == 1:
        levels = [levels]
    out: list[np.ndarray | None] = []
    for lv, c in zip(levels, curves, strict=True):
        if lv is None:
            out.append(None)
            continue
        lv = np.asarray(lv, dtype=np.float64).reshape(-1)
        if len(lv) != len(c):
            raise InputError(f"levels has {len(lv)} values for {len(c)} curve points")
        out.append(lv)
    return out


def save_gif(
    frames_of_curves: Sequence[np.ndarray | Sequence[np.ndarray]],
    target: np.ndarray | Sequence[np.ndarray],
    path: str | os.PathLike,
    *,
    size: int = 256,
    duration_ms: int = 60,
    y_up: bool = True,
    levels: Sequence[np.ndarray | None] | None = None,
) -> Path:
    """Animated GIF of a sequence of curves over the filled target (one frame per curve, fixed framing).

    Each frame, like ``target``, is an (N, 2) array or a list of loops.
    """
    from PIL import Image

    if len(frames_of_curves) == 0:
        raise InputError("save_gif needs at least one frame")
    t = _loops(target, "target")
    frames = [_loops(f, "curve frame") for f in frames_of_curves]
    canvas = _Canvas(np.vstack(t + [p for f in frames for p in f]), int(size), y_up)
    images = []
    for k, f in enumerate(frames):
        lv = None if levels is None else _levels(levels[k], f)
        images.append(_render(t, f, canvas, lv, width=max(1, size // 256)).convert("P", palette=Image.Palette.ADAPTIVE))

    def write(tmp: Path) -> None:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)

    return atomic_write(path, write)
