"""The add-on's copies of the library's names and defaults, and the settings it sends, against sape_geom.

The add-on cannot import sape_geom, so ``job_settings`` holds copies; these tests fail when a copy
drifts, when a tooltip states something the library does not do, or when the panel's settings (with the
Extra Settings example) are refused by the worker's settings parsing. No bpy needed: the module is
read straight from its file.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
from pathlib import Path

import pytest
import torch

from sape_geom.app.worker import FitSurfaceSettings, parse_settings
from sape_geom.config import ENCODINGS, FieldConfig, ProgressConfig
from sape_geom.nn import trainer
from sape_geom.nn.model import EncodedField, Siren
from sape_geom.tasks.occupancy import PRESETS, OccupancyConfig, occupancy_preset

ROOT = Path(__file__).resolve().parents[2]


def load_addon_module(name: str):
    """One of the add-on's bpy-free modules, read straight from its file (no Blender needed)."""
    path = ROOT / "blender_addon" / "sape_geom_blender" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"addon_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


js = load_addon_module("job_settings")


def test_presets_name_the_library_presets_and_state_their_steps_and_grid():
    assert {name for name, _, _ in js.PRESETS} == set(PRESETS)
    for name, label, tooltip in js.PRESETS:
        config = PRESETS[name]
        facts = [f"{config.steps} steps", f"{config.progress.grid_resolution}³ SAPE grid"]
        if config.progress.num_blocks is not None:
            facts.append(f"{config.progress.num_blocks} frequency blocks")
        assert (label, tooltip) == (name.capitalize(), ", ".join(facts))
    assert js.PRESET_STEPS == {name: config.steps for name, config in PRESETS.items()}


#: The words the encoding tooltips use for what the library builds.
BASE_WORDS = {
    "ff": "Fourier features",
    "pe": "Positional encoding",
    "rbf": "Radial basis functions",
    "prbf": "Periodic radial basis functions",
    "none": "Raw coordinates",
}
MASK_WORDS = {"spatial": "spatially adaptive progressive mask", "global": "global progressive mask", "none": "no mask"}


def test_encodings_are_the_library_list_and_their_tooltips_say_what_it_builds():
    assert tuple(name for name, _, _ in js.ENCODINGS) == ENCODINGS
    for name, _, tooltip in js.ENCODINGS:
        field = FieldConfig(encoding=name, num_frequencies=4, hidden_width=4, hidden_layers=1)
        model = EncodedField(3, 1, field, ProgressConfig(grid_resolution=3), 10)
        network = "sine network" if isinstance(model.network, Siren) else "ReLU network"
        assert tooltip == f"{BASE_WORDS[field.base_encoding]}, {MASK_WORDS[field.control]}, {network}", name


def test_devices_are_the_library_list_and_auto_picks_as_the_tooltip_says(monkeypatch):
    assert tuple(name for name, _, _ in js.DEVICES) == trainer.DEVICES
    assert dict((n, t) for n, _, t in js.DEVICES)["auto"] == "The first available of CUDA, Apple Metal and the CPU"
    for cuda, mps, expected in [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda mps=mps: mps)
        assert trainer.choose_device("auto").type == expected
    assert all(not tooltip for name, _, tooltip in js.DEVICES if name != "auto")


def test_defaults_are_the_library_defaults():
    assert js.DEFAULT_PRESET == inspect.signature(occupancy_preset).parameters["name"].default
    assert js.DEFAULT_ENCODING == FieldConfig().encoding == OccupancyConfig().field.encoding
    assert js.DEFAULT_DEVICE == inspect.signature(trainer.choose_device).parameters["name"].default
    assert js.DEFAULT_DEVICE == OccupancyConfig().device
    assert js.DEFAULT_PREVIEW_EVERY_S == FitSurfaceSettings().preview_every_s
    assert js.RESOLUTION_DEFAULT == occupancy_preset(js.DEFAULT_PRESET).resolution  # Fit Selected = sape-geom fit
    for resolution in (js.RESOLUTION_MIN, js.RESOLUTION_DEFAULT, js.RESOLUTION_MAX):
        OccupancyConfig(resolution=resolution)  # raises ConfigError outside the accepted range


