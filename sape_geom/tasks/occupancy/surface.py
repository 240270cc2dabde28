"""Surfaces from a fitted occupancy field: sparse marching cubes in the input's coordinates, previews."""

from __future__ import annotations

import time

import numpy as np
import torch
import trimesh

from ...mesh.cleanup import decimate, largest_component
from ...mesh.extract import extract_surface
from ...mesh.io import Normalization
from ...nn.model import EncodedField
from ...viz.colors import colorize_by_values


@torch.no_grad()
def outside_probability(model: EncodedField, points: np.ndarray, batch_size: int = 32768) -> np.ndarray:
    """(N,) P(outside) = sigmoid(logit) of the field at (N, 3) points of the unit frame, in batches."""
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)).to(device)
    return torch.sigmoid(model.evaluate(x, batch_size)[:, 0]).cpu().numpy()


@torch.no_grad()
def extract_mesh(
    model: EncodedField,
    normalization: Normalization,
    resolution: int = 256,
    *,
    colors: bool = True,
    keep_largest: bool = False,
    max_faces: int | None = None,
    return_stats: bool = False,
    batch_size: int = 32768,
):
    """Sparse marching cubes of the field's P(outside) = 0.5 surface, in the input's coordinates."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    def query(points: np.ndarray) -> np.ndarray:
        values = outside_probability(model, points, batch_size) - 0.5
        # The shape lies inside the unit sphere (radius 0.95): the faces of the cube are outside, so
        # every extracted piece is closed, even a spurious one touching the border of the grid.
        values[np.abs(points).max(axis=1) >= 1.0 - 1e-6] = 0.5
        return values

    start = time.perf_counter()
    # margin 0.45: also refine wherever P(outside) is between 0.05 and 0.95, where small pieces can hide.
    mesh, stats = extract_surface(query, resolution, batch_size=batch_size, margin=0.45, return_stats=True)
    if keep_largest and len(mesh.faces):
        mesh = largest_component(mesh)
    if max_faces is not None and len(mesh.faces) > max_faces:
        mesh = decimate(mesh, max_faces)
    if colors and model.spatial is not None and len(mesh.vertices):
        x = torch.from_numpy(np.asarray(mesh.vertices, dtype=np.float32)).to(device)
        fraction = torch.cat([model.open_fraction(chunk) for chunk in x.split(batch_size)]).cpu().numpy()
        mesh.visual.vertex_colors = colorize_by_values(mesh.vertices, fraction)
    mesh = normalization.invert_mesh(mesh)
    stats["extract_s"] = time.perf_counter() - start
    model.train(was_training)
    return (mesh, stats) if return_stats else mesh


def preview_mesh(model: EncodedField, normalization: Normalization, resolution: int = 48) -> trimesh.Trimesh:
    """A coarse, uncoloured extraction for live previews while training."""
    return extract_mesh(model, normalization, resolution, colors=False)
