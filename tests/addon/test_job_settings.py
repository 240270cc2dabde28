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

from sape_geom.app.worker_tasks import FitSurfaceSettings, parse_settings
from sape_geom.config import ENCODINGS, FieldConfig, ProgressConfig
from sape_geom.nn import trainer
from sape_geom.nn.model import EncodedField, Siren
from sape_geom.tasks.occupancy import PRESETS, OccupancyConfig, occupancy_preset

ROOT = Path(__file__).resolve().parents[2]


def load_job_settings():
    path = ROOT / "blender_addon" / "sape_geom_blender" / "job_settings.py"
    spec = importlib.util.spec_from_file_location("addon_job_settings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


js = load_job_settings()


def test_presets_name_the_library_presets_and_state_their_steps_and_grid():
    assert {name for name, _, _ in js.PRESETS} == set(PRESETS)
    for name, label, tooltip in js.PRESETS:
        config = PRESETS[name]
        facts = [f"{config.steps} steps", f"{config.progress.grid_resolution}³ SAPE grid"]
        if config.progress.num_blocks is not None:
            facts.append(f"{config.progress.num_blocks} frequency blocks")
        assert (label, tooltip) == (name.capitalize(), ", ".join(facts))


#: The words the encoding tooltips use for what the library builds.
BASE_WORDS = {"ff": "Fourier features", "pe": "Positional encoding", "rbf": "Radial basis functions",
              "prbf": "Periodic radial basis functions", "none": "Raw coordinates"}
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
    for resolution in (js.RESOLUTION_MIN, js.RESOLUTION_DEFAULT, js.RESOLUTION_MAX):
        OccupancyConfig(resolution=resolution)  # raises ConfigError outside the accepted range


@pytest.mark.parametrize("budget", ["PRESET", "STEPS", "TIME"])
@pytest.mark.parametrize("preset", [name for name, _, _ in js.PRESETS])
def test_panel_settings_with_the_extra_settings_example_pass_the_worker_parsing(budget, preset):
    settings = js.fit_settings(
        preset=preset, encoding="ff", device="cpu", budget=budget, steps=300, time_budget=20.0,
        resolution=js.RESOLUTION_DEFAULT, preview_every_s=js.DEFAULT_PREVIEW_EVERY_S, extra=js.EXTRA_SETTINGS_EXAMPLE,
    )
    config = parse_settings(FitSurfaceSettings, "fit_surface", settings).occupancy_config()
    for key, value in json.loads(js.EXTRA_SETTINGS_EXAMPLE)["config"].items():  # what the example sets
        assert functools.reduce(getattr, key.split("."), config) == value
    assert (config.field.encoding, config.device) == ("ff", "cpu")
    assert config.steps == {"PRESET": PRESETS[preset].steps, "STEPS": 300, "TIME": None}[budget]
