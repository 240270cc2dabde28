"""Fitting an implicit field to a triangle mesh (docs/method.md §6.3).

The network predicts, at points of the unit frame (the mesh normalised so its farthest vertex is at
0.95), either the logit of P(outside) (``target="occupancy"``, the method's) or the signed distance to
the surface near it (``target="sdf"``). Training data are point sets sampled near and around the
surface, labelled once (winding number for the side, so open and non-manifold meshes work; libigl's
exact point-to-mesh distance for the magnitude) and reused epoch after epoch. An open surface can be
read as a thin shell instead of a solid (``open_input``). The surface is extracted at the field's zero
level by sparse marching cubes (:mod:`.surface`) and mapped back into the input's own coordinates.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import trimesh

from ...errors import EmptySurfaceError, InputError
from ...mesh.holes import cap_holes
from ...mesh.io import Normalization, normalization_for, validate_mesh
from ...mesh.sampling import PointSetBuffer, hole_area_fraction, winding_confidence
from ...mesh.support import SupportGrid, build_support
from ...mesh.surface_points import triangle_areas
from ...nn.model import EncodedField
from ...nn.trainer import ProgressInfo, TrainCallbacks, TrainStats, choose_device, seed_everything, train
from .batches import DeviceBatches
from .checkpoint import load_checkpoint, save_checkpoint
from .config import LEARNED_SHELL_THICKNESS, PRESETS, OccupancyConfig, build_model
from .surface import ExtractionStats, extract_mesh, field_values

SHELL_ABOVE_HOLE_AREA = 0.05
"""``open_input="auto"`` reads the input as a solid when its holes (each boundary loop closed by a disc
of the same perimeter) add up to at most this fraction of its surface area: a scan with small holes
stays a solid, a container without its lid or a car body without windows becomes a shell instead of a
blob with films across its openings (unless :data:`SOLID_ABOVE_CONFIDENCE` says otherwise)."""
SOLID_ABOVE_CONFIDENCE = 0.9
"""An input with larger holes is still read as a solid when the winding number tells its inside from
its outside across at least this share of its surface (:func:`~sape_geom.mesh.sampling.winding_confidence`):
a head with an open neck or a sphere missing a cap (holes 8.8 % of its area, confident across 97.8 %)
is a solid; a bowl, a box without its lid or a box with two large windows (66 %) stays a sheet."""

LEAST_AREA_FRACTION = 0.05
"""A fit's surface with less area than this fraction of the input's is a fragment of a field that has
not found the shape yet (too few steps), not a result: :meth:`OccupancyFit.extract` refuses it."""


@dataclass
class OccupancyFit:
    """A fitted occupancy field: the network, the mesh normalisation and what it took."""

    model: EncodedField
    normalization: Normalization
    config: OccupancyConfig
    timings: dict[str, float] = field(default_factory=dict)
    stats: TrainStats | None = None
    support: SupportGrid | None = None
    """Voxels near the input surface; extraction drops pieces outside them (``remove_unsupported``)."""
    reading: dict[str, Any] = field(default_factory=dict)
    """How the input was read: ``mode`` (solid or shell), ``hole_area`` fraction, ``reason``."""
    reference: tuple[np.ndarray, np.ndarray] | None = None
    """A solid input's outer surface (vertices, faces; unit frame, holes closed) that extraction puts the
    surface onto (``snap_to_input``); None for a shell and in checkpoints written before version 3."""

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def field(self, points: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """(N,) field values at (N, 3) unit-frame points: positive outside, the surface at 0."""
        return field_values(self.model, self.config, points, batch_size)

    def extract(
        self,
        resolution: int | None = None,
        colors: bool = True,
        keep_largest: bool = False,
        max_faces: int | None = None,
        face_budget: int | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> trimesh.Trimesh:
        """The field's zero level set as a mesh in the input's own coordinates.

        Pieces away from the input surface are dropped when the config says ``remove_unsupported`` (the
        count is in the statistics as ``pieces_removed``). ``colors`` adds the SAPE heat-map (fraction of frequencies open at each vertex; blue = few, red =
        many) as RGBA vertex colours. ``keep_largest`` drops every piece but the largest; ``max_faces``
        decimates (needs pymeshlab). :meth:`extract_with_stats` also says what the extraction did.
        ``face_budget`` overrides the config's (0 = no limit); ``should_cancel`` can stop the extraction.
        Raises :class:`EmptySurfaceError` when the surface is empty or, unless ``keep_largest``, a fragment
        (less than :data:`LEAST_AREA_FRACTION` of the input's area): the field has not found the shape yet.
        """
        return self.extract_with_stats(
            resolution, colors, keep_largest, max_faces, face_budget=face_budget, should_cancel=should_cancel
        )[0]

    def extract_with_stats(
        self,
        resolution: int | None = None,
        colors: bool = True,
        keep_largest: bool = False,
        max_faces: int | None = None,
        face_budget: int | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> tuple[trimesh.Trimesh, ExtractionStats]:
        """:meth:`extract`'s mesh, and what the extraction did (pieces removed, seconds, grid points)."""
        support = self.support if self.config.remove_unsupported else None
        resolution = resolution or self.config.resolution
        mesh, stats = extract_mesh(
            self.model,
            self.normalization,
            self.config,
            resolution,
            colors=colors,
            keep_largest=keep_largest,
            max_faces=max_faces,
            support=support,
            face_budget=face_budget,
            should_cancel=should_cancel,
            sheet_half_thickness=self.sheet_half_thickness,
            sheet_offset=self.sheet_offset,
            reference=self.reference,
        )
        self._check_surface(mesh, resolution, whole=not keep_largest)
        return mesh, stats

    def _check_surface(self, surface: trimesh.Trimesh, resolution: int, whole: bool) -> None:
        """Raise :class:`EmptySurfaceError` for an empty surface, or a fragment where the ``whole``
        surface was asked for (see :meth:`extract`)."""
        # The input's area in the unit frame (checkpoints written before it was recorded lack it).
        input_area = self.reading.get("area") if whole else None
        area = (
            float(triangle_areas(self.normalization.apply(surface.vertices), surface.faces).sum())
            if len(surface.faces)
            else 0.0
        )
        if len(surface.faces) and not (input_area and area < LEAST_AREA_FRACTION * input_area):
            return
        steps = self.stats.steps if self.stats is not None else None
        trained = f"after {steps} training steps" if steps is not None else "in this checkpoint"
        if self.config.time_budget is not None and steps is not None:
            trained += f" (all that {self.config.time_budget:g} s bought)"
        # A fragment gets here only when the input's area is known (the test above).
        found = (
            "no surface"
            if not len(surface.faces)
            else f"only a fragment of a surface ({100 * area / cast(float, input_area):.1f}% of the input's area)"
        )
        raise EmptySurfaceError(
            f"the fitted field has {found} {trained} at {resolution}^3: nothing written; "
            "train longer (more steps or a larger time budget), or extract finer"
        )

    @property
    def sheet_half_thickness(self) -> float | None:
        """Half the thickness of the sheet the field learned, for an open input read as a shell (unit
        frame), else None."""
        return self.reading.get("half_thickness") if self.reading.get("mode") == "shell" else None

    @property
    def sheet_offset(self) -> float | None:
        """How far from the input a shell's snapped sheet lies (unit frame; half its thickness), else None."""
        return self.reading.get("sheet_offset") if self.reading.get("mode") == "shell" else None

    def save(self, path: str | Path) -> Path:
        """One file with config, weights, SAPE grid state and normalisation (written atomically)."""
        return save_checkpoint(self, path)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> OccupancyFit:
        return cls(**load_checkpoint(path, device))


def _as_mesh(mesh: trimesh.Trimesh | str | Path) -> trimesh.Trimesh:
    if isinstance(mesh, (str, Path)):
        from ...mesh.io import load_mesh

        return load_mesh(mesh)
    if not isinstance(mesh, trimesh.Trimesh):
        raise InputError(f"expected a triangle mesh, got {type(mesh).__name__}")
    vertices, faces = validate_mesh(mesh.vertices, mesh.faces)
    return trimesh.Trimesh(vertices, faces, process=False)


def read_input(vertices: np.ndarray, faces: np.ndarray, config: OccupancyConfig) -> dict[str, Any]:
    """Decide how the (unit-frame) input is read, solid or shell, and say why."""
    holes = hole_area_fraction(vertices, faces)
    confident = None
    if config.open_input == "auto":
        reason = f"its holes are {100 * holes:.1f}% of its area"
        if holes <= SHELL_ABOVE_HOLE_AREA:
            mode, reason = "solid", reason + f" (within {100 * SHELL_ABOVE_HOLE_AREA:.0f}%)"
        else:
            confident = winding_confidence(vertices, faces)
            mode = "solid" if confident >= SOLID_ABOVE_CONFIDENCE else "shell"
            reason += (
                f" (over {100 * SHELL_ABOVE_HOLE_AREA:.0f}%) and the winding number tells its inside from its outside "
                f"across {100 * confident:.1f}% of its surface "
                f"({'at least' if mode == 'solid' else 'under'} {100 * SOLID_ABOVE_CONFIDENCE:.0f}%)"
            )
    else:
        mode, reason = config.open_input, "as asked"
    diagonal = float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))
    half_thickness = sheet_offset = 0.0
    if mode == "shell":
        learned = max(config.shell_thickness, LEARNED_SHELL_THICKNESS)
        half_thickness, sheet_offset = 0.5 * learned * diagonal, 0.5 * config.shell_thickness * diagonal
        reason += (
            f"; a sheet {config.shell_thickness:g} of the diagonal thick"
            if config.snap_to_input
            else f"; a sheet {learned:g} of the diagonal thick, as learned (snapping is off)"
        )
    area = float(triangle_areas(vertices, np.asarray(faces)).sum())
    reading = {
        "mode": mode,
        "hole_area": holes,
        "half_thickness": half_thickness,
        "sheet_offset": sheet_offset,
        "reason": reason,
        "area": area,
    }
    return reading if confident is None else {**reading, "winding_confidence": confident}


