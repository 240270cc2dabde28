"""Progressive masks over the encoded channels: block partition, global schedule and SAPE (docs/method.md §4, §5).

Channels are ordered from low to high frequency (identity prefix first), and a mask opens them in
*blocks*. Two controllers decide the mask:

* :class:`GlobalProgression` opens the blocks on a fixed timetable, one mask for the whole domain.
* :class:`SpatialProgression` (SAPE) keeps one *level* per node of a regular grid over [-1, 1]^d: the
  index of the last block open at that node. Every block period, nodes whose smoothed mean loss is still
  above epsilon open the next block; the others freeze for good. A sample's mask is the box-smoothed node
  masks interpolated multilinearly at the sample (docs/method.md §5.2, §5.3).

Storing one small integer per node instead of a dense node-by-channel mask (docs/method.md §5.7) keeps the 3D grid
(64^3 nodes) at a few MB. The smoothing and interpolation are folded into one weighted stencil over the
(k+1)^d nodes around a sample, and because every node mask is a prefix of ones, the interpolated mask is
a tail sum of the stencil weights grouped by level. This is exactly the reference's smoothed-then-
interpolated mask, without materialising either grid.

Controllers are ``nn.Module`` s whose state lives in buffers, so a ``state_dict`` saves the whole grid.
Both controllers expose ``mask(x)`` (no gradient) and ``observe(x, per_sample_loss)``, called once after
every optimiser step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ProgressConfig
from ..errors import ConfigError


def block_partition(width: int, in_dim: int, num_blocks: int | None = None) -> tuple[list[int], int]:
    """Exclusive channel ends of blocks 0..K and the block count n_b used by the schedules (docs/method.md §4.1).

    Default: block size ``s = in_dim``, so block 0 is the identity prefix and ``n_b = floor((D - s) / s)``.
    With ``num_blocks = n``: ``s = floor(D / n)`` and ``n_b = n``. A block that would leave fewer than ``s``
    channels behind is widened to the end, so the last block absorbs the remainder.
    """
    if num_blocks is None:
        size = in_dim
        period_blocks = (width - size) // size
    else:
        size = width // num_blocks
        period_blocks = num_blocks
    if size < 1:
        raise ConfigError(f"cannot split {width} channels into {num_blocks} blocks")
    ends = [size]
    start = size
    while start < width:
        end = start + size
        if width - end < size:
            end = width
        ends.append(end)
        start = end
    return ends, max(period_blocks, 1)


def grid_continuous_index(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Continuous node index of coordinates in [-1, 1]: node i sits at ``-1 + 2 (i - 1/2) / (r - 2)``.

    The domain maps to [0.5, r - 1.5]; the result is clamped to [0, r - 1] so inputs outside the domain
    use the border nodes instead of wrapping around (fix of docs/method.md B7).
    """
    return ((x + 1) * (0.5 * (resolution - 2)) + 0.5).clamp(0, resolution - 1)


