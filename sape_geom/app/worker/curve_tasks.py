"""The worker's curve task: ``deform`` (2D silhouette deformation of one or more loops onto a target,
given as points or as an image) and :func:`_split_loops`, which splits ``target_points`` at
``target_offsets``. numpy and torch are imported inside the task, after the ``started`` event.
"""

from __future__ import annotations

from typing import Any, cast

from ...fileio import save_npz
from .context import TaskContext
from .settings import DeformSettings, JobError, parse_settings


def task_deform(ctx: TaskContext) -> dict[str, Any]:
    s = parse_settings(DeformSettings, "deform", ctx.settings)
    arrays = ctx.load_inputs(())
    import numpy as np

    from ...curve import ContourSet, load_contours

    if s.target_image:
        shape = load_contours(s.target_image)
        # image pixels (y down) -> the normalised y-up frame of the whole shape (every loop, holes too)
        norm = shape.normalization()
        target: Any = ContourSet(
            tuple(norm.apply(p) for p in shape.loops), shape.holes, source=s.target_image, dropped=shape.dropped
        )
    elif "target_points" in arrays:
        target = _split_loops(np.asarray(arrays["target_points"], dtype=np.float64), arrays.get("target_offsets"))
    else:
        raise JobError("the deform task needs input array 'target_points' or settings.target_image")

    from ...tasks.silhouette import deform_shape

    # deform_shape checks the curves (shape, finite values, at least 3 distinct points per loop)
    result = deform_shape(
        target, s.deform_config(), sources=arrays.get("source_points"), callbacks=ctx.train_callbacks()
    )
    parts, steps = result.parts, result.snapshot_steps
    frames = [np.vstack(result.snapshot(step)) for step in steps]
    total = sum(len(p.curve) for p in parts)
    first = parts[0]  # the largest outer loop: what single-curve clients read (curve, levels, snapshots)

    def f32(a) -> np.ndarray:
        return np.asarray(a, dtype=np.float32)

    def offsets(arrays_) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(a) for a in arrays_])]).astype(np.int64)

    path = save_npz(
        ctx.output_dir / "curves.npz",
        curve=f32(first.curve),
        levels=np.zeros(0, np.float32) if first.levels is None else f32(first.levels),
        snapshot_steps=np.asarray(steps, dtype=np.int64),
        snapshots=(
            np.stack([f32(dict(first.snapshots)[step]) for step in steps])
            if steps
            else np.zeros((0,) + first.curve.shape, np.float32)
        ),
        target=f32(result.target_loops[0]),
        contour_points=f32(np.vstack(result.curves)),
        contour_offsets=offsets(result.curves),
        contour_holes=np.asarray(result.holes, dtype=bool),
        contour_levels=(
            f32(np.concatenate(cast("list[np.ndarray]", result.levels)))  # all set: the test below
            if all(lv is not None for lv in result.levels)
            else np.zeros(0, np.float32)
        ),
        contour_snapshots=np.stack([f32(f) for f in frames]) if frames else np.zeros((0, total, 2), np.float32),
        contour_targets=f32(np.vstack(result.target_loops)),
        contour_target_offsets=offsets(result.target_loops),
    )
    return {"curves": str(path), "metrics": result.metrics, "contours": len(parts)}


def _split_loops(points: Any, offsets: Any) -> Any:
    """``target_points`` as one loop, or as several when ``target_offsets`` (K + 1 indices) is given."""
    import numpy as np

    if offsets is None:
        return points
    o = np.asarray(offsets).ravel()
    if o.dtype.kind not in "iu" or len(o) < 2 or o[0] != 0 or o[-1] != len(points) or np.any(np.diff(o) < 3):
        raise JobError(
            f"input 'target_offsets' must rise from 0 to {len(points)} by at least 3 points per loop, got {o.tolist()}"
        )
    return [points[a:b] for a, b in zip(o[:-1], o[1:])]
