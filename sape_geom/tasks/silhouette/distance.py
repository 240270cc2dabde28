"""Exact nearest distances between curve points and polylines (torch, vectorised, differentiable).

Why not ``torch.cdist``: its matrix-product expansion ``|p|² + |q|² - 2 p·q`` loses about 5e-4 of
distance in float32 near zero, the same order as SAPE's ε = 1e-3, so per-point feedback could never show
a converged region. Here every distance is computed from exact coordinate differences.

Why not all pairs: the target polyline has thousands of segments and the loss runs every step. Elements
(segments, or points as zero-length segments) are grouped into chunks of consecutive elements with a
bounding circle; a query checks the few chunks with the smallest lower bound ``|q - c| - r`` and keeps the
result when the next chunk's lower bound cannot beat it. Queries without that certificate examine every
chunk whose lower bound is within the distance found, so the answer is always the exact nearest element,
never an approximation; of equally near elements it is the lowest index, whichever path found it.

During training the curve moves a little per step, so :class:`SegmentTracker` and :class:`PointTracker`
search the chunks only every ``SEARCH_EVERY`` steps and in between examine the chunks found then,
certified by the same bound widened by how far the queries or points have moved since. The memory held
is of the order of the queries times the examined elements, never queries times all elements.

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


def _lowest(d2: torch.Tensor, members: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(index, value): the smallest squared distance of each row of ``d2`` and the lowest index of the
    elements at that distance, so that the answer does not depend on which elements were examined.
    ``members`` (N, M) holds the elements' indices, non-decreasing along each row (the first minimum
    is the lowest index); None = the column numbers."""
    value, pos = d2.min(1)  # the first of equal minima
    return (pos if members is None else members.gather(1, pos[:, None])[:, 0]), value


