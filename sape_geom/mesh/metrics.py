"""Mesh quality metrics with the Occupancy Networks conventions.

Both meshes are moved into the *reference's metric frame*: the reference bounding box centred at the
origin and scaled so that its longest side is 1; the same similarity is applied to the prediction.
All distances below are in that frame.
"""

from __future__ import annotations

import numpy as np
import trimesh

from ..errors import InputError
from .cleanup import count_components
from .outer import outer_surface, solid_pieces
from .queries import MeshQueries
from .sampling import inside_outside, sample_surface
from .surface_points import triangle_normals

__all__ = ["mesh_metrics", "reference_frame"]


def reference_frame(ref_mesh: trimesh.Trimesh) -> tuple[np.ndarray, float]:
    """(centre (3,), scale) such that ``(v - centre) * scale`` puts ``ref_mesh`` in the metric frame."""
    V = np.asarray(ref_mesh.vertices, dtype=np.float64)
    if len(V) == 0 or len(ref_mesh.faces) == 0:
        raise InputError("reference mesh is empty")
    lo, hi = V.min(axis=0), V.max(axis=0)
    longest = float((hi - lo).max())
    if not longest > 0:
        raise InputError("reference mesh is degenerate (zero extent)")
    return 0.5 * (lo + hi), 1.0 / longest


