"""Operators: Fit Selected, Cancel, Re-extract and Deform Curve (Set Up Worker and Check: ``setup_ops``).

Every operator checks its input before anything is created, so a refused request leaves the scene as
it was and says why in the report area. Work happens in the worker process; results arrive through
:mod:`runner`.
"""

from __future__ import annotations

import bpy
import numpy as np

from . import convert, reports, results, runner
from .job_settings import merge_extra
from .paths import resolve_worker_python, work_dir_base


def refuse(op, text: str) -> None:
    """Refuse ``op``'s request with ``text``: reported (a popup that closes when the mouse moves, and
    Info) and, while no job runs, the panel's status line too, where it stays until the next outcome; the
    status bar's SAPE entry shows it as the newest message (a warning: it goes after a while)."""
    op.report({"ERROR"}, f"SAPE: {text}")
    reports.notify("WARNING", f"SAPE: {text}", show=False)  # op.report has shown it already
    if not runner.RUNNER.busy:
        runner.RUNNER.state.status, runner.RUNNER.state.level = text, "ERROR"
    reports.tag_redraw(runner.RUNNER.busy)


def _worker_python_or_report(op, context) -> str | None:
    from .worker_client import check_python

    python, where = resolve_worker_python(context)
    problem = check_python(python)
    if problem:
        refuse(op, f"{problem} ({where})")
        return None
    return python


def submit_worker_job(
    op, context, *, kind: str, label: str, settings: dict, extra: str, arrays: dict, data: dict
) -> bool:
    """Queue one worker job of task ``kind``: the Extra Settings merged in, the worker Python checked,
    ``arrays`` (if any) written as its inputs. A problem is reported on ``op`` and gives False."""
    try:
        settings = merge_extra(settings, extra)
    except ValueError as exc:
        refuse(op, str(exc))
        return False
    python = _worker_python_or_report(op, context)
    if python is None:
        return False
    work_dir = runner.new_work_dir(work_dir_base(context))
    inputs = None
    if arrays:
        inputs = work_dir / "inputs.npz"
        np.savez(inputs, **arrays)
    runner.RUNNER.submit(
        [
            runner.Item(
                kind=kind,
                label=label,
                task=kind,
                python=python,
                settings=settings,
                work_dir=work_dir,
                scene_name=context.scene.name,
                inputs=inputs,
                data=data,
            )
        ]
    )
    return True


class SAPE_OT_fit_selected(bpy.types.Operator):
    """Fit a SAPE occupancy field to each selected mesh (modifiers applied) and add the result as a new object"""

    bl_idname = "sape.fit_selected"
    bl_label = "Fit Selected"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return not runner.RUNNER.busy

    def execute(self, context):
        selected = list(context.selected_objects)
        if not selected:
            refuse(self, "select one or more mesh objects to fit")
            return {"CANCELLED"}
        meshes = [o for o in selected if o.type == "MESH"]
        skipped = [o.name for o in selected if o.type != "MESH"]
        if not meshes:
            refuse(self, f"no mesh in the selection ({', '.join(skipped)} is not a mesh)")
            return {"CANCELLED"}
        settings = context.scene.sape_geom
        try:
            job_settings = settings.fit_settings()
        except ValueError as exc:
            refuse(self, str(exc))
            return {"CANCELLED"}
        python = _worker_python_or_report(self, context)
        if python is None:
            return {"CANCELLED"}

        depsgraph = context.evaluated_depsgraph_get()
        items, problems = [], []
        for obj in meshes:
            vertices, faces = convert.mesh_world_arrays(obj, depsgraph)
            if len(faces) == 0:
                problems.append(f"'{obj.name}' has no faces")
                continue
            extent = vertices.max(axis=0) - vertices.min(axis=0)
            if not np.isfinite(vertices).all() or float(extent.max()) <= 0:
                problems.append(f"'{obj.name}' is degenerate (all vertices at one point)")
                continue
            work_dir = runner.new_work_dir(work_dir_base(context))
            inputs = work_dir / "inputs.npz"
            np.savez(inputs, vertices=vertices, faces=faces)
            items.append(
                runner.Item(
                    kind="fit",
                    label=obj.name,
                    task="fit_surface",
                    python=python,
                    settings=job_settings,
                    work_dir=work_dir,
                    scene_name=context.scene.name,
                    inputs=inputs,
                    data={
                        "matrix_world": obj.matrix_world.copy(),
                        "source": obj.name,
                        "radius": convert.world_radius(vertices),
                        "hide_source": settings.hide_source,
                        "max_faces": int(settings.max_faces),
                    },
                )
            )
        notes = problems + [f"'{n}' is not a mesh" for n in skipped]
        if not items:
            refuse(self, "nothing to fit: " + "; ".join(notes))
            return {"CANCELLED"}
        if notes:
            self.report({"WARNING"}, "SAPE: skipped " + "; ".join(notes))
        runner.RUNNER.submit(items)
        self.report({"INFO"}, f"SAPE: fitting {', '.join(i.label for i in items)}")
        return {"FINISHED"}


class SAPE_OT_cancel(bpy.types.Operator):
    """Stop the running SAPE job and drop the queued ones"""

    bl_idname = "sape.cancel"
    bl_label = "Cancel"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return runner.RUNNER.busy

    def execute(self, context):
        runner.RUNNER.cancel()
        self.report({"INFO"}, "SAPE: cancelling")
        return {"FINISHED"}


