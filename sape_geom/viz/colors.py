"""Colour maps for heat-maps (no matplotlib needed): blue = few frequencies open, red = many."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

# Anchor colours of a diverging blue-white-red map in the spirit of Moreland's "coolwarm".
_ANCHORS = np.array(
    [
        [59, 76, 192],
        [124, 159, 249],
        [192, 212, 245],
        [221, 220, 220],
        [242, 203, 183],
        [238, 133, 105],
        [180, 4, 38],
    ],
    dtype=np.float64,
)


def coolwarm(values: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """Map values of any shape to RGB uint8 of shape ``values.shape + (3,)``; NaN maps to grey."""
    values = np.asarray(values, dtype=np.float64)
    span = vmax - vmin if vmax > vmin else 1.0
    t = np.clip((np.nan_to_num(values, nan=(vmin + vmax) / 2) - vmin) / span, 0.0, 1.0)
    position = t * (len(_ANCHORS) - 1)
    lower = np.minimum(position.astype(np.int64), len(_ANCHORS) - 2)
    frac = (position - lower)[..., None]
    rgb = _ANCHORS[lower] * (1 - frac) + _ANCHORS[lower + 1] * frac
    return np.round(rgb).astype(np.uint8)


def colorize_by_values(vertices: Any, values: Any, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """Per-vertex RGBA (n,4) uint8 from (n,) ``values`` through the shared coolwarm map.

    ``vmin`` maps to blue, ``vmax`` to red; values outside are clamped, NaN becomes grey.
    ``vertices`` only fixes ``n`` (so the call reads like the mesh it colours).
    """
    n = len(np.asarray(vertices))
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(vals) != n:
        raise InputError(f"colorize_by_values: {len(vals)} values for {n} vertices")
    rgb = coolwarm(vals, vmin=vmin, vmax=vmax)
    return np.concatenate([rgb, np.full((n, 1), 255, dtype=np.uint8)], axis=1)
