"""Occupancy fitting settings: the frozen config, its presets, and the network it builds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ... import config as cfg
from ...config import FieldConfig, ProgressConfig
from ...errors import ConfigError

if TYPE_CHECKING:  # the settings stay importable without torch (the command line lists the presets)
    import torch

    from ...nn.model import EncodedField


TARGETS = ("occupancy", "sdf")
OPEN_INPUT_MODES = ("auto", "solid", "shell")
LEARNED_SHELL_THICKNESS = 0.01
"""The thinnest sheet, as a fraction of the diagonal, that a field learns: at half of this the open box
and the hemisphere came out perforated (the field's error at 1000 steps is of the order of the
half-thickness), at this whole (docs/method.md §6.3). A thinner ``shell_thickness`` is learned at this
and snapped to its own."""


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")


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
    lr_hold: int = 0
    """With ``lr_final``: steps at the full learning rate before the decay starts (at most half the run)."""
    resolution: int = 256
    """Marching-cubes grid resolution of the extracted surface."""
    seed: int = 0
    device: str = "auto"
    target: str = "occupancy"
    """What the network learns (docs/method.md §6.3): ``occupancy``, the method's logit of P(outside)
    under a BCE loss, or ``sdf``, the signed distance within ``sdf_band`` of the surface under an L1 loss
    (beyond the band only the side is enforced)."""
    sdf_band: float = 0.05
    """``sdf``: half-width of the band (unit frame, radius 0.95) where the distance itself is fitted."""
    open_input: str = "solid"
    """How the input is read: ``solid`` (inside = winding number > 0.5), ``shell`` (a sheet of
    ``shell_thickness`` around the surface, for open surfaces), or ``auto`` (shell when the winding number
    fails to separate the two sides of much of the surface)."""
    shell_thickness: float = 0.002
    """``shell``: thickness of the sheet an open input comes out as, a fraction of its bounding-box
    diagonal. The field learns a sheet at least :data:`LEARNED_SHELL_THICKNESS` thick; snapping
    (``snap_to_input``) then puts the sheet's sides half of this from the input, and at least half a grid
    cell (docs/method.md §6.3). Without snapping the sheet is the learned one."""
    shell_num_frequencies: int | None = None
    """Frequencies used instead of ``field.num_frequencies`` when the input is read as a shell (None: the same)."""
    shell_batch_size: int | None = None
    """The batch size used instead of ``batch_size`` when the input is read as a shell (None: ``batch_size``;
    at most ``points_per_set``)."""
    remove_unsupported: bool = False
    """Drop extracted pieces that lie away from the input surface (spurious pieces of the field)."""
    smooth_surface: bool = False
    """Smooth the extracted surface, keeping its edges and creases (``mesh.smoothing``, docs/method.md
    §6.3): a fitted field ripples slightly where the shape is simple, which shading shows."""
    snap_to_input: bool = False
    """Put the extracted surface of a solid onto the input's own surface where it lies within a grid cell
    of it, its creases included (``mesh.snapping``, docs/method.md §6.3): the field decides what is inside
    and where the surface runs, the input says exactly where. Shells are not snapped."""
    corner_gap: float = 0.0
    """Marching cubes keeps every vertex at least this fraction of a cell from the grid points
    (``mesh.marching.SlabMarcher``): no needle triangles where the surface grazes a grid point. 0 is
    plain marching cubes."""
    face_budget: int | None = None
    """Extraction stops with a clear error when the field would give more faces: None = 20 x
    resolution^2, at least 1M (a smooth shape gives under 10 x), 0 = no limit (a noisy field can give millions)."""

    def __post_init__(self) -> None:
        _check_choice("target", self.target, TARGETS)
        _check_choice("open_input", self.open_input, OPEN_INPUT_MODES)
        if not self.sdf_band > 0:
            raise ConfigError(f"sdf_band must be > 0, got {self.sdf_band}")
        if not 0 < self.shell_thickness < 0.5:
            raise ConfigError(
                f"shell_thickness must be in (0, 0.5) (a fraction of the diagonal), got {self.shell_thickness}"
            )
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
        for name in ("shell_batch_size", "shell_num_frequencies"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{name} must be a positive integer or None, got {value!r}")
        if self.face_budget is not None and (not isinstance(self.face_budget, int) or self.face_budget < 0):
            raise ConfigError(f"face_budget must be an integer >= 0 (0 = no limit), got {self.face_budget!r}")
        if not 0.0 <= self.corner_gap < 0.5:
            raise ConfigError(f"corner_gap must be in [0, 0.5) (a fraction of a cell), got {self.corner_gap}")
        if not 8 <= self.resolution <= 2048:
            raise ConfigError(f"resolution must be between 8 and 2048, got {self.resolution}")


CORNER_GAP = 0.1
"""The ``fast`` and ``quality`` presets' ``corner_gap``: marching cubes keeps each vertex a tenth of a
cell from the grid points and slides it back onto the surface's tangent plane, so the needle triangles
that plain marching cubes makes where the surface grazes a grid point are gone; their noisy normals
showed as dark specks under Blender's angle-weighted shading (benchmarks/results/specks)."""

