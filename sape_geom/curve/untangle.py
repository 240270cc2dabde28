"""Remove a closed curve's self-crossings by taking the outline of the region it winds around.

A trained curve that crosses itself does so in two ways (docs/method.md §6.4): it runs twice around a
small area (winding number 2, where its loop overlapped itself at a thin tip) or it twists through a
small area backwards (winding number -1, a fold). The shape the curve means is the region of positive
winding number, so the result is that region's outline: the curve is cut at its crossings, the pieces
with winding 0 on their right are kept (they bound the region, which lies on their left), and they are
chained into loops, the largest of which is returned. Every kept point is a curve point or a crossing
point; nothing is smoothed or moved. An even-odd fill would drop the doubly covered areas instead, and
reordering the points (2-opt) cuts them off; but where a twist lies on the target (a tip traced the wrong
way round) reordering keeps it and the outline drops it, so :func:`resolve_crossings` takes whichever of
the two is nearer the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .contour import resample_closed
from .metrics import crossing_pairs, distances_to_polyline, nearest_distances
from .uncross import uncross

__all__ = ["Untangled", "reordered", "resolve_crossings", "untangle", "winding_right_of"]


@dataclass(frozen=True)
class Untangled:
    """What :func:`untangle` returns."""

    points: np.ndarray
    """(P, 2) the simple closed outline (counter-clockwise for a counter-clockwise curve), with as many
    points as the curve (points added along its longest pieces where the cut-off parts had more)."""
    position: np.ndarray
    """(P,) where each point lies on the input curve: ``k + t`` is ``(1 - t) p[k] + t p[k + 1]`` (closed),
    so per-point values (levels, the curve parameter) can be interpolated onto the outline."""

    def at(self, values: np.ndarray) -> np.ndarray:
        """Per-point ``values`` of the input curve, interpolated to the outline's points."""
        v = np.asarray(values, dtype=np.float64)
        k = np.floor(self.position).astype(np.int64) % len(v)
        t = self.position - np.floor(self.position)
        return (1.0 - t) * v[k] + t * v[(k + 1) % len(v)]


def winding_right_of(
    starts: np.ndarray, ends: np.ndarray, owner: np.ndarray, polygon: np.ndarray, block: int = 512
) -> np.ndarray:
    """Winding number of ``polygon`` just right of the midpoint of each piece ``starts -> ends`` lying on
    polygon edge ``owner``: signed crossings of the ray from the midpoint perpendicular to the right."""
    a, b = polygon, np.roll(polygon, -1, axis=0)
    mid = 0.5 * (starts + ends)
    d = ends - starts
    right = np.stack([d[:, 1], -d[:, 0]], axis=1) / np.linalg.norm(d, axis=1, keepdims=True).clip(1e-300)
    left = np.stack([-right[:, 1], right[:, 0]], axis=1)  # the ray's +90 degrees: the local y axis
    out = np.zeros(len(mid), dtype=np.int64)
    edges = np.arange(len(a))
    for s in range(0, len(mid), block):
        m, u, v = mid[s : s + block, None], right[s : s + block, None], left[s : s + block, None]
        ax, ay = ((a[None] - m) * u).sum(-1), ((a[None] - m) * v).sum(-1)
        bx, by = ((b[None] - m) * u).sum(-1), ((b[None] - m) * v).sum(-1)
        up, down = (ay <= 0) & (by > 0), (by <= 0) & (ay > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = ax + (bx - ax) * (-ay) / (by - ay)
        ahead = (up | down) & (x > 0) & (edges[None] != owner[s : s + block, None])
        out[s : s + block] = (ahead & up).sum(1) - (ahead & down).sum(1)
    return out


def _rank_on_cycle(succ: np.ndarray, start: int) -> np.ndarray:
    """Steps from ``start`` to each element of the cycle through it (pointer jumping, log2 n rounds)."""
    n = len(succ)
    nxt = succ.copy()
    pred_of_start = int(np.nonzero(succ == start)[0][0])
    nxt[pred_of_start] = pred_of_start  # cut the cycle: a list ending just before ``start``
    dist = np.where(np.arange(n) == pred_of_start, 0, 1)
    for _ in range(int(np.ceil(np.log2(max(n, 2)))) + 1):
        dist = dist + dist[nxt]
        nxt = nxt[nxt]
    return dist.max() - dist  # distance to the end, turned around: 0 at ``start``


def untangle(points: np.ndarray) -> Untangled | None:
    """The outline of the region of positive winding number of the closed curve ``points`` (see the
    module docstring), or None when it cannot be traced (a crossing through a vertex, overlapping
    edges, an outline with more corners than the curve has points): :func:`resolve_crossings` then
    reorders the points instead. A simple curve comes back as it is."""
    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    i, j = crossing_pairs([p])
    if len(i) == 0:
        return Untangled(p.copy(), np.arange(n, dtype=np.float64))
    q = np.roll(p, -1, axis=0)
    r, s = q[i] - p[i], q[j] - p[j]
    denom = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
    w = p[j] - p[i]
    ti = (w[:, 0] * s[:, 1] - w[:, 1] * s[:, 0]) / denom
    tj = (w[:, 0] * r[:, 1] - w[:, 1] * r[:, 0]) / denom
    crossing = p[i] + ti[:, None] * r
    c = len(i)
    # every curve vertex (t = 0 on its edge) and every crossing twice (once on each edge), in curve order
    edge = np.concatenate([np.arange(n), i, j])
    t = np.concatenate([np.zeros(n), ti, tj])
    node = np.concatenate([np.arange(n), n + np.arange(c), n + np.arange(c)])
    order = np.lexsort((t, edge))
    edge, t, node = edge[order], t[order], node[order]
    xy = np.vstack([p, crossing])
    start, end = node, np.roll(node, -1)
    keep = winding_right_of(xy[start], xy[end], edge, p) == 0
    kept = np.nonzero(keep)[0]
    if len(kept) < 3:
        return None
    from_node = np.full(n + c, -1)
    if np.bincount(start[kept], minlength=n + c).max() > 1:
        return None
    from_node[start[kept]] = np.arange(len(kept))
    succ = from_node[end[kept]]
    if (succ < 0).any() or len(np.unique(succ)) != len(succ):
        return None
    m = len(kept)
    _, label = connected_components(
        coo_matrix((np.ones(m), (np.arange(m), succ)), shape=(m, m)), directed=True, connection="strong"
    )
    a, b = xy[start[kept]], xy[end[kept]]
    area = np.bincount(label, weights=0.5 * (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]))
    best = int(np.argmax(area))
    members = np.nonzero(label == best)[0]
    if len(members) > n:
        return None
    local = np.full(m, -1)
    local[members] = np.arange(len(members))
    chosen = kept[members[np.argsort(_rank_on_cycle(local[succ[members]], 0))]]
    pos = edge + t
    pos_end = np.roll(pos, -1)
    pos_end[-1] += n  # the last piece ends at vertex 0, one lap on
    points, position = _fill(xy[start[chosen]], xy[end[chosen]], pos[chosen], pos_end[chosen], n)
    return Untangled(points, position % n)


