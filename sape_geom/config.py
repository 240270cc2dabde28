"""Frozen configuration dataclasses shared by every task.

Defaults follow the method as documented in ``docs/method.md`` (§7). Derived values (block size, block
period, blur window) are computed on the built objects and never written back into a config
(reference-code bugs docs/method.md B3, B4, B6). Configs round-trip through plain dicts / JSON; unknown keys are an
error (docs/method.md B5).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .errors import ConfigError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: Names accepted by ``--encoding``. ``sape`` and ``progressive`` are Fourier features (or ``base``)
#: with a spatially adaptive / global progressive mask; ``siren`` is the sine-activated baseline network.
ENCODINGS = ("sape", "progressive", "ff", "pe", "rbf", "prbf", "none", "siren")
BASE_ENCODINGS = ("ff", "pe", "rbf", "prbf", "none")
FF_SAMPLINGS = ("reference", "tancik")
#: Names accepted by ``FieldConfig.precision`` and ``--precision`` (resolved in ``nn.precision``).
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
#: Names accepted by ``FieldConfig.compile`` and ``--compile`` (resolved in ``nn.compiled``).
COMPILE_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class FieldConfig:
    """The neural field: encoding, optional progressive mask, and the network behind it."""

    encoding: str = "sape"
    """One of ``ENCODINGS``."""
    base: str = "ff"
    """Encoding that ``sape`` / ``progressive`` mask (one of ``BASE_ENCODINGS``)."""
    num_frequencies: int = 256
    """Number of random Fourier frequencies m (width 2m); also m for RBF / periodic RBF."""
    sigma: float = 20.0
    """Scale of the frequency distribution (docs/method.md §2.1: norms are sigma * |N(0,1)|)."""
    ff_sampling: str = "reference"
    """``reference``: sorted half-normal norms with uniform directions; ``tancik``: i.i.d. N(0, sigma^2) entries."""
    pe_octaves: int = 8
    """Octaves L of the NeRF positional encoding."""
    hidden_width: int = 256
    hidden_layers: int = 3
    siren_omega: float = 30.0
    """SIREN's frequency factor omega_0 (first layer)."""
    allow_tf32: bool = False
    """Let the network's matrix products use TF32 while training on a CUDA GPU (about 3x the float32
    speed on recent GPUs); the Fourier angles are computed in float32 all the same (docs/method.md §5.10).
    Off: float32 everywhere."""
    precision: str = "float32"
    """The precision of the network's matrix products (one of ``PRECISIONS``, docs/method.md §5.10):
    ``float32`` (the method's), ``bfloat16`` or ``float16`` under autocast, or ``auto``: bfloat16 where the
    device computes it natively, float32 elsewhere. The encoding, the loss, SAPE's feedback and the
    optimiser state stay float32."""
    compile: str = "off"
    """Run training steps through ``torch.compile`` (one of ``COMPILE_MODES``, docs/method.md §5.12):
    ``on``, ``off`` (the method's eager PyTorch), or ``auto``: only where it pays (a CUDA GPU, with CUDA
    graphs). Where compiling fails, training runs eagerly with one log line saying why."""

    def __post_init__(self) -> None:
        _check_choice("encoding", self.encoding, ENCODINGS)
        _check_choice("base", self.base, BASE_ENCODINGS)
        _check_choice("ff_sampling", self.ff_sampling, FF_SAMPLINGS)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("compile", self.compile, COMPILE_MODES)
        _check_positive("num_frequencies", self.num_frequencies)
        _check_positive("hidden_width", self.hidden_width)
        _check_positive("hidden_layers", self.hidden_layers)
        _check_positive("pe_octaves", self.pe_octaves)
        if not (self.sigma > 0):
            raise ConfigError(f"sigma must be > 0, got {self.sigma!r}")

    @property
    def control(self) -> str:
        """``spatial``, ``global`` or ``none``: which progressive controller masks the encoding."""
        return {"sape": "spatial", "progressive": "global"}.get(self.encoding, "none")

    @property
    def base_encoding(self) -> str:
        """The encoding actually computed before masking."""
        if self.encoding in ("sape", "progressive"):
            return self.base
        if self.encoding == "siren":
            return "none"
        return self.encoding


