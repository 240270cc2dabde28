"""Add-on preferences: which Python runs the worker, where job files go, and the Check button."""

from __future__ import annotations

import tempfile

import bpy
from bpy.props import StringProperty

from . import worker_client

_PACKAGE = __package__  # "sape_geom_blender", or "bl_ext.<repo>.sape_geom_blender" as an extension


def get_preferences(context=None):
    """The add-on's preferences, or None when the add-on is not enabled through Blender."""
    context = context or bpy.context
    addon = context.preferences.addons.get(_PACKAGE)
    return addon.preferences if addon is not None else None


def resolve_worker_python(context=None, explicit: str = "") -> tuple[str, str]:
    """``(python, where it came from)``: explicit value, the preference, then auto-detection."""
    if explicit:
        return explicit, "given"
    prefs = get_preferences(context)
    if prefs is not None and prefs.worker_python.strip():
        return bpy.path.abspath(prefs.worker_python.strip()), "add-on preferences"
    return worker_client.detect_worker_python()


def work_dir_base(context=None) -> str:
    prefs = get_preferences(context)
    return prefs.work_dir if prefs is not None else ""


class SAPE_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = _PACKAGE

    worker_python: StringProperty(
        name="Worker Python",
        description="Python interpreter that has sape_geom and torch installed (blank: auto-detect from "
        "SAPE_GEOM_PYTHON, a .venv next to the add-on, or python3 on PATH)",
        subtype="FILE_PATH",
        default="",
    )
    work_dir: StringProperty(
        name="Work Folder",
        description="Where job inputs, results and checkpoints are kept (blank: the system temp folder)",
        subtype="DIR_PATH",
        default="",
    )
    check_report: StringProperty(name="Last check", default="")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "worker_python")
        if not self.worker_python.strip():
            python, where = worker_client.detect_worker_python()
            layout.label(text=f"Auto-detected: {python or 'none'} ({where})", icon="INFO")
        layout.prop(self, "work_dir")
        row = layout.row()
        row.operator("sape.check_worker", icon="CHECKMARK")
        if self.check_report:
            for line in self.check_report.split("\n"):
                row = layout.row()
                row.label(text=line)


class SAPE_OT_check_worker(bpy.types.Operator):
    """Run the worker's check job: report its torch version and devices, or why it cannot run"""

    bl_idname = "sape.check_worker"
    bl_label = "Check Worker"
    bl_options = {"REGISTER"}

    python: StringProperty(name="Python", description="Interpreter to check (blank: the preference)", default="")

    def execute(self, context):
        python, where = resolve_worker_python(context, self.python)
        with tempfile.TemporaryDirectory(prefix="sape_check_") as tmp:
            info = worker_client.run_check(python, tmp)
        if info.get("ok"):
            devices = ", ".join(info.get("devices") or []) or "none"
            text = f"{python}: Python {info.get('python')}, torch {info.get('torch')}, devices: {devices}"
            level = "INFO"
        else:
            text = f"{python or '(no Python)'} ({where}): {info.get('reason') or 'unknown problem'}"
            level = "ERROR"
        prefs = get_preferences(context)
        if prefs is not None:
            prefs.check_report = text
        self.report({level}, f"SAPE worker check: {text}")
        return {"FINISHED"} if level == "INFO" else {"CANCELLED"}


classes = (SAPE_AddonPreferences, SAPE_OT_check_worker)
