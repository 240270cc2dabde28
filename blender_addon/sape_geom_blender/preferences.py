"""Add-on preferences: the worker Python, Set Up Worker's options, the work folder; where things live.

The worker Python is, in order: the Worker Python preference, ``$SAPE_GEOM_PYTHON``, the environment
Set Up Worker built (``<user folder>/worker_env``), a source checkout's ``.venv``. The user folder is
``bpy.utils.extension_path_user`` for an extension (Blender 4.2+) and ``<user scripts>/sape_geom_blender_data``
for a legacy add-on (Blender 3.4-4.1).
"""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from . import job_settings as js
from . import worker_client, worker_setup

_PACKAGE = __package__  # "sape_geom_blender", or "bl_ext.<repo>.sape_geom_blender" as an extension
ENV_FOLDER = "worker_env"


def get_preferences(context=None):
    """The add-on's preferences, or None when the add-on is not enabled through Blender."""
    context = context or bpy.context
    addon = context.preferences.addons.get(_PACKAGE)
    return addon.preferences if addon is not None else None


def user_folder(create: bool = True) -> Path:
    """The add-on's own writable folder (worker environment, set-up log, checkpoints of unsaved files)."""
    if _PACKAGE.startswith("bl_ext.") and hasattr(bpy.utils, "extension_path_user"):
        return Path(bpy.utils.extension_path_user(_PACKAGE, create=create))
    folder = Path(bpy.utils.user_resource("SCRIPTS", path="sape_geom_blender_data", create=create))
    return folder


def setup_env_dir() -> Path:
    return user_folder() / ENV_FOLDER


def setup_python() -> str:
    """The Python of the environment Set Up Worker finished, or ""."""
    env = setup_env_dir()
    return str(worker_setup.env_python(env)) if worker_setup.environment_info(env) is not None else ""


def absolute(path: str) -> str:
    """A typed, pasted or file-browser path as an absolute path (quotes dropped, ``//`` resolved)."""
    path = worker_client.clean_path(path)
    if not path:
        return ""
    if path.startswith("//"):
        path = bpy.path.abspath(path)
    elif "/" not in path and "\\" not in path:
        return path  # a bare program name, looked up on PATH
    return str(Path(path).absolute())


def resolve_worker_python(context=None, explicit: str = "") -> tuple[str, str]:
    """``(python, where it came from)``: explicit value, the preference, then :func:`detect`."""
    if explicit:
        return absolute(explicit), "given"
    prefs = get_preferences(context)
    if prefs is not None and prefs.worker_python.strip():
        return absolute(prefs.worker_python), "add-on preferences"
    return worker_client.detect_worker_python(setup_python())


def work_dir_base(context=None) -> str:
    prefs = get_preferences(context)
    return absolute(prefs.work_dir) if prefs is not None and prefs.work_dir.strip() else ""


def _normalise(attr: str):
    def update(self, _context):
        value = getattr(self, attr)
        fixed = absolute(value) if value.strip() else ""
        if fixed != value:
            setattr(self, attr, fixed)  # runs this update once more, with nothing left to change

    return update


class SAPE_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = _PACKAGE

    worker_python: StringProperty(
        name="Worker Python",
        description="A Python that has torch and sape_geom's dependencies. Blank: the one Set Up Worker made "
        "(or $SAPE_GEOM_PYTHON)",
        subtype="FILE_PATH", default="", update=_normalise("worker_python"),
    )
    setup_base_python: StringProperty(
        name="Set-Up Python",
        description="The Python that Set Up Worker builds its environment from. Blank: Blender's own",
        subtype="FILE_PATH", default="", update=_normalise("setup_base_python"),
    )
    package_index: StringProperty(
        name="Package Index",
        description="Where pip gets packages: blank for pip's own settings; a URL for a mirror (only that is "
        "used); a folder of wheel files to install offline",
        default="",
    )
    torch_build: EnumProperty(name="Torch Build", items=js.TORCH_BUILDS, default="CPU")
    work_dir: StringProperty(
        name="Work Folder",
        description="Where job files go while a job runs (blank: the system temp folder)",
        subtype="DIR_PATH", default="", update=_normalise("work_dir"),
    )
    check_report: StringProperty(name="Last Check", default="")

    def draw(self, context):
        from .setup_ops import draw_setup

        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        draw_setup(layout, context, full=True)
        layout.separator()
        layout.prop(self, "work_dir")


classes = (SAPE_AddonPreferences,)
