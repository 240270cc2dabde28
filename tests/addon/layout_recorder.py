"""A stand-in for Blender's ``UILayout`` that records what a panel draws, so that tests (bpy module) and
scripts/blender_ui_check.py (a real Blender) can read a panel's texts and measure them. No pytest here."""

from __future__ import annotations


class Recorder:
    """Stands in for ``UILayout``: records every call as ``(name, args, kwargs)``; sub-layouts record into
    the same list. A label's kwargs also get ``_boxed``: whether it was drawn inside a ``box()``."""

    def __init__(self, calls=None, boxed: bool = False):
        object.__setattr__(self, "calls", [] if calls is None else calls)
        object.__setattr__(self, "boxed", boxed)

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return Recorder(self.calls, self.boxed or name == "box")

        if name == "label":  # remember where a label was drawn: its width depends on it
            return lambda *args, **kwargs: self.calls.append((name, args, {**kwargs, "_boxed": self.boxed}))
        return call

    def __setattr__(self, name, value):  # use_property_split, scale_y, enabled, ...: nothing to record
        pass


def draw_panels(panel_classes, context) -> list:
    """The calls of each of ``panel_classes``' ``draw`` (in order) into one recorder."""
    layout = Recorder()
    panel = type("PanelStandIn", (), {"layout": layout})()
    for cls in panel_classes:
        cls.draw(panel, context)
    return layout.calls


def labels(calls) -> list[tuple[str, bool, bool]]:
    """``(text, has_icon, boxed)`` of every label among ``calls``."""
    return [
        (str(kw.get("text", "")), kw.get("icon", "NONE") != "NONE", bool(kw.get("_boxed")))
        for name, _args, kw in calls
        if name == "label"
    ]


def property_labels(calls) -> list[tuple[str, bool]]:
    """``(label, beside_a_checkbox)`` of every property drawn with a label among ``calls``: its ``text`` or its
    name (a checkbox's label sits in the right half of a split row, any other's in the left half)."""
    shown = []
    for name, args, kw in calls:
        if name == "prop" and kw.get("text", None) != "":
            prop = args[0].bl_rna.properties[args[1]]
            shown.append((kw.get("text", prop.name), prop.type == "BOOLEAN"))
    return shown
