"""3D occupancy fitting of a triangle mesh and surface extraction (docs/method.md §6.3).

``config`` holds the settings and presets, ``fit`` the training, ``surface`` the extraction and
``checkpoint`` the file format.
"""

from .checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, load_checkpoint, save_checkpoint
from .config import PRESETS, OccupancyConfig, build_model, occupancy_preset
from .fit import OccupancyFit, fit_occupancy
from .surface import extract_mesh, outside_probability, preview_mesh

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "PRESETS",
    "OccupancyConfig",
    "OccupancyFit",
    "build_model",
    "extract_mesh",
    "fit_occupancy",
    "load_checkpoint",
    "occupancy_preset",
    "outside_probability",
    "preview_mesh",
    "save_checkpoint",
]
