"""Silhouettes with holes and several parts: every loop deformed from its own source, one result.

Each loop of the target (outer contours and holes, see :class:`sape_geom.curve.ContourSet`) is deformed
by :func:`deform_curve` in its own normalised frame, so a small hole is fitted as carefully as the outline
and the settings (ε, σ, the circle source) mean the same for every loop. The shape is the even-odd fill
of the deformed loops; metrics compare it with the target's in one frame for the whole shape.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ... import curve as C
from ...errors import ConfigError, InputError
from .config import DeformConfig
from .fit import DeformResult, deform_curve

MIN_LOOP_POINTS = 100
"""Fewest curve points a loop gets (loops share ``DeformConfig.points`` by perimeter)."""


@dataclass(frozen=True, eq=False)
class ShapeResult:
    """What :func:`deform_shape` returns: one :class:`DeformResult` per target loop, largest first."""

    parts: tuple[DeformResult, ...]
    holes: tuple[bool, ...]
    """Whether each loop bounds a hole (the shape is the even-odd fill of all loops)."""
    normalization: C.CurveNormalization
    """Target frame -> the shape's normalised frame (all loops' bounding box, farthest point at 1)."""
    metrics: dict[str, Any]
    timings: dict[str, float]
    target_loops: tuple[np.ndarray, ...]
    """The target's loops as loaded, in its own frame."""

    @property
    def curves(self) -> list[np.ndarray]:
        """Deformed loops in the target's frame."""
        return [p.curve for p in self.parts]

    @property
    def curves_normalized(self) -> list[np.ndarray]:
        """Deformed loops in the shape's normalised frame (y up)."""
        return [self.normalization.apply(p.curve) for p in self.parts]

    @property
    def targets_normalized(self) -> list[np.ndarray]:
        """The dense target samples of every loop, in the shape's normalised frame."""
        return [self.normalization.apply(p.target) for p in self.parts]

    @property
    def levels(self) -> list[np.ndarray | None]:
        return [p.levels for p in self.parts]

    @property
    def snapshot_steps(self) -> list[int]:
        """Steps kept by every loop's run (the same settings give the same steps)."""
        common = set.intersection(*({s for s, _ in p.snapshots} for p in self.parts))
        return sorted(common)

    def snapshot(self, step: int) -> list[np.ndarray]:
        """Every loop at ``step``, in the target's frame."""
        return [dict(p.snapshots)[step] for p in self.parts]


def as_contour_set(target: Any, what: str = "target") -> C.ContourSet:
    """A :class:`ContourSet` from a ContourSet, a Contour, a path, an (N, 2) array or a list of arrays."""
    if isinstance(target, C.ContourSet):
        return target
    if isinstance(target, C.Contour):
        return C.ContourSet((target.points,), (False,), target.kind, target.y_down, target.image_size, target.source)
    if isinstance(target, (str, Path)):
        return C.load_contours(target)
    if isinstance(target, (list, tuple)) and target and np.ndim(target[0]) == 2:
        return C.ContourSet.from_loops([np.asarray(p, dtype=np.float64) for p in target], source=what)
    return C.ContourSet((C.clean_polyline(target, f"{what} curve"),), (False,), source="")


def _sources(sources: Any, count: int) -> list[Any]:
    if sources is None or (isinstance(sources, str) and sources == "circle"):
        return [None] * count
    loops = as_contour_set(sources, "source")
    if len(loops) == 1:
        return [loops.contour(0)] * count
    if len(loops) == count:
        return [loops.contour(k) for k in range(count)]
    raise InputError(
        f"the source has {len(loops)} loops and the target {count}: give one source loop "
        "(used for every loop) or one per target loop"
    )


def loop_points(loops: tuple[np.ndarray, ...], points: int) -> list[int]:
    """Curve points per loop: ``points`` for the longest, the others by perimeter, at least
    :data:`MIN_LOOP_POINTS` (or ``points`` when that is smaller)."""
    length = np.array([C.curve_length(p) for p in loops])
    share = np.round(points * length / length.max()).astype(int)
    return [int(max(min(points, MIN_LOOP_POINTS), n)) for n in share]


def deform_shape(
    target: Any, config: DeformConfig = DeformConfig(), sources: Any = None, callbacks: Any = None
) -> ShapeResult:
    """Deform a source onto every loop of ``target`` (a path, :class:`ContourSet`, Contour or arrays).

    ``sources``: None (a circle per loop), one curve used for every loop, or as many loops as the target
    has (paired in order, largest first). ``callbacks`` as for :func:`deform_curve`; with several loops the
    progress stages read ``calibration k/K`` and ``deform k/K``.
    """
    if not isinstance(config, DeformConfig):
        raise ConfigError(f"config must be a DeformConfig, got {type(config).__name__}")
    t0 = time.perf_counter()
    shape = as_contour_set(target)
    count = len(shape)
    source_list = _sources(sources, count)
    parts = []
    for k, n in enumerate(loop_points(shape.loops, config.points)):
        suffix = f" {k + 1}/{count}" if count > 1 else ""
        cfg = config if n == config.points else dataclasses.replace(config, points=n)
        parts.append(
            deform_curve(shape.contour(k), cfg, source_points=source_list[k], callbacks=callbacks, stage_suffix=suffix)
        )
    norm = shape.normalization()
    curves = [norm.apply(p.curve) for p in parts]
    # run statistics of the largest loop, geometry of the whole shape, every loop under per_contour
    metrics: dict[str, Any] = dict(parts[0].metrics)
    metrics.update(C.shape_metrics(curves, [norm.apply(p.target) for p in parts]))
    levels = [p.levels for p in parts if p.levels is not None]
    first = parts[0].metrics
    metrics.update(
        contours=count,
        holes=int(sum(shape.holes)),
        dropped_loops=int(shape.dropped),
        target_self_intersections=C.count_crossings(shape.loops),
        steps=first["steps"],
        steps_per_s=float(np.mean([p.metrics["steps_per_s"] for p in parts])),
        steps_to_5pct=int(max(p.metrics["steps_to_5pct"] for p in parts)),
        encoding=first["encoding"],
        calibration_steps=int(max(p.metrics["calibration_steps"] for p in parts)),
        network_self_intersections=int(sum(p.metrics["network_self_intersections"] for p in parts)),
        points_cut=int(sum(p.metrics["points_cut"] for p in parts)),
        per_contour=[dict(p.metrics, hole=h, points=len(p.curve)) for p, h in zip(parts, shape.holes)],
    )
    if levels:
        metrics["mean_open_fraction"] = float(np.concatenate(levels).mean())
    timings = {key: float(sum(p.timings[key] for p in parts)) for key in ("calibration_s", "fit_s")}
    timings["total_s"] = time.perf_counter() - t0
    return ShapeResult(tuple(parts), shape.holes, norm, metrics, timings, shape.loops)


__all__ = ["MIN_LOOP_POINTS", "ShapeResult", "as_contour_set", "deform_shape", "loop_points"]
