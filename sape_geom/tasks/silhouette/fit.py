"""2-D silhouette deformation (docs/method.md §6.4): deform a closed source curve onto a target silhouette.

An encoded MLP maps the curve parameter ``τ ∈ (-1, 1)`` (1-D input) to a 2-D point. Stage 1
(calibration) fits it to the source curve by MSE; stage 2 minimises the symmetric Chamfer loss to the
target contour (plus the fold and crossing terms, see ``loss.py``), with the SAPE mask over ``τ`` fed by
the first Chamfer term's per-point distance. This module deforms one loop; ``shape.py`` every loop of a
silhouette with holes and parts.

Frames: everything is fitted in the normalised frame of :mod:`sape_geom.curve.contour` (bounding-box centre at
the origin, farthest point at 1, y up, curves counter-clockwise). The source is normalised the same way
(its own bounding box and scale), so morphing between any two closed curves works. Results come back in
the target's own frame (image pixels, y down, for images) and in the normalised frame.

Differences from the reference code, on purpose:

* the target contour is resampled uniformly by arc length to ``target_samples`` points instead of the
  reference's midpoint densification; every step still draws at most ``max_target_samples`` of them;
* ``offset=True`` parametrises the curve as ``source(τ) + MLP(τ)`` (the project page's description, docs/method.md D2);
  calibration then drives the MLP to zero. Default off (the code's absolute positions);
* seeds are set (the reference sets none);
* by default (issue 14) the Chamfer terms are exact distances to the target polyline, the fold and
  crossing terms keep the curve simple, SAPE's blocks open over the whole run and stage 2 takes 3000
  steps; ``config.paper_config()`` restores the paper's setting.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import numpy as np

from ... import curve as C
from ...curve.untangle import resolve_crossings
from ...errors import ConfigError
from .config import DeformConfig


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
    """(P,) the curve parameter of each point (fed to the network; interpolated at the crossing points
    an untangled curve gains)."""
    history: list[tuple[int, float]] = dc_field(default_factory=list)
    """(step, stage-2 loss) about 200 times over the run."""
    chamfer_history: list[tuple[int, float]] = dc_field(default_factory=list)
    """(step, Chamfer part of the loss, both terms added) about 200 times over the run."""
    config: DeformConfig | None = None
    model: Any = None
    """The trained ``EncodedField`` (torch module), for further use."""

    @property
    def target(self) -> np.ndarray:
        """The target samples in the target's frame."""
        return self.normalization.invert(self.target_normalized)


