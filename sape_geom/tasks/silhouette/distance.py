"""Exact nearest distances between curve points and polylines (torch, vectorised, differentiable).

Why not ``torch.cdist``: its matrix-product expansion ``|p|² + |q|² - 2 p·q`` loses about 5e-4 of
distance in float32 near zero, the same order as SAPE's ε = 1e-3, so per-point feedback could never show
a converged region. Here every distance is computed from exact coordinate differences.

Why not all pairs: the target polyline has thousands of segments and the loss runs every step. Elements
(segments, or points as zero-length segments) are grouped into chunks of consecutive elements with a
bounding circle; a query checks the few chunks with the smallest lower bound ``|q - c| - r`` and keeps the
result when the next chunk's lower bound cannot beat it. Queries without that certificate fall back to
all elements, so the answer is always the exact nearest element, never an approximation.

The search runs without gradients; :func:`distance_to` then recomputes the chosen distances with autograd,
which is the exact gradient of the minimum (the envelope of the pieces).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CHUNK = 16
"""Consecutive elements per chunk of the search structure."""
CANDIDATE_CHUNKS = 3
"""Chunks examined per query before the certificate; more = fewer fall-backs, more work per query."""
_BLOCK = 1 << 20
"""Query x element pairs evaluated at once by the brute-force fall-back (bounds its memory)."""


@dataclass(frozen=True)
class Elements:
    """Segments ``start + t * edge``, ``t ∈ [0, 1]`` (points have ``edge = 0``), with their chunk bounds."""

    start: torch.Tensor
    """(S, 2)"""
    edge: torch.Tensor
    """(S, 2)"""
    inv_len2: torch.Tensor
    """(S,) 1 / |edge|², 0 for points (so t = 0)."""
    members: torch.Tensor
    """(C, CHUNK) element indices of each chunk (the last chunk padded with its last element)."""
    centre: torch.Tensor
    """(C, 2) centre of each chunk's bounding box."""
    radius: torch.Tensor
    """(C,) radius of a circle around ``centre`` holding every element of the chunk."""
    columns: torch.Tensor
    """(4, S) start x, start y, edge x, edge y as contiguous rows (all elements at once)."""
    rows: torch.Tensor
    """(S, 5) start x, start y, edge x, edge y, 1 / |edge|² per element (gathers of a few elements)."""

    def __len__(self) -> int:
        return int(self.start.shape[0])


def polyline_segments(vertices: torch.Tensor, closed: bool = True) -> Elements:
    """The segments of a polyline through ``vertices`` (N, 2), closing back to the first when ``closed``."""
    v = vertices.detach()
    end = torch.roll(v, -1, 0) if closed else v[1:]
    start = v if closed else v[:-1]
    return _elements(start, end - start)


def point_elements(points: torch.Tensor) -> Elements:
    """Points as zero-length elements (the curve's vertices, for the target-to-curve term)."""
    p = points.detach()
    return _elements(p, torch.zeros_like(p))


