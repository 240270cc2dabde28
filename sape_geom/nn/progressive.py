"""Progressive masks over the encoded channels: global schedule and SAPE (docs/method.md §4, §5).

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

Controllers are ``nn.Module`` s whose state is saved in buffers, so a ``state_dict`` saves the whole grid.
Both expose ``mask(x)`` (no gradient) and ``observe(x, per_sample_loss)``, called once after every
optimiser step; neither reads a device value back between block boundaries (docs/method.md §5.9).
"""

from __future__ import annotations

import math
from bisect import bisect_right

import torch
from torch import nn

from ..config import ProgressConfig
from ..errors import ConfigError
from .stencil import (  # noqa: F401  (re-exported: the public names lived here first)
    axis_stencil as _axis_stencil,
)
from .stencil import (
    block_partition,
    box_filter,
    box_filter_channels,
    corner_stencil,
)


class GlobalProgression(nn.Module):
    """One mask for the whole domain, opening blocks on a fixed timetable (docs/method.md §4.2).

    Block period ``B_g = floor(3T / (4 n_b))``; each block ramps linearly from 0 to 1 over the first half of
    its period. Progression stops for good once the best batch-mean loss drops below epsilon. The counters
    are updated on the device with ``torch.where`` (the stop depends on the loss), so a step reads nothing
    back (docs/method.md §5.9).
    """

    # Buffers (register_buffer below); declared here so their type is Tensor, not Tensor | Module.
    block_ends: torch.Tensor
    period: torch.Tensor
    step: torch.Tensor
    current_block: torch.Tensor
    best_loss: torch.Tensor
    stopped: torch.Tensor
    _bounds: torch.Tensor
    _channels: torch.Tensor

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
        # Block starts and ends with the width appended, so block K (past the last) reads an empty range.
        self.register_buffer("_bounds", torch.tensor([0, *ends, width], dtype=torch.long), persistent=False)
        self.register_buffer("_channels", torch.arange(width), persistent=False)
        self.set_total_steps(total_steps)

    def set_total_steps(self, total_steps: int) -> None:
        """Derive the block period from the number of steps (used again once a time budget fixes T)."""
        period = self.config.block_period or max(
            self.config.min_block_period, (3 * total_steps) // (4 * self.period_blocks)
        )
        self.period.fill_(period)

    def channel_values(self) -> torch.Tensor:
        """(D,) mask: open blocks at 1, the ramping block at alpha, the rest 0."""
        bounds = self._bounds.index_select(0, torch.cat((self.current_block.view(1), self.current_block.view(1) + 1)))
        low, high = bounds[0], bounds[1]
        # alpha = min(1, 2 (t mod B) / B): exact in float32 for the integers involved.
        alpha = ((2 * (self.step % self.period)).float() / self.period.float()).clamp(max=1.0)
        opened = (self._channels < low).float()
        ramping = (self._channels >= low) & (self._channels < high)
        return opened + alpha * ramping

    @torch.no_grad()
    def mask(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel_values()[None].expand(x.shape[0], -1)

    @torch.no_grad()
    def observe(self, x: torch.Tensor, per_sample_loss: torch.Tensor) -> None:
        # fmin: a NaN batch loss leaves the best loss alone, as Python's min(best, nan) did.
        self.best_loss.copy_(torch.fmin(self.best_loss, per_sample_loss.detach().float().mean()))
        self.stopped.logical_or_(self.best_loss < self.config.epsilon)
        running = (~self.stopped).long()
        self.step.add_(running)
        opens = running * (self.step % self.period == 0).long() * (self.current_block < len(self.block_ends)).long()
        self.current_block.add_(opens)

    def apply(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``features * mask(x)``: one channel vector for the whole domain."""
        return features * self.channel_values()

    def open_fraction(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask(x[:1]).mean().expand(x.shape[0])


class SpatialProgression(nn.Module):
    """SAPE: a grid of nodes, each opening blocks while its local loss stays above epsilon (docs/method.md §5).

    State per node (buffers): ``level`` (index of the last open block), ``active`` flag, and the
    interpolation-weighted loss and weight sums of the current period. The step and block counters are
    Python integers, written into the ``step_in_period``, ``current_block`` and ``period`` buffers at every
    block boundary, on ``state_dict()`` and on ``eval()``, and read back from them by ``load_state_dict``
    and :meth:`_invalidate` (docs/method.md §5.6, §5.9).
    """

    # Buffers (register_buffer below); declared here so their type is Tensor, not Tensor | Module.
    block_ends: torch.Tensor
    period: torch.Tensor
    step_in_period: torch.Tensor
    current_block: torch.Tensor
    level: torch.Tensor
    active: torch.Tensor
    loss_sum: torch.Tensor
    weight_sum: torch.Tensor
    previous_loss: torch.Tensor

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
        self._ends = ends
        nodes = r**in_dim
        self.register_buffer("block_ends", torch.tensor(ends, dtype=torch.long))
        self.register_buffer("period", torch.tensor(1, dtype=torch.long))
        self.register_buffer("step_in_period", torch.tensor(0, dtype=torch.long))
        self.register_buffer("current_block", torch.tensor(0, dtype=torch.long))
        self.register_buffer("level", torch.zeros(nodes, dtype=torch.int16))
        self.register_buffer("active", torch.ones(nodes, dtype=torch.bool))
        self.register_buffer("loss_sum", torch.zeros(nodes))
        self.register_buffer("weight_sum", torch.zeros(nodes))
        self.register_buffer("previous_loss", torch.zeros(nodes))  # plateau_ratio's reference (0: open at once)
        self._period = 1
        self._step_in_period = 0
        self._current_block = 0
        self._top = 0  # highest level any node can hold: the table's columns are levels 0 .. _top
        self._table: torch.Tensor | None = None
        self._column: torch.Tensor | None = None
        self._runs: list[tuple[int, int, int]] | None = None
        self._levels: list[int] | None = None
        self._alpha: tuple[tuple[int, int], torch.Tensor] | None = None
        self._corners: tuple[torch.Tensor, int, torch.Tensor, torch.Tensor] | None = None
        self.register_load_state_dict_post_hook(lambda module, _keys: module._invalidate())
        self.set_total_steps(total_steps)

    def set_total_steps(self, total_steps: int) -> None:
        """Derive the block period ``B = floor(T / (2 n_b))`` unless the config fixes it."""
        period = self.config.block_period or max(self.config.min_block_period, total_steps // (2 * self.period_blocks))
        self._period = int(period)
        self.period.fill_(period)
        long_run = self.config.long_run_steps is not None and total_steps > self.config.long_run_steps
        self._plateau_ratio = self.config.long_run_plateau_ratio if long_run else self.config.plateau_ratio

    # ---- counters and caches ---------------------------------------------------------------------

    def _mirror(self) -> None:
        """Write the Python counters into their buffers (fills from host values: no device read)."""
        self.step_in_period.fill_(self._step_in_period)
        self.current_block.fill_(self._current_block)
        self.period.fill_(self._period)

    def _drop_caches(self) -> None:
        self._table = None
        self._column = None
        self._runs = None
        self._levels = None
        self._alpha = None

    def _invalidate(self) -> None:
        """Re-read the counters from the buffers and drop the cached tables: after ``load_state_dict`` or
        after the buffers were edited by hand. The only place that reads device values back."""
        self._drop_caches()
        self._corners = None
        self._period = int(self.period)
        self._step_in_period = int(self.step_in_period)
        self._current_block = int(self.current_block)
        self._top = max(self._current_block, int(self.level.max()) if self.level.numel() else 0)

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        self._mirror()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        # Checkpoints written before plateau_ratio have no previous_loss: start it at 0 (open at once).
        state_dict.setdefault(prefix + "previous_loss", torch.zeros_like(self.previous_loss))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def train(self, mode: bool = True) -> SpatialProgression:
        if not mode:
            self._mirror()
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):
        # .to(), .cuda(), .double() ...: cached tables and stencils live on the old device or dtype.
        self._drop_caches()
        self._corners = None
        return super()._apply(fn, recurse)

    # ---- mask --------------------------------------------------------------------------------------

    #: Which levels the mask table ranks (docs/method.md §5.7). ``False``: every level 0 .. top, a shape
    #: known on the host (no device read at a boundary: the accelerator path). ``True``: only the levels
    #: some node holds, found by one ``bincount`` read per boundary (narrower tables, and the same
    #: floats as a table of every level). ``None``: ``True`` on the CPU, where a read costs nothing.
    compact_levels: bool | None = None

    def _ranked(self) -> list[int]:
        """The levels the table ranks, highest first (rank j + 1 = entry j). Rebuilt at boundaries."""
        if self._levels is None:
            compact = self.compact_levels if self.compact_levels is not None else self.level.device.type == "cpu"
            if compact:
                held = torch.bincount(self.level.long(), minlength=self._top + 1).tolist()
                self._top = len(held) - 1  # also covers levels written by hand since the last _invalidate
                self._levels = [level for level in range(len(held) - 1, -1, -1) if held[level]]
            else:
                self._levels = list(range(self._top, -1, -1))
        return self._levels

    def _node_rank(self) -> torch.Tensor:
        """(nodes,) rank of each node's level among :meth:`_ranked` (1 = highest)."""
        ranked = self._ranked()
        if len(ranked) == self._top + 1:  # every level 0 .. top: the rank is arithmetic
            return self._top + 1 - self.level.long()
        rank_of = torch.zeros(self._top + 1, dtype=torch.long)
        rank_of[torch.tensor(ranked)] = torch.arange(1, len(ranked) + 1)
        return rank_of.to(self.level.device).index_select(0, self.level.long())

    def open_width(self) -> int:
        """Channels ``[0, open_width())`` hold every channel any sample can have open now (a host value,
        no device read): the blocks up to the highest level a node holds or the schedule has reached."""
        self._ranked()  # on the CPU this brings the highest held level up to date
        return self._ends[min(self._top, len(self._ends) - 1)]

    def _block_columns(self) -> list[int]:
        """Per block b, the number of ranked levels whose blocks cover it (levels >= b)."""
        ranked = self._ranked()
        return [sum(1 for level in ranked if level >= block) for block in range(len(self._ends))]

    def _columns(self) -> torch.Tensor:
        """(D,) per channel, the number of ranked levels whose blocks cover it: channel c is covered
        by level L iff ``block_ends[L] > c``. Rebuilt at block boundaries, from host values."""
        if self._column is None:
            per_block = self._block_columns()
            values = [per_block[bisect_right(self._ends, c)] for c in range(self.width)]
            self._column = torch.tensor(values, dtype=torch.long).to(self.level.device)
        return self._column

    def _channel_runs(self) -> list[tuple[int, int, int]]:
        """(start, end, column) for each run of consecutive channels sharing a column of :meth:`_columns`:
        each block is one run (blocks the top level does not reach share column 0)."""
        if self._runs is not None:
            return self._runs
        runs, start = [], 0
        for column, end in zip(self._block_columns(), self._ends):
            if runs and runs[-1][2] == column:
                runs[-1] = (runs[-1][0], end, column)
            else:
                runs.append((start, end, column))
            start = end
        self._runs = runs
        return runs

    #: Largest smoothed level table (nodes x (levels + 1)) kept in memory; beyond it the mask is
    #: computed from the node levels directly (same values, more work per sample).
    table_limit = 1 << 24

    def _smoothed_table(self) -> torch.Tensor | None:
        """(nodes, ranked + 1) table: column j = box-smoothed fraction of window nodes among the j highest
        ranked levels (column 0 is 0). With every level 0 .. top ranked its shape is fixed between
        boundaries (no ``unique``); a level no node holds adds an all-zero column, so the sums are the
        same floats. Rebuilt only when levels change; None when it would be too big (docs/method.md §5.7)."""
        count = len(self._ranked())
        if self._table is None and self.level.numel() * (count + 1) <= self.table_limit:
            shape = (self.resolution,) * self.in_dim
            nodes = torch.arange(self.level.numel(), device=self.level.device)
            one_hot = torch.zeros(count + 1, self.level.numel(), device=self.level.device)
            one_hot[self._node_rank(), nodes] = 1.0
            smoothed = box_filter_channels(one_hot.view(count + 1, *shape), self.kernel).view(count + 1, -1)
            self._table = smoothed.cumsum(0).T.contiguous()
        return self._table

    def _corner_stencil(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Interpolation corners of ``x``, computed once per batch and shared by the mask and the
        feedback of the same step (docs/method.md §5.9): cached for the same tensor, unmodified."""
        cached = self._corners
        if cached is not None and cached[0] is x and cached[1] == x._version:
            return cached[2], cached[3]
        nodes, weights = corner_stencil(x, self.resolution)
        self._corners = (x, x._version, nodes, weights)
        return nodes, weights

    @torch.no_grad()
    def _covered(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ranked + 1): column j is the interpolated weight of the nodes among the j highest ranked
        levels (column 0 is always 0), i.e. the mask value of every channel that exactly j levels cover."""
        table = self._smoothed_table()
        if table is not None:
            # Interpolate the smoothed cumulative table at the 2^d corners of each sample.
            nodes, node_weights = self._corner_stencil(x)  # (N, 2^d)
            return (table[nodes] * node_weights[..., None]).sum(1)
        # Smoothing and interpolation folded into one stencil over the (k+1)^d nearby nodes.
        count = len(self._ranked())
        nodes, node_weights = corner_stencil(x, self.resolution, self.kernel // 2)  # (N, (k+1)^d)
        rank = self._node_rank()
        per_level = torch.zeros(x.shape[0], count + 1, device=x.device)
        per_level.scatter_add_(1, rank[nodes], node_weights)
        return per_level.cumsum(1)

    def _ramp(self) -> tuple[int, int, torch.Tensor] | None:
        """Channels of the newest block and their in-block ramp value as a 0-d device tensor (SAPE ramp
        option), or None. The value is computed on the host and filled in once per step."""
        block = self._current_block
        if not self.config.ramp or block == 0:
            return None
        key = (block, self._step_in_period)
        if self._alpha is None or self._alpha[0] != key:
            alpha = min(1.0, 2.0 * self._step_in_period / self._period)
            value = self._alpha[1] if self._alpha is not None else torch.empty((), device=self.level.device)
            self._alpha = (key, value.fill_(alpha))
        return self._ends[block - 1], self._ends[block], self._alpha[1]

    @torch.no_grad()
    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) mask: smoothed node masks interpolated at ``x`` (N, d), values in [0, 1]."""
        mask = self._covered(x).index_select(1, self._columns())
        ramp = self._ramp()
        if ramp is not None:
            mask[:, ramp[0] : ramp[1]] *= ramp[2]
        return mask

    def apply(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``features * mask(x)``, in place unless ``features`` needs a gradient, then the ramp (the same
        products in the same order as the mask). On an accelerator one gathered column per channel in one
        multiply; on the CPU, where a gather along channels is slow, one multiply per run of channels that
        share a column (runs known from host values, no device read)."""
        if features.requires_grad:
            return features * self.mask(x)
        covered = self._covered(x)
        if features.device.type == "cpu":
            for start, end, column in self._channel_runs():
                features[:, start:end] *= covered[:, column : column + 1]
        else:
            features.mul_(covered.index_select(1, self._columns()))
        ramp = self._ramp()
        if ramp is not None:
            features[:, ramp[0] : ramp[1]] *= ramp[2]
        return features

    # ---- feedback ----------------------------------------------------------------------------------

    @torch.no_grad()
    def observe(self, x: torch.Tensor, per_sample_loss: torch.Tensor) -> None:
        """Scatter-add the per-sample losses onto each sample's interpolation corners (fix of docs/method.md B1)."""
        nodes, node_weights = self._corner_stencil(x)  # (N, 2^d), shared with the forward pass
        loss = per_sample_loss.detach().float().reshape(-1, 1)
        self.loss_sum.index_add_(0, nodes.flatten(), (node_weights * loss).flatten())
        self.weight_sum.index_add_(0, nodes.flatten(), node_weights.flatten())
        self._step_in_period += 1
        if self._step_in_period >= self._period:
            self.advance()

    @torch.no_grad()
    def smoothed_mean_loss(self) -> torch.Tensor:
        """Blurred per-node mean loss of the current period, unvisited nodes filled from their neighbours."""
        shape = (self.resolution,) * self.in_dim
        visited = self.weight_sum > 0
        mean = torch.where(visited, self.loss_sum / self.weight_sum.clamp_min(1e-30), torch.zeros_like(self.loss_sum))
        window = self.kernel**self.in_dim
        if window > 1:  # where every node was visited, torch.where keeps ``mean`` as it is
            neighbour_sum = box_filter(mean.view(shape), self.kernel).flatten() * window - mean
            mean = torch.where(visited, mean, neighbour_sum / (window - 1))
        return box_filter(mean.view(shape), self.kernel).flatten()

    @torch.no_grad()
    def advance(self) -> None:
        """Block boundary (docs/method.md §5.5): freeze converged nodes, open the next block in the others, reset."""
        loss = self.smoothed_mean_loss()
        self.active &= loss > self.config.epsilon
        if self._current_block < len(self._ends) - 1:
            self._current_block += 1
            if self._plateau_ratio is None:
                self.level.masked_fill_(self.active, self._current_block)
            else:  # a node still improving waits; one that has settled opens one more block
                settled = self.active & (loss >= self._plateau_ratio * self.previous_loss)
                self.level.add_(settled.to(self.level.dtype)).clamp_(max=self._current_block)
            self._top = max(self._top, self._current_block)
            self._drop_caches()
            self._ranked()  # the compact table's one read, here rather than in the next step's forward
        self.previous_loss.copy_(loss)
        self.loss_sum.zero_()
        self.weight_sum.zero_()
        self._step_in_period = 0
        self._mirror()

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
