"""Checkpoints carry a format and a version: versions 1 to 3 load, any other is refused in one line."""

import numpy as np
import pytest
import torch

from sape_geom.app.cli import main
from sape_geom.errors import InputError
from sape_geom.mesh.io import Normalization
from sape_geom.tasks.occupancy import OccupancyFit, occupancy_preset
from sape_geom.tasks.occupancy.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, READABLE_VERSIONS
from sape_geom.tasks.occupancy.config import build_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    config = occupancy_preset("fast", device="cpu", **{"field.hidden_width": 16, "field.hidden_layers": 1})
    surface = (np.eye(3), np.array([[0, 1, 2]]))  # a solid's outer surface to snap onto (unit frame)
    fit = OccupancyFit(
        build_model(config, 10), Normalization(np.array([1.0, 2.0, 3.0]), 0.5), config, reference=surface
    )
    return fit.save(tmp_path_factory.mktemp("ckpt") / "field.ckpt")


def rewritten(saved, tmp_path, **changes):
    payload = torch.load(saved, weights_only=True)
    payload.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del payload[key]
    path = tmp_path / "changed.ckpt"
    torch.save(payload, path)
    return path


def test_the_current_version_is_written_and_read_back(saved):
    assert (
        torch.load(saved, weights_only=True)["version"] == CHECKPOINT_VERSION
        and CHECKPOINT_VERSION in READABLE_VERSIONS
    )
    assert OccupancyFit.load(saved, device="cpu").normalization.scale == 0.5


def test_version_1_without_a_support_grid_still_loads(saved, tmp_path):
    loaded = OccupancyFit.load(
        rewritten(saved, tmp_path, version=1, support=None, support_resolution=None), device="cpu"
    )
    assert loaded.support is None


def test_version_2_without_a_surface_to_snap_onto_still_loads(saved, tmp_path):
    vertices, faces = OccupancyFit.load(saved, device="cpu").reference
    assert np.array_equal(vertices, np.eye(3)) and np.array_equal(faces, [[0, 1, 2]])
    loaded = OccupancyFit.load(
        rewritten(saved, tmp_path, version=2, reference_vertices=None, reference_faces=None), device="cpu"
    )
    assert loaded.reference is None


@pytest.mark.parametrize("version", [0, 4, 99, "2", None])
def test_another_version_is_refused_in_one_line(saved, tmp_path, capsys, version):
    path = rewritten(saved, tmp_path, version=version)
    with pytest.raises(InputError, match=f"is a version {version} checkpoint; this sape-geom reads versions 1, 2, 3"):
        OccupancyFit.load(path, device="cpu")
    assert main(["extract", str(path), "-o", str(tmp_path / "out.ply")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refit, or use the sape-geom that wrote it" in err[0]
    assert not (tmp_path / "out.ply").exists()


def test_another_format_is_refused(saved, tmp_path):
    with pytest.raises(InputError, match="not a sape-geom occupancy checkpoint"):
        OccupancyFit.load(rewritten(saved, tmp_path, format="something-else"), device="cpu")
    assert CHECKPOINT_FORMAT == "sape-geom-occupancy"
