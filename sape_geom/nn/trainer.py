"""The training loop every task uses: device choice, seeding, progress, cancel, snapshots, time budget.

A task supplies two functions: ``next_batch(step) -> (x, target)`` with tensors on the device, and
``loss_fn(prediction, target, x) -> (loss, per_sample)`` where ``loss`` is the scalar to minimise and
``per_sample`` (N,) the detached per-sample losses the progressive controller is fed (docs/method.md §5.4).
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError, check_cancel
from .adam import PlainAdam
from .model import EncodedField

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

#: Device names every task accepts (``cuda:N`` also picks one GPU).
DEVICES = ("auto", "cpu", "cuda", "mps")


def choose_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; an explicit name must be available."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} asked for, but this torch ({torch.__version__}) sees no CUDA GPU")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("device 'mps' asked for, but Apple MPS is not available here")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise InputError(f"unknown device {name!r}; use one of: {', '.join(DEVICES)}") from error


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, numpy and torch; returns a CPU generator for the task's own random draws."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@dataclass
class ProgressInfo:
    """What a progress callback sees after a step."""

    step: int
    total: int
    loss: float
    elapsed_s: float
    eta_s: float
    stage: str = "training"
    model: EncodedField | None = None


@dataclass
class TrainCallbacks:
    """Hooks into the loop. ``should_cancel`` returning True stops training with :class:`~sape_geom.errors.Cancelled`."""

    on_progress: Callable[[ProgressInfo], None] | None = None
    should_cancel: Callable[[], bool] | None = None
    snapshot_every: int = 0
    on_snapshot: Callable[[int, EncodedField], None] | None = None
    progress_every: int = 1

    def progress(self, info: ProgressInfo) -> None:
        if self.on_progress is not None:
            self.on_progress(info)

    def check_cancel(self) -> None:
        check_cancel(self.should_cancel, "training")


@dataclass
class TrainStats:
    steps: int
    seconds: float
    final_loss: float
    history: list[tuple[int, float]] = field(default_factory=list)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else math.inf


#: Seconds between two redraws of the console progress bar.
CONSOLE_REFRESH_S = 0.1


def console_progress(description: str, stream=None) -> Callable[[ProgressInfo], None]:
    """An ``on_progress`` callback drawing a tqdm bar (on stderr, so stdout stays clean for --json)."""
    from tqdm.auto import tqdm

    bar = None
    stage = None
    drawn = -math.inf

    def update(info: ProgressInfo) -> None:
        nonlocal bar, stage, drawn
        now = time.perf_counter()
        if bar is None or bar.total != info.total or info.stage != stage:
            if bar is not None:
                bar.close()
            stage = info.stage
            unit = "step" if stage == "training" else "item"
            bar = tqdm(
                total=info.total, desc=f"{description}: {stage}", unit=unit, file=stream or sys.stderr, leave=False
            )
        bar.n = info.step
        # Redrawn at most every CONSOLE_REFRESH_S (and at the end): a redraw per step costs more than a
        # fast step.
        if now - drawn >= CONSOLE_REFRESH_S or info.step >= info.total:
            if math.isfinite(info.loss):
                bar.set_postfix(loss=f"{info.loss:.4g}", refresh=False)
            bar.refresh()
            drawn = now
        if info.step >= info.total:
            bar.close()
            bar = None

    return update


#: Seconds between two reads of the loss on the host (progress, divergence check): reading it every
#: step would make the host wait for the device at every step (docs/method.md §5.9).
LOSS_READ_INTERVAL_S = 0.1


def make_optimizer(
    parameters, lr: float, device: torch.device, fused: bool | None = None
) -> torch.optim.Adam | PlainAdam:
    """Adam with PyTorch's defaults. ``fused=None``: the fused kernel where the device is not the CPU
    (one launch for all parameters, its step counters on the device, no host read), foreach if the fused
    kernel is missing; on the CPU :class:`~sape_geom.nn.adam.PlainAdam`, the same numbers bit for bit as
    PyTorch's single-tensor loop, without importing TorchDynamo."""
    if fused is None:
        fused = device.type != "cpu"
    if not fused:
        return PlainAdam(parameters, lr=lr)
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for this device or dtype
        return torch.optim.Adam(parameters, lr=lr, foreach=True)