@dataclass(frozen=True)
class ProgressConfig:
    """Settings of the progressive controllers (docs/method.md §4, §5)."""

    epsilon: float = 1e-3
    """Loss threshold: a node whose smoothed mean loss is <= epsilon freezes (SAPE); global early stop."""
    grid_resolution: int = 128
    """Nodes per axis r of the SAPE control grid (at least 3)."""
    blur_kernel: int | None = None
    """Box window k; None = 5 if r^d > 100 else 3 (docs/method.md §5.2)."""
    num_blocks: int | None = None
    """None = block size d (docs/method.md §4.1); n = block size floor(D / n)."""
    block_period: int | None = None
    """Steps between unlocks; None = floor(T / (2 n_b)) for SAPE, floor(3T / (4 n_b)) for global."""
    min_block_period: int = 1
    """Lower bound on the derived block period, so that a short run (few steps, a small time budget)
    opens fewer blocks instead of opening every block before the field has settled (1 = the method's)."""
    plateau_ratio: float | None = None
    """SAPE only: at a block boundary a node above ``epsilon`` opens its next block only once its loss has
    stopped falling, i.e. is at least ``plateau_ratio`` x its loss of the period before; until then it
    keeps its level and stays active (docs/method.md §5.5). None = the method: every active node opens."""
    long_run_steps: int | None = None
    """SAPE only: a run of more than this many steps uses ``long_run_plateau_ratio`` instead of
    ``plateau_ratio``; it has the time to settle after blocks open early (docs/method.md §5.5).
    None = every run uses ``plateau_ratio``."""
    long_run_plateau_ratio: float | None = None
    """``plateau_ratio`` of a run longer than ``long_run_steps``; None = the method's rule."""
    ramp: bool = False
    """SAPE only: ramp each newly opened block in linearly over half a period (off in the reference code, docs/method.md D1)."""

    def __post_init__(self) -> None:
        if not (self.epsilon >= 0):
            raise ConfigError(f"epsilon must be >= 0, got {self.epsilon!r}")
        if self.grid_resolution < 3:
            raise ConfigError(f"grid_resolution must be >= 3, got {self.grid_resolution}")
        if self.blur_kernel is not None and (self.blur_kernel < 1 or self.blur_kernel % 2 == 0):
            raise ConfigError(f"blur_kernel must be a positive odd number, got {self.blur_kernel}")
        if self.num_blocks is not None:
            _check_positive("num_blocks", self.num_blocks)
        if self.block_period is not None:
            _check_positive("block_period", self.block_period)
        _check_positive("min_block_period", self.min_block_period)
        _check_ratio("plateau_ratio", self.plateau_ratio)
        _check_ratio("long_run_plateau_ratio", self.long_run_plateau_ratio)
        if self.long_run_steps is not None:
            _check_positive("long_run_steps", self.long_run_steps)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")


def _check_ratio(name: str, value: float | None) -> None:
    if value is not None and not 0 < value <= 1:
        raise ConfigError(f"{name} must be in (0, 1] or None, got {value!r}")


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


C = TypeVar("C", bound="DataclassInstance")


def to_dict(config: Any) -> dict[str, Any]:
    """A config (nested dataclasses) as a JSON-ready dict."""
    return dataclasses.asdict(config)


def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Build ``cls`` from a dict, recursing into nested config fields; unknown keys are an error."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{cls.__name__} expects a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown option(s) for {cls.__name__}: {', '.join(unknown)}; known: {', '.join(known)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        target = _dataclass_in(hints[name])
        kwargs[name] = from_dict(target, value) if target is not None and isinstance(value, Mapping) else value
    return cls(**kwargs)


def replace(config: C, **changes: Any) -> C:
    """``dataclasses.replace`` that also accepts dotted keys for nested fields (``field.sigma=5``)."""
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    names = {f.name for f in fields(config)}
    unknown = sorted((set(flat) | set(nested)) - names)
    if unknown:
        raise ConfigError(f"unknown option(s) for {type(config).__name__}: {', '.join(unknown)}")
    for head, sub in nested.items():
        flat[head] = replace(getattr(config, head), **sub)
    return dataclasses.replace(config, **flat)


def dumps(config: Any) -> str:
    return json.dumps(to_dict(config), indent=2, sort_keys=True)


def _dataclass_in(hint: Any) -> type[DataclassInstance] | None:
    # A type hint names a class, so a dataclass found here is the class, not an instance.
    if is_dataclass(hint):
        return cast("type[DataclassInstance]", hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        for arg in typing.get_args(hint):
            if is_dataclass(arg):
                return cast("type[DataclassInstance]", arg)
    return None


__all__ = [
    "BASE_ENCODINGS",
    "COMPILE_MODES",
    "ENCODINGS",
    "PRECISIONS",
    "FieldConfig",
    "ProgressConfig",
    "dumps",
    "from_dict",
    "replace",
    "to_dict",
]
