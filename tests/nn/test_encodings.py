"""Encodings: widths, channel order and the reference sampling conventions (docs/method.md §2)."""

import math

import pytest
import torch

from sape_geom.config import FieldConfig
from sape_geom.errors import ConfigError
from sape_geom.nn.encodings import (
    FourierFeatures,
    IdentityPrefix,
    PeriodicRBFEncoding,
    PositionalEncoding,
    RBFEncoding,
    build_encoding,
)


def test_fourier_features_are_interleaved_sin_cos_with_sorted_norms():
    encoding = FourierFeatures(2, num_frequencies=64, sigma=20.0, generator=torch.Generator().manual_seed(0))
    x = torch.rand(5, 2) * 2 - 1
    features = encoding(x)
    assert features.shape == (5, 128)
    angle = 2 * math.pi * x @ encoding.frequencies[3]
    torch.testing.assert_close(features[:, 6], angle.sin())
    torch.testing.assert_close(features[:, 7], angle.cos())
    norms = encoding.frequencies.norm(dim=1)
    assert torch.all(norms[1:] >= norms[:-1])


def test_reference_sampling_has_half_normal_norms_in_any_dimension():
    for dim in (2, 3):
        encoding = FourierFeatures(dim, 4096, sigma=20.0, generator=torch.Generator().manual_seed(1))
        mean_norm = encoding.frequencies.norm(dim=1).mean().item()
        assert mean_norm == pytest.approx(20.0 * math.sqrt(2 / math.pi), rel=0.05)  # 0.80 sigma
    tancik = FourierFeatures(3, 4096, 20.0, sampling="tancik", generator=torch.Generator().manual_seed(1))
    assert tancik.frequencies.norm(dim=1).mean().item() == pytest.approx(20.0 * 1.596, rel=0.05)


def test_positional_encoding_layout():
    encoding = PositionalEncoding(2, octaves=3)
    x = torch.tensor([[0.25, -0.5]])
    features = encoding(x)[0]
    assert features.shape == (12,)
    # octave 1: cos(2 pi x1), cos(2 pi x2), sin(2 pi x1), sin(2 pi x2)
    expected = torch.tensor(
        [math.cos(2 * math.pi * 0.25), math.cos(-math.pi), math.sin(math.pi / 2), math.sin(-math.pi)]
    )
    torch.testing.assert_close(features[4:8], expected, atol=1e-6, rtol=0)


def test_rbf_and_periodic_rbf_ranges():
    x = torch.rand(100, 3) * 2 - 1
    rbf = RBFEncoding(3, 16, 5.0, generator=torch.Generator().manual_seed(0))
    values = rbf(x)
    assert values.shape == (100, 32) and values.min() >= 0 and values.max() <= 1
    assert torch.all(rbf.inverse_widths[1:] >= rbf.inverse_widths[:-1])
    periodic = PeriodicRBFEncoding(3, 16, 5.0, generator=torch.Generator().manual_seed(0))
    values = periodic(x)
    assert values.shape == (100, 32) and values.min() >= -1 and values.max() <= 1


@pytest.mark.parametrize(
    "encoding, dim, width",
    [("sape", 3, 515), ("progressive", 2, 514), ("ff", 3, 512), ("none", 3, 3), ("pe", 3, 48), ("siren", 2, 2)],
)
def test_identity_prefix_only_under_progression(encoding, dim, width):
    built = build_encoding(FieldConfig(encoding=encoding), dim, torch.Generator().manual_seed(0))
    assert built.out_dim == width
    assert isinstance(built, IdentityPrefix) == (encoding in ("sape", "progressive"))
    x = torch.rand(4, dim)
    if isinstance(built, IdentityPrefix):
        torch.testing.assert_close(built(x)[:, :dim], x)


def test_bad_config_values_are_errors():
    with pytest.raises(ConfigError, match="unknown encoding"):
        FieldConfig(encoding="fourier")
    with pytest.raises(ConfigError, match="sigma"):
        FieldConfig(sigma=0)


def test_training_steps_on_the_same_points_reuse_their_features_and_stay_exact():
    from sape_geom.config import ProgressConfig
    from sape_geom.nn.model import EncodedField

    torch.manual_seed(0)
    config = FieldConfig(num_frequencies=16, hidden_width=16, hidden_layers=2, sigma=5.0)
    model = EncodedField(1, 2, config, ProgressConfig(grid_resolution=8), 100).train()
    tau = torch.linspace(0, 1, 50)[:, None]
    calls = []
    encode = model.encoding.forward
    model.encoding.forward = lambda x: calls.append(len(x)) or encode(x)
    with torch.no_grad():
        outputs = [model(tau) for _ in range(4)]  # the mask multiplies features in place: the cache must not change
        assert calls == [50, 50]  # seen once, then computed once more and kept
        fresh = model.eval()(tau)
        model.train()
        tau.mul_(0.5)  # the same tensor changed in place is encoded again
        changed = model(tau)
    assert all(torch.equal(output, fresh) for output in outputs)
    assert calls[-1] == 50 and len(calls) == 4 and not torch.equal(changed, fresh)


def test_the_prefix_written_in_one_buffer_equals_the_concatenation():
    config = FieldConfig(encoding="sape", num_frequencies=16)
    encoding = build_encoding(config, 3, torch.Generator().manual_seed(0))
    x = torch.rand(50, 3) * 2 - 1
    with torch.no_grad():
        written = encoding(x)  # the buffer path
    concatenated = encoding(x.clone().requires_grad_(True))  # the differentiable path concatenates
    assert written.is_contiguous()
    assert torch.equal(written, concatenated.detach())
