"""The live preview of a running fit: a coarse mesh the worker writes every few seconds, shown in the
scene in its own colour (``convert.PREVIEW_COLOR``) in place of its source, which is hidden meanwhile
(drawn over a visible source, the two z-fight) and shown again when the preview goes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import bpy
import numpy as np

from . import convert

PREVIEW_CPU_SHARE = 0.5
"""A live preview is shown only once Blender's own CPU use since the last one has averaged under this
many cores. On a GPU a preview costs Blender milliseconds and each one is shown; under software OpenGL
the 3D view's anti-aliasing redraws it for seconds after each change (7.5 CPU-s on two cores per preview,
Xvfb, Blender 3.4, its default 8 samples), which at one preview every 5 s took more than a core from the
worker: previews then come about every 15 s. Busy with the artist's own work, Blender shows fewer too."""


def blender_cpu_s() -> float:
    """CPU seconds of Blender's process so far, its drawing threads included."""
    times = os.times()
    return times.user + times.system


class Preview:
    """The preview object of the running fit (by name: undo and file loads replace Blender's objects)."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.hidden_source: str | None = None  # the source hidden while the preview shows (restored after)
        self.mark: tuple[float, float] | None = None  # (wall, Blender CPU) s at the last preview

    def affordable(self) -> bool:
        """Whether Blender has spent under :data:`PREVIEW_CPU_SHARE` of a core since the last preview."""
        if self.mark is None:
            return True
        wall, cpu = self.mark
        return blender_cpu_s() - cpu <= PREVIEW_CPU_SHARE * (time.monotonic() - wall)

    def show(self, item, path: Path, runner) -> bool:
        """Show the preview mesh in ``path`` for ``item`` (in ``runner.results_collection``); False when
        the file is gone or empty (the worker may already have replaced it: the next one will do)."""
        try:
            with np.load(path) as data:
                vertices, faces = data["vertices"], data["faces"]
        except (OSError, KeyError, ValueError):
            return False
        if len(faces) == 0:
            return False
        scene = bpy.data.scenes.get(item.scene_name) or bpy.context.scene
        matrix = item.data["matrix_world"]
        mesh = convert.build_mesh(f"{item.label}_sape_preview", convert.world_to_local(vertices, matrix), faces)
        convert.shade_smooth(mesh)
        mesh.materials.append(convert.preview_material())
        obj = bpy.data.objects.get(self.name) if self.name else None
        if obj is None:
            obj = convert.new_object(f"{item.label}_sape_preview", mesh, runner.results_collection(scene), matrix)
            obj.hide_render = True
            obj["sape_preview"] = True  # handlers remove it if an undo step brings it back later
            self.name = obj.name
            self._hide_source(bpy.data.objects.get(item.data.get("source", "")))
        else:
            convert.replace_mesh(obj, mesh)
        self.mark = (time.monotonic(), blender_cpu_s())
        return True

    def _hide_source(self, source) -> None:
        """Hide the source from the view layer (the object itself is not edited); a hidden one is left."""
        if source is None or not source.visible_get():
            return
        try:
            source.hide_set(True)
        except RuntimeError:  # not in the current view layer
            return
        self.hidden_source = source.name

    def drop(self) -> None:
        """Remove the preview object and its material, and show its source again."""
        self.mark = None
        if self.name:
            convert.remove_object(bpy.data.objects.get(self.name))
        self.name = None
        convert.remove_unused_material(convert.PREVIEW_MATERIAL)
        source = bpy.data.objects.get(self.hidden_source) if self.hidden_source else None
        self.hidden_source = None
        if source is not None:
            try:
                source.hide_set(False)
            except RuntimeError:  # no longer in the current view layer
                pass