def _elements(start: torch.Tensor, edge: torch.Tensor) -> Elements:
    n = start.shape[0]
    len2 = (edge * edge).sum(1)
    inv = torch.where(len2 > 0, 1.0 / len2.clamp_min(1e-30), torch.zeros_like(len2))
    count = -(-n // CHUNK)
    members = torch.arange(count * CHUNK, device=start.device).clamp_(max=n - 1).view(count, CHUNK)
    a = start[members]
    b = a + edge[members]
    ends = torch.cat([a, b], dim=1)  # (C, 2L, 2): a segment lies in the hull of its two ends
    centre = (ends.amin(1) + ends.amax(1)) / 2
    radius = (ends - centre[:, None]).norm(dim=2).amax(1)
    columns = torch.cat([start.T, edge.T]).contiguous()
    rows = torch.cat([start, edge, inv[:, None]], dim=1).contiguous()
    return Elements(start, edge, inv, members, centre, radius, columns, rows)


def _squared_xy(qx: torch.Tensor, qy: torch.Tensor, columns, inv: torch.Tensor) -> torch.Tensor:
    """Squared distances from query coordinates ``qx``, ``qy`` (N, 1) to segments given as ``columns``
    (start x, start y, edge x, edge y: a (4, ...) tensor or four tensors), broadcast against the queries."""
    ax, ay, ex, ey = columns
    dx = qx - ax
    dy = qy - ay
    t = (dx * ex).addcmul_(dy, ey).mul_(inv).clamp_(0.0, 1.0)
    dx.addcmul_(t, ex, value=-1.0)
    dy.addcmul_(t, ey, value=-1.0)
    return dx.mul_(dx).addcmul_(dy, dy)


@torch.no_grad()
def nearest_brute(query: torch.Tensor, elements: Elements) -> tuple[torch.Tensor, torch.Tensor]:
    """Index and squared distance of the nearest element of every query, checking all pairs (in blocks)."""
    q = query.detach()
    rows = max(1, _BLOCK // max(1, len(elements)))
    idx, best = [], []
    for s in range(0, q.shape[0], rows):
        d2 = _squared_xy(q[s : s + rows, 0:1], q[s : s + rows, 1:2], elements.columns, elements.inv_len2)
        value, index = d2.min(1)
        idx.append(index)
        best.append(value)
    if not idx:
        return torch.zeros(0, dtype=torch.long, device=q.device), torch.zeros(0, device=q.device)
    return torch.cat(idx), torch.cat(best)


@torch.no_grad()
def nearest(query: torch.Tensor, elements: Elements, candidates: int = CANDIDATE_CHUNKS) -> torch.Tensor:
    """(N,) index of the exact nearest element of each query point (chunk search + certificate)."""
    q = query.detach()
    n_chunks = elements.members.shape[0]
    if n_chunks <= candidates + 1:
        return nearest_brute(q, elements)[0]
    qx, qy = q[:, 0:1], q[:, 1:2]
    cx, cy = elements.centre.T
    lower = ((qx - cx) ** 2).add_((qy - cy) ** 2).sqrt_().sub_(elements.radius)
    bound, chunk = lower.topk(candidates + 1, dim=1, largest=False)
    chosen = chunk[:, :candidates].reshape(-1)
    members = elements.members.index_select(0, chosen).view(len(q), -1)  # (N, candidates * CHUNK)
    # One row gather (index_select) of (start, edge, 1/len²) per candidate: several times faster on the
    # CPU than indexing each column with the 2-D index.
    ax, ay, ex, ey, inv = elements.rows.index_select(0, members.reshape(-1)).view(*members.shape, 5).unbind(-1)
    d2 = _squared_xy(qx, qy, (ax, ay, ex, ey), inv)
    value, pos = d2.min(1)
    index = members.gather(1, pos[:, None])[:, 0]
    # Certified when no unexamined chunk can hold anything closer (a small margin absorbs rounding).
    unsure = torch.nonzero(bound[:, candidates] <= value.sqrt() + 1e-6).flatten()
    if unsure.numel():
        index[unsure] = nearest_brute(q[unsure], elements)[0]
    return index


def distance_to(
    query: torch.Tensor,
    elements: Elements,
    index: torch.Tensor,
    start: torch.Tensor | None = None,
    edge: torch.Tensor | None = None,
) -> torch.Tensor:
    """(N,) Euclidean distance from each query to its element ``index``, with gradients.

    ``start`` / ``edge`` (S, 2) replace the stored (detached) elements when the elements themselves need a
    gradient (the moving curve).
    """
    a = (elements.start if start is None else start)[index]
    e = (elements.edge if edge is None else edge)[index]
    d = query - a
    t = ((d * e).sum(1) * elements.inv_len2[index]).clamp(0.0, 1.0)
    r = d - t[:, None] * e
    return (r * r).sum(1).clamp_min(1e-24).sqrt()


__all__ = ["Elements", "distance_to", "nearest", "nearest_brute", "point_elements", "polyline_segments"]
