"""SAPE Geometry for Blender: fit neural occupancy fields to meshes and morph curves with SAPE.

Training runs in a separate Python process (``python -m sape_geom.app.worker``); Set Up Worker builds
its environment (torch and the library's dependencies) and the zip carries the pure-Python sape_geom
package for it (``worker_lib/``). The add-on itself needs only Blender's bpy and numpy and never imports
torch or sape_geom. Modules without bpy: ``worker_client`` (starts and reads the worker process),
``worker_setup`` (builds the environment), ``worker_find`` (candidate Pythons), ``job_settings`` (what
the panel sends, with the library's names and defaults). With bpy: ``convert`` (bpy <-> numpy),
``runner`` (queue and polling function), ``results`` (fit and re-extract results), ``reports``
(messages to the status bar and Info editor), ``handlers`` (file load, render, undo, Esc),
``properties``, ``operators``, ``mesh_deform`` (Deform onto Target), ``setup_ops``, ``ui``, ``preferences``.
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

    # in the order they import each other: a module after everything it uses
    for _mod in (
        job_settings,
        worker_client,
        worker_setup,
        worker_find,
        paths,
        convert,
        reports,
        results,
        preview,
        runner,
        handlers,
        properties,
        setup_ops,
        operators,
        mesh_deform,
        ui,
        preferences,
    ):
        importlib.reload(_mod)

import bpy  # noqa: E402

from . import (  # noqa: E402,F401
    convert,
    handlers,
    job_settings,
    mesh_deform,
    operators,
    paths,
    preferences,
    preview,
    properties,
    reports,
    results,
    runner,
    setup_ops,
    ui,
    worker_client,
    worker_find,
    worker_setup,
)

classes = (
    *properties.classes,
    *preferences.classes,
    *reports.classes,
    *setup_ops.classes,
    *operators.classes,
    *mesh_deform.classes,
    *ui.classes,
)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    properties.register_properties()
    handlers.register()
    bpy.types.VIEW3D_MT_object.append(ui.draw_object_menu)
    bpy.types.STATUSBAR_HT_header.append(ui.draw_status_bar)


def unregister():
    runner.stop_timer()
    runner.RUNNER.shutdown()  # no worker process outlives the add-on
    setup_ops.stop_all()  # nor a set-up's pip (its partial environment is removed)
    bpy.types.STATUSBAR_HT_header.remove(ui.draw_status_bar)
    bpy.types.VIEW3D_MT_object.remove(ui.draw_object_menu)
    handlers.unregister()
    properties.unregister_properties()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
