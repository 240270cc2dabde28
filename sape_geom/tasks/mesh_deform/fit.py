"""3-D mesh deformation (docs/method.md §6.5): move a source mesh's vertices onto a target surface.

An encoded MLP over 3-D space maps each source vertex position (unit frame) to its displacement, with
SAPE's grid over the same space. Stage 1 (calibration) drives the displacement to zero on the source;
stage 2 minimises the surface-to-surface Chamfer of ``loss.py`` (exact closest points both ways) plus
the edge term, with the SAPE mask fed one value per vertex. Only vertex positions change: the faces,
vertex order, UVs and every other attribute of the source stay as they were.

Frames: the target is normalised by its own box (:func:`mesh.io.normalization_for`); the source by its
own (``frame="each"``) or by the target's (``frame="target"``). Results come back in the target's frame.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh

from ...errors import ConfigError, InputError
from ...mesh.io import Normalization, load_mesh, normalization_for, validate_mesh
from ...mesh.sampling import sample_surface
from ...nn.model import EncodedField
from ...nn.trainer import TrainCallbacks, choose_device, seed_everything, train
from ..deform_stages import calibrate, deform_callbacks
from .config import MeshDeformConfig
from .loss import SurfaceChamfer
from .metrics import deformation_metrics


@dataclass(frozen=True, eq=False)
class MeshDeformResult:
    """What :func:`deform_mesh` returns. Positions in the target's frame unless named ``*_normalized``."""

    mesh: trimesh.Trimesh
    """The source mesh with its vertices moved (faces, order, UVs and other attributes as the source's)."""
    vertices_normalized: np.ndarray
    """(N, 3) the deformed vertices in the unit frame."""
    levels: np.ndarray | None
    """(N,) fraction of encoding channels open at each source vertex (SAPE / progressive), else None."""
    snapshots: list[tuple[int, np.ndarray]]
    """(step, (N, 3) vertices in the target's frame); step 0 is the calibrated start."""
    metrics: dict[str, Any]
    timings: dict[str, float]
    normalization: Normalization
    """Target frame -> unit frame."""
    source_normalization: Normalization
    """Source frame -> unit frame."""
    history: list[tuple[int, float]] = dc_field(default_factory=list)
    config: MeshDeformConfig | None = None
    model: Any = None


def read_source(source: Any, name: str = "source") -> trimesh.Trimesh:
    """The source as trimesh reads it without any processing (vertex order, UVs kept), checked."""
    if isinstance(source, (str, Path)):
        load_mesh(source)  # the same checks and one-line errors as every input (missing, empty, no faces)
        loaded = trimesh.load(str(source), process=False)
        if isinstance(loaded, trimesh.Scene):
            meshes = [g for g in loaded.dump(concatenate=False) if isinstance(g, trimesh.Trimesh)]
            loaded = meshes[0] if len(meshes) == 1 else trimesh.util.concatenate(meshes)
        name = str(source)
    elif isinstance(source, trimesh.Trimesh):
        loaded = source
    elif isinstance(source, (tuple, list)) and len(source) == 2:
        loaded = trimesh.Trimesh(*validate_mesh(*source, name=name, allow_flat=True), process=False)
    else:
        raise InputError(
            f"{name}: expected a mesh file, a trimesh.Trimesh or (vertices, faces), got {type(source).__name__}"
        )
    if not isinstance(loaded, trimesh.Trimesh):
        raise InputError(f"{name}: no triangle mesh found (got {type(loaded).__name__})")
    validate_mesh(loaded.vertices, loaded.faces, name=name, allow_flat=True)
    return loaded


def read_target(target: Any) -> trimesh.Trimesh:
    """The target as one welded, checked triangle mesh."""
    if isinstance(target, (str, Path)):
        return load_mesh(target)
    if isinstance(target, trimesh.Trimesh):
        return trimesh.Trimesh(*validate_mesh(target.vertices, target.faces, name="target"), process=False)
    if isinstance(target, (tuple, list)) and len(target) == 2:
        return trimesh.Trimesh(*validate_mesh(*target, name="target"), process=False)
    raise InputError(
        f"target: expected a mesh file, a trimesh.Trimesh or (vertices, faces), got {type(target).__name__}"
    )


def _areas(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    return 0.5 * np.linalg.norm(np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]]), axis=1)


def _snapshot_steps(count: int, steps: int) -> set[int]:
    if count <= 0:
        return set()
    return {int(s) for s in np.linspace(0, steps, count + 2).round()[1:-1]}


