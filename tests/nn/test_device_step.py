"""A training step a GPU need not wait on (docs/method.md §5.9): no host syncs between block boundaries,
controller state as the straightforward loop computes it, the fixed-shape mask, float32 Fourier angles
under autocast, and models moved between devices after a forward pass."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from sape_geom.config import FieldConfig, ProgressConfig
from sape_geom.nn import trainer
from sape_geom.nn.encodings import FourierFeatures, fourier_angles
from sape_geom.nn.model import EncodedField
from sape_geom.nn.progressive import GlobalProgression, SpatialProgression
from sape_geom.nn.sync_counter import SyncCounter


def _bce(prediction, target, _x):
    per_sample = torch.nn.functional.binary_cross_entropy_with_logits(prediction, target, reduction="none")[:, 0]
    return per_sample.mean(), per_sample


def _small_model(encoding: str, ramp: bool = False, period: int = 10) -> EncodedField:
    field = FieldConfig(encoding=encoding, num_frequencies=32, hidden_width=32, hidden_layers=2)
    progress = ProgressConfig(grid_resolution=8, block_period=period, epsilon=0.01, ramp=ramp)
    return EncodedField(3, 1, field, progress, 100, torch.Generator().manual_seed(0))


def test_the_counter_sees_each_kind_of_host_sync():
    x = torch.rand(10)
    with SyncCounter() as counter:
        x.tolist()
        float(x.sum())
        bool(x[0] > 0)
        x[x > 0.5]
        torch.unique(x)
        x.cpu()
        _ = x[torch.tensor(3)]  # a 0-d index tensor is read on the host
    assert counter.total_syncs == 7 and counter.ops > 7, counter.syncs


@pytest.mark.parametrize("case", ["sape", "sape-stencil", "sape-ramp", "progressive", "ff"])
def test_training_steps_between_boundaries_make_no_host_sync(case, monkeypatch):
    monkeypatch.setattr(trainer, "LOSS_READ_INTERVAL_S", math.inf)  # the time-based reads are not steps
    period = 10
    model = _small_model(case.split("-")[0], ramp=case.endswith("ramp"), period=period)
    if model.spatial is not None:
        model.spatial.compact_levels = False  # the accelerator's path (the CPU's reads levels at boundaries)
    if case.endswith("stencil"):
        model.controller.table_limit = 0
    generator = torch.Generator().manual_seed(1)
    data = [torch.rand(256, 3, generator=generator) * 2 - 1 for _ in range(4)]
    counter = SyncCounter()
    seen: list[int] = []

    def next_batch(step: int):
        seen.append(counter.total_syncs)  # syncs of every earlier step
        x = data[step % 4]
        return x, (x.norm(dim=1, keepdim=True) > 0.5).float()

    steps = 3 * period + 5
    with counter:
        trainer.train(model, next_batch, _bce, lr=1e-3, steps=steps, fused=True)
    per_step = [b - a for a, b in zip(seen, seen[1:])]  # syncs of steps 1 .. steps - 1
    assert per_step[0] == 1  # the first step's loss is read (progress starts with a value)
    inside = [n for step, n in enumerate(per_step, start=1) if step > 1 and step % period != 0]
    assert len(inside) > 2 * period and max(inside) == 0, per_step
    assert max(per_step[1:]) == 0, per_step  # the boundaries read nothing back either
    # the loss is read at the first and last steps, the history once at the end
    assert counter.total_syncs <= 3, counter.syncs


# ---- controller state against a straightforward loop ----------------------------------------------


class _LoopSape:
    """Today's SAPE controller written as plain loops with host reads (docs/method.md §5.4, §5.5)."""

    def __init__(self, control: SpatialProgression) -> None:
        self.r, self.d, self.k, self.eps = control.resolution, control.in_dim, control.kernel, control.config.epsilon
        self.blocks, self.period = len(control.block_ends), int(control.period)
        nodes = self.r**self.d
        self.level = torch.zeros(nodes, dtype=torch.int16)
        self.active = torch.ones(nodes, dtype=torch.bool)
        self.loss_sum, self.weight_sum = torch.zeros(nodes), torch.zeros(nodes)
        self.block, self.step = 0, 0

    def observe(self, x: torch.Tensor, loss: torch.Tensor) -> None:
        for n in range(len(x)):
            u = ((x[n] + 1) * (0.5 * (self.r - 2)) + 0.5).clamp(0, self.r - 1)
            lower = u.floor().clamp(max=self.r - 2)
            frac = u - lower
            for corner in itertools.product([0, 1], repeat=self.d):
                weight, flat = None, 0
                for axis, c in enumerate(corner):
                    w = frac[axis] if c else 1 - frac[axis]
                    weight = w if weight is None else weight * w
                    flat += int(lower[axis] + c) * self.r**axis
                self.loss_sum[flat] += weight * loss[n]
                self.weight_sum[flat] += weight
        self.step += 1
        if self.step >= self.period:
            self.advance()

    def advance(self) -> None:
        shape = (self.r,) * self.d
        pool = (torch.nn.functional.avg_pool1d, torch.nn.functional.avg_pool2d)[self.d - 1]

        def blur(grid: torch.Tensor) -> torch.Tensor:
            half = self.k // 2
            padded = torch.nn.functional.pad(grid.view(1, 1, *shape), (half,) * (2 * self.d), mode="replicate")
            return pool(padded, self.k, stride=1).flatten()

        visited = self.weight_sum > 0
        mean = torch.where(visited, self.loss_sum / self.weight_sum.clamp_min(1e-30), torch.zeros_like(self.loss_sum))
        window = self.k**self.d
        if not bool(visited.all()):
            mean = torch.where(visited, mean, (blur(mean) * window - mean) / (window - 1))
        self.active &= blur(mean) > self.eps
        if self.block < self.blocks - 1:
            self.block += 1
            self.level[self.active] = self.block
        self.loss_sum.zero_()
        self.weight_sum.zero_()
        self.step = 0