class SAPE_OT_reextract(bpy.types.Operator):
    """Rebuild the active SAPE result from its kept checkpoint at the panel's resolution, without refitting"""

    bl_idname = "sape.reextract"
    bl_label = "Re-extract"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return not runner.RUNNER.busy and obj is not None and "sape_checkpoint" in obj

    def execute(self, context):
        from pathlib import Path

        obj = context.active_object
        checkpoint = results.checkpoint_path(obj) if obj is not None else ""
        if not checkpoint:
            refuse(self, "the active object is not a SAPE result (no checkpoint)")
            return {"CANCELLED"}
        if not Path(checkpoint).is_file():
            refuse(self, f"the checkpoint of '{obj.name}' is gone: {checkpoint}")
            return {"CANCELLED"}
        python = _worker_python_or_report(self, context)
        if python is None:
            return {"CANCELLED"}
        s = context.scene.sape_geom
        settings = {"checkpoint": checkpoint, "resolution": int(s.resolution), "colors": True}
        if s.device != "auto":
            settings["device"] = s.device
        runner.RUNNER.submit(
            [
                runner.Item(
                    kind="extract",
                    label=obj.name,
                    task="extract",
                    python=python,
                    settings=settings,
                    work_dir=runner.new_work_dir(work_dir_base(context)),
                    scene_name=context.scene.name,
                    data={
                        "object": obj.name,
                        "matrix_world": obj.matrix_world.copy(),
                        "fit_matrix": results.fit_matrix(obj),
                        "max_faces": int(s.max_faces),
                    },
                )
            ]
        )
        self.report({"INFO"}, f"SAPE: re-extracting '{obj.name}' at {s.resolution}")
        return {"FINISHED"}


class SAPE_OT_deform_curve(bpy.types.Operator):
    """Deform a source curve (circle or curve object) onto a target curve or silhouette image with SAPE"""

    bl_idname = "sape.deform_curve"
    bl_label = "Deform"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return not runner.RUNNER.busy

    def execute(self, context):
        s = context.scene.sape_geom
        depsgraph = context.evaluated_depsgraph_get()
        settings: dict = {"steps": int(s.deform_steps)}
        arrays: dict = {}
        data: dict = {"z": 0.0, "center": (0.0, 0.0), "scale": 1.0}
        # curves are read in the chosen plane: world points -> (u, v, normal) coordinates; the result
        # object gets the plane's rotation as its transform (results.apply_deform)
        region = getattr(context, "region_data", None)
        rotation = convert.plane_rotation(s.deform_plane, getattr(region, "view_rotation", None))
        data["plane"] = rotation.tolist()
        if s.target_kind == "OBJECT":
            target = s.target_object
            if target is None or target.type != "CURVE":
                refuse(self, "choose a target curve object")
                return {"CANCELLED"}
            try:
                loops = convert.curve_world_loops(target, depsgraph)  # every spline: outlines and holes
            except ValueError as exc:
                refuse(self, str(exc))
                return {"CANCELLED"}
            if not loops:
                refuse(self, f"target curve '{target.name}' has fewer than 3 points")
                return {"CANCELLED"}
            loops = [loop @ rotation for loop in loops]
            pts = np.vstack(loops)
            if len(loops) > 1:
                arrays["target_offsets"] = np.cumsum([0] + [len(p) for p in loops]).astype(np.int64)
            # normalise in the plane: centred, farthest point at distance 1
            lo, hi = pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)
            center = (lo + hi) / 2
            scale = float(np.linalg.norm(pts[:, :2] - center, axis=1).max())
            if not scale > 0:
                refuse(self, f"target curve '{target.name}' is degenerate")
                return {"CANCELLED"}
            arrays["target_points"] = (pts[:, :2] - center) / scale
            data.update(z=float(pts[:, 2].mean()), center=tuple(center), scale=scale)
            label = target.name
        else:
            path = bpy.path.abspath(s.target_image)
            import os

            if not s.target_image or not os.path.isfile(path):
                refuse(self, f"target image not found: {path or '(none)'}")
                return {"CANCELLED"}
            settings["target_image"] = path
            label = bpy.path.display_name_from_filepath(path) or "image"
        if s.source_kind == "OBJECT":
            source = s.source_object
            if source is None or source.type != "CURVE":
                refuse(self, "choose a source curve object (or use the circle)")
                return {"CANCELLED"}
            try:
                src = convert.curve_world_points(source, depsgraph)
            except ValueError as exc:
                refuse(self, str(exc))
                return {"CANCELLED"}
            if len(src) < 3:
                refuse(self, f"source curve '{source.name}' has fewer than 3 points")
                return {"CANCELLED"}
            src = src @ rotation
            center, scale = np.asarray(data["center"]), data["scale"]
            arrays["source_points"] = (src[:, :2] - center) / scale
        if s.animate:
            if s.frame_end <= s.frame_start:
                refuse(self, "the animation's end frame must come after its start frame")
                return {"CANCELLED"}
            data.update(animate=s.animation_mode, frame_start=int(s.frame_start), frame_end=int(s.frame_end))
        if not submit_worker_job(
            self,
            context,
            kind="deform",
            label=label,
            settings=settings,
            extra=s.deform_extra_settings,
            arrays=arrays,
            data=data,
        ):
            return {"CANCELLED"}
        self.report({"INFO"}, f"SAPE: deforming towards {label}")
        return {"FINISHED"}


classes = (SAPE_OT_fit_selected, SAPE_OT_cancel, SAPE_OT_reextract, SAPE_OT_deform_curve)
