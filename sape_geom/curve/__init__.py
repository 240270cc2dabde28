"""Closed 2D curves (numpy and Pillow only, no torch).

``contour`` holds the data types, frames and basic geometry; ``mask`` reads silhouette images and traces
their contours; ``io`` and ``svg`` read and write curve files; ``metrics`` compares a curve with its target.
"""

from .contour import (
    Contour,
    CurveNormalization,
    as_points,
    circle,
    clean_polyline,
    curve_length,
    curve_parameter,
    resample_closed,
    signed_area,
)
from .io import IMAGE_SUFFIXES, POLYLINE_SUFFIXES, load_contour, save_curve_npz, save_curve_obj, save_curve_svg
from .mask import DEFAULT_IMAGE_THRESHOLD, contour_from_mask, image_mask, largest_outer_loop, trace_mask
from .metrics import count_self_intersections, curve_metrics, nearest_distances, polygon_iou, rasterize_polygon
from .svg import parse_svg_path

__all__ = [
    "Contour",
    "CurveNormalization",
    "DEFAULT_IMAGE_THRESHOLD",
    "IMAGE_SUFFIXES",
    "POLYLINE_SUFFIXES",
    "as_points",
    "circle",
    "clean_polyline",
    "contour_from_mask",
    "count_self_intersections",
    "curve_length",
    "curve_metrics",
    "curve_parameter",
    "image_mask",
    "largest_outer_loop",
    "load_contour",
    "nearest_distances",
    "parse_svg_path",
    "polygon_iou",
    "rasterize_polygon",
    "resample_closed",
    "save_curve_npz",
    "save_curve_obj",
    "save_curve_svg",
    "signed_area",
    "trace_mask",
]