def _surface_samples(V: np.ndarray, F: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted points (n,3) and the unit normals (n,3) of the faces they lie on."""
    pts, face = sample_surface(V, F, n, rng, mode="area")
    return pts, triangle_normals(V[F[face]])[0]


DEVIATING_ANGLE = 30.0
"""Degrees: fitted surface whose normal is further than this from the reference's is a pit, a bump or a
fold that shading shows at once (``deviating_area``)."""


def _empty_metrics(threshold: float) -> dict:
    return {
        "iou": 0.0,
        "chamfer_l1": float("inf"),
        "accuracy": float("inf"),
        "completeness": float("inf"),
        "normal_consistency": 0.0,
        "normal_angle_p50": 180.0,
        "normal_angle_p90": 180.0,
        "deviating_area": 1.0,
        "fscore": 0.0,
        "precision": 0.0,
        "recall": 0.0,
        "fscore_threshold": threshold,
        "fscore_fine": 0.0,
        "components": 0,
    }


def mesh_metrics(
    pred_mesh: trimesh.Trimesh,
    ref_mesh: trimesh.Trimesh,
    n_points: int = 100_000,
    seed: int = 0,
    iou_points: int = 100_000,
    padding: float = 0.1,
    fscore_threshold: float = 0.01,
) -> dict:
    """Compare a predicted mesh with a reference, both given in the same (any) frame.

    Returns a dict of floats:
    * ``iou``: volumetric IoU over ``iou_points`` uniform points in the cube of side ``1 + padding``
      around the reference (Occupancy Networks' box), inside-ness by fast winding number > 0.5;
    * ``chamfer_l1`` = 0.5 * (``accuracy`` + ``completeness``): mean Euclidean distance from ``n_points``
      area-weighted surface samples of the prediction to the reference surface, and back;
    * ``normal_consistency``: mean |n_sample . n_closest_face|, averaged over both directions;
    * ``normal_angle_p50`` and ``normal_angle_p90``: the median and 90th percentile, over the prediction's
      samples, of the angle in degrees between the sample's normal and its closest reference face's (sides
      ignored), which show the bumps and pits that the mean hides; ``deviating_area``, the fraction of the
      prediction's area where that angle exceeds :data:`DEVIATING_ANGLE`;
    * ``fscore`` (with ``precision``, ``recall``) at distance ``fscore_threshold`` (1 % of the side), and
      ``fscore_fine`` at half that distance (0.5 %), which still tells good fits apart when 1 % saturates;
    * ``components`` and ``components_input``: face-connected pieces of the prediction, and the separate
      solids of the reference (its face-connected parts, overlapping ones joined: :func:`.outer.solid_pieces`).
    The surface metrics compare with the reference's outer surface: faces buried inside it (overlapping
    parts, :mod:`.outer`) are no part of the shape a fit can show. An empty prediction gives iou 0, infinite distances, 0 for the rest.
    """
    center, scale = reference_frame(ref_mesh)
    Vr = (np.asarray(ref_mesh.vertices, np.float64) - center) * scale
    Fr = np.asarray(ref_mesh.faces, np.int64)
    if len(pred_mesh.faces) == 0 or len(pred_mesh.vertices) == 0:
        return {**_empty_metrics(fscore_threshold), "components_input": count_components(ref_mesh)}
    Vp = (np.asarray(pred_mesh.vertices, np.float64) - center) * scale
    Fp = np.asarray(pred_mesh.faces, np.int64)
    rng = np.random.default_rng(seed)
    reference = MeshQueries(Vr, Fr)  # one tree for the reference's winding numbers, IoU and outer surface
    out = {"iou": _iou(Vp, Fp, Vr, Fr, iou_points, padding, rng, reference)}
    outer = outer_surface(Vr, Fr, reference, seed=seed)
    out.update(_surface_metrics(Vp, Fp, outer.vertices, outer.faces, n_points, fscore_threshold, rng))
    out["components"] = count_components(pred_mesh)
    out["components_input"] = solid_pieces(Vr, Fr, outer)
    return out


def _iou(Vp, Fp, Vr, Fr, n: int, padding: float, rng: np.random.Generator, reference: MeshQueries) -> float:
    """Volumetric IoU on ``n`` uniform points in ``[-(1+padding)/2, (1+padding)/2]^3``."""
    pts = (rng.random((int(n), 3)) - 0.5) * (1.0 + padding)
    occ_p = inside_outside(Vp, Fp, pts)
    occ_r = inside_outside(Vr, Fr, pts, queries=reference)
    union = np.count_nonzero(occ_p | occ_r)
    return float(np.count_nonzero(occ_p & occ_r) / union) if union else 0.0


def _closest_on_mesh(points: np.ndarray, V: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact distance from each point to the triangle mesh (V, F), and the unit normal of the closest face."""
    squared, face = MeshQueries(V, F).squared_distance(points)  # libigl's, in parts for a big mesh
    return np.sqrt(np.maximum(squared, 0.0)), triangle_normals(V[F[face]])[0]


def _surface_metrics(Vp, Fp, Vr, Fr, n: int, tau: float, rng: np.random.Generator) -> dict:
    """Chamfer-L1, normal consistency and F-score from surface samples of each mesh to the other mesh.

    Distances are exact point-to-surface distances (not to the other mesh's samples), so a perfect
    reconstruction scores 0 rather than the sampling floor of a point-cloud comparison (about 0.003 for
    100k samples on a bunny-sized surface).
    """
    areas = trimesh.triangles.area(Vp[Fp])
    if not areas.sum() > 0:
        return {k: v for k, v in _empty_metrics(tau).items() if k not in ("iou", "components")}
    pp, np_ = _surface_samples(Vp, Fp, int(n), rng)
    pr, nr = _surface_samples(Vr, Fr, int(n), rng)
    d_pr, n_at_ref = _closest_on_mesh(pp, Vr, Fr)  # pred -> ref: accuracy
    d_rp, n_at_pred = _closest_on_mesh(pr, Vp, Fp)  # ref -> pred: completeness
    accuracy, completeness = float(d_pr.mean()), float(d_rp.mean())
    cos_p = np.abs(np.sum(np_ * n_at_ref, axis=1))
    nc_p = cos_p.mean()
    nc_r = np.abs(np.sum(nr * n_at_pred, axis=1)).mean()
    angle = np.degrees(np.arccos(np.clip(cos_p, 0.0, 1.0)))  # area-weighted samples: percentiles by area
    precision, recall = float((d_pr < tau).mean()), float((d_rp < tau).mean())
    return {
        "chamfer_l1": 0.5 * (accuracy + completeness),
        "accuracy": accuracy,
        "completeness": completeness,
        "normal_consistency": float(0.5 * (nc_p + nc_r)),
        "normal_angle_p50": float(np.percentile(angle, 50)),
        "normal_angle_p90": float(np.percentile(angle, 90)),
        "deviating_area": float((angle > DEVIATING_ANGLE).mean()),
        "fscore": _fscore(precision, recall),
        "precision": precision,
        "recall": recall,
        "fscore_threshold": tau,
        "fscore_fine": _fscore(float((d_pr < tau / 2).mean()), float((d_rp < tau / 2).mean())),
    }


def _fscore(precision: float, recall: float) -> float:
    return float(2 * precision * recall / (precision + recall)) if precision + recall > 0 else 0.0
