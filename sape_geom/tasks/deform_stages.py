"""The two stages the deformation tasks share (docs/method.md §6.4, §6.5).

Calibration first drives the network's output to a goal (the source itself, or zero displacement)
without feeding the progressive mask, so that the deformation starts where the source is; then the
deformation stage runs with snapshots kept at chosen steps, the caller's own snapshot callback beside
them. The silhouette (:mod:`.silhouette.fit`) and the mesh (:mod:`.mesh_deform.fit`) differ only in
their inputs, losses and outputs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch

from ..nn.model import EncodedField
from ..nn.trainer import TrainCallbacks, train


def _progress_every(callbacks: TrainCallbacks) -> int:
    return getattr(callbacks, "progress_every", 1) or 1


def calibrate(
    model: EncodedField,
    inputs: torch.Tensor,
    goal: torch.Tensor,
    *,
    steps: int,
    lr: float,
    tolerance: float | None,
    callbacks: TrainCallbacks,
    stage: str = "calibration",
) -> tuple[int, float, float]:
    """Train ``model(inputs)`` towards ``goal`` (squared error per point) for up to ``steps`` steps, until
    the mean falls to ``tolerance``; the mask keeps its start. Returns (steps taken, last loss, seconds);
    (0, nan, 0) when ``steps`` is 0."""
    if steps <= 0:
        return 0, math.nan, 0.0
    start = time.perf_counter()

    def calibration_loss(pred: torch.Tensor, want: torch.Tensor, _x: torch.Tensor):
        per_point = (pred - want).square().sum(1)
        return per_point.mean(), per_point

    stats = train(
        model,
        lambda step: (inputs, goal),
        calibration_loss,
        lr=lr,
        steps=steps,
        stage=stage,
        feedback=False,
        callbacks=TrainCallbacks(
            on_progress=callbacks.on_progress,
            should_cancel=callbacks.should_cancel,
            progress_every=_progress_every(callbacks),
        ),
        stop_below=tolerance,
    )
    return stats.steps, stats.final_loss, time.perf_counter() - start


def deform_callbacks(
    callbacks: TrainCallbacks,
    current: Callable[[], np.ndarray],
    keep: Callable[[int], bool],
    kept: list[tuple[int, np.ndarray]],
) -> TrainCallbacks:
    """The deformation stage's callbacks: the caller's progress and cancel; after every step the shape
    ``current()`` appended to ``kept`` as ``(step, shape)`` when ``keep(step)``, and the caller's own
    ``on_snapshot`` every its ``snapshot_every`` steps."""
    every = int(getattr(callbacks, "snapshot_every", 0) or 0)
    theirs = getattr(callbacks, "on_snapshot", None)

    def on_snapshot(step: int, model: EncodedField) -> None:  # after every step; cheap unless one is due
        if keep(step):
            kept.append((step, current()))
        if theirs is not None and every and step % every == 0:
            theirs(step, model)

    return TrainCallbacks(
        on_progress=callbacks.on_progress,
        should_cancel=callbacks.should_cancel,
        snapshot_every=1,
        on_snapshot=on_snapshot,
        progress_every=_progress_every(callbacks),
    )
