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
    ("paper", "Paper", "100000 steps, 64³ SAPE grid"),
)
PRESET_STEPS = {"fast": 1000, "quality": 100_000, "paper": 100_000}
"""Each preset's training steps (``OccupancyConfig.steps``): the expected time of a fit counts them."""
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
#: ``sape_geom.config.PRECISIONS``, in order: (name, label, tooltip).
PRECISIONS = (
    ("auto", "Auto", "bfloat16 where the device multiplies it natively, float32 elsewhere (the Paper preset: float32)"),
    ("float32", "Float32", ""),
    ("bfloat16", "BFloat16", ""),
    ("float16", "Float16", ""),
)

DEFAULT_PRESET = "fast"
"""``occupancy_preset()``'s default."""
DEFAULT_ENCODING = "sape"
"""``FieldConfig``'s default."""
DEFAULT_DEVICE = "auto"
"""``choose_device()``'s default."""
DEFAULT_PRECISION = "auto"
"""The ``fast`` preset's ``FieldConfig.precision``; sent only when another is chosen, so that each
preset keeps its own."""
DEFAULT_PREVIEW_EVERY_S = 3.0
"""The worker's default ``preview_every_s``."""
RESOLUTION_MIN, RESOLUTION_MAX, RESOLUTION_DEFAULT = 16, 1024, 256
"""Extraction grid sizes the panel offers (``OccupancyConfig`` accepts all of them) and its default, the
library's: at 128 Suzanne (subdivided twice) came out with a third more of its area bent over 30 degrees
from the source and a 9.8 degree 90th percentile against 8.2, for about 11 s less of a fit of about 80 s
on 2 cores (benchmarks/results/specks)."""
EXTRA_SETTINGS_EXAMPLE = '{"config": {"batch_size": 2000}}'
"""Shown in the Extra Settings tooltip; a test runs it through the worker's settings parsing."""
DEFORM_EXTRA_SETTINGS_EXAMPLE = '{"config": {"points": 256}}'
"""The same for the Deform panel's Extra Settings (the ``deform`` task's settings)."""
RESOLUTION_WARN = 512
"""From this grid size on the panel warns that extraction is slow and the mesh large."""
UNIT_RADIUS = 0.95
"""``sape_geom.mesh.UNIT_RADIUS``: the farthest input vertex lands at this distance in the unit frame,
whose extraction grid spans [-1, 1]³ with ``resolution`` points per axis (the voxel size shown)."""

PROTOCOL_VERSION = 1
"""``sape_geom.app.worker.PROTOCOL_VERSION``: a worker that says another version is refused."""
TORCH_REQUIREMENT = "torch==2.13.0"
"""What Set Up Worker installs (the Makefile's pin; it satisfies the library's torch requirement)."""
WORKER_REQUIREMENTS = (
    "numpy>=1.26,<2",
    "trimesh>=4.0",
    "libigl>=2.5",
    "PyMCubes>=0.1.6",
    "scipy>=1.10",
    "pillow>=10",
    "tqdm>=4.60",
)
"""The library's other dependencies (``pyproject.toml``'s ``dependencies`` without torch)."""
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
"""Added as an extra index on Linux and Windows for the CPU build (PyPI's Linux wheel is the CUDA one)."""
TORCH_CUDA_INDEX = "https://download.pytorch.org/whl/cu128"
"""The CUDA build's index on Windows (on Linux PyPI's own torch is the CUDA build)."""
TORCH_BUILDS = (
    ("CPU", "CPU", "The CPU build of torch (about 200 MB to download); works everywhere"),
    ("CUDA", "CUDA (NVIDIA)", "The CUDA build of torch for NVIDIA GPUs: about 3 GB to download and 6 GB on disk"),
)


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
    keep_largest: bool = False,
    skip_smoothing: bool = False,
    skip_snapping: bool = False,
    precision: str = DEFAULT_PRECISION,
) -> dict[str, Any]:
    """Settings of the worker's ``fit_surface`` task; ``budget`` is ``PRESET``, ``STEPS`` or ``TIME``.
    ``skip_smoothing`` keeps the surface as marching cubes gives it and ``skip_snapping`` the field's own
    surface, not put onto the input (the preset decides otherwise);
    ``precision`` other than the default replaces the preset's."""
    overrides: dict[str, Any] = {"encoding": encoding}
    if skip_smoothing:
        overrides["smooth_surface"] = False
    if skip_snapping:
        overrides["snap_to_input"] = False
    if precision != DEFAULT_PRECISION:
        overrides["precision"] = precision
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
        "keep_largest": bool(keep_largest),
        "preview_every_s": float(preview_every_s),
    }
    return merge_extra(settings, extra)


def voxel_size(radius: float, resolution: int) -> float:
    """World size of one extraction cell for an input whose farthest vertex is ``radius`` from its
    bounding-box centre: the grid's spacing 2 / (resolution - 1) in the unit frame, scaled back."""
    return 2.0 * float(radius) / (UNIT_RADIUS * max(1, int(resolution) - 1))


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
