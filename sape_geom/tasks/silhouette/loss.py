"""Stage-2 losses of the silhouette deformation: Chamfer terms and SAPE's per-point feedback.

* ``exact`` (default): curve point -> target *polyline* (point-to-segment, the feedback) and target
  samples -> nearest curve point, all from exact differences (:mod:`.distance`). A curve point lying on
  the target gets a feedback of 0 wherever it sits between target samples, so converged regions fall
  below ε and freeze (docs/method.md §6.4 feeds SAPE the first term's per-point distance). The second
  term takes every k-th target sample, from a rotating offset, so that a step sees at most
  ``max_target_samples`` of them and every sample is used once in k steps. On the CPU both nearest
  searches are tracked from step to step (:class:`.distance.SegmentTracker`, :class:`.distance.PointTracker`:
  a chunk search every few steps, certified in between); elsewhere all pairs are checked, which reads
  nothing back to the host. Both give the same exact answers.
* ``subset``: the reference code's loss, kept for the reproduction: a random subset of at most
  ``max_target_samples`` target points per step, point-to-point both ways. Its feedback has a floor of
  about a quarter of the subset's spacing (~0.002 on the official silhouettes), above ε = 1e-3.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .config import LOSSES
from .distance import PointTracker, SegmentTracker, distance_to, nearest_brute, point_elements, polyline_segments

Terms = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


TERM_POINTS = 500
"""The fold and crossing terms are totals over the curve divided by this fixed count, not by the curve's
own number of points: a total (backwards length, crossing depth) is the same however densely the curve
is sampled, as the Chamfer means are, so a weight means the same at 2000 points as at 500. Divided by
the number of points instead, doubling the points halved both terms against the Chamfer (measured on
bat at 1000 points: the curve looped across a narrow neck, IoU 0.978; with totals 0.987)."""


def fold_penalty(curve: torch.Tensor, target: torch.Tensor, segment: torch.Tensor) -> torch.Tensor:
    """Total length by which curve edges run *backwards* along the target, ``sum relu(-e_i · t_i)``,
    over :data:`TERM_POINTS`.

    ``e_i`` is the edge from curve point i to i+1 (closed), ``t_i`` the unit tangent of the target near
    both its ends (the mean of their nearest segments' directions; both curves run counter-clockwise).
    Zero for every curve that follows the target in its own direction, whatever its shape or detail;
    positive on the fold-backs and curls that Chamfer cannot see (it is blind to the order of points),
    which are where a deformed curve crosses itself.
    """
    edge = torch.roll(target, -1, 0) - target
    tangent = edge / edge.norm(dim=1, keepdim=True).clamp_min(1e-12)
    t = tangent[segment] + tangent[torch.roll(segment, -1, 0)]
    t = t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)
    e = torch.roll(curve, -1, 0) - curve
    return torch.relu(-(e * t).sum(1)).sum() / TERM_POINTS


def _cross(ox, oy, ax, ay, bx, by):
    """z of (a - o) x (b - o), broadcasting."""
    return (ax - ox) * (by - oy) - (ay - oy) * (bx - ox)


CROSSING_CHUNK = 16
"""Consecutive edges per chunk of the crossing search: only edges of chunks whose bounding boxes overlap
are tested against each other (a curve's own neighbours and its near contacts, a few percent of all pairs)."""


@torch.no_grad()
def crossing_pairs(curve: torch.Tensor, block: int = 1 << 18) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs (i, j), i < j, of non-adjacent edges of the closed curve that properly cross.

    Edge i runs from point i to i + 1 (mod P). Same rule as ``curve.count_self_intersections``; the
    candidates are the edge pairs of chunks with overlapping bounding boxes (:data:`CROSSING_CHUNK`),
    tested ``block`` pairs at a time.
    """
    p = curve.detach()
    n = p.shape[0]
    nxt = torch.roll(p, -1, 0)
    count = -(-n // CROSSING_CHUNK)
    members = torch.arange(count * CROSSING_CHUNK, device=p.device).view(count, CROSSING_CHUNK)
    real = members < n
    members = members.clamp(max=n - 1)
    ends = torch.cat([p[members], nxt[members]], dim=1)  # (C, 2K, 2)
    low, high = ends.amin(1), ends.amax(1)
    overlap = ((low[:, None] <= high[None]) & (low[None] <= high[:, None])).all(2)
    a, b = torch.nonzero(torch.triu(overlap), as_tuple=True)
    i = members[a][:, :, None].expand(-1, -1, CROSSING_CHUNK).reshape(-1)
    j = members[b][:, None, :].expand(-1, CROSSING_CHUNK, -1).reshape(-1)
    valid = (real[a][:, :, None] & real[b][:, None, :]).reshape(-1)
    keep = valid & (j > i + 1) & ~((i == 0) & (j == n - 1))
    i, j = i[keep], j[keep]
    found_i, found_j = [i[:0]], [j[:0]]
    for s in range(0, len(i), block):
        ii, jj = i[s : s + block], j[s : s + block]
        a0, a1, b0, b1 = p[ii], nxt[ii], p[jj], nxt[jj]
        d1 = _cross(a0[:, 0], a0[:, 1], a1[:, 0], a1[:, 1], b0[:, 0], b0[:, 1])
        d2 = _cross(a0[:, 0], a0[:, 1], a1[:, 0], a1[:, 1], b1[:, 0], b1[:, 1])
        d3 = _cross(b0[:, 0], b0[:, 1], b1[:, 0], b1[:, 1], a0[:, 0], a0[:, 1])
        d4 = _cross(b0[:, 0], b0[:, 1], b1[:, 0], b1[:, 1], a1[:, 0], a1[:, 1])
        hit = (d1 * d2 < 0) & (d3 * d4 < 0)
        found_i.append(ii[hit])
        found_j.append(jj[hit])
    i, j = torch.cat(found_i), torch.cat(found_j)
    order = torch.argsort(i * n + j)  # ascending pair ids, as ``DeformLoss`` matches them between searches
    return i[order], j[order]


def crossing_penalty(
    curve: torch.Tensor, i: torch.Tensor, j: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Sum over the pairs (i, j) still crossing of how far the cheapest end point must move to undo it.

    For crossing edges AB and CD that is the smallest distance of A or B to line CD and of C or D to
    line AB (times ``weights`` per pair when given). Zero on every curve that does not cross itself, so it
    cannot bend a clean result.
    """
    if i.numel() == 0:
        return curve.sum() * 0.0
    nxt = torch.roll(curve, -1, 0)
    a, b, c, d = curve[i], nxt[i], curve[j], nxt[j]
    ab, cd = b - a, d - c
    o1 = _cross(a[:, 0], a[:, 1], b[:, 0], b[:, 1], c[:, 0], c[:, 1])
    o2 = _cross(a[:, 0], a[:, 1], b[:, 0], b[:, 1], d[:, 0], d[:, 1])
    o3 = _cross(c[:, 0], c[:, 1], d[:, 0], d[:, 1], a[:, 0], a[:, 1])
    o4 = _cross(c[:, 0], c[:, 1], d[:, 0], d[:, 1], b[:, 0], b[:, 1])
    still = ((o1 * o2 < 0) & (o3 * o4 < 0)).detach()
    to_ab = torch.minimum(o1.abs(), o2.abs()) / ab.norm(dim=1).clamp_min(1e-12)
    to_cd = torch.minimum(o3.abs(), o4.abs()) / cd.norm(dim=1).clamp_min(1e-12)
    depth = torch.minimum(to_ab, to_cd) * still
    return (depth if weights is None else depth * weights).sum()


def _point_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).square().sum(1).clamp_min(1e-24).sqrt()


MAX_BOOST = 64.0
"""Largest factor on the crossing weight of a pair that keeps crossing (see ``DeformLoss.boost``)."""

CROSSING_EVERY = 10
"""Steps between two searches for crossing edges (an O(P²) test); the pairs found are penalised until
the next search, each only while it still crosses."""


SUBSETS_AHEAD = 64
"""The paper loss's random target subsets are drawn this many steps ahead (one upload per block)."""


class DeformLoss:
    """The stage-2 loss ``d_pq.mean() + d_qp.mean() + fold + crossing`` as ``trainer.train`` calls it.

    Returns ``(loss, d_pq)``: the per-point curve-to-target distance is SAPE's feedback. ``base`` is added
    to the network output (the source for ``offset=True``, else zeros).
    """

    def __init__(
        self,
        kind: str,
        target: torch.Tensor,
        base: torch.Tensor,
        *,
        subset: int,
        generator: torch.Generator,
        fold_weight: float = 0.0,
        crossing_weight: float = 0.0,
    ) -> None:
        self.terms = chamfer_terms(kind, target, subset, generator)
        self.target, self.base = target, base
        self.fold_weight, self.crossing_weight = float(fold_weight), float(crossing_weight)
        self.calls = 0
        self._chamfer: list[torch.Tensor] = []  # kept on the device, read once when asked for
        self._chamfer_read: list[float] = []
        self.pairs = (torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
        self.boost = torch.ones(0)
        """Per-pair factor: doubles at each search that finds the pair still crossing (at most
        ``MAX_BOOST``), so a stuck crossing is pushed harder while the others keep the base weight."""

    def __call__(self, prediction: torch.Tensor, _target: torch.Tensor, _x: torch.Tensor):
        curve = prediction + self.base
        d_pq, d_qp, segment = self.terms(curve)
        loss = d_pq.mean() + d_qp.mean()
        self._chamfer.append(loss.detach())
        if self.fold_weight > 0:
            loss = loss + self.fold_weight * fold_penalty(curve, self.target, segment)
        if self.crossing_weight > 0:
            if self.calls % CROSSING_EVERY == 0:
                self._search(curve)
            loss = loss + self.crossing_weight * crossing_penalty(curve, *self.pairs, self.boost) / TERM_POINTS
        self.calls += 1
        return loss, d_pq.detach()

    @property
    def chamfer(self) -> list[float]:
        """The Chamfer part of the loss at every call (both terms added), for the speed report; the
        values stay on the device during training and are read here, all at once (docs/method.md §5.9)."""
        if self._chamfer:
            self._chamfer_read.extend(torch.stack(self._chamfer).tolist())
            self._chamfer.clear()
        return self._chamfer_read

    def _search(self, curve: torch.Tensor) -> None:
        n = len(curve)
        old = self.pairs[0] * n + self.pairs[1]  # ascending, like the new ids
        i, j = crossing_pairs(curve)
        new = i * n + j
        boost = torch.ones(len(new), device=curve.device)
        if len(old) and len(new):
            at = torch.searchsorted(old, new).clamp_(max=len(old) - 1)
            again = old[at] == new
            boost[again] = (self.boost[at[again]] * 2).clamp_(max=MAX_BOOST)
        self.pairs, self.boost = (i, j), boost


def chamfer_terms(kind: str, target: torch.Tensor, subset: int, generator: torch.Generator) -> Terms:
    """``terms(curve) -> (d_pq, d_qp, nearest_target_segment)``: the per-point distances of both Chamfer
    directions (curve -> target, target -> curve) and, per curve point, the index of the target segment
    it is nearest to (for ``subset``: of its nearest target sample, the segment starting there)."""
    if kind == "exact":
        segments = polyline_segments(target)
        stride = max(1, -(-len(target) // subset))
        calls = 0
        # On the CPU the nearest elements are tracked between chunk searches (exact, reads the size of its
        # fall-back); elsewhere every pair is checked, which needs no read and is cheap on an accelerator.
        tracked = target.device.type == "cpu"
        to_target, to_curve = SegmentTracker(segments), PointTracker(target)

        def exact(curve: torch.Tensor):
            nonlocal calls
            rows = slice(calls % stride, None, stride)  # every target sample once per ``stride`` steps
            q = target[rows]
            if tracked:
                seg = to_target(curve)
                vertex = to_curve(curve, rows)
            else:
                seg = nearest_brute(curve, segments)[0]
                vertex = nearest_brute(q, point_elements(curve))[0]
            calls += 1
            d_pq = distance_to(curve, segments, seg)
            return d_pq, _point_distance(q, curve[vertex]), seg

        return exact
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}")
    n = len(target)
    everything = torch.arange(n, device=target.device)
    drawn: list[torch.Tensor] = []

    def next_subset() -> torch.Tensor:
        # The same draws from the same generator as one randperm per step, made SUBSETS_AHEAD at a time
        # and uploaded together (the generator is the task's CPU one: its sequence is the seed's).
        if not drawn:
            block = torch.stack([torch.randperm(n, generator=generator)[:subset] for _ in range(SUBSETS_AHEAD)])
            drawn.extend(block.to(target.device).unbind(0)[::-1])
        return drawn.pop()

    def paper(curve: torch.Tensor):
        chosen = next_subset() if subset < n else everything
        q = target[chosen]
        to_q, _ = nearest_brute(curve, point_elements(q))
        to_p, _ = nearest_brute(q, point_elements(curve))
        return _point_distance(curve, q[to_q]), _point_distance(q, curve[to_p]), chosen[to_q]

    return paper
