"""Occupancy checkpoints: one file with config, weights, SAPE grid state and normalisation."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from ... import config as cfg
from ...errors import InputError
from ...fileio import atomic_write
from ...mesh.io import Normalization
from ...nn.model import EncodedField
from ...nn.trainer import choose_device
from .config import OccupancyConfig, build_model

CHECKPOINT_FORMAT = "sape-geom-occupancy"
CHECKPOINT_VERSION = 1



def save_checkpoint(fit: Any, path: str | Path) -> Path:
    """Write ``fit`` (an :class:`OccupancyFit`) to ``path`` atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": cfg.to_dict(fit.config),
        "normalization": fit.normalization.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in fit.model.state_dict().items()},
        "timings": fit.timings,
    }
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(
    path: str | Path, device: str | None = None
) -> tuple[EncodedField, Normalization, OccupancyConfig, dict[str, float]]:
    """Read a checkpoint: the model (on its device, in eval mode), normalisation, config and timings."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a file that is not a checkpoint
        raise InputError(f"{path} is not a sape-geom checkpoint ({error.__class__.__name__})") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not a sape-geom occupancy checkpoint")
    config = cfg.from_dict(OccupancyConfig, payload["config"])
    if device is not None:
        config = dataclasses.replace(config, device=device)
    model = build_model(config, total_steps=config.steps or 1)
    model.load_state_dict(payload["state_dict"])
    model.to(choose_device(config.device)).eval()
    return model, Normalization.from_dict(payload["normalization"]), config, dict(payload.get("timings", {}))
