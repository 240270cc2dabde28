"""The network's precision: what ``auto`` picks (detector mocked), the autocast scope, checkpoints, CLI."""

import json

import numpy as np
import pytest
import torch

from sape_geom.app.cli import main
from sape_geom.config import PRECISIONS, FieldConfig, ProgressConfig
from sape_geom.errors import ConfigError
from sape_geom.mesh.io import Normalization
from sape_geom.mesh.shapes import sphere
from sape_geom.nn import precision
from sape_geom.nn.model import EncodedField
from sape_geom.tasks.occupancy import OccupancyFit, occupancy_preset
from sape_geom.tasks.occupancy.config import build_model

CPU = torch.device("cpu")


@pytest.fixture
def cpu_bf16(monkeypatch):
    """Make the detector see a CPU of a given kind: ``cpu_bf16(machine, avx512_bf16, amx, arm_bf16)``."""

    def set_cpu(machine: str, avx512_bf16: bool = False, amx: bool = False, arm_bf16: bool = False) -> None:
        monkeypatch.setattr(precision.platform, "machine", lambda: machine)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: arm_bf16, raising=False)
        precision.cpu_has_native_bf16.cache_clear()

    yield set_cpu
    precision.cpu_has_native_bf16.cache_clear()


@pytest.mark.parametrize(
    "cpu, expected",
    [
        (("x86_64",), "float32"),  # AVX2 only: bf16 would be emulated
        (("x86_64", True), "bfloat16"),  # AVX512-BF16
        (("AMD64", False, True), "bfloat16"),  # AMX (Windows names the machine AMD64)
        (("x86_64", False, False, True), "float32"),  # oneDNN's check says yes, but x86 without the instructions
        (("aarch64", False, False, True), "bfloat16"),  # ARM with BF16
        (("aarch64",), "float32"),
    ],
)
def test_auto_picks_bfloat16_only_where_the_cpu_computes_it_natively(cpu_bf16, cpu, expected):
    cpu_bf16(*cpu)
    assert precision.resolve_precision("auto", CPU) == expected
    assert precision.resolve_precision("float32", CPU) == "float32"
    assert precision.resolve_precision("bfloat16", CPU) == "bfloat16"  # asked for: given, even if slow


def test_auto_on_other_devices(monkeypatch):
    monkeypatch.setattr(precision, "_cuda_has_bf16", lambda index: index == 0)
    assert precision.resolve_precision("auto", torch.device("cuda", 0)) == "bfloat16"
    assert precision.resolve_precision("auto", torch.device("cuda", 1)) == "float32"
    assert precision.resolve_precision("auto", torch.device("mps")) == "float32"


def test_unknown_precision_is_a_config_error():
    assert PRECISIONS == ("auto", "float32", "bfloat16", "float16")
    with pytest.raises(ConfigError, match="unknown precision 'half'"):
        FieldConfig(precision="half")
    assert occupancy_preset("fast").field.precision == "auto" and occupancy_preset("paper").field.precision == "float32"
    assert occupancy_preset("paper", precision="bfloat16").field.precision == "bfloat16"


def _field(precision_name: str) -> EncodedField:
    config = FieldConfig(num_frequencies=32, hidden_width=32, hidden_layers=2, precision=precision_name)
    return EncodedField(3, 1, config, ProgressConfig(grid_resolution=4), 100, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name, dtype", [("bfloat16", torch.bfloat16), ("float16", torch.float16)])
def test_only_the_network_runs_in_the_low_precision(name, dtype):
    model = _field(name)
    seen = {}

    def record(name):
        def hook(_module, _inputs, output):
            seen[name] = output.dtype  # returns None: the output is left as it is

        return hook

    model.encoding.register_forward_hook(record("encoding"))
    model.network.net[1].register_forward_hook(record("first layer"))  # its ReLU: the layer may run as F.linear
    x = torch.rand(64, 3) * 2 - 1
    output = model(x)
    assert seen == {"encoding": torch.float32, "first layer": dtype}  # angles and sin/cos stay float32
    assert output.dtype == torch.float32
    loss = (output - 0.5).abs()
    assert loss.dtype == torch.float32  # so are the loss and the per-sample feedback
    loss.mean().backward()
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())  # and the optimiser's state
    reference = _field("float32")
    reference.load_state_dict(model.state_dict())
    assert reference(x).dtype == torch.float32
    assert torch.allclose(output, reference(x), atol=0.02)  # the same weights, low-precision products


def test_the_checkpoint_keeps_the_precision_asked_for(tmp_path, capsys):
    config = occupancy_preset(
        "fast", device="cpu", precision="bfloat16", **{"field.hidden_width": 16, "field.hidden_layers": 1}
    )
    fit = OccupancyFit(build_model(config, 10), Normalization(np.zeros(3), 1.0), config)
    path = fit.save(tmp_path / "field.ckpt")
    loaded = OccupancyFit.load(path, device="cpu")
    assert loaded.config.field.precision == "bfloat16" and loaded.model.precision == "bfloat16"
    loaded.model.set_precision("float32")
    assert loaded.model.precision == "float32"
    with pytest.raises(ValueError, match="unknown precision"):
        loaded.model.set_precision("int8")


def test_fit_reports_the_precision_it_resolved_to(tmp_path, capsys, cpu_bf16):
    cpu_bf16("x86_64")  # a CPU without native bf16: auto is float32
    mesh = tmp_path / "ball.ply"
    sphere(0.5).export(mesh)
    code = main(
        [
            "fit",
            str(mesh),
            "-o",
            str(tmp_path / "out.ply"),
            "--steps",
            "300",
            "--resolution",
            "32",
            "--device",
            "cpu",
            "--json",
            "--no-metrics",
            "--quiet",
            "--checkpoint",
            str(tmp_path / "ball.ckpt"),
        ]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["precision"] == "float32" and payload["compiled"] is False  # auto: eager on the CPU
    assert (
        main(
            [
                "extract",
                str(tmp_path / "ball.ckpt"),
                "-o",
                str(tmp_path / "b.ply"),
                "--resolution",
                "24",
                "--precision",
                "bfloat16",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["precision"] == "bfloat16"