def _loss_function(config: OccupancyConfig):
    """``loss_fn(prediction, target, x) -> (mean, per_sample)`` for the config's target (docs/method.md §6.3)."""
    if config.target == "occupancy":

        def occupancy_loss(logits: torch.Tensor, labels: torch.Tensor, _x: torch.Tensor):
            per_sample = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")[:, 0]
            return per_sample.mean(), per_sample

        return occupancy_loss
    band = config.sdf_band

    def sdf_loss(output: torch.Tensor, distance: torch.Tensor, _x: torch.Tensor):
        # The network's output is in units of the band. Inside the band the distance is fitted (L1);
        # beyond it only the side is, so the field needs no kink where a truncated distance would have one.
        predicted = output[:, 0] * band
        target = distance[:, 0]
        in_band = target.abs() < band
        per_sample = torch.where(in_band, (predicted - target).abs(), torch.relu(band - torch.sign(target) * predicted))
        return per_sample.mean(), per_sample

    return sdf_loss


def fit_occupancy(
    mesh: trimesh.Trimesh | str | Path,
    config: OccupancyConfig | None = None,
    callbacks: TrainCallbacks | None = None,
) -> OccupancyFit:
    """Fit the config's field (occupancy or signed distance) to ``mesh`` (a Trimesh or a path).

    Open meshes are fine: read as solids by winding number, or as shells (``config.open_input``).
    """
    config = config or PRESETS["fast"]
    callbacks = callbacks or TrainCallbacks()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    mesh = _as_mesh(mesh)
    normalization = normalization_for(mesh)
    unit_vertices = normalization.apply(mesh.vertices)
    generator = seed_everything(config.seed)
    device = choose_device(config.device)
    reading = read_input(unit_vertices, np.asarray(mesh.faces), config)
    if reading["mode"] == "shell":  # a thin sheet may ask for its own field and batch (docs/method.md §6.3)
        frequencies = config.shell_num_frequencies or config.field.num_frequencies
        config = dataclasses.replace(
            config,
            field=dataclasses.replace(config.field, num_frequencies=frequencies),
            batch_size=min(config.shell_batch_size or config.batch_size, config.points_per_set),
        )
    labelled_vertices, labelled_faces = unit_vertices, np.asarray(mesh.faces)
    if reading["mode"] == "solid" and config.target == "sdf" and reading["hole_area"] > 0:
        # a solid's distances are to its surface, which spans the holes (mesh/holes.py, docs/method.md §6.3)
        labelled_vertices, labelled_faces = cap_holes(unit_vertices, mesh.faces)
        reading = {**reading, "reason": reading["reason"] + "; its holes closed for the distances"}
    timings["load_s"] = time.perf_counter() - start

    # Every point set is sampled and labelled once, up front, so that training time is training only
    # (and a time budget is not eaten by labelling); epochs then cycle through the sets.
    labels_start = time.perf_counter()

    def label_progress(kind: str, fraction: float) -> None:
        elapsed = time.perf_counter() - labels_start
        eta = elapsed / fraction * (1.0 - fraction) if fraction > 0 else float("nan")
        callbacks.progress(ProgressInfo(int(100 * fraction), 100, float("nan"), elapsed, eta, f"labels ({kind})"))

    # All sets in one labelling pass, asking for a cancel between chunks of points (docs/method.md §6.3).
    buffer = PointSetBuffer(
        labelled_vertices,
        labelled_faces,
        num_sets=config.num_sets,
        n_points=config.points_per_set,
        seed=config.seed,
        target=config.target,
        shell_thickness=reading["half_thickness"],
        band=config.sdf_band if config.target == "sdf" else None,  # beyond it the loss sees only the side
        should_cancel=callbacks.should_cancel,
        on_progress=label_progress,
    )
    callbacks.check_cancel()
    buffer.prepare()
    buffer.release()  # libigl's trees (about 220 bytes per face each) are not needed for training
    outer = buffer.outer  # pieces near buried faces are not supported: they are inside the solid
    support = build_support(outer.vertices, outer.faces, seed=config.seed)
    if outer.changed:
        reading = {
            **reading,
            "buried_area": outer.buried_area,
            "reason": reading["reason"] + f"; {100 * outer.buried_area:.1f}% of its surface is buried inside "
            "it (overlapping parts) and left out of the distances",
        }
    timings["labels_s"] = time.perf_counter() - labels_start

    progress = config.progress
    if config.time_budget is not None:
        # The schedule must finish inside the budget: derive the block period from the estimated steps.
        progress = dataclasses.replace(progress, block_period=None)
    run_config = dataclasses.replace(config, progress=progress)
    model = build_model(run_config, config.steps or 10**9, generator).to(device)
    # Point sets uploaded once, each epoch gathered on the device (the batches of docs/method.md §6.3).
    next_batch = DeviceBatches(buffer, config.batch_size, device)
    stats = train(
        model,
        next_batch,
        _loss_function(config),
        lr=config.lr,
        lr_final=config.lr_final,
        lr_hold=config.lr_hold,
        steps=config.steps,
        time_budget=config.time_budget,
        callbacks=callbacks,
    )
    timings["train_s"] = stats.seconds
    timings["fit_s"] = time.perf_counter() - start
    reference = (outer.vertices, outer.faces)  # a solid's outer surface, a shell's whole input
    return OccupancyFit(model, normalization, run_config, timings, stats, support, reading, reference)
