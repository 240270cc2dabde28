"""Shared test set-up.

``bpy`` must be imported before anything imports ``pymeshlab`` in this process: both ship an Embree
library and pymeshlab's older copy breaks bpy (``undefined symbol rtcGetSceneTraversable``
when bpy is imported after pymeshlab; the other order works). pytest imports this file before any test module, so bpy is
imported here, once, with ``BLENDER_USER_RESOURCES`` pointing at a throw-away folder so that Blender
never writes into the user's ``~/.config/blender``.

Tests marked ``blender`` are skipped when the bpy module is not installed.
"""

from __future__ import annotations

import os
import tempfile

import pytest

_BLENDER_USER_DIR = tempfile.mkdtemp(prefix="sape_geom_blender_user_")
os.environ.setdefault("BLENDER_USER_RESOURCES", _BLENDER_USER_DIR)

try:  # must stay the first heavy import of the test session
    import bpy  # noqa: F401

    HAS_BPY = True
    BPY_IMPORT_ERROR = ""
except Exception as exc:  # ImportError, or a broken binary module
    HAS_BPY = False
    BPY_IMPORT_ERROR = f"{type(exc).__name__}: {exc}"


def pytest_collection_modifyitems(config, items):
    if HAS_BPY:
        return
    skip = pytest.mark.skip(reason=f"the bpy module is not available ({BPY_IMPORT_ERROR})")
    for item in items:
        if "blender" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test: several times faster than two for small sizes on a shared two-core
    machine (the threads wait for each other); the previous count is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
