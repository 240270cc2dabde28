"""SVG input: the closed sub-paths of ``<path>``, ``<polygon>`` and ``<polyline>`` elements as polylines.

SVG user space is y-down, like an image.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import InputError
from .contour import signed_area

_SVG_TOKEN = re.compile(r"[MmLlHhVvZzCcSsQqTtAa]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SVG_ARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "Z": 0, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7}


def is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def load_svg(p: Path) -> np.ndarray:
    """The sub-path enclosing the largest area."""
    subpaths = load_svg_loops(p)
    if len(subpaths) == 1:
        return subpaths[0]
    areas = [abs(signed_area(s)) if np.all(np.isfinite(s)) else -1 for s in subpaths]
    return subpaths[int(np.argmax(areas))]


def load_svg_loops(p: Path) -> list[np.ndarray]:
    """Every sub-path of at least 3 points of the file's ``<path>``, ``<polygon>`` and ``<polyline>``."""
    root = ET.parse(p).getroot()
    subpaths: list[np.ndarray] = []
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag == "path" and el.get("d"):
            subpaths.extend(parse_svg_path(el.get("d", "")))
        elif tag in ("polygon", "polyline") and el.get("points"):
            nums = [float(t) for t in re.findall(_SVG_TOKEN.pattern, el.get("points", "")) if is_number(t)]
            if len(nums) % 2:
                raise InputError(f"{p}: <{tag}> has an odd number of coordinates")
            subpaths.append(np.asarray(nums, dtype=np.float64).reshape(-1, 2))
    subpaths = [s for s in subpaths if len(s) >= 3]
    if not subpaths:
        raise InputError(f"{p}: no <path>, <polygon> or <polyline> with at least 3 points")
    return subpaths


def parse_svg_path(d: str, curve_samples: int = 16) -> list[np.ndarray]:
    """Flatten an SVG path ``d`` string into a list of polylines (one per sub-path).

    Supports M/L/H/V/Z/C/S/Q/T/A in absolute and relative form; curves and arcs are sampled with
    ``curve_samples`` points each. Transforms are not applied.
    """
    tokens = _tokenize_svg(d)
    out: list[np.ndarray] = []
    cur_pts: list[np.ndarray] = []
    pos = np.zeros(2)
    start = np.zeros(2)
    last_ctrl: np.ndarray | None = None
    last_cmd = ""
    i = 0
    cmd = None
    ts = np.linspace(0.0, 1.0, curve_samples + 1)[1:]

    def flush() -> None:
        nonlocal cur_pts
        if cur_pts:
            out.append(np.asarray(cur_pts, dtype=np.float64))
        cur_pts = []

    while i < len(tokens):
        tok = tokens[i]
        if isinstance(tok, str):
            cmd = tok
            i += 1
            if cmd in "Zz":
                pos = start.copy()
                flush()
                last_ctrl, last_cmd = None, "Z"
                continue
        elif cmd is None:
            raise InputError("SVG path does not start with a command")
        up = cmd.upper()
        rel = cmd.islower()
        nargs = _SVG_ARGS[up]
        args = tokens[i : i + nargs]
        if len(args) < nargs or any(isinstance(a, str) for a in args):
            raise InputError(f"SVG path command {cmd!r} has too few numbers")
        a = np.asarray(args, dtype=np.float64)
        i += nargs
        base = pos if rel else np.zeros(2)
        if up == "M":
            flush()
            pos = base + a
            start = pos.copy()
            cur_pts.append(pos.copy())
            cmd = "l" if rel else "L"  # further pairs are implicit line-tos
            last_ctrl = None
        elif up in "LHV":
            if up == "L":
                pos = base + a
            elif up == "H":
                pos = np.array([a[0] + (pos[0] if rel else 0.0), pos[1]])
            else:
                pos = np.array([pos[0], a[0] + (pos[1] if rel else 0.0)])
            if not cur_pts:
                cur_pts.append(start.copy())
            cur_pts.append(pos.copy())
            last_ctrl = None
        elif up in "CS":
            if up == "C":
                c1, c2, end = base + a[0:2], base + a[2:4], base + a[4:6]
            else:
                c1 = 2 * pos - last_ctrl if (last_ctrl is not None and last_cmd in "CS") else pos.copy()
                c2, end = base + a[0:2], base + a[2:4]
            t = ts[:, None]
            pts = (1 - t) ** 3 * pos + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t**2 * c2 + t**3 * end
            if not cur_pts:
                cur_pts.append(pos.copy())
            cur_pts.extend(pts)
            pos, last_ctrl = end, c2
        elif up in "QT":
            if up == "Q":
                c1, end = base + a[0:2], base + a[2:4]
            else:
                c1 = 2 * pos - last_ctrl if (last_ctrl is not None and last_cmd in "QT") else pos.copy()
                end = base + a[0:2]
            t = ts[:, None]
            pts = (1 - t) ** 2 * pos + 2 * (1 - t) * t * c1 + t**2 * end
            if not cur_pts:
                cur_pts.append(pos.copy())
            cur_pts.extend(pts)
            pos, last_ctrl = end, c1
        elif up == "A":
            end = base + a[5:7]
            pts = _svg_arc(pos, a[0], a[1], a[2], a[3] != 0, a[4] != 0, end, curve_samples)
            if not cur_pts:
                cur_pts.append(pos.copy())
            cur_pts.extend(pts)
            pos, last_ctrl = end, None
        last_cmd = up
    flush()
    return out


