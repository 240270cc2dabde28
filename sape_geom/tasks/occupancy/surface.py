"""Surfaces from a fitted field: sparse marching cubes at its zero level, in the input's coordinates.

Marching cubes runs on the field itself (the logit of P(outside), or the signed distance), which varies
smoothly across the surface, so every vertex is placed by interpolation between two grid values. (On
the saturated P(outside) every vertex would land near the middle of its cell edge and smooth regions
would come out terraced.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import trimesh
from trimesh.visual import ColorVisuals

from ...mesh.cleanup import decimate, largest_component
from ...mesh.extract import GridStats, extract_surface_with_stats
from ...mesh.extract import face_budget as allowed_faces
from ...mesh.io import Normalization
from ...mesh.queries import MeshQueries
from ...mesh.smoothing import smooth_surface
from ...mesh.snapping import SnapStats, snap_to_surface
from ...mesh.support import SupportGrid, remove_unsupported_pieces
from ...nn.model import EncodedField
from ...viz.colors import colorize_by_values
from .config import OccupancyConfig

LOGIT_SCALE = 4.0
"""Occupancy fields are refined on ``squash(logit) = logit / (1 + |logit| / 4)``: like P(outside) it
saturates (at +-4) away from the surface, which keeps the refined band thin, but unlike P it can be
inverted exactly in floating point, so marching cubes runs on the logit itself."""
SQUASHED_MARGIN = math.log(0.95 / 0.05) / (1.0 + math.log(0.95 / 0.05) / LOGIT_SCALE)
"""Also refine where P(outside) is between 0.05 and 0.95, where small pieces can hide between coarse samples."""


OUTSIDE_LOGIT = 50.0
"""The logit given to the faces of the cube: P(outside) = 1 to float precision."""
SHEET_CELLS = 1.5
"""A thin sheet (an open input read as a shell) is extracted at least this many cells thick, so that
every grid line through it has a node inside and the sheet does not fall apart between grid points."""

SHEET_SIDE_CELLS = 0.5
"""A snapped sheet's sides lie at least this many cells from the input: at a quarter of a cell, faces at
the open box's rim and concave corners crossed those of the other side."""


def sheet_iso(config: OccupancyConfig, resolution: int, half_thickness: float | None) -> float:
    """The distance (iso value) at which a shell of ``half_thickness`` (unit frame) is resolved at ``resolution``:
    0 when the shell is already :data:`SHEET_CELLS` cells thick or the field is not a distance."""
    if config.target != "sdf" or not half_thickness:
        return 0.0
    cell = 2.0 / (int(resolution) - 1)
    return float(min(max(0.0, 0.5 * SHEET_CELLS * cell - half_thickness), 0.5 * config.sdf_band))


def _squash(logits: np.ndarray) -> np.ndarray:
    return logits / (1.0 + np.abs(logits) / LOGIT_SCALE)


def _unsquash(values: np.ndarray) -> np.ndarray:
    return values / np.maximum(1.0 - np.abs(values) / LOGIT_SCALE, 1e-300)


@torch.no_grad()
def _network_output(model: EncodedField, points: np.ndarray, batch_size: int | None) -> torch.Tensor:
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)).to(device)
    return model.evaluate(x, batch_size)[:, 0]


def field_values(
    model: EncodedField, config: OccupancyConfig, points: np.ndarray, batch_size: int | None = None
) -> np.ndarray:
    """(N,) field at (N, 3) unit-frame points, positive outside: the logit, or the distance (unit frame)."""
    out = _network_output(model, points, batch_size)
    scale = config.sdf_band if config.target == "sdf" else 1.0
    return (out * scale).cpu().double().numpy()  # on the host first: MPS has no float64


