"""Text that fits where the sidebar draws it. Blender's labels neither wrap nor say when they are cut
('Suzanne_sape, from Suz…'), so a long message is wrapped by its width in the UI font, measured with
``blf`` at the present UI scale, against the width of the region that draws it."""

from __future__ import annotations

from collections.abc import Callable

import blf
import bpy

FONT_ID = 0
"""Blender's UI font, the one labels are drawn in."""
DEFAULT_POINTS = 11.0
"""Blender's default size of the widget font, for a profile whose styles cannot be read."""
DEFAULT_REGION_PX = 220
"""The sidebar's width at UI scale 1 where no region is drawing (background mode, tests): Blender's
default (229 px at the 1.04 scale of Blender 3.4 under Xvfb, scripts/blender_ui_check.sh)."""
LABEL_INSET_PX = 80
"""Pixels of the region's width, at UI scale 1, that a label line beside an icon cannot use: the category
tabs, the panel's margins and the icon. At Blender 3.4's default width 'Extracted at 256, 207896' (138 px)
shows whole and 'Suzanne_sape, from Suzanne' (162 px) is cut; this keeps 146 px at that width."""
BOX_INSET_PX = 12
"""What the frame of a box takes in addition, at UI scale 1."""
MIN_LINE_PX = 60
"""A line is never narrower than this (a sidebar dragged very narrow), at UI scale 1."""
SPLIT_LABEL_PX = 62
"""The widest property label that the left half of a split row shows whole at the default width, at UI
scale 1 ('Resolution' fits, 'Target Curve' is cut): longer names get a shorter ``text`` where drawn."""
CHECKBOX_LABEL_PX = 77
"""The same beside a checkbox in the right half ('Largest Piece' fits, 'Skip Smoothing' is cut)."""


def ui_scale() -> float:
    """Blender's UI scale (display density included); 1 in background mode, where it reads 0."""
    scale = bpy.context.preferences.system.ui_scale
    return scale if scale > 0 else 1.0


def text_width(text: str) -> float:
    """Width of ``text`` in pixels, in the widget font at the present UI scale."""
    styles = bpy.context.preferences.ui_styles
    points = styles[0].widget.points if len(styles) else DEFAULT_POINTS
    blf.size(FONT_ID, points * ui_scale())
    return blf.dimensions(FONT_ID, text)[0]


def label_width(boxed: bool = False) -> float:
    """Pixels a label line beside an icon has in the region drawing now (a box's frame taken off)."""
    scale = ui_scale()
    region = getattr(bpy.context, "region", None)
    width = region.width if region is not None and region.width > 1 else DEFAULT_REGION_PX * scale
    inset = LABEL_INSET_PX + (BOX_INSET_PX if boxed else 0)
    return max(width - inset * scale, MIN_LINE_PX * scale)


def wrap(text: str, width: float, measure: Callable[[str], float] = text_width) -> list[str]:
    """``text`` as lines no wider than ``width`` by ``measure``, broken between words; a word wider than a
    line (a path, a URL) is cut where it must be. At least one line, maybe empty."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if measure(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while len(word) > 1 and measure(word) > width:
            fits, too_long = 1, len(word)  # the longest head of the word that fits, by bisection
            while too_long - fits > 1:
                middle = (fits + too_long) // 2
                fits, too_long = (middle, too_long) if measure(word[:middle]) <= width else (fits, middle)
            lines.append(word[:fits])
            word = word[fits:]
        line = word
    if line:
        lines.append(line)
    return lines or [""]
