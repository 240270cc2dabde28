"""Procedural test shapes: the demo's fallback input and small meshes for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import cast

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


def voxel_solid(occupied: np.ndarray, size: float = 1.0) -> trimesh.Trimesh:
    """The closed boundary of a set of voxels: exactly flat faces and sharp 90-degree edges, like a CAD part.

    ``occupied`` is a boolean (nx, ny, nz) array; every voxel face between an occupied and an empty
    voxel becomes two triangles, oriented outwards. Keep voxels face-connected (no two voxels meeting
    along an edge only) so that the result is a manifold.
    """
    occ = np.pad(np.asarray(occupied, dtype=bool), 1)
    quads = []
    # unit-cube corner offsets of the face with outward normal along +axis / -axis, counter-clockwise
    for axis in range(3):
        u, v = (axis + 1) % 3, (axis + 2) % 3
        for sign in (1, -1):
            neighbour = np.roll(occ, -sign, axis=axis)
            cells = np.argwhere(occ & ~neighbour)
            base = cells.astype(np.float64)
            if sign > 0:
                base[:, axis] += 1.0
            du, dv = np.zeros(3), np.zeros(3)
            du[u], dv[v] = 1.0, 1.0
            corners = [base, base + du, base + du + dv, base + dv]
            if sign < 0:
                corners = corners[::-1]
            quads.append(np.stack(corners, axis=1))
    quads = np.concatenate(quads)  # (q, 4, 3)
    vertices = quads.reshape(-1, 3)
    index = np.arange(len(vertices)).reshape(-1, 4)
    faces = np.concatenate([index[:, [0, 1, 2]], index[:, [0, 2, 3]]])
    mesh = trimesh.Trimesh((vertices - 1.0) * size, faces, process=True)
    return mesh


def bracket() -> trimesh.Trimesh:
    """A CAD-like part: a plate with two rectangular holes, a raised block and a step (flat faces, sharp edges)."""
    occ = np.zeros((24, 16, 6), dtype=bool)
    occ[:, :, :2] = True  # the plate
    occ[4:8, 5:11, :2] = False  # two through holes
    occ[16:20, 5:11, :2] = False
    occ[10:14, 2:14, 2:6] = True  # a raised block across the middle
    occ[0:4, :, 2:3] = True  # a low step at one end
    return voxel_solid(occ, size=1.0 / 24)


def thin_plate(thickness: float = 0.02) -> trimesh.Trimesh:
    """A flat plate whose thickness is ``thickness`` of its length: a thin feature."""
    return trimesh.creation.box(extents=(1.0, 0.6, thickness))


def open_box() -> trimesh.Trimesh:
    """An open shell: a unit box with its top face removed (a container, or a car body with no glass)."""
    box = trimesh.creation.box(extents=(1.0, 0.7, 0.5))
    box = box.subdivide().subdivide()
    keep = box.triangles_center[:, 2] < 0.25 - 1e-6
    return cast(trimesh.Trimesh, box.submesh([np.nonzero(keep)[0]], append=True, repair=False))  # append: one mesh


def hemisphere(subdivisions: int = 3) -> trimesh.Trimesh:
    """An open hemispherical shell (the upper half of an icosphere)."""
    ball = sphere(1.0, subdivisions)
    keep = ball.triangles_center[:, 2] > 0.0
    return cast(trimesh.Trimesh, ball.submesh([np.nonzero(keep)[0]], append=True, repair=False))  # append: one mesh


def several_pieces() -> trimesh.Trimesh:
    """Three separate pieces: two spheres and a small cube (a real small part that clean-up must keep)."""
    a = sphere(0.45, 3)
    a.apply_translation([-0.5, 0.0, 0.0])
    b = sphere(0.3, 3)
    b.apply_translation([0.45, 0.2, 0.0])
    c = trimesh.creation.box(extents=(0.08, 0.08, 0.08))
    c.apply_translation([0.5, -0.45, 0.0])
    return cast(trimesh.Trimesh, trimesh.util.concatenate([a, b, c]))  # meshes in, one mesh out


def overlapping_parts(teeth: int = 18) -> trimesh.Trimesh:
    """A gear kitbashed from overlapping closed parts, as models often are: a disc, teeth pushed into its
    rim and a hub through its middle, never joined (faces buried inside the solid; flat faces, sharp edges)."""
    parts = [
        trimesh.creation.cylinder(radius=0.8, height=0.25, sections=128),
        trimesh.creation.cylinder(radius=0.25, height=0.6, sections=64),
    ]
    for k in range(teeth):
        tooth = trimesh.creation.box(extents=(0.25, 0.16, 0.25))
        tooth.apply_translation([0.88, 0.0, 0.0])
        tooth.apply_transform(trimesh.transformations.rotation_matrix(2 * np.pi * k / teeth, [0, 0, 1]))
        parts.append(tooth)
    return cast(trimesh.Trimesh, trimesh.util.concatenate(parts))  # meshes in, one mesh out


def non_manifold_parts() -> trimesh.Trimesh:
    """Boxes welded where they touch, as exported CAD and kitbashed models come: a block with a smaller
    one sitting on it (their faces overlapping in one plane) and another touching it along one edge only
    (an edge of four faces), all vertices at the same place merged."""
    block = trimesh.creation.box(extents=(0.8, 0.5, 0.3)).subdivide()
    on_top = trimesh.creation.box(extents=(0.4, 0.5, 0.3)).subdivide()
    on_top.apply_translation([-0.2, 0.0, 0.3])
    along_edge = trimesh.creation.box(extents=(0.3, 0.5, 0.3)).subdivide()
    along_edge.apply_translation([0.55, 0.0, -0.3])
    welded = cast(trimesh.Trimesh, trimesh.util.concatenate([block, on_top, along_edge]))  # meshes in, one out
    welded.merge_vertices()
    return welded


def write_demo_shape(path: str | Path, resolution: int = 160) -> Path:
    """Write :func:`bumpy_torus` to ``path`` (once) and return it."""
    path = Path(path)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp" + path.suffix)
        bumpy_torus(resolution).export(tmp)
        tmp.replace(path)
    return path
