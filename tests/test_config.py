"""Configs: frozen, validated, JSON round-trip, unknown keys rejected (docs/method.md B3-B6 not copied)."""

import dataclasses
import json

import pytest

from sape_geom import config as cfg
from sape_geom.config import FieldConfig, ProgressConfig
from sape_geom.errors import ConfigError
from sape_geom.tasks.regression import ImageFitConfig, SignalFitConfig


def test_task_defaults_follow_the_spec():
    image = ImageFitConfig()
    assert (image.field.sigma, image.field.hidden_width, image.field.hidden_layers) == (20.0, 256, 3)
    assert (image.progress.epsilon, image.progress.grid_resolution, image.steps, image.lr) == (1e-3, 128, 5000, 1e-3)
    assert image.sample_rate == 0.25
    signal = SignalFitConfig()
    assert (signal.field.sigma, signal.field.hidden_width, signal.field.hidden_layers) == (5.0, 32, 2)
    assert (signal.progress.epsilon, signal.progress.grid_resolution, signal.steps) == (1e-5, 12, 20000)
    assert signal.learning_rate == 1e-5
    assert cfg.replace(signal, **{"field.encoding": "none"}).learning_rate == 1e-4


def test_configs_are_frozen_and_not_shared():
    config = ImageFitConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 3  # type: ignore[misc]
    changed = cfg.replace(config, **{"field.sigma": 5.0, "steps": 10})
    assert config.field.sigma == 20.0 and changed.field.sigma == 5.0 and changed.steps == 10


def test_round_trip_and_unknown_keys():
    config = cfg.replace(ImageFitConfig(), **{"field.encoding": "progressive", "progress.epsilon": 0.01})
    data = json.loads(cfg.dumps(config))
    assert cfg.from_dict(ImageFitConfig, data) == config
    data["field"]["num_freqs"] = 256  # the reference code's silently ignored keyword (docs/method.md B5)
    with pytest.raises(ConfigError, match="num_freqs"):
        cfg.from_dict(ImageFitConfig, data)
    with pytest.raises(ConfigError, match="stepz"):
        cfg.replace(config, stepz=3)


def test_invalid_values():
    with pytest.raises(ConfigError):
        ProgressConfig(grid_resolution=2)
    with pytest.raises(ConfigError):
        ProgressConfig(blur_kernel=4)
    with pytest.raises(ConfigError):
        ImageFitConfig(sample_rate=1.5)
    with pytest.raises(ConfigError):
        SignalFitConfig(steps=0)
    with pytest.raises(ConfigError):
        FieldConfig(base="siren")