@torch.no_grad()
def nearest_brute(query: torch.Tensor, elements: Elements) -> tuple[torch.Tensor, torch.Tensor]:
    """Index and squared distance of the nearest element of every query, checking all pairs (in blocks)."""
    q = query.detach()
    rows = max(1, _BLOCK // max(1, len(elements)))
    idx, best = [], []
    for s in range(0, q.shape[0], rows):
        d2 = _squared_xy(q[s : s + rows, 0:1], q[s : s + rows, 1:2], elements.columns, elements.inv_len2)
        index, value = _lowest(d2)
        idx.append(index)
        best.append(value)
    if not idx:
        return torch.zeros(0, dtype=torch.long, device=q.device), torch.zeros(0, device=q.device)
    return torch.cat(idx), torch.cat(best)


def _chunk_bounds(q: torch.Tensor, elements: Elements) -> torch.Tensor:
    """(N, C) lower bound ``|q - centre| - radius`` of the distance from each query to each chunk."""
    cx, cy = elements.centre.T
    return ((q[:, 0:1] - cx) ** 2).add_((q[:, 1:2] - cy) ** 2).sqrt_().sub_(elements.radius)


def _chunk_members(elements: Elements, chunk: torch.Tensor) -> torch.Tensor:
    """(N, k * CHUNK) indices of the elements of each row's chunks ``chunk`` (N, k), ascending along the
    row, so that ties go to the lowest index (see ``_lowest``)."""
    chunk = chunk.sort(dim=1).values
    return elements.members.index_select(0, chunk.reshape(-1)).view(len(chunk), -1)


def _examine(q: torch.Tensor, elements: Elements, chunk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest element and its squared distance among the chunks ``chunk`` (N, k) of each query."""
    members = _chunk_members(elements, chunk)
    # One row gather (index_select) of (start, edge, 1/len²) per candidate: several times faster on the
    # CPU than indexing each column with the 2-D index.
    ax, ay, ex, ey, inv = elements.rows.index_select(0, members.reshape(-1)).view(*members.shape, 5).unbind(-1)
    return _lowest(_squared_xy(q[:, 0:1], q[:, 1:2], (ax, ay, ex, ey), inv), members)


def _within(q: torch.Tensor, elements: Elements, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """(N,) exact nearest element of queries whose nearest distance is at most ``upper`` (N,): every chunk
    whose lower bound ``lower`` (N, C) does not exceed it is examined, as many per query as the query
    that needs most (a host read: the CPU fall-back)."""
    count = int((lower <= upper[:, None] + 1e-6).sum(1).max())
    if count >= lower.shape[1] // 2:
        return nearest_brute(q, elements)[0]
    # The ``count`` smallest bounds hold every chunk at or below ``upper`` (anything left out is above it).
    return _examine(q, elements, lower.topk(count, dim=1, largest=False)[1])[0]


@torch.no_grad()
def nearest(query: torch.Tensor, elements: Elements, candidates: int = CANDIDATE_CHUNKS) -> torch.Tensor:
    """(N,) index of the exact nearest element of each query point (chunk search + certificate)."""
    q = query.detach()
    n_chunks = elements.members.shape[0]
    if n_chunks <= candidates + 1:
        return nearest_brute(q, elements)[0]
    lower = _chunk_bounds(q, elements)
    chunk, bound = _smallest_chunks(lower, candidates)
    index, value = _examine(q, elements, chunk)
    # Certified when no unexamined chunk can hold anything closer (a small margin absorbs rounding); the
    # others examine every chunk that can, the distance found being an upper bound of the nearest.
    unsure = torch.nonzero(bound <= value.sqrt() + 1e-6).flatten()
    if unsure.numel():
        index[unsure] = _within(q[unsure], elements, lower[unsure], value[unsure].sqrt())
    return index


TRACK_CHUNKS = 4
"""Chunks whose elements a tracked query examines at every call between two chunk searches."""
SEARCH_EVERY = 10
"""Calls of a tracker between two chunk searches of all its queries."""


class SegmentTracker:
    """Exact nearest of fixed elements (the target's segments) for moving queries (the curve's points),
    called once per step while the queries move a little.

    Every ``every`` calls (and at the first) the chunk search picks each query's ``chunks`` chunks of
    smallest lower bound and keeps the next one's bound; the calls in between examine only those
    chunks' elements (gathered once per search). The answer is certified when the distance found is
    below that bound minus how far the query has moved since the search (a lower bound is 1-Lipschitz
    in the query); the other queries examine every chunk whose lower bound is within the distance found,
    so the answer is always the exact nearest element. For the CPU: the fall-back's size is read on the
    host.
    """

    def __init__(self, elements: Elements, every: int = SEARCH_EVERY, chunks: int = TRACK_CHUNKS) -> None:
        self.elements = elements
        self.every, self.chunks = max(1, every), chunks
        self.calls = 0
        self._state: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    @torch.no_grad()
    def __call__(self, query: torch.Tensor) -> torch.Tensor:
        """(N,) index of the exact nearest element of each query."""
        q = query.detach()
        if self._state is None or self.calls % self.every == 0 or len(self._state[2]) != len(q):
            chunk, bound = _smallest_chunks(_chunk_bounds(q, self.elements), self.chunks)
            members = _chunk_members(self.elements, chunk)
            rows = self.elements.rows.index_select(0, members.reshape(-1)).view(*members.shape, 5)
            self._state = (members, bound, q.clone(), rows.permute(2, 0, 1).contiguous())
        self.calls += 1
        members, bound, anchor, columns = self._state
        ax, ay, ex, ey, inv = columns
        index, value = _lowest(_squared_xy(q[:, 0:1], q[:, 1:2], (ax, ay, ex, ey), inv), members)
        distance = value.sqrt_()
        unsure = bound - (q - anchor).norm(dim=1) <= distance + 1e-6
        return _settle(q, self.elements, index, distance, unsure)


class PointTracker:
    """Exact nearest of moving points (the curve's vertices) for fixed queries (the target's samples),
    called once per step with a share of the queries while the points move a little.

    As :class:`SegmentTracker` with the roles swapped: the search (every ``every`` calls, of all queries)
    keeps the points' positions, and an answer is certified when the distance found is below the bound
    minus how far the farthest point has moved since (each point element's distance moves by at most
    its own motion).
    """

    def __init__(self, queries: torch.Tensor, every: int = SEARCH_EVERY, chunks: int = TRACK_CHUNKS) -> None:
        self.queries = queries.detach()
        self.every, self.chunks = max(1, every), chunks
        self.calls = 0
        self._state: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    @torch.no_grad()
    def __call__(self, points: torch.Tensor, rows: slice = slice(None)) -> torch.Tensor:
        """(n,) index of the point nearest to each query of ``queries[rows]``."""
        p = points.detach()
        elements = None
        if self._state is None or self.calls % self.every == 0 or len(self._state[2]) != len(p):
            elements = point_elements(p)
            chunk, bound = _smallest_chunks(_chunk_bounds(self.queries, elements), self.chunks)
            members = _chunk_members(elements, chunk)
            self._state = (members, bound, p.clone())
        self.calls += 1
        members, bound, anchor = self._state[0][rows], self._state[1][rows], self._state[2]
        q = self.queries[rows]
        px, py = p.T
        flat = members.reshape(-1)
        dx = px.index_select(0, flat).view(members.shape).sub_(q[:, 0:1])
        dy = py.index_select(0, flat).view(members.shape).sub_(q[:, 1:2])
        index, value = _lowest(dx.mul_(dx).addcmul_(dy, dy), members)
        distance = value.sqrt_()
        unsure = bound - (p - anchor).norm(dim=1).amax() <= distance + 1e-6
        return _settle(q, elements if elements is not None else p, index, distance, unsure)


def _smallest_chunks(lower: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(chunk, bound): the ``k`` chunks of smallest lower bound of every query (N, k), and a lower bound
    (N,) of the distance to every other chunk (inf when none is left).

    The bounds (float32) are clamped at 0, rounded down to leave their low bits for the chunk index and
    picked by ``k + 1`` rounds of a row minimum: on the CPU several times faster than ``topk``, and every
    value stays a lower bound. Other dtypes, or more than 2^16 chunks, take ``topk``.
    """
    n, count = lower.shape
    if k >= count:
        return torch.arange(count, device=lower.device).expand(n, -1), torch.full((n,), torch.inf, device=lower.device)
    bits = max(1, (count - 1).bit_length())
    if bits > 16 or lower.dtype != torch.float32:  # the key trick reads float32 bits
        bound, chunk = lower.topk(k + 1, dim=1, largest=False)
        return chunk[:, :k], bound[:, k]
    low = (1 << bits) - 1
    keys = lower.clamp_min(0.0).view(torch.int32).bitwise_and_(~low)
    keys.bitwise_or_(torch.arange(count, dtype=torch.int32, device=lower.device))
    chosen = []
    for _ in range(k):
        chunk = keys.amin(1, keepdim=True).bitwise_and_(low).long()
        chosen.append(chunk)
        keys.scatter_(1, chunk, torch.iinfo(torch.int32).max)
    bound = keys.amin(1).bitwise_and_(~low).view(torch.float32)
    return torch.cat(chosen, dim=1), bound


def _settle(
    q: torch.Tensor, elements: Elements | torch.Tensor, index: torch.Tensor, distance: torch.Tensor, unsure
) -> torch.Tensor:
    """``index`` with the ``unsure`` queries' answers replaced by a search of every chunk within the
    ``distance`` found (an upper bound of their nearest); ``elements`` may be points to build them from."""
    rows = torch.nonzero(unsure).flatten()
    if rows.numel():
        if isinstance(elements, torch.Tensor):
            elements = point_elements(elements)
        q = q[rows]
        index[rows] = _within(q, elements, _chunk_bounds(q, elements), distance[rows])
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


__all__ = [
    "Elements",
    "PointTracker",
    "SegmentTracker",
    "distance_to",
    "nearest",
    "nearest_brute",
    "point_elements",
    "polyline_segments",
]
