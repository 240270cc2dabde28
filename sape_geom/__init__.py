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
    "Cancelled": "errors",
    # building blocks
    "build_encoding": "nn.encodings",
    "GlobalProgression": "nn.progressive",
    "SpatialProgression": "nn.progressive",
    "block_partition": "nn.progressive",
    "EncodedField": "nn.model",
    "MLP": "nn.model",
    "Siren": "nn.model",
    "train": "nn.trainer",
    "TrainCallbacks": "nn.trainer",
    "ProgressInfo": "nn.trainer",
    "choose_device": "nn.trainer",
    # tasks
    "fit_signal": "tasks.regression",
    "fit_image": "tasks.regression",
    "SignalFitConfig": "tasks.regression",
    "ImageFitConfig": "tasks.regression",
    "fit_occupancy": "tasks.occupancy",
    "occupancy_preset": "tasks.occupancy",
    "OccupancyConfig": "tasks.occupancy",
    "OccupancyFit": "tasks.occupancy",
    "deform_curve": "tasks.silhouette",
    "DeformConfig": "tasks.silhouette",
    "deform_mesh": "tasks.mesh_deform",
    "MeshDeformConfig": "tasks.mesh_deform",
    # geometry
    "load_mesh": "mesh.io",
    "save_mesh": "mesh.io",
    "Normalization": "mesh.io",
    "extract_surface": "mesh.extract",
    "smooth_surface": "mesh.smoothing",
    "mesh_metrics": "mesh.metrics",
    "load_contour": "curve",
    "curve_metrics": "curve",
    "render_mesh_png": "viz.render",
    "run_batch": "app.batch",
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
