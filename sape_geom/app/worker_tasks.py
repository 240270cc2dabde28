"""The worker's tasks: typed settings per task, parsed from the job's ``settings`` object, and the tasks.

:mod:`.worker` owns the protocol (job file, events, cancel, exit status) and documents every setting;
this module turns a job's settings into one frozen dataclass per task, rejecting unknown keys and wrong
types with a one-line :class:`JobError`, and runs the task with the library. Heavy imports (numpy,
trimesh, torch) happen inside the tasks, after the ``started`` event.
"""

from __future__ import annotations

import platform
import sys
import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import config as cfg
from ..errors import InputError
from ..fileio import save_npz

if TYPE_CHECKING:
    import trimesh

    from ..mesh.io import Normalization
    from ..nn.trainer import ProgressInfo, TrainCallbacks
    from ..tasks.occupancy import OccupancyConfig
    from ..tasks.silhouette import DeformConfig


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
        from ..tasks.occupancy import occupancy_preset

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
        from ..tasks.silhouette import DeformConfig

        config = cfg.replace(DeformConfig(), **self.config)
        return config if self.steps is None else cfg.replace(config, steps=self.steps)


S = TypeVar("S")

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
        raise JobError(f"unknown setting(s) for the {task} task: {', '.join(unknown)}; "
                       f"known: {', '.join(known) or 'none'}")
    missing = [name for name, f in known.items()
               if f.default is MISSING and f.default_factory is MISSING and name not in settings]
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
        raise JobError(f"settings.{key} of the {task} task must be {what}{' or null' if optional else ''}, "
                       f"got {shown}")
    return float(value) if hint is float else value


# --------------------------------------------------------------------------------------------------
# What a task gets
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskContext:
    """What a task gets from the protocol: the raw settings, the inputs file, where results go, and
    the protocol's event writer and cancel test (so this module needs nothing from :mod:`.worker`)."""

    settings: Mapping[str, Any]
    inputs: Path | None
    output_dir: Path
    emit: Callable[..., None]
    is_cancelled: Callable[[], bool]

    def train_callbacks(self, also: Callable[[ProgressInfo], None] | None = None) -> TrainCallbacks:
        """``TrainCallbacks`` that stream progress (at most ten events a second) and answer cancel."""
        from ..nn.trainer import TrainCallbacks

        last = [0.0]

        def on_progress(info: ProgressInfo) -> None:
            now = time.monotonic()
            if info.step >= info.total or now - last[0] >= 0.1:
                last[0] = now
                self.emit("progress", step=int(info.step), total=int(info.total), loss=float(info.loss),
                          elapsed_s=float(info.elapsed_s), eta_s=float(info.eta_s), stage=str(info.stage))
            if also is not None:
                also(info)

        return TrainCallbacks(on_progress=on_progress, should_cancel=self.is_cancelled)

    def load_inputs(self, required: tuple[str, ...]) -> dict[str, Any]:
        """The input arrays, checked for the names ``required`` (before any heavy import)."""
        import numpy as np

        if self.inputs is None:
            if required:
                raise JobError(f"this task needs an 'inputs' npz with: {', '.join(required)}")
            return {}
        try:
            with np.load(self.inputs, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except FileNotFoundError:
            raise JobError(f"input file not found: {self.inputs}") from None
        except Exception as exc:
            raise JobError(f"cannot read input arrays from {self.inputs}: {exc}") from None
        missing = [k for k in required if k not in arrays]
        if missing:
            raise JobError(f"input file {self.inputs} lacks array(s) {', '.join(missing)}; "
                           f"found: {', '.join(arrays) or 'none'}")
        return arrays


def write_mesh_npz(path: Path, mesh: trimesh.Trimesh, colors: bool) -> Path:
    """The protocol's mesh file: ``vertices`` float32, ``faces`` int32, ``colors`` RGBA uint8 or empty."""
    import numpy as np

    rgba = np.asarray(mesh.visual.vertex_colors, dtype=np.uint8) if colors and len(mesh.vertices) else None
    return save_npz(
        path,
        vertices=np.asarray(mesh.vertices, dtype=np.float32).reshape(-1, 3),
        faces=np.asarray(mesh.faces, dtype=np.int32).reshape(-1, 3),
        colors=np.zeros((0, 4), dtype=np.uint8) if rgba is None else rgba,
    )


# --------------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------------


def task_check(ctx: TaskContext) -> dict[str, Any]:
    from .. import __version__

    parse_settings(CheckSettings, "check", ctx.settings)
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "sape_geom": __version__,
        "torch": None,
        "devices": [],
        "device_names": {},
        "ok": False,
        "reason": "",
    }
    try:
        import torch
    except Exception as exc:
        info["reason"] = f"torch cannot be imported in {sys.executable}: {exc}"
        return info
    info["torch"] = torch.__version__
    info["threads"] = torch.get_num_threads()
    devices = ["cpu"]
    names = {"cpu": platform.processor() or platform.machine()}
    try:
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                devices.append(f"cuda:{i}")
                names[f"cuda:{i}"] = torch.cuda.get_device_name(i)
    except Exception as exc:  # a broken driver must not hide the CPU
        info["reason"] = f"CUDA probe failed: {exc}"
    try:
        if torch.backends.mps.is_available():
            devices.append("mps")
            names["mps"] = "Apple Metal"
    except Exception:  # an MPS probe that fails means no MPS
        pass
    info.update(devices=devices, device_names=names, ok=True)
    return info


