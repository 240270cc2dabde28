"""Handlers that keep the artist's files safe while work runs in the background, and the Esc key.

* Opening a file (File > Open, File > New, revert, recover): a running or queued job is cancelled and
  its preview removed *before* the file changes, and nothing from it lands in the new file.
* While a render runs, results wait (``runner.blocked``).
* An undo step can bring back a live-preview object that was in the scene when the artist did something
  during a fit; such leftovers (marked ``sape_preview``) are removed.
* Esc cancels the running job (a Window key-map entry whose operator only runs while a job does, so
  Esc keeps its other meanings otherwise).
"""

from __future__ import annotations

import bpy
from bpy.app.handlers import persistent

from . import convert, runner

_KEYMAPS: list = []


@persistent
def on_load_pre(*_args) -> None:
    runner.RUNNER.file_changed()


@persistent
def on_render_init(*_args) -> None:
    runner.RENDERING["active"] = True


@persistent
def on_render_end(*_args) -> None:
    runner.RENDERING["active"] = False


@persistent
def on_undo_redo(*_args) -> None:
    keep = runner.RUNNER.preview.name
    for obj in [o for o in bpy.data.objects if o.get("sape_preview") and o.name != keep]:
        convert.remove_object(obj)


HANDLERS = (
    ("load_pre", on_load_pre),
    ("render_init", on_render_init),
    ("render_complete", on_render_end),
    ("render_cancel", on_render_end),
    ("undo_post", on_undo_redo),
    ("redo_post", on_undo_redo),
)


def register() -> None:
    for name, fn in HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        if fn not in handlers:
            handlers.append(fn)
    keyconfig = bpy.context.window_manager.keyconfigs.addon if bpy.context.window_manager else None
    if keyconfig is not None:
        km = keyconfig.keymaps.new(name="Window", space_type="EMPTY")
        kmi = km.keymap_items.new("sape.cancel", "ESC", "PRESS")
        _KEYMAPS.append((km, kmi))


def unregister() -> None:
    for name, fn in HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        if fn in handlers:
            handlers.remove(fn)
    for km, kmi in _KEYMAPS:
        try:
            km.keymap_items.remove(kmi)
        except (RuntimeError, ReferenceError):
            pass
    _KEYMAPS.clear()
    runner.RENDERING["active"] = False
