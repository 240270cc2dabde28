"""The compiled training step: where ``auto`` compiles, the fallback when compiling fails, what uses it."""

import logging
import shutil

import pytest
import torch

from sape_geom.config import COMPILE_MODES, FieldConfig, ProgressConfig, from_dict, to_dict
from sape_geom.errors import ConfigError
from sape_geom.nn import compiled as compiled_module
from sape_geom.nn.model import EncodedField
from sape_geom.nn.trainer import train
from sape_geom.tasks.occupancy import OccupancyConfig, occupancy_preset

CPU = torch.device("cpu")


def test_auto_compiles_on_cuda_only():
    assert compiled_module.resolve_compile("auto", torch.device("cuda", 0))
    assert not compiled_module.resolve_compile("auto", CPU)
    assert not compiled_module.resolve_compile("auto", torch.device("mps"))
    assert compiled_module.resolve_compile("on", CPU) and not compiled_module.resolve_compile("off", CPU)
    with pytest.raises(ValueError, match="compile mode"):
        compiled_module.resolve_compile("always", CPU)
    with pytest.raises(ConfigError, match="compile"):
        FieldConfig(compile="always")
    assert COMPILE_MODES == ("auto", "on", "off")
    assert FieldConfig().compile == "off"  # the method's eager PyTorch
    assert occupancy_preset("fast").field.compile == "auto"
    asked = occupancy_preset("fast", compile="on")
    assert asked.field.compile == "on"
    assert from_dict(OccupancyConfig, to_dict(asked)).field.compile == "on"  # what a checkpoint stores


def _fit(compile_mode: str, steps: int = 40) -> EncodedField:
    """A small SAPE field regressing a sphere's distance (a few blocks open, so the open width changes)."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    config = FieldConfig(num_frequencies=32, hidden_width=32, hidden_layers=2, sigma=5.0, compile=compile_mode)
    progress = ProgressConfig(epsilon=1e-6, grid_resolution=8, num_blocks=4, min_block_period=5)
    model = EncodedField(3, 1, config, progress, steps, generator)
    points = torch.rand(512, 3, generator=generator) * 2 - 1
    target = points.norm(dim=1, keepdim=True) - 0.5

    def loss_fn(prediction, target, _x):
        per_sample = (prediction - target).abs().squeeze(1)
        return per_sample.mean(), per_sample

    train(model, lambda _step: (points, target), loss_fn, lr=1e-3, steps=steps)
    return model


def test_a_failing_compiler_leaves_one_log_line_and_the_eager_run_unchanged(monkeypatch, caplog):
    def no_toolchain(_network, mode="default", dynamic=None):
        def run(*_args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore detail")

        return run

    eager = _fit("off")
    monkeypatch.setattr(compiled_module.torch, "compile", no_toolchain)
    with caplog.at_level(logging.WARNING, logger="sape_geom.nn.compiled"):
        fallback = _fit("on")
    assert not fallback.compiled and not eager.compiled
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1 and "No working C++ compiler found" in lines[0] and "uncompiled" in lines[0]
    for a, b in zip(eager.state_dict().values(), fallback.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # the failed warm-up left no gradient behind


def test_queries_never_run_the_compiled_network(monkeypatch):
    calls = []

    def counting(network, mode="default", dynamic=None):
        def run(*args):
            calls.append(args[0].shape[0])
            return network(*args)

        return run

    monkeypatch.setattr(compiled_module.torch, "compile", counting)
    model = _fit("on", steps=5)
    assert model.compiled and calls == [512] * 6  # the warm-up and five steps
    model.evaluate(torch.zeros(100, 3))
    assert calls == [512] * 6


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler")
def test_a_compiled_run_trains_like_the_eager_one():
    eager, compiled = _fit("off"), _fit("on")
    assert compiled.compiled
    x = torch.rand(256, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
    target = x.norm(dim=1, keepdim=True) - 0.5
    error_eager = (eager.evaluate(x) - target).abs().mean()
    error_compiled = (compiled.evaluate(x) - target).abs().mean()
    assert error_compiled < 1.1 * error_eager + 1e-3  # the same optimisation up to float rounding
    assert eager.spatial is not None and compiled.spatial is not None
    assert compiled.spatial.open_width() == eager.spatial.open_width()
