"""The exact Chamfer terms of the silhouette task: distances, SAPE feedback, fold and crossing terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sape_geom import curve as C
from sape_geom.curve.metrics import crossing_pairs as reference_pairs
from sape_geom.tasks.silhouette import distance as D
from sape_geom.tasks.silhouette.loss import (
    chamfer_terms,
    crossing_pairs,
    crossing_penalty,
    fold_penalty,
)


def wavy(n: int = 1500) -> np.ndarray:
    """A closed curve with a thin neck and fine waves: nearest segments are easy to get wrong here."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 0.6 + 0.35 * np.cos(2 * t) ** 8 + 0.03 * np.sin(40 * t)
    return np.stack([r * np.cos(t), 0.5 * r * np.sin(t)], axis=1)


def test_exact_distance_matches_brute_force_reference():
    target = wavy()
    rng = np.random.default_rng(0)
    near = target[rng.integers(0, len(target), 400)] + rng.normal(scale=0.004, size=(400, 2))
    far = rng.uniform(-1.5, 1.5, size=(400, 2))
    q = np.vstack([near, far, C.circle(200)])
    segments = D.polyline_segments(torch.tensor(target, dtype=torch.float32))
    qt = torch.tensor(q, dtype=torch.float32)
    got = D.distance_to(qt, segments, D.nearest(qt, segments)).double().numpy()
    want = C.distances_to_polyline(q, target)  # float64, every pair
    assert np.abs(got - want).max() < 1e-6
    # and the chunk search found the same nearest distance as checking every segment
    brute, _ = D.nearest_brute(qt, segments)
    assert np.abs(D.distance_to(qt, segments, brute).numpy() - got).max() < 1e-6


def test_the_chunk_search_answers_in_float64_too():
    """The chunk picking reads float32 bits on its fast path; other dtypes take topk, same answers."""
    target = torch.tensor(wavy(), dtype=torch.float64)
    q = torch.tensor(np.random.default_rng(1).uniform(-1.2, 1.2, size=(300, 2)), dtype=torch.float64)
    segments = D.polyline_segments(target)
    assert torch.equal(D.nearest(q, segments), D.nearest_brute(q, segments)[0])


