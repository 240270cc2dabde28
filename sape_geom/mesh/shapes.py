"""Procedural test shapes: the demo's fallback input and small meshes for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh


def _from_implicit(field, resolution: int, extent: float = 1.2) -> trimesh.Trimesh:
    """Marching cubes of ``field(x, y, z) < 0`` (inside) on a cube of half-size ``extent``."""
    import mcubes

    axis = np.linspace(-extent, extent, resolution)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    vertices, faces = mcubes.marching_cubes(-field(x, y, z), 0.0)
    vertices = vertices / (resolution - 1) * 2 * extent - extent
    mesh = trimesh.Trimesh(vertices, faces[:, ::-1], process=True)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def sphere(radius: float = 1.0, subdivisions: int = 3) -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)


def torus(major: float = 0.7, minor: float = 0.25) -> trimesh.Trimesh:
    return trimesh.creation.torus(major_radius=major, minor_radius=minor, major_sections=48, minor_sections=24)


def bumpy_torus(resolution: int = 160) -> trimesh.Trimesh:
    """A torus with fine ridges on one side and a smooth other side: detail where SAPE should refine."""

    def field(x, y, z):
        ring = np.sqrt(x**2 + y**2) - 0.7
        angle = np.arctan2(y, x)
        ridges = 0.035 * np.sin(14 * angle) * np.sin(9 * np.arctan2(z, ring)) * (angle > 0)
        return np.sqrt(ring**2 + z**2) - 0.28 - ridges

    return _from_implicit(field, resolution)


def write_demo_shape(path: str | Path, resolution: int = 160) -> Path:
    """Write :func:`bumpy_torus` to ``path`` (once) and return it."""
    path = Path(path)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp" + path.suffix)
        bumpy_torus(resolution).export(tmp)
        tmp.replace(path)
    return path
