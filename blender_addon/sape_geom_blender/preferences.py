"""Add-on preferences: the worker Python, Set Up Worker's options, the work folder (where each of them
leads is in ``paths``; the Setup box they are drawn with is ``ui.draw_setup``).
"""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, StringProperty

from . import job_settings as js
from .paths import PACKAGE, absolute
from .ui import draw_setup


def _normalise(attr: str):
    def update(self, _context):
        value = getattr(self, attr)
        fixed = absolute(value) if value.strip() else ""
        if fixed != value:
            setattr(self, attr, fixed)  # runs this update once more, with nothing left to change

    return update


class SAPE_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    worker_python: StringProperty(
        name="Worker Python",
        description="A Python that has torch and sape_geom's dependencies. Blank: the one Set Up Worker made "
        "(or $SAPE_GEOM_PYTHON)",
        subtype="FILE_PATH",
        default="",
        update=_normalise("worker_python"),
    )
    setup_base_python: StringProperty(
        name="Set-Up Python",
        description="The Python that Set Up Worker builds its environment from. Blank: Blender's own",
        subtype="FILE_PATH",
        default="",
        update=_normalise("setup_base_python"),
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
        subtype="DIR_PATH",
        default="",
        update=_normalise("work_dir"),
    )
    check_report: StringProperty(name="Last Check", default="")

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        draw_setup(layout, context, full=True)
        layout.separator()
        layout.prop(self, "work_dir")


classes = (SAPE_AddonPreferences,)