def task_fit_surface(ctx: TaskContext) -> dict[str, Any]:
    s = parse_settings(FitSurfaceSettings, "fit_surface", ctx.settings)
    arrays = ctx.load_inputs(("vertices", "faces"))
    from ..mesh.io import normalization_for, validate_mesh

    vertices, faces = validate_mesh(arrays["vertices"], arrays["faces"], name="input mesh")
    import trimesh

    from ..tasks.occupancy import fit_occupancy

    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    config = s.occupancy_config()
    preview = Previewer(ctx, s.preview_every_s, s.preview_resolution, normalization_for(mesh), config)
    fit = fit_occupancy(mesh, config, callbacks=ctx.train_callbacks(also=preview))

    ctx.emit("progress", step=1, total=1, loss=None, elapsed_s=None, eta_s=0.0, stage="extract")
    out, stats = fit.extract(resolution=s.resolution or None, colors=s.colors, keep_largest=s.keep_largest,
                             return_stats=True, face_budget=s.face_budget, should_cancel=ctx.is_cancelled)
    preview.clean()
    mesh_path = write_mesh_npz(ctx.output_dir / "mesh.npz", out, s.colors)
    checkpoint = fit.save(ctx.output_dir / "checkpoint.pt")
    metrics = {**fit.timings, "vertices": len(out.vertices), "faces": len(out.faces),
               "pieces_removed": stats["pieces_removed"], "input_read_as": fit.reading["mode"],
               "input_reading": fit.reading["reason"], "precision": fit.model.precision}
    if fit.stats is not None:
        metrics.update(steps=fit.stats.steps, final_loss=fit.stats.final_loss)
    return {"mesh": str(mesh_path), "checkpoint": str(checkpoint), "metrics": metrics}


class Previewer:
    """Coarse extraction every few seconds from the model being trained, written as a mesh npz."""

    def __init__(self, ctx: TaskContext, every_s: float, resolution: int, normalization: Normalization,
                 config: OccupancyConfig):
        self.ctx = ctx
        self.every_s = every_s
        self.resolution = resolution
        self.normalization = normalization  # the frame fit_occupancy trains in (docs/method.md §6.3)
        self.config = config
        self.last = time.monotonic()
        self.count = 0
        self.paths: list[Path] = []
        self.failed = False

    def __call__(self, info: ProgressInfo) -> None:
        if self.every_s <= 0 or self.failed or info.model is None:
            return
        if time.monotonic() - self.last < self.every_s or info.step >= info.total:
            return
        try:
            from ..tasks.occupancy import preview_mesh

            mesh = preview_mesh(info.model, self.normalization, self.config, resolution=self.resolution)
            if len(mesh.faces) == 0:
                return
            self.count += 1
            path = write_mesh_npz(self.ctx.output_dir / f"preview_{self.count:04d}.npz", mesh, colors=False)
        except Exception as exc:  # a preview is a nicety: say so once on stderr and stop trying
            self.failed = True
            print(f"sape_geom.app.worker: preview disabled: {type(exc).__name__}: {exc}", file=sys.stderr)
            return
        finally:
            self.last = time.monotonic()
        self.paths.append(path)
        self.ctx.emit("preview", path=str(path), step=int(info.step))
        while len(self.paths) > 3:  # the reader has had seconds to load the old ones
            self.paths.pop(0).unlink(missing_ok=True)

    def clean(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)
        self.paths.clear()