def _fill(a: np.ndarray, b: np.ndarray, pos_a: np.ndarray, pos_b: np.ndarray, count: int):
    """Points along the closed outline of pieces ``a -> b`` (positions ``pos_a -> pos_b``), the pieces'
    starts plus evenly spaced points on the longest pieces up to ``count`` in all: the same polygon with
    as many points as the curve had, so that per-point arrays (snapshots, animations) keep their size."""
    length = np.linalg.norm(b - a, axis=1)
    share = (count - len(a)) * length / max(length.sum(), 1e-300)
    extra = np.floor(share).astype(np.int64)
    short = count - len(a) - int(extra.sum())
    extra[np.argsort(extra - share, kind="stable")[:short]] += 1  # largest remainders first
    pieces = extra + 1
    owner = np.repeat(np.arange(len(a)), pieces)
    f = (np.arange(count) - np.repeat(np.cumsum(pieces) - pieces, pieces)) / pieces[owner]
    points = a[owner] + f[:, None] * (b - a)[owner]
    return points, pos_a[owner] + f * (pos_b - pos_a)[owner]


def reordered(points: np.ndarray) -> Untangled:
    """The curve's points reordered by 2-opt moves until no edges cross (:func:`curve.uncross.uncross`)."""
    order, _ = uncross(points)
    return Untangled(np.asarray(points, dtype=np.float64)[order], order.astype(np.float64))


def resolve_crossings(points: np.ndarray, target: np.ndarray) -> tuple[Untangled, str]:
    """The simple curve nearest ``target`` (symmetric Chamfer, the curve taken as a polyline) of the outline
    (:func:`untangle`) and the reordered points (:func:`reordered`), and which it was (``"outline"`` or
    ``"reordering"``). The outline keeps what the curve covers twice and cuts off its backward twists;
    where such a twist lies on the target (a tip traced the wrong way round, which the fold term makes
    rare), reordering keeps it."""
    candidates = [("reordering", reordered(points))]
    outline = untangle(points)
    if outline is not None:
        candidates.append(("outline", outline))

    def chamfer(c: Untangled) -> float:  # the curve as a polyline: the outline's added points weigh nothing
        even = resample_closed(c.points, len(target), orient=False)  # to the target's dense samples
        return float(nearest_distances(even, target).mean() + distances_to_polyline(target, c.points).mean())

    name, best = min(candidates, key=lambda item: chamfer(item[1]))
    return best, name