@pytest.mark.parametrize("dim, resolution, width", [(1, 12, 9), (2, 8, 14)])
def test_sape_state_equals_the_loop_over_three_periods(dim, resolution, width):
    period = 4
    control = SpatialProgression(
        width, dim, 100, ProgressConfig(grid_resolution=resolution, block_period=period, epsilon=0.3)
    )
    loop = _LoopSape(control)
    generator = torch.Generator().manual_seed(dim)
    for _ in range(3 * period + 2):  # three boundaries and two steps into the fourth period
        x = torch.rand(40, dim, generator=generator) * 2.4 - 1.2
        loss = torch.rand(40, generator=generator) * (x[:, 0] > -0.2)  # low on one side: nodes freeze there
        control.observe(x, loss)
        loop.observe(x, loss)
    state = control.state_dict()
    assert torch.equal(state["level"], loop.level) and torch.equal(state["active"], loop.active)
    assert 0 < int(loop.active.sum()) < len(loop.active)  # some nodes froze, some did not
    torch.testing.assert_close(state["loss_sum"], loop.loss_sum, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(state["weight_sum"], loop.weight_sum, rtol=1e-6, atol=1e-7)
    assert (int(state["current_block"]), int(state["step_in_period"])) == (loop.block, loop.step) == (3, 2)


def test_a_state_dict_taken_mid_period_continues_exactly():
    config = ProgressConfig(grid_resolution=8, block_period=5, epsilon=0.3, ramp=True)
    control = SpatialProgression(14, 2, 100, config)
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.rand(30, 2, generator=generator) * 2 - 1, torch.rand(30, generator=generator)) for _ in range(12)]
    for x, loss in batches[:7]:
        control.observe(x, loss)
    restored = SpatialProgression(14, 2, 100, config)
    restored.load_state_dict(control.state_dict())
    assert int(restored.state_dict()["step_in_period"]) == 2
    for x, loss in batches[7:]:
        control.observe(x, loss)
        restored.observe(x, loss)
        assert torch.equal(control.mask(x), restored.mask(x))
    assert all(torch.equal(a, b) for a, b in zip(control.state_dict().values(), restored.state_dict().values()))


