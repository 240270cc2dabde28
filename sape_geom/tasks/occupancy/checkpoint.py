"""Field checkpoints: one file with config, weights, SAPE grid state, normalisation and support grid.

Version 2 adds the support grid (voxels near the input surface, for dropping unsupported pieces on
re-extraction) and how the input was read; version 3 a solid's outer surface (float32 vertices, int32
faces: 24 bytes a face or so), so that re-extraction snaps onto it as the fit did. Versions 1 and 2
still load (without a support grid, without a surface to snap onto).
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import config as cfg
from ...errors import InputError
from ...fileio import atomic_write
from ...mesh.io import Normalization
from ...mesh.support import SupportGrid
from ...nn.trainer import choose_device
from .config import OccupancyConfig, build_model

CHECKPOINT_FORMAT = "sape-geom-occupancy"
CHECKPOINT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)


def save_checkpoint(fit: Any, path: str | Path) -> Path:
    """Write ``fit`` (an :class:`OccupancyFit`) to ``path`` atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": cfg.to_dict(fit.config),
        "normalization": fit.normalization.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in fit.model.state_dict().items()},
        "timings": fit.timings,
        "reading": dict(fit.reading),
    }
    if fit.support is not None:
        payload["support"] = torch.from_numpy(fit.support.to_array())
        payload["support_resolution"] = fit.support.resolution
    if fit.reference is not None:
        vertices, faces = fit.reference
        payload["reference_vertices"] = torch.from_numpy(np.asarray(vertices, dtype=np.float32))
        payload["reference_faces"] = torch.from_numpy(np.asarray(faces, dtype=np.int32))
    buffer = io.BytesIO()  # torch reports a failed file write as a RuntimeError; a plain write is an OSError
    torch.save(payload, buffer)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))


def load_checkpoint(path: str | Path, device: str | None = None) -> dict[str, Any]:
    """Read a checkpoint into the fields of an ``OccupancyFit``: ``model`` (on its device, in eval mode),
    ``normalization``, ``config``, ``timings``, ``support`` (None in version 1), ``reading`` and
    ``reference`` (None before version 3)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a file that is not a checkpoint
        raise InputError(f"{path} is not a sape-geom checkpoint ({error.__class__.__name__})") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not a sape-geom occupancy checkpoint")
    version = payload.get("version")
    if version not in READABLE_VERSIONS:
        raise InputError(
            f"{path} is a version {version} checkpoint; this sape-geom reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))} (refit, or use the sape-geom that wrote it)"
        )
    config = cfg.from_dict(OccupancyConfig, payload["config"])
    if device is not None:
        config = dataclasses.replace(config, device=device)
    model = build_model(config, total_steps=config.steps or 1)
    model.load_state_dict(payload["state_dict"])
    model.to(choose_device(config.device)).eval()
    support = None
    if "support" in payload:
        support = SupportGrid.from_array(np.asarray(payload["support"]), int(payload["support_resolution"]))
    reference = None
    if "reference_vertices" in payload:
        reference = (
            np.asarray(payload["reference_vertices"], dtype=np.float64),
            np.asarray(payload["reference_faces"], dtype=np.int64),
        )
    return {
        "model": model,
        "normalization": Normalization.from_dict(payload["normalization"]),
        "config": config,
        "timings": dict(payload.get("timings", {})),
        "support": support,
        "reading": dict(payload.get("reading", {})),
        "reference": reference,
    }
