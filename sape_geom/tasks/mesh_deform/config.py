"""Settings of the 3-D mesh deformation (docs/method.md §6.5)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field as dc_field

from ...config import FieldConfig, ProgressConfig
from ...errors import ConfigError

FRAMES = ("each", "target")
"""How the source is placed: ``each`` normalises source and target each by its own box (a unit sphere
lands on a bunny wherever either sits); ``target`` keeps the source where it is relative to the target
(both moved by the target's normalisation), for two scans already roughly aligned."""


def _default_field() -> FieldConfig:
    return FieldConfig(encoding="sape", sigma=4.0, num_frequencies=128, hidden_width=128, hidden_layers=2)


def _default_progress() -> ProgressConfig:
    return ProgressConfig(epsilon=1e-2, grid_resolution=16, blur_kernel=3, num_blocks=6, ramp=True)


@dataclass(frozen=True)
class MeshDeformConfig:
    """Settings of :func:`deform_mesh` (docs/method.md §6.5).

    The network maps a source vertex position (unit frame) to its displacement. The defaults are sized
    for a 10k-vertex source on two CPU cores in about a minute and a half.
    """

    field: FieldConfig = dc_field(default_factory=_default_field)
    """Encoding and MLP: SAPE over FF, sigma = 4, 128 frequencies, 2 hidden layers of 128."""
    progress: ProgressConfig = dc_field(default_factory=_default_progress)
    """SAPE grid over 3-D space: 16^3 nodes, 6 blocks, epsilon 1e-2 (a per-vertex distance, unit frame),
    each new block ramped in over half a period (without the ramp a block switches on untrained
    first-layer weights at once, a jolt of high-frequency displacement that crumples the surface)."""
    steps: int = 400
    """Chamfer optimisation steps (stage 2)."""
    lr: float = 1e-3
    """Adam learning rate of stage 2 (every encoding)."""
    lr_final: float | None = None
    """Stage 2 decays the learning rate exponentially to this by the last step; None = lr / 10."""
    unlock_fraction: float = 1.0
    """Share of the stage-2 steps over which SAPE opens its blocks, one per ``unlock_fraction x steps /
    n_b`` steps: the coarse fit must have settled before a block opens, or every region opens it."""
    calibration_steps: int = 300
    """Upper bound of stage 1 (the displacement driven to zero on the source); 0 skips it."""
    calibration_lr: float = 1e-3
    calibration_tolerance: float = 1e-6
    """Stage 1 stops as soon as the mean squared displacement is <= this (1e-3 root mean square)."""
    calibration_points: int = 2048
    """Source vertices (a random share) the calibration fits; all of them when there are fewer."""
    source_samples: int = 3000
    """Points drawn on the deformed source surface per step (barycentric, area-weighted on the source),
    besides the vertices themselves."""
    target_samples: int = 200_000
    """Points drawn once on the target surface (area-weighted); each step uses a rotating share."""
    target_per_step: int = 3000
    """Target samples per step for the target-to-source term (every sample once in k steps)."""
    edge_weight: float = 0.1
    """Weight of the edge term: the mean squared deviation of each edge's length ratio (deformed over
    source) from the mean ratio. Zero for any similarity of the source; 0 = off (docs/method.md §6.5)."""
    normal_weight: float = 0.3
    """Weight of the normal term: the mean of ``1 - n . n_t`` over the sampled faces, ``n_t`` the target's
    normal at each sample's closest point. It unfolds faces lying inside out on the surface, which the
    Chamfer cannot see (docs/method.md §6.5); 0 = off."""
    frame: str = "each"
    """``each`` or ``target`` (see ``FRAMES``)."""
    snapshots: int = 0
    """Intermediate vertex arrays to keep (evenly over stage 2, plus the start and the end); 0 = none."""
    metric_points: int = 50_000
    """Surface samples per mesh for the metrics."""
    seed: int = 0
    device: str = "auto"
    """``auto``, ``cpu``, ``cuda``, ``mps``; the exact distances are libigl's, on the CPU, either way."""

    def __post_init__(self) -> None:
        if not isinstance(self.field, FieldConfig) or not isinstance(self.progress, ProgressConfig):
            raise ConfigError("MeshDeformConfig.field / .progress must be FieldConfig / ProgressConfig")
        for name in (
            "steps",
            "calibration_points",
            "source_samples",
            "target_samples",
            "target_per_step",
            "metric_points",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name in ("calibration_steps", "snapshots", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {v!r}")
        if self.frame not in FRAMES:
            raise ConfigError(f"unknown frame {self.frame!r}; choose one of: {', '.join(FRAMES)}")
        if not (isinstance(self.unlock_fraction, (int, float)) and 0 < self.unlock_fraction <= 1):
            raise ConfigError(f"unlock_fraction must be in (0, 1], got {self.unlock_fraction!r}")
        for name in ("edge_weight", "normal_weight"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be a number >= 0, got {v!r}")
        for name in ("calibration_lr", "calibration_tolerance"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a positive number, got {v!r}")
        for name in ("lr",) if self.lr_final is None else ("lr", "lr_final"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a positive number, got {v!r}")

    @property
    def final_learning_rate(self) -> float:
        """The learning rate stage 2 decays to by its last step."""
        return float(self.lr_final) if self.lr_final is not None else self.lr / 10