def test_global_state_equals_the_loop():
    control = GlobalProgression(514, 2, 400, ProgressConfig(epsilon=0.2))
    period, ends = int(control.period), control.block_ends.tolist()
    step, block, best, stopped = 0, 1, math.inf, False
    generator = torch.Generator().manual_seed(0)
    for t in range(3 * period + 3):
        loss = torch.rand(20, generator=generator) * (1.0 if t < 2 * period + 1 else 0.3)
        control.observe(torch.zeros(20, 2), loss)
        best = min(best, float(loss.mean()))
        if stopped or best < 0.2:
            stopped = True
        else:
            step += 1
            if step % period == 0 and block < len(ends):
                block += 1
        expected = torch.zeros(514)
        expected[: ends[block - 1]] = 1.0
        if block < len(ends):
            expected[ends[block - 1] : ends[block]] = min(1.0, 2.0 * (step % period) / period)
        assert torch.equal(control.channel_values(), expected)
    assert (int(control.step), int(control.current_block), bool(control.stopped)) == (step, block, stopped)
    assert stopped and 1 < block < len(ends)


# ---- the fixed-shape mask ---------------------------------------------------------------------------


@pytest.mark.parametrize("dim, resolution, width", [(1, 200, 81), (2, 14, 150)])
def test_fixed_shape_mask_equals_the_loop_reference_with_more_than_63_levels(dim, resolution, width):
    from test_progressive import _naive_mask

    control = SpatialProgression(width, dim, 1000, ProgressConfig(grid_resolution=resolution))
    blocks = len(control.block_ends)
    assert blocks > 70
    generator = torch.Generator().manual_seed(3)
    level = (torch.arange(len(control.level)) % blocks)[torch.randperm(len(control.level), generator=generator)]
    level[level == 40] = 41  # a level no node holds: its column stays zero
    control.level.copy_(level)
    control.current_block.fill_(blocks - 1)
    control._invalidate()
    assert len(torch.unique(level)) > 63
    x = torch.rand(30, dim, generator=generator) * 2.4 - 1.2
    expected = _naive_mask(control, x)
    masks = {}
    for compact, table_limit in itertools.product((False, True), (1 << 24, 0)):
        control.compact_levels, control.table_limit = compact, table_limit
        control._invalidate()
        with SyncCounter() as counter:
            masks[compact, table_limit] = mask = control.mask(x)
        assert counter.total_syncs == (2 if compact else 0), counter.syncs  # compact: one bincount read
        torch.testing.assert_close(mask, expected, atol=1e-5, rtol=0)
    assert torch.equal(masks[False, 0], masks[True, 0])  # the stencil path: the same floats either way


# ---- precision and devices --------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["highest", "medium"])  # matmul path, elementwise path
def test_fourier_angles_under_bf16_autocast_match_float64(precision):
    encoding = FourierFeatures(3, 256, 20.0, generator=torch.Generator().manual_seed(0))
    x = torch.rand(4000, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
    reference = 2 * math.pi * (x.double() @ encoding.frequencies.double().T)
    assert reference.abs().max() > 300  # the top channels: where bf16 is off by radians
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision(precision)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            angles = fourier_angles(x, encoding.frequencies)
            features = encoding(x)
    finally:
        torch.set_float32_matmul_precision(before)
    assert angles.dtype == features.dtype == torch.float32
    assert (angles.double() - reference).abs().max() < 1e-4
    assert (features.double()[:, 0::2] - reference.sin()).abs().max() < 1e-4


@pytest.mark.parametrize("table_limit", [1 << 24, 0])
def test_moving_a_model_after_a_forward_pass(table_limit):
    model = _small_model("sape")
    model.controller.table_limit = table_limit
    x = torch.rand(50, 3) * 2 - 1
    model(x)
    model.observe(x, torch.rand(50))
    model.to("meta")  # another device: the cached table and stencil must not be used there
    assert model.spatial._table is None and model.spatial._corners is None
    out = model(torch.rand(50, 3, device="meta"))
    assert out.device.type == "meta"
    if table_limit:
        assert model.spatial._table.device.type == "meta"
    model = _small_model("sape")
    expected = model(x)
    model.double()  # a dtype change takes the same path
    torch.testing.assert_close(model(x.double()).float(), expected, atol=1e-5, rtol=1e-5)