SURFACE_DEFAULTS = {
    "target": "sdf",
    "open_input": "auto",
    "remove_unsupported": True,
    "smooth_surface": True,
    "snap_to_input": True,
    "corner_gap": CORNER_GAP,
}
"""What the ``fast`` and ``quality`` presets change from the method (README, "How it works"): a signed
distance instead of occupancy, so that SAPE can tell simple from detailed regions (the L1 error on a flat
face falls under epsilon, the BCE next to any surface does not); open input read as a shell when it has
large holes; pieces away from the input surface dropped; the surface smoothed where it bends by less
than ``mesh.smoothing.FEATURE_ANGLE`` between neighbouring faces (the field's ripples on flat and
gently curved parts go, edges and creases stay); a solid's surface put onto the input where it is within
a cell of it, creases sharpened (``snap_to_input``); no needle triangles (:data:`CORNER_GAP`)."""

PLATEAU_RATIO = 0.8
"""SAPE nodes open their next block only once their loss falls by less than 20 % per period
(``ProgressConfig.plateau_ratio``, docs/method.md §5.5): the bunny at 200 steps of ``fast`` went from
IoU 0.78 and 61 pieces to 0.98 and one piece (0.9 kept even fewer high frequencies)."""

LONG_RUN_STEPS, LONG_RUN_PLATEAU_RATIO = 900, 0.7
"""A run of ``fast`` longer than 900 steps (its default 1000) has the time to settle after blocks open
sooner, so there a node opens once its loss falls by less than 30 % per period: a node that waits can
freeze (loss under epsilon) with fewer blocks than the detail needs. At 1000 steps Chamfer-L1 fell by 3 to
9 % on the cow, the Slic3r part, the bracket (IoU 0.985 -> 0.991), the bunny and wave2, normal consistency
as good or better, one piece each (docs/method.md §5.5). 0.6 went further but broke wave2 into 3 pieces
with another seed and into 743 at 600 steps; 0.7 at 800 steps left it in 2, so shorter runs keep 0.8."""

SDF_EPSILON = 0.005
"""SAPE threshold for the signed-distance target: a node freezes once its mean distance error (unit
frame, radius 0.95) is at most this, about 0.25 % of the shape's size. (At 0.002, under the error that
a short run's samples can pin down, every node opens every block and the surface turns noisy.)"""

LR_HOLD = 150
"""Steps of ``fast`` at the full learning rate before it decays (at most half a run; docs/method.md §5):
the bunny at 200 steps went from IoU 0.00 to 0.985, at 100 steps from nothing to a rough shape (0.42)."""

