"""The ``addon`` fixture of the add-on tests (their helpers are in ``blender_scene.py``)."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture
def addon():
    """Factory-empty scene with the add-on enabled the way Blender does it; disabled afterwards."""
    bpy = pytest.importorskip("bpy")
    import addon_utils
    from blender_scene import ADDON_PARENT, NAME

    bpy.ops.wm.read_factory_settings(use_empty=True)
    if str(ADDON_PARENT) not in sys.path:
        sys.path.insert(0, str(ADDON_PARENT))
    mod = addon_utils.enable(NAME, default_set=True, handle_error=None)
    assert mod is not None, "the add-on failed to enable"
    prefs = bpy.context.preferences.addons[NAME].preferences
    prefs.worker_python = sys.executable
    yield mod
    addon_utils.disable(NAME, default_set=True, handle_error=None)
