"""Blender data <-> numpy arrays; the only module that reads or builds meshes and curves.

Every transfer goes through ``foreach_get`` / ``foreach_set`` (no per-vertex Python loops). Frames:
``*_world`` arrays are in Blender world space; result meshes are stored in the source object's local
frame and given the source's ``matrix_world``, so they coincide with it and share its origin.
"""

from __future__ import annotations

import bpy
import numpy as np

RESULTS_COLLECTION = "SAPE Results"
COLOR_ATTRIBUTE = "sape_level"


# ------------------------------------------------------------------------------------------ meshes
def mesh_world_arrays(obj: bpy.types.Object, depsgraph) -> tuple[np.ndarray, np.ndarray]:
    """Triangles of the evaluated object (modifiers applied): vertices (V, 3) float64 in world space,
    faces (F, 3) int64. The object itself is not modified."""
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        mesh.calc_loop_triangles()
        n_v, n_t = len(mesh.vertices), len(mesh.loop_triangles)
        co = np.empty(n_v * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", co)
        tri = np.empty(n_t * 3, dtype=np.int32)
        mesh.loop_triangles.foreach_get("vertices", tri)
        matrix = np.array(evaluated.matrix_world, dtype=np.float64)
    finally:
        evaluated.to_mesh_clear()
    vertices = co.reshape(-1, 3).astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
    return vertices, tri.reshape(-1, 3).astype(np.int64)


def world_to_local(points: np.ndarray, matrix_world) -> np.ndarray:
    """(N, 3) world points into the frame of ``matrix_world``; identity if it cannot be inverted."""
    m = np.array(matrix_world, dtype=np.float64)
    try:
        inv = np.linalg.inv(m)
    except np.linalg.LinAlgError:
        return np.asarray(points, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ inv[:3, :3].T + inv[:3, 3]


def build_mesh(name: str, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None = None) -> bpy.types.Mesh:
    """New mesh datablock from (V, 3) vertices and (F, 3) triangles; ``colors`` (V, 4) uint8 RGBA (sRGB)
    becomes the point colour attribute ``sape_level``."""
    vertices = np.ascontiguousarray(vertices, dtype=np.float32).reshape(-1, 3)
    faces = np.ascontiguousarray(faces, dtype=np.int32).reshape(-1, 3)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", vertices.ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    try:  # writable before Blender 4.0, derived from loop_start after
        mesh.polygons.foreach_set("loop_total", np.full(len(faces), 3, dtype=np.int32))
    except (AttributeError, TypeError, RuntimeError):
        pass
    mesh.update()
    mesh.validate()
    if colors is not None and len(colors) == len(mesh.vertices) and len(colors):
        set_point_colors(mesh, colors)
    return mesh


def set_point_colors(mesh: bpy.types.Mesh, colors: np.ndarray) -> None:
    rgba = np.asarray(colors, dtype=np.float32).reshape(len(mesh.vertices), -1)[:, :4] / 255.0
    if rgba.shape[1] == 3:
        rgba = np.concatenate([rgba, np.ones((len(rgba), 1), np.float32)], axis=1)
    if hasattr(mesh, "color_attributes"):  # Blender 3.2+
        attr = mesh.color_attributes.new(name=COLOR_ATTRIBUTE, type="BYTE_COLOR", domain="POINT")
        key = "color_srgb" if hasattr(attr.data[0] if len(attr.data) else None, "color_srgb") else "color"
        attr.data.foreach_set(key, np.ascontiguousarray(rgba).ravel())
        try:
            mesh.color_attributes.active_color = attr
            mesh.color_attributes.render_color_index = mesh.color_attributes.active_color_index
        except (AttributeError, TypeError):
            pass
    else:  # very old Blender: per-loop vertex colours
        layer = mesh.vertex_colors.new(name=COLOR_ATTRIBUTE)
        idx = np.empty(len(mesh.loops), dtype=np.int32)
        mesh.loops.foreach_get("vertex_index", idx)
        layer.data.foreach_set("color", rgba[idx].ravel())


def shade_smooth(mesh: bpy.types.Mesh) -> None:
    """Smooth shading on every face (``Mesh.shade_smooth`` from 4.1, ``use_smooth`` before)."""
    if hasattr(mesh, "shade_smooth"):
        mesh.shade_smooth()
    else:
        mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), dtype=bool))


def world_radius(vertices: np.ndarray) -> float:
    """Distance of the farthest vertex from the bounding-box centre (the worker's normalisation)."""
    center = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    return float(np.linalg.norm(vertices - center, axis=1).max())


def bounds_radius(obj: bpy.types.Object) -> float:
    """:func:`world_radius` of the object's (evaluated) bounding-box corners: an upper bound, for display."""
    m = np.array(obj.matrix_world, dtype=np.float64)
    corners = np.array([tuple(c) for c in obj.bound_box], dtype=np.float64) @ m[:3, :3].T + m[:3, 3]
    return world_radius(corners)


