"""The worker's task settings: :class:`JobError`, one frozen dataclass per task and :func:`parse_settings`,
which builds one from a job's ``settings`` object, rejecting unknown keys, missing ones and wrong types
with a one-line :class:`JobError`. Every setting is documented in :mod:`.protocol`; the tasks that use
them are in :mod:`.surface_tasks`, :mod:`.curve_tasks` and :mod:`.mesh_tasks`.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

from ... import config as cfg
from ...errors import InputError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from ...tasks.mesh_deform import MeshDeformConfig
    from ...tasks.occupancy import OccupancyConfig
    from ...tasks.silhouette import DeformConfig


class JobError(InputError):
    """The job file, its settings or its inputs cannot be used; the message is shown to the user as it is."""


# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckSettings:
    """``check`` takes no settings."""


@dataclass(frozen=True)
class FitSurfaceSettings:
    """``fit_surface``: the preset and its changes, extraction, previews."""

    preset: str = "fast"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``occupancy_preset(preset, **overrides)``."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """Dotted keys applied with ``sape_geom.config.replace`` after the overrides."""
    resolution: int | None = None
    """Extraction grid; None (or 0) = the config's."""
    colors: bool = True
    keep_largest: bool = False
    face_budget: int | None = None
    """Stop when the field would give more faces (a noisy field); None = 20 x resolution^2 (at least 1M), 0 = no limit."""
    preview_every_s: float = 3.0
    """Seconds between live previews; 0 turns them off."""
    preview_resolution: int = 48

    def occupancy_config(self) -> OccupancyConfig:
        from ...tasks.occupancy import occupancy_preset

        config = occupancy_preset(self.preset, **self.overrides)
        return cfg.replace(config, **self.config) if self.config else config


@dataclass(frozen=True)
class ExtractSettings:
    """``extract``: re-extract the surface of a checkpoint written by ``fit_surface``."""

    checkpoint: str
    resolution: int | None = None
    colors: bool = True
    keep_largest: bool = False
    face_budget: int | None = None
    """None = the fit's own setting (20 x resolution^2, at least 1M, by default), 0 = no limit."""
    device: str | None = None
    """None = the device the checkpoint was fitted on."""

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise JobError("settings.checkpoint of the extract task must name a file written by fit_surface")


@dataclass(frozen=True)
class DeformSettings:
    """``deform``: the ``DeformConfig`` changes and, instead of input points, a target image."""

    config: Mapping[str, Any] = field(default_factory=dict)
    """``DeformConfig`` fields, dotted keys allowed."""
    steps: int | None = None
    """Shortcut for ``config["steps"]`` (applied after ``config``)."""
    target_image: str | None = None
    """A silhouette image or polyline file, read with ``sape_geom.curve.load_contours`` (every loop)."""

    def deform_config(self) -> DeformConfig:
        from ...tasks.silhouette import DeformConfig

        config = cfg.replace(DeformConfig(), **self.config)
        return config if self.steps is None else cfg.replace(config, steps=self.steps)


@dataclass(frozen=True)
class DeformMeshSettings:
    """``deform_mesh``: the ``MeshDeformConfig`` changes and shortcuts for the usual ones."""

    config: Mapping[str, Any] = field(default_factory=dict)
    """``MeshDeformConfig`` fields, dotted keys allowed (``{"field.encoding": "ff"}``)."""
    steps: int | None = None
    """Shortcut for ``config["steps"]`` (applied after ``config``)."""
    snapshots: int | None = None
    """Shortcut for ``config["snapshots"]``: vertex arrays kept for an animation."""

    def mesh_config(self) -> MeshDeformConfig:
        from ...tasks.mesh_deform import MeshDeformConfig

        config = cfg.replace(MeshDeformConfig(), **self.config)
        shortcuts = {k: v for k, v in (("steps", self.steps), ("snapshots", self.snapshots)) if v is not None}
        return cfg.replace(config, **shortcuts) if shortcuts else config


S = TypeVar("S", bound="DataclassInstance")

_KINDS: dict[Any, tuple[str, Callable[[Any], bool]]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
    Mapping: ("a JSON object", lambda v: isinstance(v, Mapping)),
}


def parse_settings(cls: type[S], task: str, settings: Mapping[str, Any]) -> S:
    """``cls`` built from a job's settings; an unknown key, a missing one or a wrong type is a JobError."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise JobError(
            f"unknown setting(s) for the {task} task: {', '.join(unknown)}; known: {', '.join(known) or 'none'}"
        )
    missing = [
        name
        for name, f in known.items()
        if f.default is MISSING and f.default_factory is MISSING and name not in settings
    ]
    if missing:
        raise JobError(f"the {task} task needs settings.{missing[0]}")
    hints = typing.get_type_hints(cls)
    return cls(**{key: _checked(task, key, value, hints[key]) for key, value in settings.items()})


def _checked(task: str, key: str, value: Any, hint: Any) -> Any:
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        (hint,) = [a for a in args if a is not type(None)]
        if value is None:
            return None
    what, accepts = _KINDS[typing.get_origin(hint) or hint]
    if not accepts(value):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise JobError(f"settings.{key} of the {task} task must be {what}{' or null' if optional else ''}, got {shown}")
    return float(value) if hint is float else value
