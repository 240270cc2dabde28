"""Messages from background work (worker jobs, Set Up Worker, checks) where the artist looks for them.

A report made by an operator that Python calls from a timer stays with that call: Blender shows it
neither in the status bar nor in the Info editor. So :func:`notify` keeps the message for the panel and
for the add-on's own status-bar entry (:func:`status_bar_entry`), prints it, and hands it to the
``sape.report`` operator started as a modal operator in the first window: reports made by a modal
operator belong to the window manager, which shows them in the status bar and the Info editor.
"""

from __future__ import annotations

import sys
import time

import bpy
from bpy.props import EnumProperty, StringProperty

SHOW_S = 30.0
"""How long the status bar shows the last message (errors stay until the next message)."""

#: The last message: level, text, time.monotonic() when it came.
LAST: dict = {"level": "", "text": "", "at": 0.0}


def notify(level: str, text: str, show: bool = True) -> None:
    """Keep, print and (``show``) report ``text``; ``level`` is INFO, WARNING or ERROR."""
    LAST.update(level=level, text=text, at=time.monotonic())
    print(text, file=sys.stderr if level == "ERROR" else sys.stdout, flush=True)
    if show:
        _report_in_window(level, text)
    tag_redraw()


def clear() -> None:
    LAST.update(level="", text="", at=0.0)


def current() -> tuple[str, str]:
    """``(level, text)`` the status bar shows now, or ``("", "")``."""
    if not LAST["text"]:
        return "", ""
    if LAST["level"] != "ERROR" and time.monotonic() - LAST["at"] > SHOW_S:
        return "", ""
    return LAST["level"], LAST["text"]


def _report_in_window(level: str, text: str) -> None:
    wm = getattr(bpy.context, "window_manager", None)
    windows = list(wm.windows) if wm is not None else []
    try:
        if windows and not bpy.app.background:
            window = bpy.context.window or windows[0]
            with bpy.context.temp_override(window=window, screen=window.screen):
                bpy.ops.sape.report("INVOKE_DEFAULT", level=level, message=text)
        else:
            bpy.ops.sape.report(level=level, message=text)
    except Exception:  # no window, the add-on is being unregistered, or an ERROR report raised here
        pass


ICONS = {"ERROR": "ERROR", "WARNING": "ERROR", "INFO": "INFO"}
WORKING = "SAPE: working (SAPE tab; Esc cancels)"

#: What the status bar was last asked to redraw for: whether a job ran, and its (icon, text).
SHOWN: dict = {"busy": False, "entry": ("", "")}


def status_bar_entry(busy: bool) -> tuple[str, str]:
    """``(icon, text)`` of SAPE's status-bar entry: that a job runs (``busy``), else the last message, else
    nothing (``ui.draw_status_bar`` draws it, asking the runner whether it is busy)."""
    if busy:
        return "TIME", WORKING
    level, text = current()
    return (ICONS.get(level, "INFO"), text[:120]) if text else ("", "")


def tag_redraw(busy: bool | None = None) -> None:
    """Redraw what shows SAPE's progress and messages: the 3D view's sidebar (not its scene: a new
    preview mesh redraws that by itself, and redrawing the scene a few times a second costs a CPU core
    under software OpenGL), the Info editor and the preferences; the status bar when its entry changed.
    ``busy``: whether a job runs now, from the runner; None (a message, a set-up) keeps the last one."""
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                for region in area.regions:
                    if region.type == "UI":
                        region.tag_redraw()
            elif area.type in ("PREFERENCES", "INFO"):
                area.tag_redraw()
    if busy is not None:
        SHOWN["busy"] = busy
    entry = status_bar_entry(SHOWN["busy"])
    if entry != SHOWN["entry"]:  # a job started or ended, or a message came: never on mere progress
        SHOWN["entry"] = entry
        redraw_status_bar()


def redraw_status_bar() -> None:
    """Redraw every window's status bar. It is a global area of the window, not one of its screen's
    areas, so no ``area.tag_redraw()`` reaches it (a cancelled job's "working" stayed there for good);
    resetting the workspace's status text to Blender's own (None) redraws it. Called only when SAPE's
    entry changes, since it would also reset the text of a tool that is running at that moment."""
    wm = getattr(bpy.context, "window_manager", None)
    for window in wm.windows if wm is not None else ():
        workspace = getattr(window, "workspace", None)
        if workspace is None or not hasattr(workspace, "status_text_set"):
            continue
        try:
            with bpy.context.temp_override(window=window, screen=window.screen):
                workspace.status_text_set(None)
        except (RuntimeError, TypeError, AttributeError):  # no usable context for this window
            pass


class SAPE_OT_report(bpy.types.Operator):
    """Show a message from background SAPE work in the status bar and the Info editor"""

    bl_idname = "sape.report"
    bl_label = "SAPE Report"
    bl_options = {"INTERNAL"}

    level: EnumProperty(
        items=(("INFO", "Info", ""), ("WARNING", "Warning", ""), ("ERROR", "Error", "")), default="INFO"
    )
    message: StringProperty(default="")

    def execute(self, context):
        self.report({self.level}, self.message)
        return {"FINISHED"}

    def invoke(self, context, event):
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.01, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        self.report({self.level}, self.message)  # a modal operator's report goes to the window manager
        return {"FINISHED"}


classes = (SAPE_OT_report,)
