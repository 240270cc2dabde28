"""Results of surface fits, re-extractions, curve and mesh deformations, applied to the scene on the main thread.

Each ``apply_*`` function takes the runner (its public ``drop_preview`` and ``results_collection``), the
item and the worker's result event, and returns the name of the object it made; ``runner.APPLY`` lists them.

A fit's result is a new object ``<source>_sape`` with the source's transform at fit time, smooth-shaded,
holding the heat-map as a colour attribute; the fit-time transform (``sape_fit_matrix``) and the
checkpoint (``sape_checkpoint``) are stored on it. Re-extract builds the new mesh in that fit-time frame
and swaps only the mesh data, so the object stays where the artist put it, with its modifiers and its
materials. Checkpoints are moved out of the job folder: beside the saved .blend (a ``//`` relative
path, so the folder can be moved) or, for a file never saved, into the add-on's user folder.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from . import convert, estimate

CHECKPOINT_FOLDER = "sape_checkpoints"
MAX_FACES_MODIFIER = "SAPE Max Faces"
MAX_ANIMATION_KEYS = 40  # shape keys / keyframes per deformation animation


def apply_fit(runner, item, event: dict[str, Any]) -> str:
    vertices, faces, colors = _read_mesh(event["mesh"])
    scene = bpy.data.scenes.get(item.scene_name) or bpy.context.scene
    matrix = item.data["matrix_world"]
    name = f"{item.label}_sape"
    mesh = convert.build_mesh(name, convert.world_to_local(vertices, matrix), faces, colors)
    convert.shade_smooth(mesh)
    mesh.materials.append(convert.heat_map_material())
    runner.drop_preview()
    obj = convert.new_object(name, mesh, runner.results_collection(scene), matrix)
    obj["sape_source"] = item.label
    obj["sape_checkpoint"] = keep_checkpoint(event.get("checkpoint"), obj.name)
    obj["sape_resolution"] = int(item.settings.get("resolution", 0))
    obj["sape_fit_matrix"] = [float(v) for row in matrix for v in row]
    obj["sape_radius"] = float(item.data.get("radius", 0.0))
    for key, value in (event.get("metrics") or {}).items():
        if isinstance(value, (int, float)):
            obj[f"sape_{key}"] = value
    limit_faces(obj, int(item.data.get("max_faces", 0)))
    remember_fit_time(item, event.get("metrics") or {})
    source = bpy.data.objects.get(item.data.get("source", ""))
    if item.data.get("hide_source") and source is not None:
        try:
            source.hide_set(True)  # the view layer's visibility only: the object itself is not edited
        except RuntimeError:  # not in the current view layer
            pass
    return obj.name


def remember_fit_time(item, metrics: dict[str, Any]) -> None:
    """Keep how long this fit's parts took, for the expected time the Fit panel shows next (a failure to
    write it costs the estimate only: a line on the console)."""
    record = estimate.record_from_metrics(metrics, int(item.settings.get("resolution") or 0))
    if record is None:
        return
    from .paths import user_folder

    try:
        estimate.remember(user_folder(), str(item.settings.get("preset", "")), record)
    except OSError as exc:
        print(f"SAPE: could not keep the fit's time for the next estimate: {exc}", file=sys.stderr)


def apply_extract(runner, item, event: dict[str, Any]) -> str:
    obj = bpy.data.objects.get(item.data["object"])
    if obj is None or obj.type != "MESH":
        raise ValueError(f"object '{item.data['object']}' no longer exists")
    vertices, faces, colors = _read_mesh(event["mesh"])
    old = obj.data
    mesh = convert.build_mesh(old.name, convert.world_to_local(vertices, item.data["fit_matrix"]), faces, colors)
    convert.shade_smooth(mesh)
    if len(old.materials):
        for material in old.materials:  # the artist's materials, slot for slot
            mesh.materials.append(material)
    else:
        mesh.materials.append(convert.heat_map_material())
    name = old.name
    convert.replace_mesh(obj, mesh)
    if mesh.name != name and name not in bpy.data.meshes:
        mesh.name = name
    obj["sape_resolution"] = int(item.settings.get("resolution", 0))
    if MAX_FACES_MODIFIER in obj.modifiers or item.data.get("max_faces"):
        limit_faces(obj, int(item.data.get("max_faces", 0)))
    return obj.name


def _read_mesh(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    with np.load(path) as data:
        vertices, faces, colors = data["vertices"], data["faces"], data["colors"]
    if len(faces) == 0:
        raise ValueError("the extracted surface is empty (try more steps or another preset)")
    return vertices, faces, colors if len(colors) else None


def fit_matrix(obj: bpy.types.Object):
    """The transform ``obj`` (a result) had when it was fitted: its mesh is in that frame."""
    flat = obj.get("sape_fit_matrix")
    if flat is None or len(flat) != 16:
        return obj.matrix_world.copy()  # a result made before the matrix was stored
    return [list(flat[4 * r : 4 * r + 4]) for r in range(4)]


def limit_faces(obj: bpy.types.Object, max_faces: int) -> None:
    """At most ``max_faces`` faces (0: no limit) through a Decimate modifier on the result."""
    mod = obj.modifiers.get(MAX_FACES_MODIFIER)
    faces = len(obj.data.polygons)
    if max_faces <= 0 or faces <= max_faces:
        if mod is not None:
            obj.modifiers.remove(mod)
        return
    if mod is None:
        mod = obj.modifiers.new(MAX_FACES_MODIFIER, "DECIMATE")
        mod.decimate_type = "COLLAPSE"
    mod.ratio = max_faces / faces


def undo_push(message: str) -> None:
    """One undo step for a result (Ctrl+Z removes it, redo brings it back)."""
    try:
        wm = bpy.context.window_manager
        if bpy.context.window is None and wm is not None and wm.windows:  # a timer has no window
            window = wm.windows[0]
            with bpy.context.temp_override(window=window, screen=window.screen):
                bpy.ops.ed.undo_push(message=message)
        else:
            bpy.ops.ed.undo_push(message=message)
    except (RuntimeError, AttributeError) as exc:
        print(f"SAPE: no undo step for {message}: {exc}", file=sys.stderr)


# ------------------------------------------------------------------------------------------ checkpoints
def checkpoint_folder() -> tuple[Path, str]:
    """``(folder, how to write a path in it)``: ``"//..."`` beside a saved .blend, else the user folder."""
    if bpy.data.filepath:
        return Path(bpy.path.abspath("//" + CHECKPOINT_FOLDER)), "//" + CHECKPOINT_FOLDER + "/"
    from .paths import user_folder

    return user_folder() / "checkpoints", ""


def keep_checkpoint(path: str | None, name: str) -> str:
    """Move a job's checkpoint where it stays; the path to store on the result ("" if none)."""
    if not path or not Path(path).is_file():
        return ""
    folder, prefix = checkpoint_folder()
    for attempt in (0, 1):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            dst = folder / f"{bpy.path.clean_name(name)}_{uuid.uuid4().hex[:8]}.pt"
            shutil.move(path, dst)
            return prefix + dst.name if prefix else str(dst)
        except OSError:
            if attempt:
                raise
            from .paths import user_folder

            folder, prefix = user_folder() / "checkpoints", ""  # e.g. the .blend's folder is read-only
    return ""


