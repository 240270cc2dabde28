"""sape_geom: Spatially-Adaptive Progressive Encoding (SAPE) for neural shape fitting.

The public API, loaded lazily so that ``import sape_geom`` stays light (torch is imported on first use)::

    from sape_geom import fit_occupancy, occupancy_preset, load_mesh, save_mesh
    fit = fit_occupancy(load_mesh("bunny.obj"), occupancy_preset("fast"))
    save_mesh(fit.extract(resolution=256), "bunny_sape.ply")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    # configuration and errors
    "FieldConfig": "config",
    "ProgressConfig": "config",
    "ENCODINGS": "config",
    "SapeGeomError": "errors",
    "InputError": "errors",
    "ConfigError": "errors",
    "TrainingCancelled": "errors",
    # building blocks
    "build_encoding": "encodings",
    "GlobalProgression": "progressive",
    "SpatialProgression": "progressive",
    "block_partition": "progressive",
    "EncodedField": "model",
    "MLP": "model",
    "Siren": "model",
    "train": "trainer",
    "TrainCallbacks": "trainer",
    "ProgressInfo": "trainer",
    "choose_device": "trainer",
    # tasks
    "fit_signal": "regression",
    "fit_image": "regression",
    "SignalFitConfig": "regression",
    "ImageFitConfig": "regression",
    "fit_occupancy": "occupancy",
    "occupancy_preset": "occupancy",
    "OccupancyConfig": "occupancy",
    "OccupancyFit": "occupancy",
    "deform_curve": "silhouette",
    "DeformConfig": "silhouette",
    # geometry
    "load_mesh": "meshio",
    "save_mesh": "meshio",
    "Normalization": "meshio",
    "extract_surface": "extract",
    "mesh_metrics": "metrics",
    "load_contour": "curves",
    "curve_metrics": "curves",
    "render_mesh_png": "render",
    "run_batch": "batch",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'sape_geom' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
