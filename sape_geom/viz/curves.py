"""Drawing closed curves over their target: overlay PNGs and optimisation GIFs (Pillow)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

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
    t = as_points(target, "target")
    c = as_points(curve, "curve")
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
    t = as_points(target, "target")
    frames = [as_points(f, "curve frame") for f in frames_of_curves]
    canvas = _Canvas(np.vstack([t] + frames), int(size), y_up)
    images = []
    for k, f in enumerate(frames):
        lv = None if levels is None else levels[k]
        images.append(_render(t, f, canvas, lv, width=max(1, size // 256)).convert("P", palette=Image.ADAPTIVE))

    def write(tmp: str) -> None:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)

    return atomic_write(path, write)