def outside_probability(model: EncodedField, points: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """(N,) P(outside) = sigmoid(logit) of an occupancy field at (N, 3) points of the unit frame."""
    return torch.sigmoid(_network_output(model, points, batch_size)).cpu().numpy()


def surface_field(model: EncodedField, config: OccupancyConfig, iso: float = 0.0):
    """The field that extraction contours at 0, as a query on (N, 3) unit-frame points: the network's
    distance (less ``iso``) or logit, with the faces of the cube set outside. (The shape lies inside the
    unit sphere, so every extracted piece is closed, even a spurious one touching the border of the grid.)"""
    outside = config.sdf_band if config.target == "sdf" else OUTSIDE_LOGIT

    def query(points: np.ndarray) -> np.ndarray:
        values = field_values(model, config, points) - iso
        values[np.abs(points).max(axis=1) >= 1.0 - 1e-6] = outside
        return values

    return query


@dataclass(frozen=True)
class ExtractionStats:
    """What a fit's extraction did: the grid's cost (:class:`...mesh.extract.GridStats`), the pieces
    dropped away from the input surface, what snapping did (None: not snapped), and its seconds
    (smoothing, snapping, and in all)."""

    grid: GridStats
    pieces_removed: int
    smooth_s: float
    extract_s: float
    snapped: SnapStats | None = None
    snap_s: float = 0.0

    @property
    def snapped_vertices(self) -> int:
        """Vertices put onto the input (0 when the surface was not snapped)."""
        return self.snapped.snapped if self.snapped else 0


@torch.no_grad()
def extract_mesh(
    model: EncodedField,
    normalization: Normalization,
    config: OccupancyConfig,
    resolution: int = 256,
    *,
    colors: bool = True,
    keep_largest: bool = False,
    max_faces: int | None = None,
    support: SupportGrid | None = None,
    batch_size: int = 32768,
    face_budget: int | None = None,
    should_cancel: Callable[[], bool] | None = None,
    sheet_half_thickness: float | None = None,
    sheet_offset: float | None = None,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[trimesh.Trimesh, ExtractionStats]:
    """Sparse marching cubes of the field's zero level, in the input's coordinates, and what it did.

    ``reference`` (a solid input's outer surface, or a shell's whole input; unit frame) is what the
    config's ``snap_to_input`` puts the surface onto (:mod:`...mesh.snapping`).

    ``sheet_half_thickness`` (an open input read as a shell: half the learned sheet's thickness, unit
    frame) thickens the sheet to :data:`SHEET_CELLS` cells where the resolution is too coarse for it
    (:func:`sheet_iso`); snapping then puts its sides ``sheet_offset`` from the input (at least
    :data:`SHEET_SIDE_CELLS`).

    With ``support`` pieces away from the input surface are dropped; with the config's
    ``smooth_surface`` the surface is then smoothed, edges kept (:mod:`...mesh.smoothing`).
    ``face_budget`` (None: the config's; 0: no limit) stops a noisy field with ``FaceBudgetExceeded``;
    ``should_cancel`` is asked between batches of queries (:class:`~sape_geom.errors.Cancelled`).
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    field = surface_field(model, config, sheet_iso(config, resolution, sheet_half_thickness))
    margins: dict[str, Any]  # keyword arguments of extract_surface_with_stats
    if config.target == "sdf":
        # A distance changes by at most a cell diagonal across a cell: refine within one of the surface,
        # but not as far as the band's edge, where the field only has to stay at or above the band.
        query, margins = field, {"distance_margin": 0.5 * config.sdf_band}
    else:
        query, margins = (lambda points: _squash(field(points))), {"margin": SQUASHED_MARGIN, "vertex_field": _unsquash}

    start = time.perf_counter()
    budget = allowed_faces(resolution, config.face_budget if face_budget is None else face_budget)
    mesh, grid = extract_surface_with_stats(
        query,
        resolution,
        batch_size=batch_size,
        face_budget=budget,
        should_cancel=should_cancel,
        corner_gap=config.corner_gap,
        **margins,
    )
    pieces_removed = 0
    if support is not None:
        mesh, pieces_removed = remove_unsupported_pieces(mesh, support)
    smooth_start = time.perf_counter()
    if config.smooth_surface and len(mesh.faces):
        mesh.vertices = smooth_surface(mesh.vertices, mesh.faces, should_cancel=should_cancel)
    smooth_s = time.perf_counter() - smooth_start
    snap_start, snapped = time.perf_counter(), None
    if config.snap_to_input and reference is not None and len(mesh.faces):
        cell = 2.0 / (resolution - 1)
        offset = 0.0
        if sheet_half_thickness:
            offset = max(sheet_offset or sheet_half_thickness, SHEET_SIDE_CELLS * cell)
        queries = MeshQueries(*reference, should_cancel=should_cancel)
        vertices, faces, snapped = snap_to_surface(
            mesh.vertices, mesh.faces, queries, cell, offset=offset, should_cancel=should_cancel
        )
        queries.release()
        mesh = trimesh.Trimesh(vertices, faces, process=False)
    snap_s = time.perf_counter() - snap_start
    if keep_largest and len(mesh.faces):
        mesh = largest_component(mesh)
    if max_faces is not None and len(mesh.faces) > max_faces:
        mesh = decimate(mesh, max_faces)
    if colors and model.spatial is not None and len(mesh.vertices):
        x = torch.from_numpy(np.asarray(mesh.vertices, dtype=np.float32)).to(device)
        fraction = torch.cat([model.open_fraction(chunk) for chunk in x.split(batch_size)]).cpu().numpy()
        cast(ColorVisuals, mesh.visual).vertex_colors = colorize_by_values(mesh.vertices, fraction)  # no texture
    mesh.vertices = normalization.invert(mesh.vertices)  # the mesh is ours: no copy of it
    model.train(was_training)
    return mesh, ExtractionStats(grid, pieces_removed, smooth_s, time.perf_counter() - start, snapped, snap_s)


def preview_mesh(
    model: EncodedField,
    normalization: Normalization,
    config: OccupancyConfig,
    resolution: int = 48,
    sheet_half_thickness: float | None = None,
) -> trimesh.Trimesh:
    """A coarse, uncoloured extraction for live previews while training (no face budget: it is small)."""
    return extract_mesh(
        model, normalization, config, resolution, colors=False, face_budget=0, sheet_half_thickness=sheet_half_thickness
    )[0]