def _tokenize_svg(d: str) -> list:
    """Tokens of a path string; arc flags may be written without separators (``a1 1 0 011 1``)."""
    raw = _SVG_TOKEN.findall(d)
    tokens: list = []
    cmd = None
    argi = 0
    k = 0
    while k < len(raw):
        t = raw[k]
        k += 1
        if t.isalpha():
            cmd, argi = t, 0
            tokens.append(t)
            continue
        if cmd is not None and cmd.upper() == "A" and argi % 7 in (3, 4) and len(t) > 1 and t[0] in "01":
            # a flag glued to what follows
            tokens.append(float(t[0]))
            raw.insert(k, t[1:])
            argi += 1
            continue
        tokens.append(float(t))
        argi += 1
    return tokens


def _svg_arc(p0, rx, ry, phi_deg, large, sweep, p1, samples) -> np.ndarray:
    """Points along an SVG elliptical arc (endpoint parametrisation, SVG 1.1 appendix F.6)."""
    rx, ry = abs(rx), abs(ry)
    if rx == 0 or ry == 0 or np.allclose(p0, p1):
        return np.asarray([p1], dtype=np.float64)
    phi = math.radians(phi_deg % 360.0)
    cp, sp = math.cos(phi), math.sin(phi)
    dx, dy = (p0 - p1) / 2.0
    x1p, y1p = cp * dx + sp * dy, -sp * dx + cp * dy
    lam = x1p**2 / rx**2 + y1p**2 / ry**2
    if lam > 1:
        rx, ry = rx * math.sqrt(lam), ry * math.sqrt(lam)
    num = rx**2 * ry**2 - rx**2 * y1p**2 - ry**2 * x1p**2
    den = rx**2 * y1p**2 + ry**2 * x1p**2
    coef = math.sqrt(max(0.0, num / den)) if den > 0 else 0.0
    if large == sweep:
        coef = -coef
    cxp, cyp = coef * rx * y1p / ry, -coef * ry * x1p / rx
    mid = (p0 + p1) / 2.0
    cx, cy = cp * cxp - sp * cyp + mid[0], sp * cxp + cp * cyp + mid[1]

    def ang(u, v):
        return math.atan2(u[0] * v[1] - u[1] * v[0], u[0] * v[0] + u[1] * v[1])

    v1 = ((x1p - cxp) / rx, (y1p - cyp) / ry)
    v2 = ((-x1p - cxp) / rx, (-y1p - cyp) / ry)
    th1 = ang((1.0, 0.0), v1)
    dth = ang(v1, v2)
    if not sweep and dth > 0:
        dth -= 2 * math.pi
    elif sweep and dth < 0:
        dth += 2 * math.pi
    th = th1 + dth * np.linspace(0.0, 1.0, samples + 1)[1:]
    x = cx + rx * np.cos(th) * cp - ry * np.sin(th) * sp
    y = cy + rx * np.cos(th) * sp + ry * np.sin(th) * cp
    pts = np.stack([x, y], axis=1)
    pts[-1] = p1
    return pts
