"""Networks and the encoded neural field ``y(x) = f(M(x, t) * gamma(x))`` (docs/method.md §1, §3)."""

from __future__ import annotations

import dataclasses
import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from ..config import FieldConfig, ProgressConfig
from .compiled import CompiledNetwork, resolve_compile
from .encodings import Encoding, build_encoding
from .precision import compute_dtype, resolve_precision
from .progressive import SpatialProgression, build_controller


class MLP(nn.Module):
    """``Linear -> ReLU -> [Linear -> ReLU] x (layers - 1) -> Linear``, PyTorch default init (docs/method.md §3)."""

    def __init__(self, in_dim: int, out_dim: int, width: int = 256, hidden_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(in_dim, width), nn.ReLU(inplace=True)]
        for _ in range(hidden_layers - 1):
            layers += [nn.Linear(width, width), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, used_inputs: int | None = None) -> torch.Tensor:
        """``used_inputs``: only the first this many input columns can be non-zero (a progressive mask
        has the rest closed everywhere), so the first layer multiplies only those: the same sums without
        the zero terms, and the closed columns' weights get the zero gradient they would get anyway."""
        if used_inputs is None or used_inputs >= x.shape[1]:
            return self.net(x)
        first = cast(nn.Linear, self.net[0])  # Sequential[i] is typed Module
        hidden = F.linear(x[:, :used_inputs], first.weight[:, :used_inputs], first.bias)
        return self.net[1:](hidden)


class SineLayer(nn.Module):
    """``sin(omega * (W x + b))`` with the SIREN initialisation (Sitzmann et al. 2020)."""

    def __init__(self, in_dim: int, out_dim: int, omega: float, first: bool) -> None:
        super().__init__()
        self.omega = omega
        self.linear = nn.Linear(in_dim, out_dim)
        bound = 1.0 / in_dim if first else math.sqrt(6.0 / in_dim) / omega
        with torch.no_grad():
            self.linear.weight.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.omega * self.linear(x))


class Siren(nn.Module):
    """The sine-activated baseline network: sine layers of the same depth and width, linear output."""

    def __init__(
        self, in_dim: int, out_dim: int, width: int = 256, hidden_layers: int = 3, omega: float = 30.0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [SineLayer(in_dim, width, omega, first=True)]
        for _ in range(hidden_layers - 1):
            layers.append(SineLayer(width, width, omega, first=False))
        self.net = nn.Sequential(*layers)
        self.head = nn.Linear(width, out_dim)
        bound = math.sqrt(6.0 / width) / omega
        with torch.no_grad():
            self.head.weight.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(x))


