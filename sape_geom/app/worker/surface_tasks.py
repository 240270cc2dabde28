"""The worker's surface tasks: ``check`` (the Python, torch and devices the worker has), ``fit_surface``
(an occupancy field fitted to a triangle mesh, with live previews from :class:`Previewer`) and ``extract``
(a surface re-extracted from a ``fit_surface`` checkpoint). Heavy imports (numpy, trimesh, torch) happen
inside the tasks, after the ``started`` event.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .context import TaskContext, write_mesh_npz
from .settings import CheckSettings, ExtractSettings, FitSurfaceSettings, parse_settings

if TYPE_CHECKING:
    from ...mesh.io import Normalization
    from ...nn.trainer import ProgressInfo
    from ...tasks.occupancy import OccupancyConfig


def task_check(ctx: TaskContext) -> dict[str, Any]:
    from ... import __version__

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
    from ...mesh.io import normalization_for, validate_mesh

    vertices, faces = validate_mesh(arrays["vertices"], arrays["faces"], name="input mesh")
    import trimesh

    from ...tasks.occupancy import fit_occupancy

    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    config = s.occupancy_config()
    preview = Previewer(ctx, s.preview_every_s, s.preview_resolution, normalization_for(mesh), config)
    fit = fit_occupancy(mesh, config, callbacks=ctx.train_callbacks(also=preview))

    ctx.emit("progress", step=1, total=1, loss=None, elapsed_s=None, eta_s=0.0, stage="extract")
    out, stats = fit.extract_with_stats(
        resolution=s.resolution or None,
        colors=s.colors,
        keep_largest=s.keep_largest,
        face_budget=s.face_budget,
        should_cancel=ctx.is_cancelled,
    )
    preview.clean()
    mesh_path = write_mesh_npz(ctx.output_dir / "mesh.npz", out, s.colors)
    checkpoint = fit.save(ctx.output_dir / "checkpoint.pt")
    metrics = {
        **fit.timings,
        "extract_s": stats.extract_s,
        "device": fit.device.type,
        "vertices": len(out.vertices),
        "faces": len(out.faces),
        "pieces_removed": stats.pieces_removed,
        "snapped_vertices": stats.snapped_vertices,
        "input_read_as": fit.reading["mode"],
        "input_reading": fit.reading["reason"],
        "precision": fit.model.precision,
        "compiled": fit.model.compiled,
    }
    if fit.stats is not None:
        metrics.update(steps=fit.stats.steps, final_loss=fit.stats.final_loss)
    return {"mesh": str(mesh_path), "checkpoint": str(checkpoint), "metrics": metrics}


class Previewer:
    """Coarse extraction every few seconds from the model being trained, written as a mesh npz."""

    def __init__(
        self, ctx: TaskContext, every_s: float, resolution: int, normalization: Normalization, config: OccupancyConfig
    ):
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
            from ...tasks.occupancy import preview_mesh

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
    from ...tasks.occupancy import OccupancyFit

    fit = OccupancyFit.load(s.checkpoint, device=s.device)
    ctx.emit("progress", step=0, total=1, loss=None, elapsed_s=None, eta_s=None, stage="extract")
    out = fit.extract(
        resolution=s.resolution or None,
        colors=s.colors,
        keep_largest=s.keep_largest,
        face_budget=s.face_budget,
        should_cancel=ctx.is_cancelled,
    )
    return {"mesh": str(write_mesh_npz(ctx.output_dir / "mesh.npz", out, s.colors))}
