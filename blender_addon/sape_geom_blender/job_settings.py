"""The settings the panel sends to the worker, and the library's names and defaults it shows.

The add-on cannot import sape_geom (it runs in Blender's own Python), so the names and defaults below
are copies: tests/addon/test_job_settings.py fails when one of them differs from the library's, and
each tooltip states only what that test checks. No bpy here, so the test reads this file without Blender.
"""

from __future__ import annotations

import json
from typing import Any

#: The names of ``sape_geom.tasks.occupancy.PRESETS``: (name, label, tooltip).
PRESETS = (
    ("fast", "Fast", "1000 steps, 32³ SAPE grid, 16 frequency blocks"),
    ("quality", "Quality", "100000 steps, 64³ SAPE grid"),
)
#: ``sape_geom.config.ENCODINGS``, in order: (name, label, tooltip).
ENCODINGS = (
    ("sape", "SAPE", "Fourier features, spatially adaptive progressive mask, ReLU network"),
    ("progressive", "Progressive", "Fourier features, global progressive mask, ReLU network"),
    ("ff", "Fourier features", "Fourier features, no mask, ReLU network"),
    ("pe", "Positional", "Positional encoding, no mask, ReLU network"),
    ("rbf", "RBF", "Radial basis functions, no mask, ReLU network"),
    ("prbf", "Periodic RBF", "Periodic radial basis functions, no mask, ReLU network"),
    ("none", "None", "Raw coordinates, no mask, ReLU network"),
    ("siren", "SIREN", "Raw coordinates, no mask, sine network"),
)
#: ``sape_geom.nn.trainer.DEVICES``, in order: (name, label, tooltip).
DEVICES = (
    ("auto", "Auto", "The first available of CUDA, Apple Metal and the CPU"),
    ("cpu", "CPU", ""),
    ("cuda", "CUDA", ""),
    ("mps", "Apple Metal", ""),
)

DEFAULT_PRESET = "fast"
"""``occupancy_preset()``'s default."""
DEFAULT_ENCODING = "sape"
"""``FieldConfig``'s default."""
DEFAULT_DEVICE = "auto"
"""``choose_device()``'s default."""
DEFAULT_PREVIEW_EVERY_S = 3.0
"""The worker's default ``preview_every_s``."""
RESOLUTION_MIN, RESOLUTION_MAX, RESOLUTION_DEFAULT = 16, 1024, 128
"""Extraction grid sizes the panel offers (``OccupancyConfig`` accepts all of them) and its default."""
EXTRA_SETTINGS_EXAMPLE = '{"config": {"batch_size": 2000}}'
"""Shown in the Extra Settings tooltip; a test runs it through the worker's settings parsing."""


def fit_settings(
    *,
    preset: str,
    encoding: str,
    device: str,
    budget: str,
    steps: int,
    time_budget: float,
    resolution: int,
    preview_every_s: float,
    extra: str,
) -> dict[str, Any]:
    """Settings of the worker's ``fit_surface`` task; ``budget`` is ``PRESET``, ``STEPS`` or ``TIME``."""
    overrides: dict[str, Any] = {"encoding": encoding}
    if device != DEFAULT_DEVICE:
        overrides["device"] = device
    if budget == "STEPS":
        overrides["steps"] = int(steps)
    elif budget == "TIME":
        overrides["time_budget"] = float(time_budget)
    settings = {
        "preset": preset,
        "overrides": overrides,
        "resolution": int(resolution),
        "colors": True,
        "preview_every_s": float(preview_every_s),
    }
    return merge_extra(settings, extra)


def merge_extra(settings: dict[str, Any], extra: str) -> dict[str, Any]:
    """Merge a JSON object into ``settings`` (one level deep for dict values); ValueError if invalid."""
    if not extra.strip():
        return settings
    try:
        data = json.loads(extra)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Extra Settings is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("Extra Settings must be a JSON object")
    out = dict(settings)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out
