"""Remove a closed curve's self-crossings by reordering its points (2-opt moves), keeping every point.

Two crossing edges ``(a, b)`` and ``(c, d)`` of a closed polygon are replaced by ``(a, c)`` and
``(b, d)`` by reversing the points from ``b`` to ``c``: the polygon stays one closed loop through the
same points, that crossing is gone, and its length strictly falls (|ac| + |bd| < |ab| + |cd| by the
triangle inequality through the crossing point), so repeating the move terminates with a simple polygon
(docs/method.md §6.4). The shorter side is reversed, so the curve
keeps its orientation and most of its point order.
"""

from __future__ import annotations

import numpy as np

from .metrics import crossing_pairs

__all__ = ["uncross"]

MAX_MOVES_PER_POINT = 4
"""Safety bound on the number of moves (times the number of points); 2-opt ends long before it."""


def uncross(points: np.ndarray) -> tuple[np.ndarray, int]:
    """``(order, moves)``: an order of the closed curve's points in which no two edges cross, and the
    number of 2-opt moves it took (0 when the curve was simple: ``order`` is then ``arange(n)``).

    Each move takes the crossing pair whose reversed stretch is shortest, so local twists are undone
    locally. Points stay where they are; ``points[order]`` is the uncrossed curve.
    """
    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    order = np.arange(n)
    moves = 0
    while n >= 4 and moves < MAX_MOVES_PER_POINT * n:
        i, j = crossing_pairs([p[order]])
        if len(i) == 0:
            break
        inner = j - i  # points i+1 .. j reversed; the other side holds n - inner of them
        k = int(np.argmin(np.minimum(inner, n - inner)))
        a, b = int(i[k]), int(j[k])
        if inner[k] <= n - inner[k]:
            order[a + 1 : b + 1] = order[a + 1 : b + 1][::-1].copy()
        else:  # reverse the complement j+1 .. i (wrapping): the same cycle, the other stretch turned
            rolled = np.roll(order, -(b + 1))  # starts at j+1; the complement is its first n - inner points
            m = n - int(inner[k])
            rolled[:m] = rolled[:m][::-1].copy()
            order = np.roll(rolled, b + 1)
        moves += 1
    return order, moves
