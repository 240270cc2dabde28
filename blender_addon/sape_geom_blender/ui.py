"""The "SAPE" tab of the 3D Viewport sidebar (status on top; Fit, Result, Deform and Setup sub-panels),
the SAPE submenu of the Object menu (which also makes the tools findable with F3), and the status bar."""

from __future__ import annotations

import os

import bpy

from . import estimate, reports, runner, text_fit, worker_client, worker_find
from . import job_settings as js
from .paths import get_preferences, resolve_worker_python, setup_env_dir, user_folder
from .setup_ops import JOBS

ICONS = {"ERROR": "ERROR", "WARNING": "ERROR", "INFO": "CHECKMARK"}


# ------------------------------------------------------------------------------------------ drawing
def label_lines(layout, text: str, icon: str = "NONE", boxed: bool = False) -> None:
    """A long message as several labels, wrapped by its measured width (Blender's labels do not wrap)."""
    for k, line in enumerate(text_fit.wrap(text, text_fit.label_width(boxed))):
        layout.label(text=line, icon=icon if k == 0 else "BLANK1")


def draw_progress(layout, factor: float, text: str) -> None:
    if hasattr(layout, "progress"):  # Blender 4.0+
        layout.progress(factor=float(factor), type="BAR", text=text)
    else:
        layout.label(text=f"{100 * factor:.0f}%  {text}", icon="TIME")


def draw_setup(layout, context, full: bool = False) -> None:
    """The Setup sub-panel, and (``full``) the preferences with the options and candidate Pythons."""
    python, where = resolve_worker_python(context)
    problem = worker_client.check_python(python)
    col = layout.column(align=True)
    job = JOBS["setup"]
    running = job is not None and not job.done
    if problem and not running:
        label_lines(col, "No worker yet: press Set Up Worker (downloads torch once)", "ERROR")
    elif not problem:
        col.label(text="Worker ready", icon="CHECKMARK")
        label_lines(col, f"From {where}: {python}" if full else f"From {where}", "BLANK1")
    if running:
        box = layout.box()
        draw_progress(box, job.progress, job.stage)
        if job.last_line:
            label_lines(box, job.last_line, boxed=True)
        row = box.row(align=True)
        row.operator("sape.cancel_setup", text="Cancel", icon="CANCEL")
        row.operator("sape.open_setup_log", icon="TEXT")
    else:
        col = layout.column(align=True)
        col.operator("sape.setup_worker", icon="IMPORT")
        col.operator("sape.check_worker", icon="CHECKMARK")
        if setup_failed(job):
            label_lines(layout.column(align=True), job.error, "ERROR")
            layout.operator("sape.open_setup_log", icon="TEXT")
    check = JOBS["check"]
    if check is not None and not check.done:
        layout.label(text=f"Checking {os.path.basename(check.python)}...", icon="TIME")
    prefs = get_preferences(context)
    if prefs is not None and prefs.check_report:
        label_lines(layout.column(align=True), prefs.check_report, "INFO")
    if not full or prefs is None:
        return
    layout.separator()
    layout.prop(prefs, "worker_python")
    layout.prop(prefs, "setup_base_python")
    layout.prop(prefs, "package_index")
    layout.prop(prefs, "torch_build")
    layout.label(text=f"Environment folder: {setup_env_dir()}", icon="FILE_FOLDER")
    layout.separator()
    layout.operator("sape.find_pythons", icon="VIEWZOOM")
    find = JOBS["find"]
    if find is not None:
        box = layout.box()
        for cand, cand_where in find.candidates:
            text, usable = worker_find.summary(find.results.get(cand))
            row = box.row()
            row.label(text=f"{cand}  ({cand_where})", icon="CHECKMARK" if usable else "DOT")
            sub = row.row()
            sub.enabled = usable
            sub.operator("sape.use_python", text="Use").python = cand
            label_lines(box, text, "BLANK1", boxed=True)


def draw_status_bar(self, context) -> None:
    """Appended to the status bar: the last SAPE message, or that a job runs (its progress is in the
    sidebar: the status bar is redrawn only when its entry changes, so a percentage would go stale)."""
    icon, text = reports.status_bar_entry(runner.RUNNER.busy)
    if text:
        self.layout.label(text=text, icon=icon)


def progress_text(state: runner.State) -> str:
    text = state.status or "Working..."
    if state.total > 1:
        text = f"[{min(state.done + 1, state.total)}/{state.total}] {text}"
    return text


def draw_status(layout, run: runner.Runner) -> None:
    """Progress and Cancel while busy; afterwards the outcome (an error in the worker's words). Cancel
    sits right under the progress bar, above the text, so it stays in place however the text wraps."""
    state = run.state
    if run.busy:
        head, _, rest = progress_text(state).partition(": ")  # "[1/2] Suzanne", "training 71/1000, loss .."
        draw_progress(layout, state.progress, head)
        layout.operator("sape.cancel", icon="CANCEL")
        col = layout.column(align=True)
        label_lines(col, rest.split(", ETA")[0] if rest else "", "BLANK1")
        if state.eta_s is not None:
            col.label(text=f"ETA {runner.format_seconds(state.eta_s)}", icon="BLANK1")
    elif state.status:
        col = layout.column(align=True)
        label_lines(col, state.status, ICONS.get(state.level, "INFO"))
        for level, text in outcome_lines(state):
            label_lines(col, text, ICONS.get(level, "INFO"))


