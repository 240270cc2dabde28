"""Writing a deformation's results: SVG, NPZ, OBJ, overlay PNG, metrics JSON and the optimisation GIF."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ... import curve as C
from ...fileio import atomic_write, json_safe
from ...viz.curves import draw_overlay_png, save_gif
from .fit import DeformResult


def save_outputs(
    result: DeformResult,
    out_dir: str | Path,
    target_contour: C.Contour | None = None,
    *,
    gif: bool = False,
    name: str = "deformed",
    gif_frames: int = 100,
) -> dict[str, str]:
    """Write ``<name>.svg``, ``.npz``, ``.obj``, ``overlay.png``, ``metrics.json`` (and ``optimisation.gif``).

    SVG / OBJ / NPZ ``points`` are in the target's frame (image pixels for an image target). The NPZ also
    holds ``points_normalized``, ``levels``, ``tau``, ``snapshot_steps``, ``snapshots`` (target frame),
    ``target`` and ``normalization`` (JSON). The PNG and GIF are drawn in the normalised frame (y up).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    y_down = bool(target_contour.y_down) if target_contour is not None else result.normalization.flip_y
    size = target_contour.image_size if target_contour is not None else None
    tgt_own = target_contour.points if target_contour is not None else result.target
    paths["svg"] = str(C.save_curve_svg(result.curve, out / f"{name}.svg", y_down=y_down, size=size, target=tgt_own))
    snaps = result.snapshots
    paths["npz"] = str(
        C.save_curve_npz(
            result.curve,
            out / f"{name}.npz",
            points_normalized=result.curve_normalized,
            levels=result.levels if result.levels is not None else np.zeros(0),
            tau=result.tau,
            snapshot_steps=np.asarray([s for s, _ in snaps], dtype=np.int64),
            snapshots=np.stack([p for _, p in snaps]) if snaps else np.zeros((0,) + result.curve.shape),
            target=result.target,
            normalization=json.dumps(result.normalization.to_dict()),
        )
    )
    paths["obj"] = str(C.save_curve_obj(result.curve, out / f"{name}.obj"))
    paths["overlay"] = str(
        draw_overlay_png(result.target_normalized, result.curve_normalized, out / "overlay.png", levels=result.levels)
    )
    if gif:
        idx = np.unique(np.linspace(0, len(snaps) - 1, min(gif_frames, len(snaps))).round().astype(int))
        frames = [result.normalization.apply(snaps[i][1]) for i in idx]
        paths["gif"] = str(save_gif(frames, result.target_normalized, out / "optimisation.gif"))
    metrics_path = out / "metrics.json"
    text = json.dumps(json_safe({"metrics": result.metrics, "timings": result.timings}), indent=2, sort_keys=True)
    atomic_write(metrics_path, lambda tmp: Path(tmp).write_text(text + "\n"))
    paths["metrics"] = str(metrics_path)
    return paths
