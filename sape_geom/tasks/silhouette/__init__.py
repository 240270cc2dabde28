"""2-D silhouette deformation (docs/method.md §6.4): ``config`` holds the settings, ``fit`` the
optimisation of one loop, ``shape`` every loop of a silhouette with holes and parts, ``loss`` and
``distance`` the exact Chamfer terms (torch), ``outputs`` the writers."""

from .config import DEFAULT_LR, DeformConfig, paper_config
from .fit import DeformResult, deform_curve, prepare_source, prepare_target
from .outputs import as_shape_result, save_outputs
from .shape import ShapeResult, as_contour_set, deform_shape

__all__ = [
    "DEFAULT_LR",
    "DeformConfig",
    "DeformResult",
    "ShapeResult",
    "as_contour_set",
    "as_shape_result",
    "deform_curve",
    "deform_shape",
    "paper_config",
    "prepare_source",
    "prepare_target",
    "save_outputs",
]
