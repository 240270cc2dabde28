"""The "SAPE" tab of the 3D Viewport sidebar."""

from __future__ import annotations

import bpy

from . import runner


def draw_progress(layout, state: runner.State) -> None:
    text = state.status or "Working..."
    if state.total > 1:
        text = f"[{min(state.done + 1, state.total)}/{state.total}] {text}"
    if hasattr(layout, "progress"):  # Blender 4.0+
        layout.progress(factor=float(state.progress), type="BAR", text=text)
    else:
        pct = f"{100 * state.progress:.0f}%"
        eta = f", ETA {runner.format_seconds(state.eta_s)}" if state.eta_s is not None else ""
        layout.label(text=f"{pct}{eta}", icon="TIME")
        layout.label(text=text)


class SAPE_PT_main(bpy.types.Panel):
    bl_idname = "SAPE_PT_main"
    bl_label = "SAPE"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "SAPE"

    def draw(self, context):
        layout = self.layout
        s = context.scene.sape_geom
        run = runner.RUNNER

        box = layout.box()
        box.label(text="Fit surface", icon="MESH_ICOSPHERE")
        col = box.column(align=True)
        col.prop(s, "preset")
        col.prop(s, "encoding")
        col.prop(s, "resolution")
        col.prop(s, "budget")
        if s.budget == "STEPS":
            col.prop(s, "steps")
        elif s.budget == "TIME":
            col.prop(s, "time_budget")
        col.prop(s, "device")
        row = box.row(align=True)
        row.prop(s, "live_preview")
        if s.live_preview:
            row.prop(s, "preview_every", text="Every")
        row = box.row(align=True)
        row.scale_y = 1.3
        row.operator("sape.fit_selected", icon="PLAY")
        row.operator("sape.reextract", icon="FILE_REFRESH")
        if run.busy:
            draw_progress(box, run.state)
            box.operator("sape.cancel", icon="CANCEL")
        elif run.state.status:
            box.label(text=run.state.status, icon="ERROR" if run.state.status.startswith(("Failed", "SAPE")) else "INFO")

        box = layout.box()
        box.label(text="Deform curve", icon="CURVE_BEZCIRCLE")
        col = box.column(align=True)
        col.prop(s, "target_kind")
        if s.target_kind == "OBJECT":
            col.prop(s, "target_object")
        else:
            col.prop(s, "target_image")
        col.prop(s, "source_kind")
        if s.source_kind == "OBJECT":
            col.prop(s, "source_object")
        col.prop(s, "deform_steps")
        col.prop(s, "animate")
        if s.animate:
            col.prop(s, "animation_mode")
            row = col.row(align=True)
            row.prop(s, "frame_start")
            row.prop(s, "frame_end")
        box.operator("sape.deform_curve", icon="MOD_CURVE")


classes = (SAPE_PT_main,)