def _axis_stencil(
    u: torch.Tensor, resolution: int, half: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-axis node indices and weights around continuous indices ``u`` (N, d).

    ``half=None``: the two interpolation corners (weights ``1 - f`` and ``f``).
    ``half=h``: the corners' box windows of width ``2h + 1`` merged, i.e. offsets ``-h .. h + 1`` from the
    lower corner with weights ``((1 - f) [o <= h] + f [o >= 1 - h]) / (2h + 1)``. Indices are clamped to the
    grid, which is exactly replicate padding of the box filter.
    Returns (N, d, n) indices and (N, d, n) weights; each axis's weights sum to 1.
    """
    lower = u.floor().clamp(max=resolution - 2)
    frac = (u - lower)[..., None]
    lower = lower.long()[..., None]
    if half is None:
        offsets = torch.arange(2, device=u.device)
        weights = torch.where(offsets == 0, 1 - frac, frac)
    else:
        offsets = torch.arange(-half, half + 2, device=u.device)
        weights = ((1 - frac) * (offsets <= half) + frac * (offsets >= 1 - half)) / (2 * half + 1)
    indices = (lower + offsets).clamp(0, resolution - 1)
    return indices, weights


def _combine_axes(indices: torch.Tensor, weights: torch.Tensor, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensor product of per-axis stencils: flat node indices ``sum_j i_j r^j`` and product weights (N, n^d)."""
    flat, weight = indices[:, 0], weights[:, 0]
    for axis in range(1, indices.shape[1]):
        flat = (flat[:, :, None] + indices[:, axis, None, :] * resolution**axis).flatten(1)
        weight = (weight[:, :, None] * weights[:, axis, None, :]).flatten(1)
    return flat, weight


def box_filter(grid: torch.Tensor, kernel: int) -> torch.Tensor:
    """Mean over a k^d window with replicate padding, for a (r,)*d grid (d = 1, 2 or 3)."""
    return box_filter_channels(grid[None], kernel)[0]


def box_filter_channels(grids: torch.Tensor, kernel: int) -> torch.Tensor:
    """Box filter of each of C grids stacked as (C, r, ..., r): one 1-D pass per axis, which equals the
    k^d window with replicate padding."""
    half = kernel // 2
    if half == 0:
        return grids.clone()
    out = grids
    for axis in range(1, grids.dim()):
        moved = out.movedim(axis, -1)
        shape = moved.shape
        padded = F.pad(moved.reshape(-1, 1, shape[-1]), (half, half), mode="replicate")
        out = F.avg_pool1d(padded, kernel, stride=1).reshape(shape).movedim(-1, axis)
    return out


class GlobalProgression(nn.Module):
    """One mask for the whole domain, opening blocks on a fixed timetable (docs/method.md §4.2).

    Block period ``B_g = floor(3T / (4 n_b))``; each block ramps linearly from 0 to 1 over the first half of
    its period. Progression stops for good once the best batch-mean loss drops below epsilon.
    """

    def __init__(self, width: int, in_dim: int, total_steps: int, config: ProgressConfig = ProgressConfig()) -> None:
        super().__init__()
        ends, self.period_blocks = block_partition(width, in_dim, config.num_blocks)
        self.width = width
        self.config = config
        self.register_buffer("block_ends", torch.tensor(ends, dtype=torch.long))
        self.register_buffer("period", torch.tensor(1, dtype=torch.long))
        self.register_buffer("step", torch.tensor(0, dtype=torch.long))
        self.register_buffer("current_block", torch.tensor(1, dtype=torch.long))
        self.register_buffer("best_loss", torch.tensor(math.inf))
        self.register_buffer("stopped", torch.tensor(False))
        self.set_total_steps(total_steps)

    def set_total_steps(self, total_steps: int) -> None:
        """Derive the block period from the number of steps (used again once a time budget fixes T)."""
        period = self.config.block_period or max(self.config.min_block_period, (3 * total_steps) // (4 * self.period_blocks))
        self.period.fill_(period)

    def channel_values(self) -> torch.Tensor:
        """(D,) mask: open blocks at 1, the ramping block at alpha, the rest 0."""
        values = torch.zeros(self.width, device=self.block_ends.device)
        block = int(self.current_block)
        ends = self.block_ends
        values[: int(ends[block - 1])] = 1.0
        if block < len(ends):
            period = int(self.period)
            alpha = min(1.0, 2.0 * (int(self.step) % period) / period)
            values[int(ends[block - 1]) : int(ends[block])] = alpha
        return values

    @torch.no_grad()
    def mask(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel_values()[None].expand(x.shape[0], -1)

    @torch.no_grad()
    def observe(self, x: torch.Tensor, per_sample_loss: torch.Tensor) -> None:
        self.best_loss.fill_(min(float(self.best_loss), float(per_sample_loss.mean())))
        if bool(self.stopped) or float(self.best_loss) < self.config.epsilon:
            self.stopped.fill_(True)
            return
        self.step += 1
        if int(self.step) % int(self.period) == 0 and int(self.current_block) < len(self.block_ends):
            self.current_block += 1

    def apply(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``features * mask(x)``: one channel vector for the whole domain."""
        return features * self.channel_values()

    def open_fraction(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask(x[:1]).mean().expand(x.shape[0])


class SpatialProgression(nn.Module):
    """SAPE: a grid of nodes, each opening blocks while its local loss stays above epsilon (docs/method.md §5).

    State per node (buffers): ``level`` (index of the last open block), ``active`` flag, and the
    interpolation-weighted loss and weight sums of the current period.
    """

    def __init__(self, width: int, in_dim: int, total_steps: int, config: ProgressConfig = ProgressConfig()) -> None:
        super().__init__()
        if in_dim not in (1, 2, 3):
            raise ConfigError(f"SAPE grids support 1, 2 or 3 input dimensions, got {in_dim}")
        ends, self.period_blocks = block_partition(width, in_dim, config.num_blocks)
        r = max(config.grid_resolution, 3)
        self.width = width
        self.in_dim = in_dim
        self.resolution = r
        self.kernel = config.blur_kernel or (5 if r**in_dim > 100 else 3)
        self.config = config
        nodes = r**in_dim
        self.register_buffer("block_ends", torch.tensor(ends, dtype=torch.long))
        self.register_buffer("period", torch.tensor(1, dtype=torch.long))
        self.register_buffer("step_in_period", torch.tensor(0, dtype=torch.long))
        self.register_buffer("current_block", torch.tensor(0, dtype=torch.long))
        self.register_buffer("level", torch.zeros(nodes, dtype=torch.int16))
        self.register_buffer("active", torch.ones(nodes, dtype=torch.bool))
        self.register_buffer("loss_sum", torch.zeros(nodes))
        self.register_buffer("weight_sum", torch.zeros(nodes))
        self._lookup: tuple[torch.Tensor, torch.Tensor, int] | None = None
        self._table: torch.Tensor | None = None
        self._runs: list[tuple[int, int, int]] | None = None
        self.register_load_state_dict_post_hook(lambda module, _keys: module._invalidate())
        self.set_total_steps(total_steps)

    def set_total_steps(self, total_steps: int) -> None:
        """Derive the block period ``B = floor(T / (2 n_b))`` unless the config fixes it."""
        period = self.config.block_period or max(self.config.min_block_period, total_steps // (2 * self.period_blocks))
        self.period.fill_(period)

    def _invalidate(self) -> None:
        self._lookup = None
        self._table = None
        self._runs = None

    def _level_lookup(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Tables for :meth:`mask`, rebuilt only when levels change.

        With the ``count`` distinct levels present ranked from the highest (1) to the lowest (count):
        ``rank`` (nodes,) is each node's rank and ``column`` (D,) is, per channel, the number of present
        levels that cover it (0 when none does).
        """
        if self._lookup is None or self._lookup[0].device != self.level.device:
            present, compact = torch.unique(self.level.long(), return_inverse=True)
            count = len(present)
            channels = torch.arange(self.width, device=self.level.device)
            uncovering = torch.searchsorted(self.block_ends[present], channels, right=True)
            self._lookup = (count - compact, count - uncovering, count)
        return self._lookup

    #: Largest smoothed level table (nodes x present levels) kept in memory; beyond it the mask is
    #: computed from the node levels directly (same values, more work per sample).
    table_limit = 1 << 24

    def _smoothed_table(self, rank: torch.Tensor, count: int) -> torch.Tensor | None:
        """(nodes, count + 1) table: column j = box-smoothed fraction of window nodes among the j highest
        present levels (column 0 is 0). Rebuilt only when levels change; None when it would be too big."""
        if self._table is None and self.level.numel() * (count + 1) <= self.table_limit:
            shape = (self.resolution,) * self.in_dim
            one_hot = torch.zeros(count + 1, self.level.numel(), device=self.level.device)
            one_hot[rank, torch.arange(self.level.numel(), device=self.level.device)] = 1.0
            smoothed = box_filter_channels(one_hot.view(count + 1, *shape), self.kernel).view(count + 1, -1)
            self._table = smoothed.cumsum(0).T.contiguous()
        return self._table

    @torch.no_grad()
    def _covered(self, x: torch.Tensor) -> torch.Tensor:
        """(N, count + 1): column j is the interpolated weight of the nodes among the j highest present
        levels (column 0 is always 0), i.e. the mask value of every channel that exactly j levels cover."""
        rank, _, count = self._level_lookup()
        u = grid_continuous_index(x.detach().float(), self.resolution)
        table = self._smoothed_table(rank, count)
        if table is not None:
            # Interpolate the smoothed cumulative table at the 2^d corners of each sample.
            indices, weights = _axis_stencil(u, self.resolution, None)
            nodes, node_weights = _combine_axes(indices, weights, self.resolution)  # (N, 2^d)
            return (table[nodes] * node_weights[..., None]).sum(1)
        # Smoothing and interpolation folded into one stencil over the (k+1)^d nearby nodes.
        indices, weights = _axis_stencil(u, self.resolution, self.kernel // 2)
        nodes, node_weights = _combine_axes(indices, weights, self.resolution)  # (N, (k+1)^d)
        per_level = torch.zeros(x.shape[0], count + 1, device=x.device)
        per_level.scatter_add_(1, rank[nodes], node_weights)
        return per_level.cumsum(1)

    def _ramp(self) -> tuple[int, int, float] | None:
        """Channels of the newest block and their in-block ramp value (SAPE ramp option), or None."""
        block = int(self.current_block)
        if not self.config.ramp or block == 0:
            return None
        alpha = min(1.0, 2.0 * int(self.step_in_period) / int(self.period))
        return int(self.block_ends[block - 1]), int(self.block_ends[block]), alpha

    @torch.no_grad()
    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) mask: smoothed node masks interpolated at ``x`` (N, d), values in [0, 1]."""
        _, column, _ = self._level_lookup()
        mask = self._covered(x).index_select(1, column)
        ramp = self._ramp()
        if ramp is not None:
            mask[:, ramp[0] : ramp[1]] *= ramp[2]
        return mask

    def apply(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``features * mask(x)`` without building the (N, D) mask: each run of channels that the same
        levels cover is scaled by one column. In place unless ``features`` needs a gradient."""
        if features.requires_grad:
            return features * self.mask(x)
        covered = self._covered(x)
        for start, end, column in self._channel_runs():
            features[:, start:end] *= covered[:, column : column + 1]
        ramp = self._ramp()
        if ramp is not None:
            features[:, ramp[0] : ramp[1]] *= ramp[2]
        return features

    def _channel_runs(self) -> list[tuple[int, int, int]]:
        """(start, end, column) for each run of consecutive channels sharing a column of the table."""
        _, column, _ = self._level_lookup()
        if self._runs is None:
            values = column.tolist()
            starts = [0] + [c for c in range(1, len(values)) if values[c] != values[c - 1]]
            ends = starts[1:] + [len(values)]
            self._runs = [(start, end, values[start]) for start, end in zip(starts, ends)]
        return self._runs

    @torch.no_grad()
    def observe(self, x: torch.Tensor, per_sample_loss: torch.Tensor) -> None:
        """Scatter-add the per-sample losses onto each sample's interpolation corners (fix of docs/method.md B1)."""
        u = grid_continuous_index(x.detach().float(), self.resolution)
        indices, weights = _axis_stencil(u, self.resolution, None)
        nodes, node_weights = _combine_axes(indices, weights, self.resolution)  # (N, 2^d)
        loss = per_sample_loss.detach().float().reshape(-1, 1)
        self.loss_sum.index_add_(0, nodes.flatten(), (node_weights * loss).flatten())
        self.weight_sum.index_add_(0, nodes.flatten(), node_weights.flatten())
        self.step_in_period += 1
        if int(self.step_in_period) >= int(self.period):
            self.advance()

    @torch.no_grad()
    def smoothed_mean_loss(self) -> torch.Tensor:
        """Blurred per-node mean loss of the current period, unvisited nodes filled from their neighbours."""
        shape = (self.resolution,) * self.in_dim
        visited = self.weight_sum > 0
        mean = torch.where(visited, self.loss_sum / self.weight_sum.clamp_min(1e-30), torch.zeros_like(self.loss_sum))
        window = self.kernel**self.in_dim
        if window > 1 and not bool(visited.all()):
            neighbour_sum = box_filter(mean.view(shape), self.kernel).flatten() * window - mean
            mean = torch.where(visited, mean, neighbour_sum / (window - 1))
        return box_filter(mean.view(shape), self.kernel).flatten()

    @torch.no_grad()
    def advance(self) -> None:
        """Block boundary (docs/method.md §5.5): freeze converged nodes, open the next block in the others, reset."""
        self.active &= self.smoothed_mean_loss() > self.config.epsilon
        if int(self.current_block) < len(self.block_ends) - 1:
            self.current_block += 1
            self.level[self.active] = int(self.current_block)
            self._invalidate()
        self.loss_sum.zero_()
        self.weight_sum.zero_()
        self.step_in_period.zero_()

    def node_open_fraction(self) -> torch.Tensor:
        """Raw (unsmoothed) fraction of open channels per node, shaped (r,)*d with axis 0 last."""
        fraction = self.block_ends[self.level.long()].float() / self.width
        return fraction.view((self.resolution,) * self.in_dim)

    def open_fraction(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) mean of the mask over channels at ``x``: the paper's frequency heat-map value."""
        return self.mask(x).mean(dim=1)


def build_controller(
    control: str, width: int, in_dim: int, total_steps: int, config: ProgressConfig
) -> GlobalProgression | SpatialProgression | None:
    if control == "spatial":
        return SpatialProgression(width, in_dim, total_steps, config)
    if control == "global":
        return GlobalProgression(width, in_dim, total_steps, config)
    return None