def steps_within(values: list[float], tolerance: float) -> int:
    """First step from which the loss, smoothed over 1 % of the run, stays within ``tolerance`` of its
    final smoothed value: how long the run needed to reach its end quality."""
    if not values:
        return 0
    v = np.asarray(values, dtype=np.float64)
    w = max(1, len(v) // 100)
    smooth = np.convolve(v, np.ones(w) / w, mode="valid")
    above = np.nonzero(smooth > (1.0 + tolerance) * smooth[-1])[0]
    return int(above[-1] + w + 1) if len(above) else w


def thin(values: list[float], count: int = 200) -> list[tuple[int, float]]:
    """(step, value) at about ``count`` steps (1-based), always ending with the last step."""
    n = len(values)
    steps = sorted(set(np.linspace(1, n, min(n, count)).round().astype(int).tolist())) if n else []
    return [(s, float(values[s - 1])) for s in steps]


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
    *,
    stage_suffix: str = "",
) -> DeformResult:
    """Deform the source (default: the unit circle of docs/method.md §6.4) onto the target curve.

    ``target_points`` / ``source_points``: an (N, 2) array (taken as y-up), a :class:`curves.Contour`
    (its ``y_down`` respected) or a path for :func:`curves.load_contour`. ``callbacks``: a
    ``trainer.TrainCallbacks`` (progress with stage ``calibration`` then ``deform``, cancel; its
    ``on_snapshot`` is called with each kept snapshot as ``(step, model)``); ``stage_suffix`` is appended
    to both stage names (``" 2/3"`` while the second of three loops is deformed).
    Raises :class:`InputError` for unusable curves, :class:`~sape_geom.errors.Cancelled` when cancelled.
    """
    import torch

    from ...nn.model import EncodedField
    from ...nn.trainer import TrainCallbacks, choose_device, seed_everything, train
    from ..deform_stages import calibrate, deform_callbacks
    from .loss import DeformLoss

    if not isinstance(config, DeformConfig):
        raise ConfigError(f"config must be a DeformConfig, got {type(config).__name__}")
    user_cb = callbacks or TrainCallbacks()
    t_start = time.perf_counter()
    norm, target_n = prepare_target(target_points, config)
    source_n = prepare_source(source_points, config.points)

    device = choose_device(config.device)
    gen = seed_everything(config.seed)
    # The progressive schedule is planned for 2 x unlock_fraction x steps: SAPE's block period T / (2 n_b)
    # then comes out as unlock_fraction x steps / n_b (docs/method.md §6.4 has 0.5: B = 833 for 10 000).
    horizon = max(1, round(2 * config.unlock_fraction * config.steps))
    model = EncodedField(1, 2, config.field, config.progress, horizon, generator=gen).to(device)
    tau_np = C.curve_parameter(config.points)
    tau = torch.as_tensor(tau_np, dtype=torch.float32, device=device)[:, None]
    source = torch.as_tensor(source_n, dtype=torch.float32, device=device)
    target = torch.as_tensor(target_n, dtype=torch.float32, device=device)
    base = source if config.offset else torch.zeros_like(source)
    calib_goal = torch.zeros_like(source) if config.offset else source

    # ---- stage 1: calibration to the source (no controller feedback: SAPE keeps its initial mask)
    calib_steps, calib_mse, calibration_s = calibrate(
        model,
        tau,
        calib_goal,
        steps=config.calibration_steps,
        lr=config.calibration_lr,
        tolerance=config.calibration_tolerance,
        callbacks=user_cb,
        stage="calibration" + stage_suffix,
    )

    # ---- stage 2: Chamfer optimisation with the progressive mask fed by the first term
    n_target = len(target_n)
    k = min(config.max_target_samples, n_target)

    loss_fn = DeformLoss(
        config.loss,
        target,
        base,
        subset=k,
        generator=gen,
        fold_weight=config.fold_weight,
        crossing_weight=config.crossing_weight,
    )

    def next_batch(step: int):
        return tau, target

    snapshots_n: list[tuple[int, np.ndarray]] = []

    @torch.no_grad()
    def current_curve() -> np.ndarray:
        return (model(tau) + base).cpu().double().numpy()  # on the host first: MPS has no float64

    snapshots_n.append((0, current_curve()))
    chosen = set(config.snapshot_steps)
    every = config.snapshot_every
    cb = deform_callbacks(
        user_cb, current_curve, lambda step: bool(every and step % every == 0) or step in chosen, snapshots_n
    )
    t1 = time.perf_counter()
    stats = train(
        model,
        next_batch,
        loss_fn,
        lr=config.learning_rate,
        lr_final=config.lr_final,
        steps=config.steps,
        callbacks=cb,
        stage="deform" + stage_suffix,
    )
    fit_s = time.perf_counter() - t1

    final_n = current_curve()
    levels = None
    if model.controller is not None:
        with torch.no_grad():
            levels = np.clip(model.open_fraction(tau).cpu().double().numpy(), 0.0, 1.0)
    network_crossings = C.count_self_intersections(final_n)
    points_cut, untangled_by = 0, "none"
    tau_out = tau_np
    if config.uncross and network_crossings:
        outline, untangled_by = resolve_crossings(final_n, target_n)
        final_n = outline.points
        levels = None if levels is None else outline.at(levels)
        tau_out = C.curve_parameter(config.points, at=outline.position)
        points_cut = int(config.points - np.count_nonzero(outline.position == np.floor(outline.position)))
    if snapshots_n and snapshots_n[-1][0] == stats.steps:
        snapshots_n.pop()
    snapshots_n.append((stats.steps, final_n))

    metrics: dict[str, Any] = dict(C.curve_metrics(final_n, target_n))
    metrics.update(
        final_loss=float(stats.final_loss),
        steps=int(stats.steps),
        steps_per_s=float(stats.steps_per_second),
        calibration_steps=int(calib_steps),
        calibration_mse=float(calib_mse),
        encoding=config.field.encoding,
        steps_to_5pct=steps_within(loss_fn.chamfer, 0.05),
        network_self_intersections=int(network_crossings),
        points_cut=points_cut,
        untangled_by=untangled_by,
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
        tau=tau_out,
        history=list(stats.history),
        chamfer_history=thin(loss_fn.chamfer),
        config=config,
        model=model,
    )