PRESETS: dict[str, OccupancyConfig] = {
    # Tuned on 2 CPU cores: a coarser SAPE grid and 16 blocks of 32 channels, so that each node sees
    # enough samples per block period of a short run, at least 25 steps between unlocks, a node opening a
    # block only once its loss has settled (a short run opens fewer blocks instead of all of them before
    # the field has found the shape), 5x fewer points per set, and a larger learning rate that decays.
    # 128 frequencies and batches of 4000 instead of 256 and 5000: 0.6x the time per step (33 ms
    # instead of 57 on 2 cores) and 0.65x per extracted point. With them the field needs its first steps
    # at the full learning rate (a 200-step run found no shape at all, bunny IoU 0.00), so the rate is
    # held for LR_HOLD steps before it decays. Same accuracy at 1000 steps (bunny, bracket, Slic3r part:
    # mean normal consistency 0.9840 vs 0.9843, Chamfer-L1 0.48e-3 vs 0.46e-3); 700 steps or a width of
    # 192 instead, at about the same time, lost 0.005 and 0.2e-3.
    "fast": OccupancyConfig(
        field=FieldConfig(
            sigma=20.0, num_frequencies=128, hidden_width=256, hidden_layers=4, precision="auto", compile="auto"
        ),
        progress=ProgressConfig(
            epsilon=SDF_EPSILON,
            grid_resolution=32,
            num_blocks=16,
            min_block_period=25,
            plateau_ratio=PLATEAU_RATIO,
            long_run_steps=LONG_RUN_STEPS,
            long_run_plateau_ratio=LONG_RUN_PLATEAU_RATIO,
        ),
        points_per_set=200_000,
        num_sets=4,
        steps=1000,
        batch_size=4000,
        lr=1e-3,
        lr_final=5e-5,
        lr_hold=LR_HOLD,
        # A thin sheet needs the denser spectrum: with 128 frequencies and batches of 4000 the open box
        # (then 0.5 % of the diagonal thick) came out perforated (11 pieces, NC 0.96); with 256 and 5000
        # whole (1, 0.986).
        shell_num_frequencies=256,
        shell_batch_size=5000,
        **SURFACE_DEFAULTS,
    ),
    # The method's budgets (meant for a GPU) with the surface defaults above.
    "quality": OccupancyConfig(
        field=FieldConfig(sigma=20.0, hidden_width=256, hidden_layers=4, precision="auto", compile="auto"),
        progress=ProgressConfig(epsilon=SDF_EPSILON, grid_resolution=64, block_period=200, plateau_ratio=PLATEAU_RATIO),
        **SURFACE_DEFAULTS,
    ),
    # The method as published: occupancy, 64^3 SAPE grid, 100k steps; for reproducing the paper.
    "paper": OccupancyConfig(),
}


def occupancy_preset(name: str = "fast", **overrides: Any) -> OccupancyConfig:
    """A named preset with overrides: ``encoding``, ``sigma``, ``precision``, ``compile``, ``steps``, ``time_budget``,
    ``device``, ``seed``, ``resolution``, or any field (dotted keys reach nested configs: ``progress.epsilon``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    aliases = {
        "encoding": "field.encoding",
        "sigma": "field.sigma",
        "precision": "field.precision",
        "compile": "field.compile",
    }
    changes = {aliases.get(key, key): value for key, value in overrides.items() if value is not None}
    if changes.get("time_budget") is not None and "steps" not in changes:
        changes["steps"] = None
    if changes.get("steps") is not None and "time_budget" not in changes:
        changes["time_budget"] = None
    return cfg.replace(PRESETS[name], **changes)


def build_model(config: OccupancyConfig, total_steps: int, generator: torch.Generator | None = None) -> EncodedField:
    """The encoded field of ``config``: 3D points in, one field value (logit or scaled distance) out."""
    from ...nn.model import EncodedField

    return EncodedField(3, 1, config.field, config.progress, total_steps, generator)