#: Deformation planes: world axes (u, v) of the plane; the normal is u x v.
PLANE_AXES = {"XY": ((1, 0, 0), (0, 1, 0)), "XZ": ((1, 0, 0), (0, 0, 1)), "YZ": ((0, 1, 0), (0, 0, 1))}


def plane_rotation(kind: str, view_rotation=None) -> np.ndarray:
    """(3, 3) rotation whose columns are the plane's u, v and normal in world space. ``VIEW`` takes the
    3D view's rotation (a quaternion; its x/y are the screen's right/up); without one it is ``XY``."""
    if kind == "VIEW" and view_rotation is not None:
        return np.array(view_rotation.to_matrix(), dtype=np.float64)
    u, v = (np.array(a, dtype=np.float64) for a in PLANE_AXES.get(kind, PLANE_AXES["XY"]))
    return np.stack([u, v, np.cross(u, v)], axis=1)


def mesh_world_bounds(obj: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of the object's own vertices in world space (no modifiers)."""
    co = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
    obj.data.vertices.foreach_get("co", co)
    m = np.array(obj.matrix_world, dtype=np.float64)
    world = co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
    return world.min(axis=0), world.max(axis=0)


# ------------------------------------------------------------------------------------------ results
def results_collection(scene: bpy.types.Scene, create: bool = True) -> bpy.types.Collection | None:
    coll = bpy.data.collections.get(RESULTS_COLLECTION)
    if coll is None:
        if not create:
            return None
        coll = bpy.data.collections.new(RESULTS_COLLECTION)
    if coll.name not in scene.collection.children:
        scene.collection.children.link(coll)
    return coll


def remove_collection_if_empty(coll: bpy.types.Collection | None) -> None:
    if coll is not None and not coll.objects and not coll.children:
        bpy.data.collections.remove(coll)


def new_object(name: str, data, coll: bpy.types.Collection, matrix_world=None) -> bpy.types.Object:
    obj = bpy.data.objects.new(name, data)
    coll.objects.link(obj)
    if matrix_world is not None:
        obj.matrix_world = matrix_world
    return obj


def remove_object(obj: bpy.types.Object | None) -> None:
    """Remove an object made by the add-on together with its (now unused) data."""
    if obj is None:
        return
    data = obj.data
    bpy.data.objects.remove(obj, do_unlink=True)
    if data is not None and data.users == 0:
        if isinstance(data, bpy.types.Mesh):
            bpy.data.meshes.remove(data)
        elif isinstance(data, bpy.types.Curve):
            bpy.data.curves.remove(data)


def replace_mesh(obj: bpy.types.Object, mesh: bpy.types.Mesh) -> None:
    old = obj.data
    obj.data = mesh
    if old is not None and old.users == 0:
        bpy.data.meshes.remove(old)


PREVIEW_COLOR = (1.0, 0.5, 0.15, 1.0)
"""The live preview's viewport colour: an orange no default material or theme uses, so the coarse mesh
reads as work in progress at a glance (its source is hidden meanwhile, see ``runner``)."""


PREVIEW_MATERIAL = "SAPE preview"


def preview_material() -> bpy.types.Material:
    """The live preview's material (shared by every preview): its viewport display colour only."""
    mat = bpy.data.materials.get(PREVIEW_MATERIAL) or bpy.data.materials.new(PREVIEW_MATERIAL)
    mat.diffuse_color = PREVIEW_COLOR
    return mat


def remove_unused_material(name: str) -> None:
    """Remove the add-on's material ``name`` once nothing uses it (the file keeps nothing of a preview)."""
    mat = bpy.data.materials.get(name)
    if mat is not None and mat.users == 0:
        bpy.data.materials.remove(mat)


def heat_map_material() -> bpy.types.Material:
    """A material that shows the ``sape_level`` colour attribute (shared by all results)."""
    name = "SAPE heat-map"
    mat = bpy.data.materials.get(name)
    if mat is not None:
        return mat
    mat = bpy.data.materials.new(name)
    try:
        if bpy.app.version < (5, 0, 0):  # node materials are the only kind from 5.0 on
            mat.use_nodes = True
        nodes, links = mat.node_tree.nodes, mat.node_tree.links
        bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
        attr = nodes.new("ShaderNodeAttribute")
        attr.attribute_name = COLOR_ATTRIBUTE
        links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
    except (AttributeError, StopIteration, KeyError, RuntimeError):
        pass
    return mat


# ------------------------------------------------------------------------------------------ curves
def curve_world_loops(obj: bpy.types.Object, depsgraph, samples_per_segment: int | None = None) -> list[np.ndarray]:
    """:func:`curve_world_points` of every spline (of at least 3 points): outer contours and holes."""
    count = len(obj.evaluated_get(depsgraph).data.splines)
    loops = [curve_world_points(obj, depsgraph, samples_per_segment, spline=k) for k in range(count)]
    return [p for p in loops if len(p) >= 3]


def curve_world_points(
    obj: bpy.types.Object, depsgraph, samples_per_segment: int | None = None, spline: int = 0
) -> np.ndarray:
    """Ordered points (N, 3) of one spline (default the first) of a curve object, in world space.

    Bezier splines are sampled with the curve's ``resolution_u`` per segment (or
    ``samples_per_segment``); poly and NURBS splines give their control points.
    """
    from mathutils import geometry

    evaluated = obj.evaluated_get(depsgraph)
    curve = evaluated.data
    if not curve.splines:
        raise ValueError(f"curve '{obj.name}' has no splines")
    spline = curve.splines[spline]
    if spline.type == "BEZIER":
        bp = spline.bezier_points
        n = len(bp)
        res = max(2, samples_per_segment or curve.resolution_u)
        segments = n if spline.use_cyclic_u else n - 1
        pts: list = []
        for i in range(segments):
            a, b = bp[i], bp[(i + 1) % n]
            seg = geometry.interpolate_bezier(a.co, a.handle_right, b.handle_left, b.co, res + 1)
            pts.extend(seg[:-1])
        if not spline.use_cyclic_u and n:
            pts.append(bp[n - 1].co.copy())
        local = np.array([tuple(p) for p in pts], dtype=np.float64).reshape(-1, 3)
    else:
        co = np.empty(len(spline.points) * 4, dtype=np.float32)
        spline.points.foreach_get("co", co)
        local = co.reshape(-1, 4)[:, :3].astype(np.float64)
    m = np.array(evaluated.matrix_world, dtype=np.float64)
    return local @ m[:3, :3].T + m[:3, 3]


def build_curve(name: str, points_2d, z: float = 0.0) -> bpy.types.Curve:
    """A cyclic poly curve from (P, 2) points in the world XY plane at height ``z``; given a list of
    loops (outer contours and holes), one cyclic spline per loop in the same curve."""
    loops = [points_2d] if isinstance(points_2d, np.ndarray) and points_2d.ndim == 2 else list(points_2d)
    curve = bpy.data.curves.new(name, "CURVE")
    curve.dimensions = "3D"
    for loop in loops:
        spline = curve.splines.new("POLY")
        spline.points.add(len(loop) - 1)
        spline.use_cyclic_u = True
    set_curve_points(curve, np.vstack(loops), z)
    return curve


def _co4(points_2d: np.ndarray, z: float) -> np.ndarray:
    p = np.asarray(points_2d, dtype=np.float32).reshape(-1, 2)
    co = np.empty((len(p), 4), dtype=np.float32)
    co[:, :2] = p
    co[:, 2] = z
    co[:, 3] = 1.0
    return co


def set_curve_points(curve: bpy.types.Curve, points_2d: np.ndarray, z: float = 0.0) -> None:
    """Set every spline's points from (sum P, 2) points stacked spline after spline."""
    co = _co4(points_2d, z)
    start = 0
    for spline in curve.splines:
        n = len(spline.points)
        spline.points.foreach_set("co", co[start : start + n].ravel())
        start += n


def animate_with_shape_keys(obj: bpy.types.Object, frames_and_points: list[tuple[float, np.ndarray]], z: float) -> None:
    """One shape key per snapshot; key weights are keyed so that consecutive keys cross-fade."""
    obj.shape_key_add(name="Basis", from_mix=False)
    keys = []
    for i, (_frame, points) in enumerate(frames_and_points):
        key = obj.shape_key_add(name=f"sape_{i:03d}", from_mix=False)
        p = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        co = np.empty((len(p), 3), dtype=np.float32)
        co[:, :2] = p
        co[:, 2] = z
        key.data.foreach_set("co", co.ravel())
        keys.append(key)
    crossfade_shape_keys(keys, [f for f, _ in frames_and_points])


def crossfade_shape_keys(keys: list, frames: list[float]) -> None:
    """Key the weights of ``keys`` (one per frame) so that consecutive keys cross-fade; ends on the last."""
    for i, key in enumerate(keys):
        for j, frame in enumerate(frames):
            if abs(j - i) <= 1 or j in (0, len(frames) - 1):
                key.value = 1.0 if i == j else 0.0
                key.keyframe_insert("value", frame=float(frame))
    for key in keys:
        key.value = 0.0
    if keys:
        keys[-1].value = 1.0


def animate_with_keyframes(obj: bpy.types.Object, frames_and_points: list[tuple[float, np.ndarray]], z: float) -> None:
    """Keyframe every point's ``co`` at each snapshot's frame; ends on the last snapshot."""
    for frame, pts in frames_and_points:
        set_curve_points(obj.data, pts, z)
        for spline in obj.data.splines:
            for point in spline.points:
                point.keyframe_insert("co", frame=frame)