class EncodedField(nn.Module):
    """Encoding, optional progressive mask and network, as one module.

    ``observe(x, per_sample_loss)`` feeds the controller after each optimiser step; ``open_fraction(x)``
    gives the fraction of encoding channels open at ``x`` (1 without a controller). The whole state,
    controller grid included, is in ``state_dict()``. The network runs in ``config.precision``
    (docs/method.md §5.10); everything else, and the output, is float32.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        config: FieldConfig,
        progress: ProgressConfig,
        total_steps: int,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.config = config
        self.encoding: Encoding = build_encoding(config, in_dim, generator)
        self.controller = build_controller(config.control, self.encoding.out_dim, in_dim, total_steps, progress)
        if config.encoding == "siren":
            self.network: nn.Module = Siren(
                in_dim, out_dim, config.hidden_width, config.hidden_layers, config.siren_omega
            )
        else:
            self.network = MLP(self.encoding.out_dim, out_dim, config.hidden_width, config.hidden_layers)
        self._compiled: CompiledNetwork | None = None  # built at the first training step that compiles
        self._last_input: tuple[torch.Tensor, int, torch.Tensor | None] | None = None  # see _encode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self._encode(x)
        if self.controller is not None:
            features = self.controller.apply(x, features)
        dtype = compute_dtype(self.config.precision, x.device)
        if dtype is None:
            return self._network(features)
        with torch.autocast(x.device.type, dtype=dtype):
            output = self._network(features)
        return output.float()

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """The encoding of ``x``. Training steps that see the same unchanged points again (a curve's fixed
        parameter, a template's vertices, a regression grid) reuse the features computed the second time
        they were seen: the encoding's frequencies never change in training. A copy is handed out, since
        the mask multiplies it in place."""
        if not self.training or x.requires_grad:
            return self.encoding(x)
        last = self._last_input
        if last is None or last[0] is not x or last[1] != x._version:
            self._last_input = (x, x._version, None)  # the points only: a new batch each step costs nothing
            return self.encoding(x)
        features = last[2]
        if features is None:
            features = self.encoding(x)
            self._last_input = (x, x._version, features)
        return features.clone()

    def _network(self, features: torch.Tensor) -> torch.Tensor:
        """The network on the masked features; an MLP skips the channels the mask has closed everywhere
        (SAPE's unopened blocks, docs/method.md §5.11). Training steps run it compiled where
        ``config.compile`` says so (docs/method.md §5.12)."""
        args: tuple = (features,)
        if isinstance(self.network, MLP) and isinstance(self.controller, SpatialProgression):
            args = (features, self.controller.open_width())
        compiled = self._compiled_network(features.device) if self.training else None
        if compiled is None:
            return self.network(*args)
        compiled.warm_up(features.detach(), *args[1:])  # compiles once; a no-op afterwards
        return compiled(*args)

    def _compiled_network(self, device: torch.device) -> CompiledNetwork | None:
        if not resolve_compile(self.config.compile, device):
            return None
        if self._compiled is None:
            self._compiled = CompiledNetwork(self.network, device)
        return self._compiled

    @property
    def compiled(self) -> bool:
        """Whether training steps ran the compiled network (``config.compile``, and compiling worked)."""
        return self._compiled is not None and self._compiled.active

    @property
    def precision(self) -> str:
        """The precision the network runs in on its present device (``auto`` resolved)."""
        return resolve_precision(self.config.precision, next(self.parameters()).device)

    def set_precision(self, precision: str) -> None:
        """Run the network in ``precision`` from now on (e.g. extracting a float32 fit in bfloat16); an
        unknown name is a ``ConfigError`` (the field config checks it)."""
        self.config = dataclasses.replace(self.config, precision=precision)

    @torch.no_grad()
    def observe(self, x: torch.Tensor, per_sample_loss: torch.Tensor) -> None:
        if self.controller is not None:
            self.controller.observe(x, per_sample_loss)

    def set_total_steps(self, total_steps: int) -> None:
        if self.controller is not None:
            self.controller.set_total_steps(total_steps)

    @torch.no_grad()
    def open_fraction(self, x: torch.Tensor) -> torch.Tensor:
        if self.controller is None:
            return torch.ones(x.shape[0], device=x.device)
        return self.controller.open_fraction(x)

    @property
    def spatial(self) -> SpatialProgression | None:
        return self.controller if isinstance(self.controller, SpatialProgression) else None

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Forward pass in chunks without gradients (for dense evaluation of large point sets); chunks of
        ``batch_size`` rows, by default :func:`query_rows` of the device."""
        rows = batch_size or query_rows(x.device)
        return torch.cat([self(chunk) for chunk in x.split(rows)]) if len(x) else self(x)


def query_rows(device: torch.device) -> int:
    """Rows per forward pass when a field is evaluated at many points. On the CPU a chunk's activations
    stay under glibc's largest heap allocation (32 MB; 8192 x 256 floats is 8 MB), so they reuse memory
    instead of arriving as fresh zeroed pages at every chunk, which made 32768-row chunks slower
    (benchmarks/results, the speed section); accelerators take larger chunks."""
    return 8192 if device.type == "cpu" else 65536
