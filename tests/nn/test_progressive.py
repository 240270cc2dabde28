"""Progressive masks (docs/method.md §4, §5): block partitions, schedules, grid geometry, feedback and freezing."""

import itertools

import numpy as np
import pytest
import torch

from sape_geom.config import FieldConfig, ProgressConfig
from sape_geom.nn.progressive import (
    GlobalProgression,
    SpatialProgression,
    block_partition,
)
from sape_geom.nn.stencil import grid_continuous_index
from sape_geom.tasks.regression import ImageFitConfig, fit_image


@pytest.mark.parametrize(
    "width, dim, num_blocks, n_blocks_after_first, last_block, period_blocks",
    [
        (513, 1, None, 512, (512, 513), 512),  # 1D: single channels
        (514, 2, None, 256, (512, 514), 256),  # 2D: (sin, cos) pairs
        (515, 3, None, 170, (510, 515), 170),  # 3D: 169 blocks of 3 and a last block of 5
        (513, 1, 6, 5, (425, 513), 6),  # silhouette: blocks of 85, last one widened
    ],
)
def test_block_partitions_of_each_task(width, dim, num_blocks, n_blocks_after_first, last_block, period_blocks):
    ends, n_b = block_partition(width, dim, num_blocks)
    assert len(ends) - 1 == n_blocks_after_first
    assert (ends[-2], ends[-1]) == last_block
    assert n_b == period_blocks
    assert ends[0] == (dim if num_blocks is None else width // num_blocks)


@pytest.mark.parametrize(
    "width, dim, steps, num_blocks, sape_period, global_period",
    [
        (513, 1, 20000, None, 19, 29),
        (514, 2, 5000, None, 9, 14),
        (515, 3, 100000, None, 294, 441),
        (513, 1, 10000, 6, 833, 1250),
    ],
)
def test_schedule_periods(width, dim, steps, num_blocks, sape_period, global_period):
    config = ProgressConfig(num_blocks=num_blocks, grid_resolution=8)
    assert int(SpatialProgression(width, dim, steps, config).period) == sape_period
    assert int(GlobalProgression(width, dim, steps, config).period) == global_period


def test_global_ramp_opens_each_block_over_half_a_period():
    control = GlobalProgression(514, 2, 5000)  # B_g = 14
    x, loss = torch.zeros(1, 2), torch.ones(1)
    values = []
    for _ in range(14):
        control.observe(x, loss)
        values.append(control.channel_values()[2].item())
    assert values[:7] == pytest.approx([k / 7 for k in range(1, 8)])
    assert values[6:13] == pytest.approx([1.0] * 7)
    mask = control.channel_values()
    assert mask[:4].tolist() == [1, 1, 1, 1] and mask[4:].abs().sum() == 0  # next block starts at 0


def test_global_progression_stops_below_epsilon():
    control = GlobalProgression(514, 2, 5000, ProgressConfig(epsilon=0.5))
    control.observe(torch.zeros(1, 2), torch.tensor([0.1]))
    before = control.channel_values().clone()
    for _ in range(100):
        control.observe(torch.zeros(1, 2), torch.tensor([1.0]))
    assert bool(control.stopped) and torch.equal(before, control.channel_values())


def test_grid_node_positions_match_the_reference():
    u = grid_continuous_index(torch.tensor([-1.0, 0.0, 1.0]), 12)
    assert u.tolist() == pytest.approx([0.5, 5.5, 10.5])  # between nodes (0,1), (5,6), (10,11), weights 1/2


def _box_filter_reference(grid: torch.Tensor, kernel: int) -> torch.Tensor:
    """Direct k^d window mean with replicate padding (not separable), as the reference code computes it."""
    dim, half = grid.dim(), kernel // 2
    padded = torch.nn.functional.pad(grid[None, None], (half,) * (2 * dim), mode="replicate")
    pool = (torch.nn.functional.avg_pool1d, torch.nn.functional.avg_pool2d, torch.nn.functional.avg_pool3d)[dim - 1]
    return pool(padded, kernel, stride=1)[0, 0]


def _naive_mask(control: SpatialProgression, x: torch.Tensor) -> torch.Tensor:
    """Loop-based oracle: dense node masks, box-filtered channel by channel, interpolated corner by corner."""
    r, d, k, width = control.resolution, control.in_dim, control.kernel, control.width
    dense = (torch.arange(width)[None] < control.block_ends[control.level.long()][:, None]).float()
    smoothed = (
        torch.stack([_box_filter_reference(g, k) for g in dense.T.reshape(width, *(r,) * d)]).reshape(width, -1).T
    )
    out = torch.zeros(len(x), width)
    for n in range(len(x)):
        u = ((x[n] + 1) / 2 * (r - 2) + 0.5).clamp(0, r - 1)
        lower = torch.clamp(u.floor(), max=r - 2).long()
        frac = u - lower
        total = 0.0
        for corner in itertools.product([0, 1], repeat=d):
            weight, flat = 1.0, 0
            for axis, c in enumerate(corner):
                weight *= float(frac[axis] if c else 1 - frac[axis])
                flat += int(lower[axis] + c) * r**axis
            out[n] += weight * smoothed[flat]
            total += weight
        assert total == pytest.approx(1.0)
    return out


@pytest.mark.parametrize(
    "dim, resolution, width, kernel", [(1, 12, 33, None), (2, 9, 22, None), (3, 7, 27, None), (2, 6, 14, 5)]
)
def test_vectorised_mask_equals_loop_reference_including_borders_and_outside(dim, resolution, width, kernel):
    torch.manual_seed(dim)
    control = SpatialProgression(width, dim, 1000, ProgressConfig(grid_resolution=resolution, blur_kernel=kernel))
    control.level.copy_(torch.randint(0, len(control.block_ends), control.level.shape))
    control._invalidate()
    x = torch.rand(40, dim) * 2.6 - 1.3  # some samples outside [-1, 1]
    x[0] = -1.0
    x[1] = 1.0
    expected = _naive_mask(control, x)
    for table_limit in (1 << 24, 0):  # the smoothed-table path and the direct stencil path
        control.table_limit = table_limit
        control._invalidate()
        mask = control.mask(x)
        torch.testing.assert_close(mask, expected, atol=1e-5, rtol=0)
        assert mask.min() >= 0 and mask.max() <= 1 + 1e-6


def test_initial_mask_is_block_zero_everywhere():
    control = SpatialProgression(515, 3, 1000, ProgressConfig(grid_resolution=8))
    mask = control.mask(torch.rand(10, 3) * 2 - 1)
    assert torch.allclose(mask[:, :3], torch.ones(10, 3)) and mask[:, 3:].abs().max() == 0


def test_feedback_is_a_true_scatter_add():
    control = SpatialProgression(13, 1, 1000, ProgressConfig(grid_resolution=12, block_period=1000))
    x = torch.zeros(3, 1)  # all three on the same corners (5 and 6), weights 1/2 each
    control.observe(x, torch.tensor([1.0, 2.0, 3.0]))
    assert control.loss_sum[5].item() == pytest.approx(3.0) and control.loss_sum[6].item() == pytest.approx(3.0)
    assert control.weight_sum[5].item() == pytest.approx(1.5)
    assert control.loss_sum.sum().item() == pytest.approx(6.0)


def test_freezing_semantics():
    config = ProgressConfig(grid_resolution=16, epsilon=0.1, block_period=1)
    control = SpatialProgression(7, 1, 100, config)  # 1D: 6 single-channel blocks after the identity
    x = torch.linspace(-1, 1, 200)[:, None]
    loss = torch.where(x[:, 0] < 0, torch.full((200,), 0.01), torch.full((200,), 1.0))
    history = []
    for _ in range(4):
        control.observe(x, loss)
        history.append(control.level.clone())
    left, right = history[-1][:4], history[-1][-4:]
    assert torch.all(left == 0), "nodes whose loss stays below epsilon never open a block"
    assert torch.all(right == 4), "active nodes open one block per period and share the pointer"
    for before, after in zip(history, history[1:]):
        assert torch.all(after >= before), "levels never go down"
    # a frozen node stays frozen even when its loss rises again
    control.observe(x, torch.ones(200))
    assert torch.all(control.level[:4] == 0)


def test_plateau_ratio_opens_only_where_the_loss_has_stopped_falling():
    config = ProgressConfig(grid_resolution=16, epsilon=0.1, block_period=1, plateau_ratio=0.9)
    control = SpatialProgression(7, 1, 100, config)
    x = torch.linspace(-1, 1, 200)[:, None]
    left = x[:, 0] < 0
    for period in range(4):  # left: the loss halves every period (still learning); right: flat at 1
        control.observe(x, torch.where(left, torch.full((200,), 1.6 * 0.5**period), torch.ones(200)))
    assert torch.all(control.level[:4] == 1), "an improving node opens once (no reference yet), then waits"
    assert torch.all(control.level[-4:] == 4), "a settled node opens a block every period"
    assert torch.all(control.active[:4]), "a waiting node is not frozen"
    for _ in range(2):  # the left settles: it opens again, one block per period, up to the shared pointer
        control.observe(x, torch.where(left, torch.full((200,), 0.2), torch.ones(200)))
    assert torch.all(control.level[:4] == 3) and torch.all(control.level[-4:] == 6)
    restored = SpatialProgression(7, 1, 100, config)
    old = {k: v for k, v in control.state_dict().items() if k != "previous_loss"}  # a checkpoint from before
    restored.load_state_dict(old)
    assert torch.all(restored.previous_loss == 0) and torch.equal(restored.level, control.level)


def test_a_long_run_uses_its_own_plateau_ratio():
    x = torch.linspace(-1, 1, 200)[:, None]
    left = x[:, 0] < 0
    levels = {}
    for total, long_ratio in ((100, None), (101, None), (101, 0.4)):
        config = ProgressConfig(
            grid_resolution=16,
            epsilon=0.1,
            block_period=1,
            plateau_ratio=0.9,
            long_run_steps=100,
            long_run_plateau_ratio=long_ratio,
        )
        control = SpatialProgression(7, 1, total, config)
        for period in range(3):  # left: the loss falls by 40 % per period (still learning); right flat
            control.observe(x, torch.where(left, torch.full((200,), 1.6 * 0.6**period), torch.ones(200)))
        levels[total, long_ratio] = control.level
    assert torch.all(levels[100, None][:4] == 1), "a short run: the improving node waits"
    assert torch.all(levels[101, None][:4] == 3), "a long run, the method's rule: every active node opens"
    assert torch.all(levels[101, 0.4][:4] == 3), "a long run, ratio 0.4: a 40 % fall counts as settled"
    assert all(torch.all(level[-4:] == 3) for level in levels.values())


def test_unvisited_nodes_take_their_neighbours_mean():
    config = ProgressConfig(grid_resolution=12, epsilon=0.5, block_period=1, blur_kernel=3)
    control = SpatialProgression(5, 1, 100, config)
    x = torch.tensor([[-0.95], [0.95]])  # visits only nodes near both ends
    control.loss_sum.zero_()
    control.observe(x, torch.tensor([10.0, 10.0]))
    # every node had loss support after filling and blurring near the visited ends; the middle is 0 -> frozen
    assert control.level[0] == 1 and control.level[-1] == 1
    assert control.level[6] == 0


def test_grid_state_is_small_and_saved_in_state_dict():
    control = SpatialProgression(515, 3, 100000, ProgressConfig(grid_resolution=64, epsilon=0.1))
    size = sum(t.numel() * t.element_size() for t in control.state_dict().values())
    assert size < 5 * 2**20  # a few MB, not the 540 MB of a dense node-by-channel mask
    control.level[:10] = 3
    restored = SpatialProgression(515, 3, 100000, ProgressConfig(grid_resolution=64, epsilon=0.1))
    restored.load_state_dict(control.state_dict())
    x = torch.rand(20, 3) * 2 - 1
    torch.testing.assert_close(restored.mask(x), control.mask(x))


def test_flat_half_freezes_low_while_detailed_half_opens_high():
    size = 32
    rng = np.random.default_rng(0)
    image = np.full((size, size, 1), 0.5, dtype=np.float32)
    rows, cols = np.meshgrid(np.arange(size), np.arange(size // 2), indexing="ij")
    image[:, size // 2 :, 0] = (
        0.5 + 0.4 * np.sin(rows * 1.7) * np.cos(cols * 2.3) + 0.05 * rng.standard_normal((size, size // 2))
    )
    config = ImageFitConfig(
        field=FieldConfig(sigma=10.0, hidden_width=64, hidden_layers=2, num_frequencies=64),
        progress=ProgressConfig(epsilon=1e-3, grid_resolution=16),
        steps=300,
        sample_rate=1.0,
        device="cpu",
    )
    fit = fit_image(image, config)
    levels = fit.model.spatial.node_open_fraction().numpy()  # (r, r): [column node, row node] (axis 0 last)
    flat = levels[1:4, 1:-1]  # column nodes over the flat left half, away from the border blur
    detailed = levels[-5:-1, 1:-1]
    assert flat.mean() < 0.45 and detailed.mean() > 0.9, (flat.mean(), detailed.mean())
    assert fit.open_fraction[:, : size // 4].mean() < fit.open_fraction[:, -size // 4 :].mean()


@pytest.mark.parametrize("ramp", [False, True])
def test_apply_equals_features_times_mask(ramp):
    torch.manual_seed(0)
    control = SpatialProgression(27, 3, 1000, ProgressConfig(grid_resolution=7, ramp=ramp))
    control.level.copy_(torch.randint(0, len(control.block_ends), control.level.shape))
    control.current_block.fill_(len(control.block_ends) - 1)
    control.step_in_period.fill_(1)
    control._invalidate()
    x = torch.rand(50, 3) * 2 - 1
    features = torch.randn(50, 27)
    expected = features * control.mask(x)
    torch.testing.assert_close(control.apply(x, features.clone()), expected)


@pytest.mark.parametrize("device_like", [True, False])
def test_open_width_bounds_every_open_channel_and_the_field_skips_the_rest(device_like):
    """Channels past ``open_width()`` are closed at every point, so the field's MLP may skip them: its
    output and its gradients equal those of the full product (the closed weights' gradients are zero)."""
    from sape_geom.nn.model import EncodedField

    torch.manual_seed(0)
    field = EncodedField(
        2,
        1,
        FieldConfig(num_frequencies=32, hidden_width=16, hidden_layers=2),
        ProgressConfig(grid_resolution=8, num_blocks=6),
        600,
    )
    control = field.controller
    control.compact_levels = not device_like  # both ways of finding the highest level
    x = torch.rand(300, 2) * 2 - 1
    widths = []
    for top in range(len(control.block_ends)):
        control.level.copy_(torch.randint(0, top + 1, control.level.shape, dtype=torch.int16))
        control._current_block = top
        control._mirror()
        control._invalidate()
        width = control.open_width()
        widths.append(width)
        assert not control.mask(x)[:, width:].any()
        full = field.network(control.apply(x, field.encoding(x)))
        sliced = field(x)
        torch.testing.assert_close(sliced, full)
        (grad_full,) = torch.autograd.grad(full.square().sum(), field.network.net[0].weight)
        (grad_sliced,) = torch.autograd.grad(sliced.square().sum(), field.network.net[0].weight)
        torch.testing.assert_close(grad_sliced, grad_full)
        assert not grad_sliced[:, width:].any()
    assert widths[0] < widths[-1] == field.encoding.out_dim