def train(
    model: EncodedField,
    next_batch: Callable[[int], Batch],
    loss_fn: LossFn,
    *,
    lr: float,
    lr_final: float | None = None,
    lr_hold: int = 0,
    steps: int | None = None,
    time_budget: float | None = None,
    callbacks: TrainCallbacks | None = None,
    stage: str = "training",
    feedback: bool = True,
    stop_below: float | None = None,
    fused: bool | None = None,
) -> TrainStats:
    """Optimise ``model`` with Adam for ``steps`` steps, or for ``time_budget`` seconds.

    With ``lr_final`` the learning rate decays exponentially from ``lr`` to ``lr_final`` over the run,
    after staying at ``lr`` for the first ``lr_hold`` steps (at most half the run).
    ``feedback=False`` leaves the progressive controller alone (a calibration stage); with ``stop_below``
    training ends, before stepping, at the first loss at or below it (that stage reads the loss every step).

    With a time budget the step count is estimated from the speed of the first steps and handed to the
    progressive controller, so its schedule still completes within the budget (at half of it for SAPE).

    The loss stays on the device: it is read on the host at the first and last steps and then about every
    ``LOSS_READ_INTERVAL_S`` seconds, for progress and for the divergence check, which therefore sees a
    non-finite loss at that read (the running sum of the losses since the last read is checked, so no step
    is missed). The loss history is kept on the device and read once at the end (docs/method.md §5.9).
    ``fused``: see :func:`make_optimizer`.
    """
    if steps is None and time_budget is None:
        raise InputError("give a number of steps or a time budget")
    if steps is not None and steps <= 0:
        raise InputError(f"steps must be a positive integer, got {steps}")
    if time_budget is not None and not time_budget > 0:
        raise InputError(f"time budget must be > 0 seconds, got {time_budget}")
    callbacks = callbacks or TrainCallbacks()
    parameters = list(model.parameters())
    device = parameters[0].device if parameters else torch.device("cpu")
    optimizer = make_optimizer(parameters, lr, device, fused)
    budget = time_budget if steps is None else None  # set iff the run is timed (then time_budget is given)
    total = steps if steps is not None else 10**9
    if budget is not None:
        model.set_total_steps(total)
    start = time.perf_counter()
    # With a time budget, the step count is estimated from the measured speed, first after a short
    # calibration and then again at every tenth of the budget, and handed to the schedule each time.
    next_estimate = min(3.0, 0.05 * budget) if budget is not None else math.inf
    model.train()
    with _tf32(bool(getattr(getattr(model, "config", None), "allow_tf32", False)) and device.type == "cuda"):
        step, loss_value, history_steps, history_losses = _loop(
            model,
            next_batch,
            loss_fn,
            optimizer,
            (lr, lr_final, lr_hold),
            total,
            budget,
            next_estimate,
            callbacks,
            stage,
            feedback,
            stop_below,
            start,
        )
    model.eval()
    history = list(zip(history_steps, torch.stack(history_losses).tolist())) if history_losses else []
    return TrainStats(step, time.perf_counter() - start, loss_value, history)


def learning_rate(schedule: tuple[float, float | None, int], step: int, total: int) -> float:
    """The learning rate at ``step`` of ``total`` for ``(lr, lr_final, lr_hold)`` (see :func:`train`):
    ``lr`` for the first ``min(lr_hold, total // 2)`` steps, then an exponential decay reaching ``lr_final``
    at the last step. (A short run's field needs its first steps at full rate to find the shape at all.)"""
    lr, lr_final, hold = schedule
    if lr_final is None:
        return lr
    hold = min(int(hold), total // 2)
    return lr * (lr_final / lr) ** min(1.0, max(0, step - hold) / max(1, total - hold))


@contextmanager
def _tf32(enabled: bool):
    """TF32 matrix products for the duration of a run (FieldConfig.allow_tf32), restored afterwards."""
    if not enabled:
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def _loop(
    model: EncodedField,
    next_batch: Callable[[int], Batch],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer | PlainAdam,
    schedule: tuple[float, float | None, int],
    total: int,
    budget: float | None,
    next_estimate: float,
    callbacks: TrainCallbacks,
    stage: str,
    feedback: bool,
    stop_below: float | None,
    start: float,
) -> tuple[int, float, list[int], list[torch.Tensor]]:
    """The steps of :func:`train`; returns (steps, last loss read, history steps, history losses)."""
    history_steps: list[int] = []
    history_losses: list[torch.Tensor] = []
    loss_value = math.nan
    unread: torch.Tensor | None = None  # sum of the losses since the last read, on the device
    last_read = -math.inf
    step = 0
    while step < total:
        callbacks.check_cancel()
        if schedule[1] is not None:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(schedule, step, total)
        x, target = next_batch(step)
        prediction = model(x)
        loss, per_sample = loss_fn(prediction, target, x)
        current = loss.detach()
        if stop_below is not None:
            loss_value = float(current)
            _check_finite(loss_value, loss_value, stage, step + 1)
            if loss_value <= stop_below:
                break
        unread = current if unread is None else unread + current
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if feedback:
            model.observe(x, per_sample.detach())
        step += 1
        now = time.perf_counter()
        elapsed = now - start
        if budget is not None:
            if elapsed >= budget:
                total = step
            elif (elapsed >= next_estimate and step >= 3) or step >= total:
                total = max(step + 1, int(step * budget / elapsed))
                model.set_total_steps(total)
                next_estimate = elapsed + 0.1 * budget
        if step % max(1, total // 200) == 0 or step == total:
            history_steps.append(step)
            history_losses.append(current)
        if now - last_read >= LOSS_READ_INTERVAL_S or step == total:
            loss_value, since = torch.stack((current.float(), unread.float())).tolist()
            _check_finite(loss_value, since, stage, step)
            unread, last_read = None, now
        if callbacks.snapshot_every and callbacks.on_snapshot and step % callbacks.snapshot_every == 0:
            callbacks.on_snapshot(step, model)
        if step % callbacks.progress_every == 0 or step == total:
            eta = elapsed / step * (total - step)
            callbacks.progress(ProgressInfo(step, total, loss_value, elapsed, eta, stage, model))
    return step, loss_value, history_steps, history_losses


def _check_finite(loss: float, since: float, stage: str, step: int) -> None:
    """Raise when the loss, or any loss since the last read (their sum ``since``), is not finite."""
    if not (math.isfinite(loss) and math.isfinite(since)):
        bad = loss if not math.isfinite(loss) else since
        raise InputError(f"{stage} diverged by step {step} (loss {bad}); lower the learning rate")