def deform_mesh(
    source: Any, target: Any, config: MeshDeformConfig = MeshDeformConfig(), callbacks: TrainCallbacks | None = None
) -> MeshDeformResult:
    """Deform ``source`` onto ``target`` (docs/method.md §6.5); both a path, a Trimesh or (V, F).

    ``callbacks``: progress (stages ``calibration`` then ``deform``) and cancel; its ``on_snapshot``, if
    any, is called as ``(step, model)`` every ``snapshot_every`` steps. Raises :class:`InputError` for
    unusable meshes, :class:`~sape_geom.errors.Cancelled` when cancelled.
    """
    if not isinstance(config, MeshDeformConfig):
        raise ConfigError(f"config must be a MeshDeformConfig, got {type(config).__name__}")
    user_cb = callbacks or TrainCallbacks()
    t_start = time.perf_counter()
    src_mesh = read_source(source)
    tgt_mesh = read_target(target)
    norm = normalization_for(tgt_mesh)
    src_norm = normalization_for(src_mesh) if config.frame == "each" else norm
    V0 = src_norm.apply(src_mesh.vertices)
    F = np.asarray(src_mesh.faces, dtype=np.int64)
    areas = _areas(V0, F)
    if not areas.sum() > 0:
        raise InputError("source: all faces have zero area")
    Vt, Ft = norm.apply(tgt_mesh.vertices), np.asarray(tgt_mesh.faces, dtype=np.int64)

    device = choose_device(config.device)
    gen = seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    target_points, _ = sample_surface(Vt, Ft, config.target_samples, rng)
    horizon = max(1, round(2 * config.unlock_fraction * config.steps))
    model = EncodedField(3, 3, config.field, config.progress, horizon, generator=gen).to(device)
    x = torch.as_tensor(V0, dtype=torch.float32, device=device)
    zeros = torch.zeros_like(x)
    t_prep = time.perf_counter() - t_start

    # ---- stage 1: calibration, the displacement driven to zero (no controller feedback)
    calib_steps, calib_mse, calibration_s = 0, math.nan, 0.0
    if config.calibration_steps > 0:
        # The field is smooth: a share of the vertices pins it to zero everywhere on the source, cheaply.
        pick = torch.randperm(len(x), generator=gen)[: config.calibration_points].to(device)
        xc = x[pick]
        calib_steps, calib_mse, calibration_s = calibrate(
            model,
            xc,
            torch.zeros_like(xc),
            steps=config.calibration_steps,
            lr=config.calibration_lr,
            tolerance=config.calibration_tolerance,
            callbacks=user_cb,
        )

    # ---- stage 2: surface Chamfer, SAPE fed per vertex
    loss_fn = SurfaceChamfer(
        F,
        areas,
        Vt,
        Ft,
        target_points,
        source_samples=config.source_samples,
        per_step=config.target_per_step,
        edge_weight=config.edge_weight,
        normal_weight=config.normal_weight,
        source_vertices=V0,
        generator=gen,
        device=device,
    )

    @torch.no_grad()
    def current() -> np.ndarray:
        return (x + model.evaluate(x)).double().cpu().numpy()

    snapshots_n: list[tuple[int, np.ndarray]] = [(0, current())] if config.snapshots else []
    chosen = _snapshot_steps(config.snapshots, config.steps)
    cb = deform_callbacks(user_cb, current, chosen.__contains__, snapshots_n)
    t1 = time.perf_counter()
    stats = train(
        model,
        lambda step: (x, zeros),
        loss_fn,
        lr=config.lr,
        lr_final=config.final_learning_rate,
        steps=config.steps,
        callbacks=cb,
        stage="deform",
    )
    fit_s = time.perf_counter() - t1

    final_n = current()
    if config.snapshots:
        snapshots_n.append((stats.steps, final_n))
    levels = None
    if model.controller is not None:
        levels = np.clip(model.open_fraction(x).double().cpu().numpy(), 0.0, 1.0)
    out = src_mesh.copy()
    out.vertices = norm.invert(final_n)

    t2 = time.perf_counter()
    metrics: dict[str, Any] = deformation_metrics(
        out, tgt_mesh, src_mesh, n_points=config.metric_points, seed=config.seed
    )
    chamfer = torch.stack(loss_fn.chamfer).tolist() if loss_fn.chamfer else []
    metrics.update(
        final_loss=float(stats.final_loss),
        final_chamfer=chamfer[-1] if chamfer else math.nan,
        steps=int(stats.steps),
        steps_per_s=float(stats.steps_per_second),
        calibration_steps=int(calib_steps),
        calibration_mse=float(calib_mse),
        encoding=config.field.encoding,
    )
    if levels is not None:
        metrics["mean_open_fraction"] = float(levels.mean())
    timings = {
        "prepare_s": t_prep,
        "calibration_s": calibration_s,
        "fit_s": fit_s,
        "metrics_s": time.perf_counter() - t2,
        "steps_per_s": float(stats.steps_per_second),
        "total_s": time.perf_counter() - t_start,
    }
    return MeshDeformResult(
        mesh=out,
        vertices_normalized=final_n,
        levels=levels,
        snapshots=[(s, norm.invert(v)) for s, v in snapshots_n],
        metrics=metrics,
        timings=timings,
        normalization=norm,
        source_normalization=src_norm,
        history=list(stats.history),
        config=config,
        model=model,
    )
