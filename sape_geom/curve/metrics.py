"""How close a fitted closed curve is to its target: Chamfer, Hausdorff, filled IoU, self-intersections."""

from __future__ import annotations

import numpy as np

from .contour import as_points

def nearest_distances(a: np.ndarray, b: np.ndarray, block: int = 4_000_000) -> np.ndarray:
    """For every point of ``a`` the Euclidean distance to its nearest point of ``b`` (blocked numpy)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    rows = max(1, block // max(1, len(b)))
    out = np.empty(len(a))
    bb = (b**2).sum(axis=1)
    for s in range(0, len(a), rows):
        aa = a[s : s + rows]
        d2 = (aa**2).sum(axis=1)[:, None] + bb[None, :] - 2.0 * aa @ b.T
        out[s : s + rows] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def count_self_intersections(points: np.ndarray, block: int = 256) -> int:
    """Number of pairs of non-adjacent segments of the closed polyline that properly cross.

    Touching at an end point or collinear overlap does not count (proper intersections only).
    """
    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    if n < 4:
        return 0
    a0 = p
    a1 = np.roll(p, -1, axis=0)
    total = 0
    idx = np.arange(n)
    for s in range(0, n, block):
        i = idx[s : s + block]
        P0, P1 = a0[i][:, None, :], a1[i][:, None, :]
        Q0, Q1 = a0[None, :, :], a1[None, :, :]

        def orient(u, v, w):
            return (v[..., 0] - u[..., 0]) * (w[..., 1] - u[..., 1]) - (v[..., 1] - u[..., 1]) * (
                w[..., 0] - u[..., 0]
            )

        d1 = orient(P0, P1, Q0)
        d2 = orient(P0, P1, Q1)
        d3 = orient(Q0, Q1, P0)
        d4 = orient(Q0, Q1, P1)
        cross = (d1 * d2 < 0) & (d3 * d4 < 0)
        j = idx[None, :]
        ii = i[:, None]
        valid = (j > ii + 1) & ~((ii == 0) & (j == n - 1))
        total += int((cross & valid).sum())
    return total


def rasterize_polygon(points: np.ndarray, bbox: tuple[float, float, float, float], size: int = 512) -> np.ndarray:
    """Boolean (size, size) fill of the closed polygon over ``bbox = (xmin, ymin, xmax, ymax)``."""
    from PIL import Image, ImageDraw

    xmin, ymin, xmax, ymax = bbox
    span = max(xmax - xmin, ymax - ymin, 1e-12)
    p = (np.asarray(points, dtype=np.float64) - [xmin, ymin]) / span * (size - 1)
    img = Image.new("1", (size, size), 0)
    ImageDraw.Draw(img).polygon([tuple(map(float, q)) for q in p], fill=1, outline=1)
    return np.asarray(img, dtype=bool)


def polygon_iou(a: np.ndarray, b: np.ndarray, size: int = 512) -> float:
    """IoU of the filled polygons rasterised at ``size`` x ``size`` over their joint bounding box."""
    both = np.vstack([a, b])
    lo, hi = both.min(axis=0), both.max(axis=0)
    bbox = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
    ma, mb = rasterize_polygon(a, bbox, size), rasterize_polygon(b, bbox, size)
    union = np.logical_or(ma, mb).sum()
    return float(np.logical_and(ma, mb).sum() / union) if union else 0.0


def curve_metrics(pred: np.ndarray, target: np.ndarray, iou_size: int = 512) -> dict[str, float | int]:
    """Metrics of a predicted closed curve against a target (both in the normalised frame).

    * ``chamfer``: ``(mean_p min_q |p-q| + mean_q min_p |q-p|) / 2`` (symmetric, Euclidean, mean of both
      directions); pass the full target contour as ``target``;
    * ``chamfer_sum``: the two terms added (the training loss's form);
    * ``hausdorff``: the larger of both directed maxima;
    * ``iou``: filled polygons rasterised at ``iou_size``² over their joint bounding box (Pillow);
    * ``self_intersections``: of ``pred`` (see :func:`count_self_intersections`).
    """
    p = as_points(pred, "predicted curve")
    q = as_points(target, "target curve")
    d_pq = nearest_distances(p, q)
    d_qp = nearest_distances(q, p)
    return {
        "chamfer": float(0.5 * (d_pq.mean() + d_qp.mean())),
        "chamfer_sum": float(d_pq.mean() + d_qp.mean()),
        "hausdorff": float(max(d_pq.max(), d_qp.max())),
        "iou": polygon_iou(p, q, iou_size),
        "self_intersections": count_self_intersections(p),
    }