def checkpoint_path(obj: bpy.types.Object) -> str:
    """The absolute path of a result's checkpoint ("" if it has none)."""
    stored = str(obj.get("sape_checkpoint", ""))
    return bpy.path.abspath(stored) if stored else ""


def apply_deform(runner, item, event: dict[str, Any]) -> str:
    """A deformation's curve: one spline per loop, in the plane it was drawn in, optionally animated."""
    offsets = None
    with np.load(event["curves"]) as data:
        curve_pts = data["curve"]
        snap_steps, snaps = data["snapshot_steps"], data["snapshots"]
        if "contour_offsets" in data:  # every loop (outer contours and holes): one spline each
            offsets = data["contour_offsets"]
            curve_pts, snaps = data["contour_points"], data["contour_snapshots"]
    loops = [curve_pts] if offsets is None else [curve_pts[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
    scene = bpy.data.scenes.get(item.scene_name) or bpy.context.scene
    z = float(item.data.get("z", 0.0))
    scale = float(item.data.get("scale", 1.0))
    center = np.asarray(item.data.get("center", (0.0, 0.0)), dtype=np.float64)

    def to_world(p):
        return np.asarray(p, dtype=np.float64) * scale + center

    name = f"{item.label}_sape"
    curve = convert.build_curve(name, [to_world(loop) for loop in loops], z)
    plane = np.eye(4)
    plane[:3, :3] = np.asarray(item.data.get("plane", np.eye(3)))  # built in the plane's (u, v) coordinates
    obj = convert.new_object(name, curve, runner.results_collection(scene), Matrix(plane.tolist()))  # rows, as given
    anim = item.data.get("animate")
    if anim and len(snaps):
        start, end = item.data["frame_start"], item.data["frame_end"]
        seq = [np.asarray(s) for s in snaps]
        if not np.allclose(seq[-1], curve_pts):
            seq.append(np.asarray(curve_pts))
        if len(seq) > MAX_ANIMATION_KEYS:  # e.g. 10k steps kept every 50: keep an even subset
            keep = np.unique(np.linspace(0, len(seq) - 1, MAX_ANIMATION_KEYS).round().astype(int))
            seq = [seq[i] for i in keep]
        frames = np.linspace(start, end, len(seq)) if len(seq) > 1 else np.array([start])
        pairs = [(float(f), to_world(p)) for f, p in zip(frames, seq)]
        if anim == "SHAPE_KEYS":
            convert.animate_with_shape_keys(obj, pairs, z)
        else:
            convert.animate_with_keyframes(obj, pairs, z)
    obj["sape_steps"] = int(snap_steps[-1]) if len(snap_steps) else int(item.settings.get("steps", 0))
    return obj.name


def _set_key(obj: bpy.types.Object, name: str, local: np.ndarray) -> bpy.types.ShapeKey:
    key = obj.shape_key_add(name=name, from_mix=False)
    key.data.foreach_set("co", np.asarray(local, dtype=np.float32).ravel())
    return key


def apply_deform_mesh(run, item, event: dict) -> str:
    """A new object ``<source>_sape``: a copy of the source's mesh (its UVs, materials, order) moved."""
    source = bpy.data.objects.get(item.data["source"])
    if source is None or source.type != "MESH":
        raise ValueError(f"source object '{item.data['source']}' no longer exists")
    with np.load(event["mesh"]) as data:
        vertices, snapshots = data["vertices"], data["snapshots"]
    if len(vertices) != len(source.data.vertices):
        raise ValueError(
            f"'{source.name}' changed while it was deformed ({len(source.data.vertices)} vertices now, "
            f"{len(vertices)} deformed)"
        )
    matrix = item.data["matrix_world"]
    scene = bpy.data.scenes.get(item.scene_name) or bpy.context.scene
    name = f"{item.label}_sape"
    mesh = source.data.copy()
    mesh.name = name
    obj = convert.new_object(name, mesh, run.results_collection(scene), matrix)
    if mesh.shape_keys is not None:
        obj.shape_key_clear()  # the copy's own keys would hide the new positions
    local = convert.world_to_local(vertices, matrix)
    if item.data.get("as_shape_key") or len(snapshots):
        obj.shape_key_add(name="Basis", from_mix=False)
        keys = [_set_key(obj, f"sape_{i:03d}", convert.world_to_local(s, matrix)) for i, s in enumerate(snapshots)]
        if not keys:
            keys = [_set_key(obj, "SAPE", local)]
        if len(keys) > 1:
            convert.crossfade_shape_keys(
                keys, list(np.linspace(item.data["frame_start"], item.data["frame_end"], len(keys)))
            )
        keys[-1].value = 1.0
    else:
        mesh.vertices.foreach_set("co", np.asarray(local, dtype=np.float32).ravel())
        mesh.update()
    obj["sape_source"], obj["sape_target"] = item.label, item.data.get("target", "")
    for key, value in (event.get("metrics") or {}).items():
        if isinstance(value, (int, float)):
            obj[f"sape_{key}"] = value
    return obj.name
