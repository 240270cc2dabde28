"""Writing a mesh deformation's results: the deformed mesh (UVs kept), the SAPE heat-map, the snapshots
and the metrics (docs/method.md §6.5, §8). Every file is written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import trimesh
import trimesh.exchange.obj  # loaded by trimesh itself; named so that the attribute is known

from ...errors import InputError
from ...fileio import atomic_write, json_safe, save_npz
from ...mesh.io import save_mesh
from ...viz.colors import colorize_by_values
from .fit import MeshDeformResult

MESH_SUFFIXES = (".ply", ".obj", ".glb")
"""Formats the deformed mesh is written in: the three that keep UVs and the vertex order."""


def output_paths(mesh_path: str | Path, snapshots: bool) -> dict[str, Path]:
    """Every file :func:`save_outputs` writes for ``mesh_path``, by kind (to check them before any work)."""
    path = Path(mesh_path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise InputError(f"{path}: cannot write '{path.suffix}' (supported: {', '.join(MESH_SUFFIXES)})")
    stem = path.with_suffix("")
    paths = {"mesh": path, "levels": Path(f"{stem}_levels.ply"), "metrics": Path(f"{stem}_metrics.json")}
    if snapshots:
        paths["snapshots"] = Path(f"{stem}_snapshots.npz")
    return paths


def save_deformed_mesh(mesh: trimesh.Trimesh, path: str | Path) -> Path:
    """``mesh`` by suffix, keeping its UVs: an OBJ gets its material file (and texture) beside it,
    named after the OBJ so that two results in one folder do not share one."""
    path = Path(path)
    if path.suffix.lower() != ".obj":
        return save_mesh(mesh, path)
    material = f"{path.stem}.mtl"
    text, files = trimesh.exchange.obj.export_obj(
        mesh, include_normals=False, include_texture=True, return_texture=True, mtl_name=material
    )
    for name, data in files.items():
        atomic_write(path.parent / name, lambda tmp, data=data: tmp.write_bytes(data))
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def level_mesh(result: MeshDeformResult) -> trimesh.Trimesh:
    """The result coloured by the SAPE level (fraction of frequencies open; blue = few, red = many)."""
    levels = result.levels if result.levels is not None else np.ones(len(result.mesh.vertices))
    return trimesh.Trimesh(
        result.mesh.vertices,
        result.mesh.faces,
        vertex_colors=colorize_by_values(result.mesh.vertices, levels),
        process=False,
    )


def save_outputs(result: MeshDeformResult, mesh_path: str | Path) -> dict[str, str]:
    """Write the deformed mesh, ``<stem>_levels.ply`` (heat-map), ``<stem>_metrics.json`` and, when the
    result has snapshots, ``<stem>_snapshots.npz`` (``steps`` (S,), ``vertices`` (S, N, 3) in the
    target's frame, ``faces``). Returns kind -> path."""
    paths = output_paths(mesh_path, bool(result.snapshots))
    written = {"mesh": str(save_deformed_mesh(result.mesh, paths["mesh"]))}
    written["levels"] = str(save_mesh(level_mesh(result), paths["levels"]))
    if result.snapshots:
        written["snapshots"] = str(
            save_npz(
                paths["snapshots"],
                steps=np.asarray([s for s, _ in result.snapshots], dtype=np.int64),
                vertices=np.stack([v for _, v in result.snapshots]).astype(np.float32),
                faces=np.asarray(result.mesh.faces, dtype=np.int64),
            )
        )
    payload = {"metrics": result.metrics, "timings": result.timings, "normalization": result.normalization.to_dict()}
    text = json.dumps(json_safe(payload), indent=2, sort_keys=True)
    written["metrics"] = str(atomic_write(paths["metrics"], lambda tmp: tmp.write_text(text, encoding="utf-8")))
    return written
