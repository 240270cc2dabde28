"""Closed 2D curves (numpy and Pillow only, no torch).

``contour`` holds the data types, frames and basic geometry; ``mask`` reads silhouette images and traces
their contours; ``io`` and ``svg`` read and write curve files; ``metrics`` compares a curve with its target.
"""

from .contour import (
    DEFAULT_MIN_LOOP_AREA,
    Contour,
    ContourSet,
    CurveNormalization,
    as_points,
    circle,
    clean_polyline,
    curve_length,
    curve_parameter,
    nesting_holes,
    point_in_polygon,
    resample_closed,
    signed_area,
)
from .io import (
    IMAGE_SUFFIXES,
    POLYLINE_SUFFIXES,
    load_contour,
    load_contours,
    save_curve_npz,
    save_curve_obj,
    save_curve_svg,
)
from .mask import (
    DEFAULT_IMAGE_THRESHOLD,
    MIN_IMAGE_LOOP_AREA,
    contour_from_mask,
    image_mask,
    largest_outer_loop,
    loops_from_mask,
    trace_mask,
)
from .metrics import (
    count_crossings,
    count_self_intersections,
    curve_metrics,
    distances_to_polyline,
    nearest_distances,
    polygon_iou,
    rasterize_polygon,
    shape_iou,
    shape_mask,
    shape_metrics,
)
from .svg import parse_svg_path

__all__ = [
    "DEFAULT_IMAGE_THRESHOLD",
    "DEFAULT_MIN_LOOP_AREA",
    "IMAGE_SUFFIXES",
    "MIN_IMAGE_LOOP_AREA",
    "POLYLINE_SUFFIXES",
    "Contour",
    "ContourSet",
    "CurveNormalization",
    "as_points",
    "circle",
    "clean_polyline",
    "contour_from_mask",
    "count_crossings",
    "count_self_intersections",
    "curve_length",
    "curve_metrics",
    "curve_parameter",
    "distances_to_polyline",
    "image_mask",
    "largest_outer_loop",
    "load_contour",
    "load_contours",
    "loops_from_mask",
    "nearest_distances",
    "nesting_holes",
    "parse_svg_path",
    "point_in_polygon",
    "polygon_iou",
    "rasterize_polygon",
    "resample_closed",
    "save_curve_npz",
    "save_curve_obj",
    "save_curve_svg",
    "shape_iou",
    "shape_mask",
    "shape_metrics",
    "signed_area",
    "trace_mask",
]