@pytest.mark.parametrize("budget", ["PRESET", "STEPS", "TIME"])
@pytest.mark.parametrize("preset", [name for name, _, _ in js.PRESETS])
def test_panel_settings_with_the_extra_settings_example_pass_the_worker_parsing(budget, preset):
    settings = js.fit_settings(
        preset=preset,
        encoding="ff",
        device="cpu",
        budget=budget,
        steps=300,
        time_budget=20.0,
        resolution=js.RESOLUTION_DEFAULT,
        preview_every_s=js.DEFAULT_PREVIEW_EVERY_S,
        extra=js.EXTRA_SETTINGS_EXAMPLE,
    )
    config = parse_settings(FitSurfaceSettings, "fit_surface", settings).occupancy_config()
    for key, value in json.loads(js.EXTRA_SETTINGS_EXAMPLE)["config"].items():  # what the example sets
        assert functools.reduce(getattr, key.split("."), config) == value
    assert (config.field.encoding, config.device) == ("ff", "cpu")
    assert config.steps == {"PRESET": PRESETS[preset].steps, "STEPS": 300, "TIME": None}[budget]


def test_protocol_version_is_the_workers():
    from sape_geom.app.worker import PROTOCOL_VERSION

    assert js.PROTOCOL_VERSION == PROTOCOL_VERSION


def test_set_up_requirements_are_the_librarys_dependencies_and_the_makefile_torch_pin():
    import re
    import tomllib

    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    torch_spec = [Requirement(d) for d in deps if Requirement(d).name == "torch"]
    assert tuple(d for d in deps if Requirement(d).name != "torch") == js.WORKER_REQUIREMENTS
    pinned = Requirement(js.TORCH_REQUIREMENT)
    assert pinned.name == "torch" and len(torch_spec) == 1
    version = next(iter(pinned.specifier)).version
    assert torch_spec[0].specifier.contains(version)
    assert re.findall(r"pip install --quiet (torch==\S+)", (ROOT / "Makefile").read_text()) == [js.TORCH_REQUIREMENT]


def test_voxel_size_is_the_extraction_spacing_in_the_input_frame():
    import numpy as np

    from sape_geom.mesh.io import UNIT_RADIUS, normalization_for

    assert js.UNIT_RADIUS == UNIT_RADIUS
    vertices = np.random.default_rng(0).normal(size=(500, 3)) * [3.0, 1.0, 0.5] + [10.0, -2.0, 4.0]
    norm = normalization_for(vertices)
    center = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
    radius = float(np.linalg.norm(vertices - center, axis=1).max())
    for resolution in (16, 128, 1024):
        spacing_unit = 2.0 / (resolution - 1)  # grid of `resolution` points spanning [-1, 1], ends included
        assert js.voxel_size(radius, resolution) == pytest.approx(spacing_unit / norm.scale)


def test_keep_largest_reaches_the_worker_settings():
    settings = js.fit_settings(
        preset="fast",
        encoding="sape",
        device="auto",
        budget="PRESET",
        steps=1,
        time_budget=1.0,
        resolution=64,
        preview_every_s=0.0,
        extra="",
        keep_largest=True,
    )
    assert parse_settings(FitSurfaceSettings, "fit_surface", settings).keep_largest is True


