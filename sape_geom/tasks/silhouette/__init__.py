"""2-D silhouette deformation (docs/method.md §6.4): ``config`` holds the settings, ``fit`` the
optimisation, ``outputs`` the writers."""

from .config import DEFAULT_LR, DeformConfig
from .fit import DeformResult, deform_curve, prepare_source, prepare_target
from .outputs import save_outputs

__all__ = [
    "DEFAULT_LR",
    "DeformConfig",
    "DeformResult",
    "deform_curve",
    "prepare_target",
    "prepare_source",
    "save_outputs",
]
