"""Occupancy fitting settings: the frozen config, its presets, and the network it builds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ... import config as cfg
from ...config import FieldConfig, ProgressConfig
from ...errors import ConfigError
from ...nn.model import EncodedField


@dataclass(frozen=True)
class OccupancyConfig:
    """Occupancy fitting settings; the defaults are the official protocol (docs/method.md §6.3, §7)."""

    field: FieldConfig = FieldConfig(sigma=20.0, hidden_width=256, hidden_layers=4)
    progress: ProgressConfig = ProgressConfig(epsilon=0.1, grid_resolution=64, block_period=200)
    points_per_set: int = 1_000_000
    """Training points per set: 1/3 near the surface (sigma 0.01), 1/3 looser (0.1), 1/3 uniform."""
    num_sets: int = 10
    """Point sets generated once each and then reused in turn."""
    steps: int | None = 100_000
    """Optimisation steps (500 epochs x 200 steps); None when ``time_budget`` is used instead."""
    time_budget: float | None = None
    """Seconds of training instead of a step count; the SAPE schedule is scaled to fit in it."""
    batch_size: int = 5000
    lr: float = 1e-4
    lr_final: float | None = None
    """If set, the learning rate decays exponentially to this value by the last step."""
    resolution: int = 256
    """Marching-cubes grid resolution of the extracted surface."""
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.steps is None and self.time_budget is None:
            raise ConfigError("give steps or a time budget")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps <= 0):
            raise ConfigError(f"steps must be a positive integer, got {self.steps!r}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ConfigError(f"time budget must be > 0 seconds, got {self.time_budget}")
        for name in ("points_per_set", "num_sets", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.batch_size > self.points_per_set:
            raise ConfigError(f"batch_size ({self.batch_size}) exceeds points_per_set ({self.points_per_set})")
        if not 8 <= self.resolution <= 2048:
            raise ConfigError(f"resolution must be between 8 and 2048, got {self.resolution}")


PRESETS: dict[str, OccupancyConfig] = {
    "quality": OccupancyConfig(),
    # Tuned on the pymeshlab bunny on 2 CPU cores: a coarser SAPE grid and 16 blocks of 32 channels, so
    # that each node sees enough samples per block period of a short run (period 31 steps), 5x fewer
    # points per set, and a larger learning rate that decays over the run.
    "fast": OccupancyConfig(
        field=FieldConfig(sigma=20.0, hidden_width=256, hidden_layers=4),
        progress=ProgressConfig(epsilon=0.1, grid_resolution=32, num_blocks=16),
        points_per_set=200_000,
        num_sets=4,
        steps=1000,
        lr=1e-3,
        lr_final=5e-5,
    ),
}


def occupancy_preset(name: str = "fast", **overrides: Any) -> OccupancyConfig:
    """A named preset with overrides: ``encoding``, ``sigma``, ``steps``, ``time_budget``, ``device``,
    ``seed``, ``resolution``, or any field (dotted keys reach nested configs: ``progress.epsilon``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    aliases = {"encoding": "field.encoding", "sigma": "field.sigma"}
    changes = {aliases.get(key, key): value for key, value in overrides.items() if value is not None}
    if changes.get("time_budget") is not None and "steps" not in changes:
        changes["steps"] = None
    if changes.get("steps") is not None and "time_budget" not in changes:
        changes["time_budget"] = None
    return cfg.replace(PRESETS[name], **changes)



def build_model(config: OccupancyConfig, total_steps: int, generator: torch.Generator | None = None) -> EncodedField:
    """The encoded field of ``config``: 3D points in, one logit of P(outside) out."""
    return EncodedField(3, 1, config.field, config.progress, total_steps, generator)
