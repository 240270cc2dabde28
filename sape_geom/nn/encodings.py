"""Input encodings gamma(x) for coordinates in [-1, 1]^d (docs/method.md §2).

Every encoding is an ``nn.Module`` with ``in_dim`` and ``out_dim`` known at construction, so the MLP can
be sized before anything runs. Random parameters are drawn once from an explicit ``torch.Generator`` and
stored as buffers: they are saved with the weights and never trained.

Channel order matters for progressive masking: every encoding here lists its channels from low to high
frequency, and :class:`IdentityPrefix` puts the raw coordinates in front (docs/method.md §2.6).
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
from torch import nn

from ..config import FieldConfig
from ..errors import ConfigError


class Encoding(nn.Module):
    """Base class: maps (N, in_dim) coordinates to (N, out_dim) features."""

    in_dim: int
    out_dim: int

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        if in_dim < 1:
            raise ConfigError(f"in_dim must be >= 1, got {in_dim}")
        self.in_dim = in_dim
        self.out_dim = out_dim

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}"


class IdentityEncoding(Encoding):
    """No encoding: the coordinates themselves (width d)."""

    def __init__(self, in_dim: int) -> None:
        super().__init__(in_dim, in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def fourier_angles(x: torch.Tensor, frequencies: torch.Tensor) -> torch.Tensor:
    """``2 pi x B^T`` (N, m) in float32, outside any autocast (docs/method.md §2.1, §5.9).

    The angles reach about 400 rad: in bf16 the top channels would be off by about 3 rad, in TF32 by
    about 0.3 rad, so they are never computed in either. On the CPU at full float32 matmul precision this
    is the plain matrix product; elsewhere, or when a lower matmul precision is
    allowed (TF32), the d <= 3 products are summed elementwise, which no matmul setting can touch.
    """
    off = (
        torch.autocast(x.device.type, enabled=False)
        if torch.amp.is_autocast_available(x.device.type)
        else nullcontext()
    )
    with off:
        x = x.float()
        frequencies = frequencies.float()
        if x.device.type == "cpu" and torch.get_float32_matmul_precision() == "highest":
            return (2.0 * math.pi) * (x @ frequencies.T)
        products = x[:, 0, None] * frequencies[:, 0]
        for axis in range(1, x.shape[1]):
            products = products + x[:, axis, None] * frequencies[:, axis]
        return (2.0 * math.pi) * products


class FourierFeatures(Encoding):
    """Gaussian random Fourier features, interleaved ``[sin(2 pi b_k.x), cos(2 pi b_k.x)]`` per frequency.

    ``sampling="reference"`` (docs/method.md §2.1): norms ``|a_k|``, ``a_k ~ N(0, sigma^2)``, sorted ascending, signs kept,
    times uniform random unit directions, so the norms are half-normal with scale sigma in any dimension.
    ``sampling="tancik"``: every entry of B is N(0, sigma^2) (norms ``sigma * chi_d``); rows are still sorted by
    norm so progressive masks open low frequencies first.
    """

    frequencies: torch.Tensor  # buffer

    def __init__(
        self,
        in_dim: int,
        num_frequencies: int = 256,
        sigma: float = 20.0,
        sampling: str = "reference",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(in_dim, 2 * num_frequencies)
        if sampling == "reference":
            scalars = torch.randn(num_frequencies, generator=generator, dtype=torch.float64) * sigma
            scalars = scalars[torch.argsort(scalars.abs())]
            directions = torch.randn(num_frequencies, in_dim, generator=generator, dtype=torch.float64)
            directions = directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
            frequencies = scalars[:, None] * directions
        elif sampling == "tancik":
            frequencies = torch.randn(num_frequencies, in_dim, generator=generator, dtype=torch.float64) * sigma
            frequencies = frequencies[torch.argsort(frequencies.norm(dim=1))]
        else:
            raise ConfigError(f"unknown Fourier-feature sampling {sampling!r}; choose reference or tancik")
        self.sigma = sigma
        self.sampling = sampling
        self.register_buffer("frequencies", frequencies.float())  # (m, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = fourier_angles(x, self.frequencies)  # (N, m), float32 whatever the autocast
        if angles.requires_grad:
            return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)
        features = torch.empty(x.shape[0], 2 * angles.shape[1], dtype=angles.dtype, device=angles.device)
        return self.fill(x, features, angles)

    def fill(self, x: torch.Tensor, out: torch.Tensor, angles: torch.Tensor | None = None) -> torch.Tensor:
        """The features of ``x`` (no gradient) written into ``out`` (N, 2m), a view whose rows may be
        longer: sin0, cos0, sin1, cos1, ... Returns ``out``."""
        if angles is None:
            angles = fourier_angles(x, self.frequencies)
        pairs = out.unflatten(1, (-1, 2))  # a view, whatever the rows' stride
        torch.sin(angles, out=pairs[..., 0])
        torch.cos(angles, out=pairs[..., 1])
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, sigma={self.sigma}, sampling={self.sampling}"


class PositionalEncoding(Encoding):
    """NeRF positional encoding: for octave l, ``cos(2^l pi x_1..d)`` then ``sin(2^l pi x_1..d)`` (docs/method.md §2.2)."""

    omegas: torch.Tensor  # buffer

    def __init__(self, in_dim: int, octaves: int = 8) -> None:
        super().__init__(in_dim, 2 * in_dim * octaves)
        self.register_buffer("omegas", (2.0 ** torch.arange(octaves, dtype=torch.float32)) * math.pi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angles = x[:, None, :] * self.omegas[None, :, None]  # (N, L, d)
        return torch.cat((angles.cos(), angles.sin()), dim=-1).flatten(1)  # (N, 2dL)


class RBFEncoding(Encoding):
    """Gaussian radial basis features ``exp(-s_k^2 |x - c_k|^2)``, widths sorted ascending (docs/method.md §2.3)."""

    centres: torch.Tensor  # buffer
    inverse_widths: torch.Tensor  # buffer

    def __init__(
        self, in_dim: int, num_frequencies: int = 256, sigma: float = 20.0, generator: torch.Generator | None = None
    ) -> None:
        count = 2 * num_frequencies
        super().__init__(in_dim, count)
        centres = torch.rand(count, in_dim, generator=generator) * 2 - 1
        inverse_widths = torch.randn(count, generator=generator).abs() * sigma + 1
        self.register_buffer("centres", centres)  # (2m, d)
        self.register_buffer("inverse_widths", inverse_widths.sort().values)  # (2m,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squared = torch.cdist(x, self.centres).square()  # (N, 2m)
        return torch.exp(-self.inverse_widths.square() * squared)


class PeriodicRBFEncoding(Encoding):
    """Periodic Gaussian bumps on a grid of uniformly spaced scales, two phases per scale (docs/method.md §2.4)."""

    scales: torch.Tensor  # buffer
    periods: torch.Tensor  # buffer
    offsets: torch.Tensor  # buffer

    def __init__(
        self, in_dim: int, num_frequencies: int = 256, sigma: float = 20.0, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(in_dim, 2 * num_frequencies)
        m = num_frequencies
        scales = (torch.arange(m, dtype=torch.float32) + 0.5) * (sigma * math.sqrt(3) / max(m - 1, 1))
        periods = 2.0 / scales
        offsets = (torch.rand(m, in_dim, generator=generator) * 2 - 1).remainder(periods[:, None])
        self.register_buffer("scales", scales)  # (m,)
        self.register_buffer("periods", periods)  # (m,)
        self.register_buffer("offsets", offsets)  # (m, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        period = self.periods[None, :, None]
        phase_a = x[:, None, :] + self.offsets[None]  # (N, m, d)
        phase_b = phase_a + (1.0 / self.scales)[None, :, None]
        features = []
        for phase in (phase_a, phase_b):
            wrapped = 2 * phase.remainder(period) - period
            features.append(2 * torch.exp(-self.scales.square() * wrapped.square().sum(-1)) - 1)  # (N, m)
        return torch.stack(features, dim=-1).flatten(1)  # (N, 2m), phases interleaved per scale


class IdentityPrefix(Encoding):
    """``[x, phi(x)]``: the raw coordinates before the features, used under progression (docs/method.md §2.6)."""

    def __init__(self, inner: Encoding) -> None:
        super().__init__(inner.in_dim, inner.in_dim + inner.out_dim)
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.inner, FourierFeatures) and not x.requires_grad:
            # the features written beside x in one buffer: no concatenated copy (docs/method.md §5.9)
            out = torch.empty(x.shape[0], self.out_dim, dtype=x.dtype, device=x.device)
            out[:, : self.in_dim] = x
            self.inner.fill(x, out[:, self.in_dim :])
            return out
        return torch.cat((x, self.inner(x)), dim=-1)


def build_encoding(config: FieldConfig, in_dim: int, generator: torch.Generator | None = None) -> Encoding:
    """The encoding a field config asks for, with the identity prefix when a progressive mask is used."""
    kind = config.base_encoding
    if kind == "ff":
        encoding: Encoding = FourierFeatures(
            in_dim, config.num_frequencies, config.sigma, config.ff_sampling, generator=generator
        )
    elif kind == "pe":
        encoding = PositionalEncoding(in_dim, config.pe_octaves)
    elif kind == "rbf":
        encoding = RBFEncoding(in_dim, config.num_frequencies, config.sigma, generator=generator)
    elif kind == "prbf":
        encoding = PeriodicRBFEncoding(in_dim, config.num_frequencies, config.sigma, generator=generator)
    else:
        encoding = IdentityEncoding(in_dim)
    if config.control != "none" and kind != "none":
        encoding = IdentityPrefix(encoding)
    return encoding
