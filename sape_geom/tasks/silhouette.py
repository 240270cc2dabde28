"""2-D silhouette deformation (docs/method.md §6.4): deform a closed source curve onto a target silhouette.

An encoded MLP maps the curve parameter ``τ ∈ (-1, 1)`` (1-D input) to a 2-D point. Stage 1
(calibration) fits it to the source curve by MSE; stage 2 minimises the symmetric Chamfer loss to the
target contour, with the SAPE mask over ``τ`` fed by the first Chamfer term's per-point distance.

Frames: everything is fitted in the normalised frame of :mod:`sape_geom.curve.contour` (bounding-box centre at
the origin, farthest point at 1, y up, curves counter-clockwise). The source is normalised the same way
(its own bounding box and scale), so morphing between any two closed curves works. Results come back in
the target's own frame (image pixels, y down, for images) and in the normalised frame.

Differences from the reference code, on purpose:

* the target contour is resampled uniformly by arc length to ``target_samples`` points instead of the
  reference's midpoint densification; every step still draws at most ``max_target_samples`` of them;
* ``offset=True`` parametrises the curve as ``source(τ) + MLP(τ)`` (the project page's description, docs/method.md D2);
  calibration then drives the MLP to zero. Default off (the code's absolute positions);
* seeds are set (the reference sets none).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import numpy as np

from .. import curve as C
from ..config import FieldConfig, ProgressConfig
from ..errors import ConfigError, InputError
from ..fileio import atomic_write, json_safe
from ..viz.curves import draw_overlay_png, save_gif

DEFAULT_LR = {"none": 1e-4}
"""Per-encoding default learning rate of the Chamfer stage; every other encoding uses 1e-5 (docs/method.md §6.4)."""


def _default_field() -> FieldConfig:
    return FieldConfig(encoding="sape", sigma=5.0, num_frequencies=256, hidden_width=256, hidden_layers=2)


def _default_progress() -> ProgressConfig:
    return ProgressConfig(epsilon=1e-3, grid_resolution=128, blur_kernel=5, num_blocks=6)


@dataclass(frozen=True)
class DeformConfig:
    """Settings of the silhouette deformation; defaults are the method's (docs/method.md §6.4, §7)."""

    field: FieldConfig = dc_field(default_factory=_default_field)
    """Encoding and MLP: SAPE over FF, σ = 5, 256 frequencies, 2 hidden layers of 256."""
    progress: ProgressConfig = dc_field(default_factory=_default_progress)
    """SAPE / global progression: 6 blocks, ε = 1e-3, 128 grid nodes over τ, blur k = 5."""
    steps: int = 10_000
    """Chamfer optimisation steps (stage 2)."""
    lr: float | None = None
    """Adam learning rate of stage 2; None = 1e-4 for ``none``, 1e-5 for every other encoding."""
    calibration_steps: int = 5000
    """Upper bound of stage 1 (fit to the source); 0 skips calibration."""
    calibration_lr: float = 1e-4
    calibration_tolerance: float = 1e-4
    """Stage 1 stops as soon as the MSE to the source is <= this."""
    points: int = 500
    """Number of curve points (τ samples) of the deformed curve."""
    target_samples: int | None = None
    """Target contour resampled to this many points (uniform arc length) for the loss and the metrics;
    None = max(2000, number of contour vertices), at most 20000."""
    max_target_samples: int = 1000
    """Random subset of target points drawn per step (docs/method.md §6.4: at most 1000)."""
    offset: bool = False
    """Parametrise the curve as source + MLP output (docs/method.md D2) instead of absolute positions."""
    snapshot_every: int = 50
    """Keep the curve every this many steps (plus step 0 and the last step); 0 = only those two."""
    snapshot_steps: tuple[int, ...] = ()
    """Further steps at which to keep the curve (e.g. for an animation with a custom timing)."""
    seed: int = 0
    device: str = "auto"
    """``auto``, ``cpu``, ``cuda``, ``mps``."""

    def __post_init__(self) -> None:
        if not isinstance(self.field, FieldConfig) or not isinstance(self.progress, ProgressConfig):
            raise ConfigError("DeformConfig.field / .progress must be FieldConfig / ProgressConfig")
        for name in ("steps", "points", "max_target_samples"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name in ("calibration_steps", "snapshot_every", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {v!r}")
        try:
            steps = tuple(sorted({int(v) for v in self.snapshot_steps}))
        except (TypeError, ValueError):
            raise ConfigError(f"snapshot_steps must be integers, got {self.snapshot_steps!r}") from None
        if any(v < 0 for v in steps):
            raise ConfigError(f"snapshot_steps must be >= 0, got {self.snapshot_steps!r}")
        object.__setattr__(self, "snapshot_steps", steps)
        if self.points < 3:
            raise ConfigError(f"points must be at least 3, got {self.points}")
        if self.target_samples is not None and (not isinstance(self.target_samples, int) or self.target_samples < 3):
            raise ConfigError(f"target_samples must be None or an integer >= 3, got {self.target_samples!r}")
        for name in ("calibration_lr", "calibration_tolerance"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a positive number, got {v!r}")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be None or a positive number, got {self.lr!r}")

    @property
    def learning_rate(self) -> float:
        """The stage-2 learning rate actually used."""
        if self.lr is not None:
            return float(self.lr)
        return DEFAULT_LR.get(self.field.encoding, 1e-5)


@dataclass(frozen=True, eq=False)
class DeformResult:
    """What :func:`deform_curve` returns. Curves in the target's own frame unless named ``*_normalized``."""

    curve: np.ndarray
    """(P, 2) deformed curve in the target's frame (image pixels for an image target)."""
    curve_normalized: np.ndarray
    """(P, 2) the same in the normalised frame (y up)."""
    levels: np.ndarray | None
    """(P,) fraction of encoding channels open at each curve point (SAPE / progressive), else None."""
    snapshots: list[tuple[int, np.ndarray]]
    """(step, (P, 2) curve in the target's frame); step 0 is the calibrated start."""
    metrics: dict[str, Any]
    timings: dict[str, float]
    normalization: C.CurveNormalization
    """Target frame -> normalised frame."""
    target_normalized: np.ndarray
    """(Q, 2) the target samples the loss and metrics used (normalised frame)."""
    source_normalized: np.ndarray
    """(P, 2) the source curve (normalised frame)."""
    tau: np.ndarray
    """(P,) the curve parameter fed to the network."""
    history: list[tuple[int, float]] = dc_field(default_factory=list)
    config: DeformConfig | None = None
    model: Any = None
    """The trained ``EncodedField`` (torch module), for further use."""

    @property
    def target(self) -> np.ndarray:
        """The target samples in the target's frame."""
        return self.normalization.invert(self.target_normalized)


def _as_contour(points: Any, what: str) -> C.Contour:
    if isinstance(points, C.Contour):
        return points
    if isinstance(points, (str, Path)):
        return C.load_contour(points)
    return C.Contour(C.clean_polyline(points, what), "polyline", False, None, "")


def prepare_target(target: Any, config: DeformConfig) -> tuple[C.CurveNormalization, np.ndarray]:
    """Normalisation of the target and its dense arc-length samples in the normalised frame."""
    contour = _as_contour(target, "target curve")
    norm = contour.normalization()
    n = config.target_samples
    if n is None:
        n = int(min(20000, max(2000, len(contour.points))))
    return norm, C.resample_closed(norm.apply(contour.points), n)


def prepare_source(source: Any, n: int) -> np.ndarray:
    """The source curve in its own normalised frame, resampled CCW from the largest x (None = circle)."""
    if source is None or (isinstance(source, str) and source == "circle"):
        return C.circle(n)
    contour = _as_contour(source, "source curve")
    return C.resample_closed(contour.normalization().apply(contour.points), n)


def deform_curve(
    target_points: Any,
    config: DeformConfig = DeformConfig(),
    source_points: Any = None,
    callbacks: Any = None,
) -> DeformResult:
    """Deform the source (default: the unit circle of docs/method.md §6.4) onto the target curve.

    ``target_points`` / ``source_points``: an (N, 2) array (taken as y-up), a :class:`curves.Contour`
    (its ``y_down`` respected) or a path for :func:`curves.load_contour`. ``callbacks``: a
    ``trainer.TrainCallbacks`` (progress with stage ``calibration`` then ``deform``, cancel; its
    ``on_snapshot`` is called with each kept snapshot as ``(step, model)``).
    Raises :class:`InputError` for unusable curves, :class:`TrainingCancelled` when cancelled.
    """
    import torch

    from ..nn.model import EncodedField
    from ..nn.trainer import TrainCallbacks, choose_device, seed_everything, train

    if not isinstance(config, DeformConfig):
        raise ConfigError(f"config must be a DeformConfig, got {type(config).__name__}")
    user_cb = callbacks or TrainCallbacks()
    t_start = time.perf_counter()
    norm, target_n = prepare_target(target_points, config)
    source_n = prepare_source(source_points, config.points)

    device = choose_device(config.device)
    gen = seed_everything(config.seed)
    model = EncodedField(1, 2, config.field, config.progress, config.steps, generator=gen).to(device)
    tau_np = C.curve_parameter(config.points)
    tau = torch.as_tensor(tau_np, dtype=torch.float32, device=device)[:, None]
    source = torch.as_tensor(source_n, dtype=torch.float32, device=device)
    target = torch.as_tensor(target_n, dtype=torch.float32, device=device)
    base = source if config.offset else torch.zeros_like(source)
    calib_goal = torch.zeros_like(source) if config.offset else source

    # ---- stage 1: calibration to the source (no controller feedback: SAPE keeps its initial mask)
    t0 = time.perf_counter()
    calib_steps, calib_mse = 0, math.nan
    if config.calibration_steps > 0:

        def calibration_loss(pred, goal, _x):
            per_point = ((pred - goal) ** 2).sum(dim=1)
            return per_point.mean(), per_point

        calib = train(
            model, lambda step: (tau, calib_goal), calibration_loss, lr=config.calibration_lr,
            steps=config.calibration_steps, stage="calibration", feedback=False,
            callbacks=TrainCallbacks(on_progress=user_cb.on_progress, should_cancel=user_cb.should_cancel,
                                     progress_every=getattr(user_cb, "progress_every", 1) or 1),
            stop_below=config.calibration_tolerance,
        )
        calib_steps, calib_mse = calib.steps, calib.final_loss
    calibration_s = time.perf_counter() - t0

    # ---- stage 2: Chamfer optimisation with the progressive mask fed by the first term
    n_target = len(target_n)
    k = min(config.max_target_samples, n_target)

    def next_batch(step: int):
        if k < n_target:
            idx = torch.randperm(n_target, generator=gen)[:k].to(device)
            return tau, target[idx]
        return tau, target

    def loss_fn(pred, tgt, x):
        curve = pred + base
        d = torch.cdist(curve, tgt)
        d_pq = d.min(dim=1).values
        d_qp = d.min(dim=0).values
        return d_pq.mean() + d_qp.mean(), d_pq.detach()

    snapshots_n: list[tuple[int, np.ndarray]] = []

    @torch.no_grad()
    def current_curve() -> np.ndarray:
        return (model(tau) + base).double().cpu().numpy()

    snapshots_n.append((0, current_curve()))
    chosen = set(config.snapshot_steps)
    every = config.snapshot_every
    user_every = int(getattr(user_cb, "snapshot_every", 0) or 0)
    user_snap = getattr(user_cb, "on_snapshot", None)

    def on_snapshot(step: int, m) -> None:  # called after every step; cheap unless a snapshot is due
        if (every and step % every == 0) or step in chosen:
            snapshots_n.append((step, current_curve()))
        if user_snap is not None and user_every and step % user_every == 0:
            user_snap(step, m)

    cb = TrainCallbacks(
        on_progress=user_cb.on_progress,
        should_cancel=user_cb.should_cancel,
        snapshot_every=1,
        on_snapshot=on_snapshot,
        progress_every=getattr(user_cb, "progress_every", 1) or 1,
    )
    t1 = time.perf_counter()
    stats = train(model, next_batch, loss_fn, lr=config.learning_rate, steps=config.steps, callbacks=cb,
                  stage="deform")
    fit_s = time.perf_counter() - t1

    final_n = current_curve()
    if not snapshots_n or snapshots_n[-1][0] != stats.steps:
        snapshots_n.append((stats.steps, final_n))
    levels = None
    if model.controller is not None:
        with torch.no_grad():
            levels = np.clip(model.open_fraction(tau).double().cpu().numpy(), 0.0, 1.0)

    metrics: dict[str, Any] = dict(C.curve_metrics(final_n, target_n))
    metrics.update(
        final_loss=float(stats.final_loss),
        steps=int(stats.steps),
        steps_per_s=float(stats.steps_per_second),
        calibration_steps=int(calib_steps),
        calibration_mse=float(calib_mse),
        encoding=config.field.encoding,
    )
    if levels is not None:
        metrics["mean_open_fraction"] = float(levels.mean())
    timings = {
        "calibration_s": calibration_s,
        "fit_s": fit_s,
        "steps_per_s": float(stats.steps_per_second),
        "total_s": time.perf_counter() - t_start,
    }
    return DeformResult(
        curve=norm.invert(final_n),
        curve_normalized=final_n,
        levels=levels,
        snapshots=[(s, norm.invert(p)) for s, p in snapshots_n],
        metrics=metrics,
        timings=timings,
        normalization=norm,
        target_normalized=target_n,
        source_normalized=source_n,
        tau=tau_np,
        history=list(stats.history),
        config=config,
        model=model,
    )


# ----------------------------------------------------------------------------------------------------
# Writing results
# ----------------------------------------------------------------------------------------------------


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


__all__ = [
    "DeformConfig",
    "DeformResult",
    "deform_curve",
    "prepare_target",
    "prepare_source",
    "save_outputs",
]