OUTCOMES_SHOWN = 4
"""How many of a run's outcomes (one line per object) the panel lists under its status line."""


def outcome_lines(state: runner.State) -> list[tuple[str, str]]:
    """The run's outcomes under the status line, the newest first, without repeating the status line."""
    lines = [(level, text.removeprefix("SAPE: ")) for level, text in reversed(state.messages)]
    return [(level, text) for level, text in lines if text != state.status][:OUTCOMES_SHOWN]


def _split(layout):
    layout.use_property_split = True
    layout.use_property_decorate = False
    return layout


def voxel_text(context, radius: float, resolution: int, at_most: bool = False) -> str:
    """ "Voxel 2.41 cm" in scene units; ``at_most`` when ``radius`` is an upper bound (the Fit panel's, from
    the bounding box: the fit's own radius, from the vertices, is known once it has run)."""
    size = js.voxel_size(radius, resolution)
    units = context.scene.unit_settings
    try:
        shown = bpy.utils.units.to_string(units.system, "LENGTH", size * units.scale_length, precision=3)
    except (AttributeError, ValueError, TypeError):
        shown = f"{size:.3g}"
    return f"Voxel {'≤ ' if at_most else ''}{shown}"


def _fit_radius(context) -> float:
    meshes = [o for o in context.selected_objects if o.type == "MESH"]
    obj = context.active_object if context.active_object in meshes else (meshes[0] if meshes else None)
    if obj is None:
        return 0.0
    from . import convert

    return convert.bounds_radius(obj)


class SAPE_PT_main(bpy.types.Panel):
    bl_idname = "SAPE_PT_main"
    bl_label = "SAPE"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "SAPE"

    def draw(self, context):
        layout = self.layout
        job = JOBS["setup"]
        if job is not None and not job.done:  # the set-up first: nothing can run without it
            draw_progress(layout, job.progress, job.stage)
            layout.operator("sape.cancel_setup", icon="CANCEL")
        elif setup_failed(job) and not runner.RUNNER.busy and not runner.RUNNER.state.status:
            # the newest outcome (starting a set-up clears the last run's; a later run's replaces it)
            label_lines(layout.column(align=True), f"Set-up failed: {job.error}", "ERROR")
            if worker_missing(context):
                layout.operator("sape.setup_worker", icon="IMPORT")
        elif worker_missing(context):
            label_lines(layout.column(align=True), "No worker yet: set it up once (downloads torch)", "ERROR")
            row = layout.row()
            row.scale_y = 1.3
            row.operator("sape.setup_worker", icon="IMPORT")
        draw_status(layout, runner.RUNNER)


def setup_failed(job) -> bool:
    """Whether ``job`` (Set Up Worker's) ended with an error (a cancel is not one)."""
    return job is not None and job.done and not job.ok and job.stage != "Cancelled"


def worker_missing(context) -> bool:
    return worker_client.check_python(resolve_worker_python(context)[0]) is not None


class _Sub:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "SAPE"
    bl_parent_id = "SAPE_PT_main"


class SAPE_PT_fit(_Sub, bpy.types.Panel):
    bl_idname = "SAPE_PT_fit"
    bl_label = "Fit"

    def draw(self, context):
        layout = _split(self.layout)
        s = context.scene.sape_geom
        col = layout.column()
        col.prop(s, "preset")
        col.prop(s, "encoding")
        col.prop(s, "budget")
        if s.budget == "STEPS":
            col.prop(s, "steps")
        elif s.budget == "TIME":
            col.prop(s, "time_budget")
        col.prop(s, "device")
        col.prop(s, "precision")
        draw_resolution(col, context, _fit_radius(context), at_most=True)
        col = layout.column(heading="Result")
        col.prop(s, "keep_largest", text="Largest Piece")
        col.prop(s, "skip_smoothing")
        col.prop(s, "skip_snapping")
        col.prop(s, "hide_source")
        col.prop(s, "max_faces")
        col = layout.column(heading="Preview")
        row = col.row(align=True)
        row.prop(s, "live_preview", text="Live")
        sub = row.row(align=True)
        sub.active = s.live_preview
        sub.prop(s, "preview_every", text="")
        layout.prop(s, "extra_settings", text="Extra")
        row = layout.row()
        row.scale_y = 1.3
        row.enabled = not runner.RUNNER.busy
        row.operator("sape.fit_selected", icon="PLAY")
        label_lines(layout.column(align=True), expected_time_text(context), "TIME")
        row = layout.row()
        row.enabled = not runner.RUNNER.busy
        row.operator("sape.deform_mesh", icon="MOD_SHRINKWRAP")  # selected mesh onto the active one


