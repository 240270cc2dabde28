"""Mesh input/output and normalisation to the unit frame (docs/method.md §6.3, "Mesh preparation").

Frames:
* *input frame*: the coordinates stored in the user's file (or Blender object);
* *unit frame*: bounding-box centre at the origin, farthest vertex at distance 0.95 (:class:`Normalization`).

Only numpy and trimesh are used here; nothing imports torch, bpy or pymeshlab.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import trimesh
import trimesh.exchange.obj  # loaded by trimesh itself; named so that the attribute is known

from ..errors import InputError
from ..fileio import atomic_write

__all__ = [
    "SAVE_SUFFIXES",
    "UNIT_RADIUS",
    "Normalization",
    "load_mesh",
    "normalization_for",
    "save_mesh",
    "validate_mesh",
]

#: Distance of the farthest vertex from the origin after normalisation (docs/method.md §6.3).
UNIT_RADIUS = 0.95
#: File suffixes :func:`save_mesh` can write.
SAVE_SUFFIXES = (".ply", ".obj", ".stl", ".off", ".glb")
_REL_EPS = 1e-9


def validate_mesh(
    vertices: Any, faces: Any, name: str = "mesh", *, allow_flat: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Check a triangle mesh given as arrays and return ``(V float64 (n,3), F int64 (m,3))``.

    Raises :class:`InputError` naming ``name`` when there are no faces, faces are not triangles or index
    out of range, vertices are not finite, all faces have zero area, or the bounding box is a point.
    A mesh that is flat along one axis (a plane) encloses no volume: it is rejected too unless
    ``allow_flat``. Open and non-manifold meshes are accepted.
    """
    try:
        V = np.asarray(vertices, dtype=np.float64)
        F = np.asarray(faces, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: vertices/faces are not numeric arrays ({exc})") from None
    if V.ndim != 2 or V.shape[1] != 3 or len(V) == 0:
        raise InputError(f"{name}: expected non-empty vertices of shape (n, 3), got {V.shape}")
    if F.size == 0:
        raise InputError(f"{name}: has {len(V)} vertices but no faces (a point cloud, not a mesh)")
    if F.ndim != 2 or F.shape[1] != 3:
        raise InputError(f"{name}: expected triangle faces of shape (m, 3), got {F.shape}")
    if F.min() < 0 or F.max() >= len(V):
        raise InputError(f"{name}: face indices out of range [0, {len(V)}): min {F.min()}, max {F.max()}")
    bad = ~np.isfinite(V).all(axis=1)
    if bad.any():
        raise InputError(f"{name}: {int(bad.sum())} of {len(V)} vertices are NaN or infinite")
    used = V[np.unique(F)]
    extent = used.max(axis=0) - used.min(axis=0)
    size = float(extent.max())
    if size <= 0.0:
        raise InputError(f"{name}: degenerate, all vertices are at the same point")
    if _face_areas(V, F).max() <= (_REL_EPS * size) ** 2:
        raise InputError(f"{name}: degenerate, all {len(F)} faces have zero area")
    flat = extent <= _REL_EPS * size
    if flat.any() and not allow_flat:
        axes = ", ".join("xyz"[i] for i in np.flatnonzero(flat))
        raise InputError(f"{name}: flat (zero extent along {axes}), it encloses no volume")
    return V, F


def _face_areas(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Area of each triangle, (m,) float64."""
    cross = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
    return 0.5 * np.linalg.norm(cross, axis=1)


def load_mesh(path: str | os.PathLike, *, allow_flat: bool = False) -> trimesh.Trimesh:
    """Read any mesh trimesh can read (OBJ, PLY, STL, OFF, GLB/GLTF, ...) as one welded triangle mesh.

    Scenes are flattened with their node transforms applied, quads are triangulated, materials and
    textures are ignored, duplicate vertices (STL) are merged. Coordinates stay in the input frame.
    Raises :class:`InputError` (one line naming the file) for a missing or unreadable file, a point cloud,
    no faces, non-finite vertices or a degenerate/flat mesh (see :func:`validate_mesh`).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: file not found")
    suffix = p.suffix.lower().lstrip(".")
    if suffix not in trimesh.available_formats():
        raise InputError(f"{p}: unknown mesh format '.{suffix}' (readable: obj, ply, stl, off, glb, gltf)")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: file is empty")
    try:
        loaded = trimesh.load(str(p), skip_materials=True, process=False)
    except Exception as exc:  # trimesh raises many kinds for corrupt files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{p}: cannot read as .{suffix} ({msg})") from None
    mesh = _as_single_mesh(loaded, p)
    V, F = validate_mesh(mesh.vertices, mesh.faces, name=str(p), allow_flat=allow_flat)
    out = trimesh.Trimesh(V, F, vertex_colors=_vertex_colors(mesh), process=False)
    out.merge_vertices(merge_tex=True, merge_norm=True)
    return out


def _as_single_mesh(loaded: Any, p: Path) -> trimesh.Trimesh:
    """Flatten what trimesh returned (Trimesh, Scene, PointCloud, ...) into one Trimesh or raise."""
    if isinstance(loaded, trimesh.Scene):
        meshes = [g for g in loaded.dump(concatenate=False) if isinstance(g, trimesh.Trimesh)]
        if not meshes:
            kinds = sorted({type(g).__name__ for g in loaded.geometry.values()})
            found = f" (contains only {', '.join(kinds)})" if kinds else ""
            raise InputError(f"{p}: no triangle mesh found{found}")
        loaded = meshes[0] if len(meshes) == 1 else trimesh.util.concatenate(meshes)
    if isinstance(loaded, trimesh.PointCloud):
        raise InputError(f"{p}: is a point cloud ({len(loaded.vertices)} points, no faces), not a mesh")
    if not isinstance(loaded, trimesh.Trimesh):
        raise InputError(f"{p}: no triangle mesh found (got {type(loaded).__name__})")
    return loaded


def _vertex_colors(mesh: trimesh.Trimesh) -> np.ndarray | None:
    """Per-vertex RGBA uint8 (n,4) if the mesh carries vertex colours, else None."""
    visual = getattr(mesh, "visual", None)
    if visual is None or getattr(visual, "kind", None) != "vertex":
        return None
    colors = np.asarray(visual.vertex_colors)
    return colors if len(colors) == len(mesh.vertices) else None


@dataclass(frozen=True)
class Normalization:
    """Similarity from the input frame to the unit frame: ``unit = (input - center) * scale``."""

    center: np.ndarray
    scale: float

    def __post_init__(self) -> None:
        center = np.asarray(self.center, dtype=np.float64).reshape(3)
        scale = float(self.scale)
        if not np.isfinite(center).all() or not np.isfinite(scale) or scale <= 0:
            raise InputError(f"normalization: invalid center {center.tolist()} or scale {scale}")
        center.setflags(write=False)
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "scale", scale)

    def apply(self, points: Any) -> np.ndarray:
        """Input frame -> unit frame; (n,3) -> (n,3) float64."""
        return (np.asarray(points, dtype=np.float64) - self.center) * self.scale

    def invert(self, points: Any) -> np.ndarray:
        """Unit frame -> input frame; (n,3) -> (n,3) float64."""
        return np.asarray(points, dtype=np.float64) / self.scale + self.center

    def apply_mesh(self, mesh: trimesh.Trimesh) -> trimesh.Trimesh:
        """Copy of ``mesh`` with its vertices moved to the unit frame."""
        out = mesh.copy()
        out.vertices = self.apply(mesh.vertices)
        return out

    def invert_mesh(self, mesh: trimesh.Trimesh) -> trimesh.Trimesh:
        """Copy of ``mesh`` with its vertices moved from the unit frame back to the input frame."""
        out = mesh.copy()
        out.vertices = self.invert(mesh.vertices)
        return out

    def to_dict(self) -> dict:
        """JSON-ready ``{"center": [x, y, z], "scale": s}``."""
        return {"center": [float(c) for c in self.center], "scale": float(self.scale)}

    @classmethod
    def from_dict(cls, data: dict) -> Normalization:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(center=np.asarray(data["center"], dtype=np.float64), scale=float(data["scale"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"normalization: cannot read {data!r} ({exc})") from None


def normalization_for(mesh: trimesh.Trimesh | np.ndarray) -> Normalization:
    """docs/method.md §6.3: bbox centre to the origin, then scale so the farthest vertex is at distance 0.95.

    ``mesh`` is a Trimesh or an (n,3) vertex array in the input frame.
    """
    V = np.asarray(getattr(mesh, "vertices", mesh), dtype=np.float64)
    if V.ndim != 2 or V.shape[1] != 3 or len(V) == 0 or not np.isfinite(V).all():
        raise InputError(f"normalization: need finite (n,3) vertices, got shape {V.shape}")
    center = 0.5 * (V.min(axis=0) + V.max(axis=0))
    radius = float(np.linalg.norm(V - center, axis=1).max())
    if radius <= 0:
        raise InputError("normalization: all vertices are at one point")
    return Normalization(center=center, scale=UNIT_RADIUS / radius)


def save_mesh(mesh: trimesh.Trimesh, path: str | os.PathLike) -> Path:
    """Write ``mesh`` by suffix (.ply, .obj, .stl, .off, .glb) atomically: temp file then rename.

    Vertex colours are kept for PLY, OBJ and GLB. Returns the written path.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SAVE_SUFFIXES:
        raise InputError(f"{p}: cannot write '{suffix}' (supported: {', '.join(SAVE_SUFFIXES)})")
    data = _export_bytes(mesh, suffix[1:])
    return atomic_write(p, lambda tmp: tmp.write_bytes(data))


def _export_bytes(mesh: trimesh.Trimesh, file_type: str) -> bytes:
    """Serialise ``mesh`` in memory as ``file_type`` (ply/obj/stl/off/glb)."""
    if file_type == "glb":
        data = trimesh.Scene([mesh]).export(file_type="glb")
    elif file_type == "obj":
        data = trimesh.exchange.obj.export_obj(mesh, include_color=True, include_texture=False)
    else:
        data = mesh.export(file_type=file_type)
    # export() is typed to return a dict too (formats with several files); these formats give text or bytes
    return data.encode("utf-8") if isinstance(data, str) else bytes(cast(bytes, data))
