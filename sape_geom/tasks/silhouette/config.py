"""Settings of the silhouette deformation (docs/method.md §6.4, §7)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field as dc_field

from ...config import FieldConfig, ProgressConfig, replace
from ...errors import ConfigError

LOSSES = ("exact", "subset")
"""Stage-2 losses (see ``loss.py``): exact point-to-polyline Chamfer, or the reference's subset Chamfer."""

DEFAULT_LR = {"none": 1e-4}
"""Per-encoding default learning rate of the Chamfer stage; every other encoding uses 1e-5 (docs/method.md §6.4)."""


def _default_field() -> FieldConfig:
    return FieldConfig(encoding="sape", sigma=5.0, num_frequencies=256, hidden_width=256, hidden_layers=2)


def _default_progress() -> ProgressConfig:
    return ProgressConfig(epsilon=1e-3, grid_resolution=128, blur_kernel=5, num_blocks=6)


@dataclass(frozen=True)
class DeformConfig:
    """Settings of the silhouette deformation (docs/method.md §6.4, §7).

    The network, SAPE grid, ε, learning rate and calibration are the method's. Where the defaults differ
    (issue 14), :func:`paper_config` gives the paper's setting back: the exact Chamfer (so SAPE's feedback
    can fall below ε and regions freeze), the fold and crossing terms (no self-intersections), 1000 curve
    points instead of 500, the blocks opened over the whole run instead of its first half (converged
    stretches freeze at lower levels), and 3000 steps instead of 10 000 (the same quality on the official
    silhouettes, about a third of the time).
    """

    field: FieldConfig = dc_field(default_factory=_default_field)
    """Encoding and MLP: SAPE over FF, σ = 5, 256 frequencies, 2 hidden layers of 256."""
    progress: ProgressConfig = dc_field(default_factory=_default_progress)
    """SAPE / global progression: 6 blocks, ε = 1e-3, 128 grid nodes over τ, blur k = 5."""
    steps: int = 3000
    """Chamfer optimisation steps (stage 2); the paper's 10 000 with :func:`paper_config`."""
    lr: float | None = None
    """Adam learning rate of stage 2; None = 1e-4 for ``none``, 1e-5 for every other encoding."""
    lr_final: float | None = None
    """Stage 2 decays the learning rate exponentially to this by the last step; None = constant."""
    unlock_fraction: float = 1.0
    """Share of the stage-2 steps over which SAPE opens its blocks, one per ``unlock_fraction x steps /
    n_b`` steps (unless ``progress.block_period`` fixes it). The method's 0.5 may open every block by
    half-way, before most stretches have converged at a lower level; 1.0 spreads them over the run."""
    calibration_steps: int = 5000
    """Upper bound of stage 1 (fit to the source); 0 skips calibration."""
    calibration_lr: float = 1e-4
    calibration_tolerance: float = 1e-4
    """Stage 1 stops as soon as the MSE to the source is <= this."""
    points: int = 1000
    """Number of curve points (τ samples) of the deformed curve; with several loops, of the longest
    (the others get a share by perimeter, at least ``shape.MIN_LOOP_POINTS``). The paper has 500; at
    500 the detailed official silhouettes cannot reach an IoU of 0.99 (a uniform resampling of the
    target itself reaches 0.986 on bat)."""
    target_samples: int | None = None
    """Target contour resampled to this many points (uniform arc length) for the loss and the metrics;
    None = max(2000, number of contour vertices), at most 20000."""
    loss: str = "exact"
    """``exact``: curve point to target polyline and target samples to the curve, exact distances
    (SAPE's feedback can reach ε); ``subset``: the reference's random subset Chamfer (see ``loss.py``)."""
    fold_weight: float = 10.0
    """Weight of the fold term (``loss.fold_penalty``): curve edges running backwards along the target,
    the fold-backs and curls where the curve crosses itself; 0 = off. Zero on a curve that follows the
    target in its own direction. The backwards length is totalled over the curve and divided by a fixed
    500 (``loss.TERM_POINTS``), so the weight means the same at any number of points."""
    crossing_weight: float = 10.0
    """Weight of the crossing term (``loss.crossing_penalty``): for each pair of curve edges that cross,
    how far the nearest end point must move to undo it (doubled while a pair stays crossed, up to
    ``loss.MAX_BOOST``), totalled and divided by 500 like the fold term. Zero on any curve that does not
    cross itself; 0 = off."""
    uncross: bool = True
    """Resolve the self-crossings the trained curve still has (``curve.untangle``): the result is the
    outline of the region the curve winds around positively, so a stretch that ran twice around a thin tip
    keeps the tip and a twisted fold is cut off; no point moves, points are added on the outline's longest
    pieces to keep the count. Thin parts whose two sides come closer than the curve's point spacing can
    cross where no loss term holds them apart. The metrics report the network's own count."""
    max_target_samples: int = 1000
    """Target points per step: the random subset of the ``subset`` loss (docs/method.md §6.4: at most
    1000), the rotating share of the second term of the ``exact`` loss."""
    offset: bool = False
    """Parametrise the curve as source + MLP output (docs/method.md D2) instead of absolute positions."""
    snapshot_every: int = 50
    """Keep the curve every this many steps (plus step 0 and the last step); 0 = only those two."""
    snapshot_steps: tuple[int, ...] = ()
    """Further steps at which to keep the curve (e.g. for an animation with a custom timing)."""
    seed: int = 0
    device: str = "auto"
    """``auto``, ``cpu``, ``cuda``, ``mps``."""

    def __post_init__(self) -> None:
        if not isinstance(self.field, FieldConfig) or not isinstance(self.progress, ProgressConfig):
            raise ConfigError("DeformConfig.field / .progress must be FieldConfig / ProgressConfig")
        for name in ("steps", "points", "max_target_samples"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name in ("calibration_steps", "snapshot_every", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {v!r}")
        try:
            steps = tuple(sorted({int(v) for v in self.snapshot_steps}))
        except (TypeError, ValueError):
            raise ConfigError(f"snapshot_steps must be integers, got {self.snapshot_steps!r}") from None
        if any(v < 0 for v in steps):
            raise ConfigError(f"snapshot_steps must be >= 0, got {self.snapshot_steps!r}")
        object.__setattr__(self, "snapshot_steps", steps)
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose one of: {', '.join(LOSSES)}")
        if self.points < 3:
            raise ConfigError(f"points must be at least 3, got {self.points}")
        if self.target_samples is not None and (not isinstance(self.target_samples, int) or self.target_samples < 3):
            raise ConfigError(f"target_samples must be None or an integer >= 3, got {self.target_samples!r}")
        if not (isinstance(self.unlock_fraction, (int, float)) and 0 < self.unlock_fraction <= 1):
            raise ConfigError(f"unlock_fraction must be in (0, 1], got {self.unlock_fraction!r}")
        for name in ("calibration_lr", "calibration_tolerance"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a positive number, got {v!r}")
        for name in ("lr", "lr_final"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be None or a positive number, got {v!r}")

    @property
    def learning_rate(self) -> float:
        """The stage-2 learning rate actually used."""
        if self.lr is not None:
            return float(self.lr)
        return DEFAULT_LR.get(self.field.encoding, 1e-5)


def paper_config(**changes) -> DeformConfig:
    """The paper's setting for the reproduction (docs/method.md §6.4): the reference's random-subset
    Chamfer, no fold or crossing term, no uncrossing, 500 curve points, 10 000 steps at a constant 1e-5
    (1e-4 without encoding)."""
    base = DeformConfig(
        loss="subset",
        fold_weight=0.0,
        crossing_weight=0.0,
        steps=10_000,
        lr=None,
        lr_final=None,
        unlock_fraction=0.5,
        uncross=False,
        points=500,
    )
    return replace(base, **changes)