def expected_time_text(context) -> str:
    """How long Fit Selected is expected to take with the panel's settings, from the last fit of the same
    preset on this machine (:mod:`.estimate`), or that nothing is known yet."""
    s = context.scene.sape_geom
    label = dict((name, label) for name, label, _ in js.PRESETS).get(s.preset, s.preset)
    record = estimate.load(user_folder(create=False)).get(s.preset)
    if record is None:
        return f"Expected time: known after a first {label} fit here"
    steps = s.steps if s.budget == "STEPS" else js.PRESET_STEPS.get(s.preset, 0)
    time_budget = s.time_budget if s.budget == "TIME" else None
    seconds = estimate.expected_seconds(record, steps, time_budget, s.resolution)
    device = f" ({record['device']})" if record.get("device") else ""
    return f"Expected about {runner.format_seconds(seconds)}, from the last {label} fit on this machine{device}"


def draw_resolution(layout, context, radius: float, at_most: bool = False) -> None:
    s = context.scene.sape_geom
    layout.prop(s, "resolution")
    if radius > 0:
        row = layout.row()
        row.alignment = "RIGHT"
        row.label(text=voxel_text(context, radius, s.resolution, at_most))
    if s.resolution >= js.RESOLUTION_WARN:
        row = layout.row()
        row.alert = True
        row.label(text=f"{s.resolution}³ grid: slow, large mesh", icon="ERROR")


class SAPE_PT_result(_Sub, bpy.types.Panel):
    bl_idname = "SAPE_PT_result"
    bl_label = "Result"

    def draw(self, context):
        layout = _split(self.layout)
        obj = context.active_object
        if obj is None or "sape_checkpoint" not in obj:
            label_lines(layout.column(align=True), "Select a SAPE result to re-extract it", "INFO")
            return
        from .results import checkpoint_path

        col = layout.column(align=True)
        label_lines(col, f"{obj.name}, from {obj.get('sape_source', '?')}", "MESH_ICOSPHERE")
        label_lines(col, f"Extracted at {obj.get('sape_resolution', '?')}, {len(obj.data.polygons)} faces", "BLANK1")
        import os

        if not os.path.isfile(checkpoint_path(obj)):
            col.label(text="Its checkpoint is gone", icon="ERROR")
        draw_resolution(layout.column(), context, float(obj.get("sape_radius", 0.0)))
        layout.prop(context.scene.sape_geom, "max_faces")
        row = layout.row()
        row.scale_y = 1.2
        row.operator("sape.reextract", icon="FILE_REFRESH")


class SAPE_PT_deform(_Sub, bpy.types.Panel):
    bl_idname = "SAPE_PT_deform"
    bl_label = "Deform"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = _split(self.layout)
        s = context.scene.sape_geom
        col = layout.column()
        col.prop(s, "target_kind")
        if s.target_kind == "OBJECT":
            col.prop(s, "target_object", text="Curve")
        else:
            col.prop(s, "target_image")
        col.prop(s, "source_kind")
        if s.source_kind == "OBJECT":
            col.prop(s, "source_object", text="Curve")
        col.prop(s, "deform_plane")
        col.prop(s, "deform_steps")
        col.prop(s, "animate")
        if s.animate:
            col.prop(s, "animation_mode")
            sub = col.column(align=True)
            sub.prop(s, "frame_start", text="Start")
            sub.prop(s, "frame_end", text="End")
        layout.prop(s, "deform_extra_settings", text="Extra")
        row = layout.row()
        row.scale_y = 1.3
        row.enabled = not runner.RUNNER.busy
        row.operator("sape.deform_curve", icon="MOD_CURVE")


class SAPE_PT_setup(_Sub, bpy.types.Panel):
    bl_idname = "SAPE_PT_setup"
    bl_label = "Setup"

    def draw(self, context):
        layout = self.layout
        draw_setup(layout, context)
        layout.operator("preferences.addon_show", text="Preferences", icon="PREFERENCES").module = __package__

    def draw_header(self, context):
        job = JOBS["setup"]
        if job is not None and not job.done:
            self.layout.label(text="", icon="TIME")


class SAPE_MT_object(bpy.types.Menu):
    bl_idname = "SAPE_MT_object"
    bl_label = "SAPE"

    def draw(self, context):
        layout = self.layout
        layout.operator("sape.fit_selected", icon="PLAY")
        layout.operator("sape.reextract", icon="FILE_REFRESH")
        layout.operator("sape.deform_curve", icon="MOD_CURVE")
        layout.operator("sape.deform_mesh", icon="MOD_SHRINKWRAP")
        layout.operator("sape.cancel", icon="CANCEL")
        layout.separator()
        layout.operator("sape.setup_worker", icon="IMPORT")
        layout.operator("sape.check_worker", icon="CHECKMARK")


def draw_object_menu(self, context):
    self.layout.separator()
    self.layout.menu(SAPE_MT_object.bl_idname)


classes = (SAPE_PT_main, SAPE_PT_fit, SAPE_PT_result, SAPE_PT_deform, SAPE_PT_setup, SAPE_MT_object)
