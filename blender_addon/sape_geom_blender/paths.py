"""Where things live: the add-on's preferences, its user folder, the worker environment Set Up Worker
builds, the worker Python in use and the work folder.

The worker Python is, in order: the Worker Python preference, ``$SAPE_GEOM_PYTHON``, the environment
Set Up Worker built (``<user folder>/worker_env``), a source checkout's ``.venv``. The user folder is
``bpy.utils.extension_path_user`` for an extension (Blender 4.2+) and ``<user scripts>/sape_geom_blender_data``
for a legacy add-on (Blender 3.4-4.1). No drawing and no operators here, so every module can use it.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from . import worker_client, worker_setup

PACKAGE = __package__  # "sape_geom_blender", or "bl_ext.<repo>.sape_geom_blender" as an extension
ENV_FOLDER = "worker_env"


def get_preferences(context=None):
    """The add-on's preferences, or None when the add-on is not enabled through Blender."""
    context = context or bpy.context
    addon = context.preferences.addons.get(PACKAGE)
    return addon.preferences if addon is not None else None


def user_folder(create: bool = True) -> Path:
    """The add-on's own writable folder (worker environment, set-up log, checkpoints of unsaved files)."""
    if PACKAGE.startswith("bl_ext.") and hasattr(bpy.utils, "extension_path_user"):
        return Path(bpy.utils.extension_path_user(PACKAGE, create=create))
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