def test_skip_smoothing_and_skip_snapping_reach_the_fit_config():
    common = dict(
        preset="fast",
        encoding="sape",
        device="auto",
        budget="PRESET",
        steps=1,
        time_budget=1.0,
        resolution=64,
        preview_every_s=0.0,
        extra="",
    )
    smoothed = parse_settings(FitSurfaceSettings, "fit_surface", js.fit_settings(**common))
    raw = parse_settings(FitSurfaceSettings, "fit_surface", js.fit_settings(**common, skip_smoothing=True))
    assert smoothed.occupancy_config().smooth_surface and not raw.occupancy_config().smooth_surface
    assert smoothed.occupancy_config().snap_to_input and raw.occupancy_config().snap_to_input
    unsnapped = parse_settings(FitSurfaceSettings, "fit_surface", js.fit_settings(**common, skip_snapping=True))
    assert not unsnapped.occupancy_config().snap_to_input and unsnapped.occupancy_config().smooth_surface


def test_precisions_are_the_library_list_and_reach_the_fit_config(monkeypatch):
    from sape_geom.config import PRECISIONS
    from sape_geom.nn import precision
    from sape_geom.tasks.occupancy import occupancy_preset

    assert tuple(name for name, _, _ in js.PRECISIONS) == PRECISIONS
    assert occupancy_preset(js.DEFAULT_PRESET).field.precision == js.DEFAULT_PRECISION
    assert occupancy_preset("paper").field.precision == "float32"  # as the Auto tooltip says
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    assert precision.resolve_precision("auto", torch.device("cpu")) == "bfloat16"
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    assert precision.resolve_precision("auto", torch.device("cpu")) == "float32"
    common = dict(
        preset="paper",
        encoding="sape",
        device="auto",
        budget="PRESET",
        steps=1,
        time_budget=1.0,
        resolution=64,
        preview_every_s=0.0,
        extra="",
    )
    for chosen, expected in [("auto", "float32"), ("bfloat16", "bfloat16"), ("float16", "float16")]:
        settings = parse_settings(FitSurfaceSettings, "fit_surface", js.fit_settings(**common, precision=chosen))
        assert settings.occupancy_config().field.precision == expected


def test_deform_extra_settings_example_passes_the_worker_parsing():
    from sape_geom.app.worker import DeformSettings

    settings = js.merge_extra({"steps": 10}, js.DEFORM_EXTRA_SETTINGS_EXAMPLE)
    config = parse_settings(DeformSettings, "deform", settings).deform_config()
    assert config.points == json.loads(js.DEFORM_EXTRA_SETTINGS_EXAMPLE)["config"]["points"] and config.steps == 10


def test_expected_time_scales_the_last_fit_and_its_file_is_written_whole(tmp_path):
    estimate = load_addon_module("estimate")
    metrics = {"steps": 1000, "labels_s": 4.0, "train_s": 60.0, "extract_s": 13.0, "device": "cpu", "iou": 1}
    record = estimate.record_from_metrics(metrics, 256)
    assert estimate.expected_seconds(record, 1000, None, 256) == pytest.approx(77.0)
    assert estimate.expected_seconds(record, 2000, None, 128) == pytest.approx(4 + 120 + 13 / 4)
    assert estimate.expected_seconds(record, 1000, 30.0, 256) == pytest.approx(4 + 30 + 13)  # a time budget
    assert estimate.record_from_metrics({"steps": 10, "train_s": 1.0}, 256) is None  # an older worker's
    assert estimate.record_from_metrics({**metrics, "steps": 0}, 256) is None

    assert estimate.load(tmp_path) == {}
    estimate.remember(tmp_path, "fast", record)
    estimate.remember(tmp_path, "quality", {**record, "seconds_per_step": 1.0})
    assert estimate.load(tmp_path)["fast"] == record and estimate.load(tmp_path)["quality"]["seconds_per_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [estimate.FILE_NAME]  # no temporary file left
    (tmp_path / estimate.FILE_NAME).write_text(json.dumps({"fast": record, "quality": {"labels_s": 1}}))
    assert list(estimate.load(tmp_path)) == ["fast"]  # a record without its rates is left out
    (tmp_path / estimate.FILE_NAME).write_text("{not json")
    assert estimate.load(tmp_path) == {}
