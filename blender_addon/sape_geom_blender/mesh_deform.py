"""Deform onto Target: the selected mesh's vertices moved onto the active mesh's surface by the worker's
``deform_mesh`` task (docs/method.md §6.5), with the same worker, progress, cancel and scene safety as Fit.

The source is read from its own mesh data (modifiers are not applied), so the result keeps its vertex
order, faces, UVs and materials: it is a new object holding a copy of the source's mesh with only the
vertex positions changed, or, with As Shape Key, the unchanged copy with the deformation as a shape
key. Snapshots become shape keys cross-faded over a frame range. The target is read as Fit reads its
input (modifiers applied). Nothing is created before the worker's result arrives.
"""

from __future__ import annotations

import bpy
import numpy as np
from bpy.props import BoolProperty, IntProperty, StringProperty

from . import convert, results, runner
from .operators import refuse, submit_worker_job


def own_mesh_world_arrays(obj: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) in world space in the mesh's own order and its triangles (F, 3), without modifiers:
    the indices are those of ``obj.data``, so the result can be written back vertex for vertex."""
    mesh = obj.data
    mesh.calc_loop_triangles()
    co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", co)
    tri = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int32)
    mesh.loop_triangles.foreach_get("vertices", tri)
    matrix = np.array(obj.matrix_world, dtype=np.float64)
    vertices = co.reshape(-1, 3).astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
    return vertices, tri.reshape(-1, 3).astype(np.int64)


def _usable(obj: bpy.types.Object, vertices: np.ndarray, faces: np.ndarray) -> str | None:
    if len(faces) == 0:
        return f"'{obj.name}' has no faces"
    if not np.isfinite(vertices).all() or float(np.ptp(vertices, axis=0).max()) <= 0:
        return f"'{obj.name}' is degenerate (all vertices at one point)"
    return None


class SAPE_OT_deform_mesh(bpy.types.Operator):
    """Deform the selected mesh onto the active mesh with SAPE, keeping its faces, vertex order and UVs"""

    bl_idname = "sape.deform_mesh"
    bl_label = "Deform onto Target"
    bl_options = {"REGISTER"}

    steps: IntProperty(name="Steps", default=400, min=1, max=100_000)
    as_shape_key: BoolProperty(
        name="As Shape Key", default=False, description="Keep the copy's shape and add the deformation as a shape key"
    )
    snapshots: IntProperty(
        name="Snapshots",
        default=0,
        min=0,
        max=results.MAX_ANIMATION_KEYS,
        description="Intermediate shapes as shape keys animated over the frame range",
    )
    frame_start: IntProperty(name="Start Frame", default=1)
    frame_end: IntProperty(name="End Frame", default=50)
    extra: StringProperty(name="Extra", default="", description="JSON merged into the job's settings")

    @classmethod
    def poll(cls, context):
        return not runner.RUNNER.busy

    def execute(self, context):
        target = context.active_object
        sources = [o for o in context.selected_objects if o is not target]
        if target is None or target.type != "MESH":
            refuse(self, "make the target mesh the active object")
            return {"CANCELLED"}
        if len(sources) != 1 or sources[0].type != "MESH":
            refuse(self, "select one source mesh and the target mesh (active)")
            return {"CANCELLED"}
        if self.snapshots and self.frame_end <= self.frame_start:
            refuse(self, "the animation's end frame must come after its start frame")
            return {"CANCELLED"}
        source = sources[0]
        src_v, src_f = own_mesh_world_arrays(source)
        tgt_v, tgt_f = convert.mesh_world_arrays(target, context.evaluated_depsgraph_get())
        problem = _usable(source, src_v, src_f) or _usable(target, tgt_v, tgt_f)
        if problem:
            refuse(self, str(problem))
            return {"CANCELLED"}
        data = {
            "source": source.name,
            "target": target.name,
            "matrix_world": result_matrix(source, target),
            "as_shape_key": bool(self.as_shape_key),
            "frame_start": int(self.frame_start),
            "frame_end": int(self.frame_end),
        }
        arrays = {"source_vertices": src_v, "source_faces": src_f, "target_vertices": tgt_v, "target_faces": tgt_f}
        if not submit_worker_job(
            self,
            context,
            kind="deform_mesh",
            label=source.name,
            settings={"steps": int(self.steps), "snapshots": int(self.snapshots)},
            extra=self.extra,
            arrays=arrays,
            data=data,
        ):
            return {"CANCELLED"}
        self.report({"INFO"}, f"SAPE: deforming {source.name} onto {target.name}")
        return {"FINISHED"}


def result_matrix(source: bpy.types.Object, target: bpy.types.Object):
    """The deformed copy's placement: the source's rotation and scale with its origin at the target's
    origin, where its mesh ends up (the source's own origin would be left behind, away from the mesh)."""
    matrix = source.matrix_world.copy()
    matrix.translation = target.matrix_world.translation
    return matrix


classes = (SAPE_OT_deform_mesh,)
