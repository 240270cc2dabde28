"""Grid geometry shared by the SAPE controller: blocks, node indices, stencils and box filters (docs/method.md §4.1, §5).

Kept apart from :mod:`.progressive` so that the controllers read as the method and this module as the
arithmetic; every function here is vectorised torch with shapes that depend only on the batch and the
grid, never on the data (no host reads, docs/method.md §5.9).
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F

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


def axis_stencil(u: torch.Tensor, resolution: int, half: int | None) -> tuple[torch.Tensor, torch.Tensor]:
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


def combine_axes(indices: torch.Tensor, weights: torch.Tensor, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensor product of per-axis stencils: flat node indices ``sum_j i_j r^j`` and product weights (N, n^d)."""
    flat, weight = indices[:, 0], weights[:, 0]
    for axis in range(1, indices.shape[1]):
        flat = (flat[:, :, None] + indices[:, axis, None, :] * resolution**axis).flatten(1)
        weight = (weight[:, :, None] * weights[:, axis, None, :]).flatten(1)
    return flat, weight


def corner_stencil(x: torch.Tensor, resolution: int, half: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat node indices and weights (N, n^d) of the samples ``x`` (N, d): the 2^d interpolation corners
    (``half=None``) or the folded smoothing-and-interpolation stencil (docs/method.md §5.3, §5.7)."""
    u = grid_continuous_index(x.detach().float(), resolution)
    if half is not None:
        indices, weights = axis_stencil(u, resolution, half)
        return combine_axes(indices, weights, resolution)
    # The corners in fewer operations (a training step computes them once per batch): the lower corner's
    # flat index plus each corner's fixed offset (no clamp: the lower corner is at most r - 2), and the
    # same products of weights as combine_axes.
    lower = u.floor().clamp_(max=resolution - 2)
    frac = u - lower
    strides, offsets = _corner_offsets(u.shape[1], resolution, u.device)
    flat = (lower.long() * strides).sum(1, keepdim=True) + offsets
    axis_weights = torch.stack((1 - frac, frac), dim=-1)  # (N, d, 2)
    weight = axis_weights[:, 0]
    for axis in range(1, u.shape[1]):
        weight = (weight[:, :, None] * axis_weights[:, axis, None, :]).flatten(1)
    return flat, weight


@cache
def _corner_offsets(dim: int, resolution: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(d,) flat index strides of the axes, and (2^d,) flat index offsets of a cell's corners from its
    lower corner, in :func:`combine_axes`' order (it makes them)."""
    strides = resolution ** torch.arange(dim, device=device)
    corners = torch.arange(2, device=device).expand(1, dim, 2)
    offsets = combine_axes(corners, torch.ones(1, dim, 2, device=device), resolution)[0][0]
    return strides, offsets


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
