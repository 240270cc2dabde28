"""3-D mesh deformation (docs/method.md §6.5): ``config`` holds the settings, ``fit`` the optimisation,
``loss`` the exact surface Chamfer and SAPE's per-vertex feedback, ``metrics`` the quality of a result,
``outputs`` the writers. Only the settings load eagerly: the rest (torch, libigl) on first use, so the
command line starts quickly."""

from __future__ import annotations

import importlib
from typing import Any

from .config import FRAMES, MeshDeformConfig

_LAZY = {
    "MeshDeformResult": "fit",
    "deform_mesh": "fit",
    "read_source": "fit",
    "read_target": "fit",
    "deformation_metrics": "metrics",
    "save_outputs": "outputs",
}

__all__ = ["FRAMES", "MeshDeformConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