def task_extract(ctx: TaskContext) -> dict[str, Any]:
    s = parse_settings(ExtractSettings, "extract", ctx.settings)
    from ..tasks.occupancy import OccupancyFit

    fit = OccupancyFit.load(s.checkpoint, device=s.device)
    ctx.emit("progress", step=0, total=1, loss=None, elapsed_s=None, eta_s=None, stage="extract")
    out = fit.extract(resolution=s.resolution or None, colors=s.colors, keep_largest=s.keep_largest,
                      face_budget=s.face_budget, should_cancel=ctx.is_cancelled)
    return {"mesh": str(write_mesh_npz(ctx.output_dir / "mesh.npz", out, s.colors))}


def task_deform(ctx: TaskContext) -> dict[str, Any]:
    s = parse_settings(DeformSettings, "deform", ctx.settings)
    arrays = ctx.load_inputs(())
    import numpy as np

    from ..curve import ContourSet, load_contours

    if s.target_image:
        shape = load_contours(s.target_image)
        # image pixels (y down) -> the normalised y-up frame of the whole shape (every loop, holes too)
        norm = shape.normalization()
        target: Any = ContourSet(tuple(norm.apply(p) for p in shape.loops), shape.holes, source=s.target_image,
                                 dropped=shape.dropped)
    elif "target_points" in arrays:
        target = _split_loops(np.asarray(arrays["target_points"], dtype=np.float64), arrays.get("target_offsets"))
    else:
        raise JobError("the deform task needs input array 'target_points' or settings.target_image")

    from ..tasks.silhouette import deform_shape

    # deform_shape checks the curves (shape, finite values, at least 3 distinct points per loop)
    result = deform_shape(target, s.deform_config(), sources=arrays.get("source_points"),
                          callbacks=ctx.train_callbacks())
    parts, steps = result.parts, result.snapshot_steps
    frames = [np.vstack(result.snapshot(step)) for step in steps]
    total = sum(len(p.curve) for p in parts)
    first = parts[0]  # the largest outer loop: what single-curve clients read (curve, levels, snapshots)

    def f32(a) -> np.ndarray:
        return np.asarray(a, dtype=np.float32)

    def offsets(arrays_) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(a) for a in arrays_])]).astype(np.int64)

    path = save_npz(
        ctx.output_dir / "curves.npz",
        curve=f32(first.curve),
        levels=np.zeros(0, np.float32) if first.levels is None else f32(first.levels),
        snapshot_steps=np.asarray(steps, dtype=np.int64),
        snapshots=(np.stack([f32(dict(first.snapshots)[step]) for step in steps]) if steps
                   else np.zeros((0,) + first.curve.shape, np.float32)),
        target=f32(result.target_loops[0]),
        contour_points=f32(np.vstack(result.curves)),
        contour_offsets=offsets(result.curves),
        contour_holes=np.asarray(result.holes, dtype=bool),
        contour_levels=(f32(np.concatenate(result.levels)) if all(lv is not None for lv in result.levels)
                        else np.zeros(0, np.float32)),
        contour_snapshots=np.stack([f32(f) for f in frames]) if frames else np.zeros((0, total, 2), np.float32),
        contour_targets=f32(np.vstack(result.target_loops)),
        contour_target_offsets=offsets(result.target_loops),
    )
    return {"curves": str(path), "metrics": result.metrics, "contours": len(parts)}


def _split_loops(points: Any, offsets: Any) -> Any:
    """``target_points`` as one loop, or as several when ``target_offsets`` (K + 1 indices) is given."""
    import numpy as np

    if offsets is None:
        return points
    o = np.asarray(offsets).ravel()
    if (o.dtype.kind not in "iu" or len(o) < 2 or o[0] != 0 or o[-1] != len(points)
            or np.any(np.diff(o) < 3)):
        raise JobError(f"input 'target_offsets' must rise from 0 to {len(points)} by at least 3 points per "
                       f"loop, got {o.tolist()}")
    return [points[a:b] for a, b in zip(o[:-1], o[1:])]


TASK_FUNCTIONS: dict[str, Callable[[TaskContext], dict[str, Any]]] = {
    "check": task_check,
    "fit_surface": task_fit_surface,
    "extract": task_extract,
    "deform": task_deform,
}
"""Task name -> function; the worker dispatches through this dict (a test may swap an entry)."""
