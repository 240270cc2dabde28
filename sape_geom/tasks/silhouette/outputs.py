"""Writing a deformation's results: SVG, NPZ, OBJ, overlay PNG, metrics JSON and the optimisation GIF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import numpy as np

from ... import curve as C
from ...fileio import atomic_write, json_safe
from ...viz.curves import draw_overlay_png, save_gif
from .fit import DeformResult
from .shape import ShapeResult


def as_shape_result(result: DeformResult | ShapeResult) -> ShapeResult:
    """A single-loop :class:`DeformResult` as a one-part :class:`ShapeResult` (same frames, same metrics)."""
    if isinstance(result, ShapeResult):
        return result
    return ShapeResult((result,), (False,), result.normalization, result.metrics, result.timings, (result.target,))


def save_outputs(
    result: DeformResult | ShapeResult,
    out_dir: str | Path,
    target_contour: C.Contour | C.ContourSet | None = None,
    *,
    gif: bool = False,
    name: str = "deformed",
    gif_frames: int = 100,
) -> dict[str, str]:
    """Write ``<name>.svg``, ``.npz``, ``.obj``, ``overlay.png``, ``metrics.json`` (and ``optimisation.gif``).

    Every loop (outer contours and holes) is written: one SVG path with a sub-path per loop
    (``fill-rule="evenodd"``), one OBJ ``l`` element per loop, and NPZ arrays stacked loop after loop with
    ``contour_offsets`` (K + 1) and ``contour_holes`` (K) to split them. SVG / OBJ / NPZ ``points`` are in
    the target's frame (image pixels for an image target). The NPZ also holds ``points_normalized`` (the
    shape's normalised frame), ``levels``, ``tau``, ``snapshot_steps``, ``snapshots`` (S, points, 2; target
    frame), ``target`` (with ``target_offsets``) and ``normalization`` (JSON). The PNG and GIF are drawn in
    the normalised frame (y up), the PNG coloured by SAPE level.
    """
    shape = as_shape_result(result)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    y_down = bool(target_contour.y_down) if target_contour is not None else shape.normalization.flip_y
    size = target_contour.image_size if target_contour is not None else None
    if isinstance(target_contour, C.ContourSet):
        tgt_own = list(target_contour.loops)
    else:
        tgt_own = [target_contour.points] if target_contour is not None else list(shape.target_loops)
    curves = shape.curves
    paths["svg"] = str(C.save_curve_svg(curves, out / f"{name}.svg", y_down=y_down, size=size, target=tgt_own))
    steps = shape.snapshot_steps
    frames = [shape.snapshot(s) for s in steps]
    parts = shape.parts
    dense = [p.target for p in parts]
    paths["npz"] = str(
        C.save_curve_npz(
            curves,
            out / f"{name}.npz",
            holes=shape.holes,
            points_normalized=np.vstack(shape.curves_normalized),
            levels=(
                np.concatenate(cast("list[np.ndarray]", [p.levels for p in parts]))
                if all(p.levels is not None for p in parts)
                else np.zeros(0)
            ),
            tau=np.concatenate([p.tau for p in parts]),
            snapshot_steps=np.asarray(steps, dtype=np.int64),
            snapshots=(
                np.stack([np.vstack(f) for f in frames]) if frames else np.zeros((0, sum(len(c) for c in curves), 2))
            ),
            target=np.vstack(dense),
            target_offsets=np.concatenate([[0], np.cumsum([len(t) for t in dense])]).astype(np.int64),
            normalization=json.dumps(shape.normalization.to_dict()),
        )
    )
    paths["obj"] = str(C.save_curve_obj(curves, out / f"{name}.obj"))
    levels = shape.levels if any(lv is not None for lv in shape.levels) else None
    paths["overlay"] = str(
        draw_overlay_png(shape.targets_normalized, shape.curves_normalized, out / "overlay.png", levels=levels)
    )
    if gif and frames:
        idx = np.unique(np.linspace(0, len(frames) - 1, min(gif_frames, len(frames))).round().astype(int))
        shown = [[shape.normalization.apply(c) for c in frames[i]] for i in idx]
        paths["gif"] = str(save_gif(shown, shape.targets_normalized, out / "optimisation.gif"))
    metrics_path = out / "metrics.json"
    text = json.dumps(json_safe({"metrics": shape.metrics, "timings": shape.timings}), indent=2, sort_keys=True)
    atomic_write(metrics_path, lambda tmp: Path(tmp).write_text(text + "\n"))
    paths["metrics"] = str(metrics_path)
    return paths