def test_distance_gradient_points_away_from_the_polyline():
    square = torch.tensor([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=torch.float32)
    seg = D.polyline_segments(square)
    q = torch.tensor([[0.5, -0.2], [1.3, 1.4]], requires_grad=True)
    d = D.distance_to(q, seg, D.nearest(q, seg))
    d.sum().backward()
    assert d.detach().numpy() == pytest.approx([0.2, 0.5], abs=1e-6)
    np.testing.assert_allclose(q.grad.numpy(), [[0, -1], [0.6, 0.8]], atol=1e-5)


def test_exact_feedback_reaches_zero_on_the_target_while_the_subset_one_cannot():
    # a curve lying on the target but between its samples: the distance to the polyline is ~0, the
    # distance to a random subset of 1000 samples (the reference's loss) stays well above epsilon = 1e-3
    target = torch.tensor(C.resample_closed(wavy(), 3000), dtype=torch.float32)
    curve = torch.tensor(C.resample_closed(wavy(), 500), dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    exact = chamfer_terms("exact", target, 1000, gen)(curve)[0]
    subset = chamfer_terms("subset", target, 1000, gen)(curve)[0]
    assert float(exact.mean()) < 1e-4  # a tenth of epsilon (the two resamplings cut corners differently)
    assert float(subset.mean()) > 1e-3


def test_fold_term_is_zero_for_a_curve_that_follows_the_target_and_sees_fold_backs():
    target = torch.tensor(C.circle(2000), dtype=torch.float32)
    seg = D.polyline_segments(target)
    smooth = torch.tensor(C.circle(300) * 1.02, dtype=torch.float32)  # off the target, but in order
    assert float(fold_penalty(smooth, target, D.nearest(smooth, seg))) == 0.0
    folded = smooth.clone()
    folded[100:104] = folded[[103, 101, 102, 100]]  # two points swapped along the curve
    assert float(fold_penalty(folded, target, D.nearest(folded, seg))) > 0.0


def test_fold_term_does_not_depend_on_how_densely_the_curve_is_sampled():
    # A circle that runs backwards on five stretches (dθ/ds = 1 + 1.5 cos 5s < 0 there), sampled at 300 and
    # 1200 points: the backwards length is the same geometry, so the term must be too (a mean over the
    # points would fall four times, and the weight of the term with it).
    target = torch.tensor(C.circle(4000), dtype=torch.float32)
    seg = D.polyline_segments(target)
    values = []
    for n in (300, 1200):
        s = np.linspace(0, 2 * np.pi, n, endpoint=False)
        theta = s + 0.3 * np.sin(5 * s)
        curve = torch.tensor(np.stack([np.cos(theta), np.sin(theta)], axis=1), dtype=torch.float32)
        values.append(float(fold_penalty(curve, target, D.nearest(curve, seg))))
    assert values[0] > 0
    assert values[1] == pytest.approx(values[0], rel=0.03)


def test_crossing_pairs_and_penalty():
    rng = np.random.default_rng(1)
    # Sizes around the search's chunk of 16 edges (a padded last chunk, one chunk, several), and a
    # figure eight whose far-apart stretches cross: the same pairs as the all-pairs reference.
    for n in (5, 16, 17, 120, 333):
        for scale in (0.03, 0.3):
            pts = C.circle(n) + rng.normal(scale=scale, size=(n, 2))
            i, j = crossing_pairs(torch.tensor(pts))
            ref_i, ref_j = reference_pairs([pts])
            assert sorted(zip(i.tolist(), j.tolist())) == sorted(zip(ref_i.tolist(), ref_j.tolist()))
            assert torch.all(i < j) and torch.all(torch.diff(i * n + j) > 0)  # ascending ids, each pair once
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False) + 0.01  # the crossing falls inside two edges
    eight = np.stack([np.sin(t), np.sin(2 * t)], axis=1)
    assert len(crossing_pairs(torch.tensor(eight))[0]) == C.count_self_intersections(eight) == 1
    clean = torch.tensor(C.circle(100), requires_grad=True)
    assert float(crossing_penalty(clean, *crossing_pairs(clean)).detach()) == 0.0
    bow = torch.tensor([[0, 0], [1, 1], [1, 0], [0, 1]], dtype=torch.float64, requires_grad=True)
    pen = crossing_penalty(bow, *crossing_pairs(bow))
    pen.backward()
    assert float(pen.detach()) == pytest.approx(np.sqrt(0.5))  # each end sits 1/sqrt(2) from the other diagonal
    assert float(bow.grad.abs().sum()) > 0


def test_tracked_nearest_matches_every_pair_while_curve_moves():
    # A curve sliding and shrinking towards the wavy target: every call the trackers (chunk search every
    # few calls, certified in between, full fall-back otherwise) give the same element as checking all
    # pairs, ties included (the lowest index of equally near elements).
    target = torch.tensor(C.resample_closed(wavy(), 1200), dtype=torch.float32)
    segments = D.polyline_segments(target)
    to_target, to_curve = D.SegmentTracker(segments, every=4), D.PointTracker(target, every=4)
    base = torch.tensor(C.circle(300), dtype=torch.float32)
    for step in range(12):
        s = step / 11
        curve = base * (1.2 - 0.6 * s) + torch.tensor([0.02 * step, 0.0]) + 0.05 * s * torch.sin(40 * base)
        rows = slice(step % 3, None, 3)
        assert torch.equal(to_target(curve), D.nearest_brute(curve, segments)[0])
        assert torch.equal(D.nearest(curve, segments), D.nearest_brute(curve, segments)[0])
        want = D.nearest_brute(target[rows], D.point_elements(curve))[0]
        assert torch.equal(to_curve(curve, rows), want)
    # a point exactly at a shared vertex is nearest to both segments: the lower index wins on every path
    vertex = target[7:8].clone()
    assert int(D.SegmentTracker(segments)(vertex)[0]) == int(D.nearest(vertex, segments)[0]) == 6
