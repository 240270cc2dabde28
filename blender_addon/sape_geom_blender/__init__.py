"""SAPE Geometry for Blender: fit neural occupancy fields to meshes and morph curves with SAPE.

Training runs in a separate Python process (``python -m sape_geom.app.worker``) chosen in the add-on
preferences; this add-on needs only Blender's bpy and numpy and never imports torch or sape_geom.
Modules: ``worker_client`` (starts and reads the worker process, no bpy), ``job_settings`` (what the
panel sends the worker, with the library's names and defaults, no bpy), ``convert`` (bpy <-> numpy),
``runner`` (queue and the polling function), ``properties``, ``operators``, ``ui``, ``preferences``.
This file only registers.
"""

# Legacy add-on metadata (Blender 3.4-4.1); Blender 4.2+ reads blender_manifest.toml instead.
bl_info = {
    "name": "SAPE Geometry",
    "author": "sape_geom developers",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "3D Viewport > Sidebar > SAPE",
    "description": "Fit neural occupancy fields to meshes and morph curves with SAPE (runs a worker process)",
    "category": "Mesh",
}

if "bpy" in locals():  # script reload (F8 / reload_scripts): refresh the submodules too
    import importlib

    for _mod in (worker_client, job_settings, convert, runner, properties, preferences, operators, ui):  # noqa: F821
        importlib.reload(_mod)

import bpy  # noqa: E402

from . import convert, job_settings, operators, preferences, properties, runner, ui, worker_client  # noqa: E402,F401

classes = (*properties.classes, *preferences.classes, *operators.classes, *ui.classes)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    properties.register_properties()


def unregister():
    runner.stop_timer()
    runner.RUNNER.shutdown()  # no worker process outlives the add-on
    properties.unregister_properties()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
