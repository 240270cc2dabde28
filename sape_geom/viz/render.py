"""Preview renders of meshes: a small vectorised numpy z-buffer rasteriser writing PNGs with Pillow.

Orthographic camera, Lambert shading (two-sided, so open meshes look right) times vertex colours.
Triangles are rasterised in chunks: every (triangle, pixel-in-its-bounding-box) pair of a chunk is
tested at once, so 500k-face meshes take a few seconds without any Python loop over triangles.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from PIL import Image, ImageDraw

from ..errors import InputError
from ..fileio import atomic_write
from ..mesh.surface_points import VERTEX_WEIGHTS, vertex_normals

__all__ = ["VIEWS", "render_mesh_image", "render_mesh_png"]

_DEFAULT_RGB = np.array([0.72, 0.76, 0.86])
_BACKGROUND = 255
_LIGHT = np.array([0.35, 0.45, 1.0]) / np.linalg.norm([0.35, 0.45, 1.0])
_CREASE_COS = 0.9  # smooth shading only where it stays within ~25 deg of the face normal
_CHUNK = 2_000_000  # candidate (triangle, pixel) pairs per rasterisation chunk


def _rotation(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """World -> camera rotation (3,3): turn about +y by azimuth, then tilt about +x by elevation."""
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    return rx @ ry


#: Named views: camera looks along -z of the rotated frame, +y is up on screen.
VIEWS = {
    "default": _rotation(-35.0, 25.0),
    "front": _rotation(0.0, 0.0),
    "side": _rotation(-90.0, 0.0),
    "back": _rotation(180.0, 0.0),
    "top": _rotation(0.0, 90.0),
}


def _vertex_rgb(mesh: trimesh.Trimesh, color: Any) -> np.ndarray:
    """Per-vertex RGB in [0,1], (n,3), from ``color`` (None, one RGB(A) 0-255, or (n,3|4) 0-255)."""
    n = len(mesh.vertices)
    if color is None:
        visual = getattr(mesh, "visual", None)
        if visual is not None and getattr(visual, "kind", None) == "vertex":
            color = np.asarray(visual.vertex_colors)
        else:
            return np.tile(_DEFAULT_RGB, (n, 1))
    c = np.asarray(color, dtype=np.float64)
    if c.ndim == 1 and c.shape[0] in (3, 4):
        return np.tile(c[:3] / 255.0, (n, 1))
    if c.ndim == 2 and c.shape[0] == n and c.shape[1] in (3, 4):
        return c[:, :3] / 255.0
    raise InputError(f"colors: expected one RGB(A) colour or ({n}, 3|4) per-vertex colours, got {c.shape}")


def _rasterize(xy: np.ndarray, z: np.ndarray, F: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Z-buffer: pixel coords (n,2) float, depth (n,) (larger = nearer), faces (m,3).

    Returns face id per pixel (size,size) int64 (-1 = background) and barycentrics (size,size,3).
    Pixel (ix, iy) is sampled at (ix + 0.5, iy + 0.5); row iy = 0 is the top of the image.
    """
    face_id = np.full(size * size, -1, dtype=np.int64)
    bary = np.zeros((size * size, 3))
    zbuf = np.full(size * size, -np.inf)
    a, b, c = xy[F[:, 0]], xy[F[:, 1]], xy[F[:, 2]]
    denom = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    tri_xy = np.stack([a, b, c], axis=1)
    x0 = np.clip(np.ceil(tri_xy[..., 0].min(1) - 0.5), 0, size).astype(np.int64)
    x1 = np.clip(np.floor(tri_xy[..., 0].max(1) - 0.5), -1, size - 1).astype(np.int64)
    y0 = np.clip(np.ceil(tri_xy[..., 1].min(1) - 0.5), 0, size).astype(np.int64)
    y1 = np.clip(np.floor(tri_xy[..., 1].max(1) - 0.5), -1, size - 1).astype(np.int64)
    w, h = x1 - x0 + 1, y1 - y0 + 1
    ok = (w > 0) & (h > 0) & (np.abs(denom) > 1e-12)
    ids = np.flatnonzero(ok)
    counts = (w * h)[ids]
    ends = np.cumsum(counts)
    start = 0
    while start < len(ids):
        base = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + _CHUNK, side="right")))
        t_ids, t_cnt = ids[start:stop], counts[start:stop]
        _raster_chunk(t_ids, t_cnt, x0, y0, w, a, b, c, denom, z, F, size, face_id, bary, zbuf)
        start = stop
    return face_id.reshape(size, size), bary.reshape(size, size, 3)


def _raster_chunk(t_ids, t_cnt, x0, y0, w, a, b, c, denom, z, F, size, face_id, bary, zbuf) -> None:
    """Rasterise triangles ``t_ids`` (pixel counts ``t_cnt``) into the flat buffers, in place."""
    tri = np.repeat(t_ids, t_cnt)
    offsets = np.repeat(np.cumsum(t_cnt) - t_cnt, t_cnt)
    local = np.arange(len(tri)) - offsets
    px = x0[tri] + local % w[tri]
    py = y0[tri] + local // w[tri]
    qx, qy = px + 0.5 - a[tri, 0], py + 0.5 - a[tri, 1]
    ex_b, ey_b = b[tri, 0] - a[tri, 0], b[tri, 1] - a[tri, 1]
    ex_c, ey_c = c[tri, 0] - a[tri, 0], c[tri, 1] - a[tri, 1]
    l1 = (qx * ey_c - qy * ex_c) / denom[tri]
    l2 = (ex_b * qy - ey_b * qx) / denom[tri]
    l0 = 1.0 - l1 - l2
    eps = -1e-9
    keep = (l0 >= eps) & (l1 >= eps) & (l2 >= eps)
    tri, l0, l1, l2 = tri[keep], l0[keep], l1[keep], l2[keep]
    pix = (py * size + px)[keep]
    depth = l0 * z[F[tri, 0]] + l1 * z[F[tri, 1]] + l2 * z[F[tri, 2]]
    order = np.lexsort((-depth, pix))  # per pixel, nearest first
    pix, depth = pix[order], depth[order]
    first = np.ones(len(pix), dtype=bool)
    first[1:] = pix[1:] != pix[:-1]
    sel = order[first]
    pix, depth = pix[first], depth[first]
    win = depth > zbuf[pix]
    pix, sel = pix[win], sel[win]
    zbuf[pix] = depth[win]
    face_id[pix] = tri[sel]
    bary[pix] = np.stack([l0[sel], l1[sel], l2[sel]], axis=1)


def _unit(v: np.ndarray) -> np.ndarray:
    """Rows of (n,3) scaled to unit length (zero rows stay zero)."""
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-30)


def _frame(meshes: Sequence[trimesh.Trimesh], rot: np.ndarray) -> tuple[np.ndarray, float]:
    """Common (centre (3,), radius) of all non-empty meshes, in the camera frame."""
    pts = [np.asarray(m.vertices, np.float64) @ rot.T for m in meshes if len(m.vertices)]
    if not pts:
        return np.zeros(3), 1.0
    allp = np.concatenate(pts)
    centre = 0.5 * (allp.min(0) + allp.max(0))
    radius = float(np.linalg.norm(allp - centre, axis=1).max())
    return centre, radius if radius > 0 else 1.0


def _render_tile(mesh, color, rot, centre, radius, size: int, smooth: bool, normals: str) -> np.ndarray:
    """One mesh -> (size,size,3) uint8 image."""
    img = np.full((size, size, 3), _BACKGROUND, dtype=np.uint8)
    if len(mesh.faces) == 0:
        return img
    V = (np.asarray(mesh.vertices, np.float64) @ rot.T) - centre
    F = np.asarray(mesh.faces, np.int64)
    s = 0.45 * size / radius
    xy = np.stack([size / 2 + V[:, 0] * s, size / 2 - V[:, 1] * s], axis=1)
    face_id, bary = _rasterize(xy, V[:, 2], F, size)
    hit = face_id >= 0
    f, bw = face_id[hit], bary[hit]
    rgb = _vertex_rgb(mesh, color)
    col = np.einsum("nk,nkc->nc", bw, rgb[F[f]])
    nrm = _unit(np.cross(V[F[f, 1]] - V[F[f, 0]], V[F[f, 2]] - V[F[f, 0]]))
    if smooth:  # interpolate corner normals; a corner across a sharp crease uses the face normal
        corner = vertex_normals(V, F, normals)[F[f]]  # (k,3,3)
        sharp = np.sum(corner * nrm[:, None, :], axis=2) < _CREASE_COS
        corner[sharp] = np.broadcast_to(nrm[:, None, :], corner.shape)[sharp]
        nrm = _unit(np.einsum("nk,nkc->nc", bw, corner))
    shade = 0.25 + 0.75 * np.abs(nrm @ _LIGHT)
    img[hit] = np.clip(col * shade[:, None] * 255.0, 0, 255).astype(np.uint8)
    return img


def render_mesh_image(
    mesh_or_list: trimesh.Trimesh | Sequence[trimesh.Trimesh],
    size: int = 512,
    colors: Any = None,
    view: str = "default",
    titles: Sequence[str] | None = None,
    smooth: bool = True,
    normals: str = "area",
) -> np.ndarray:
    """Render one mesh or several side by side (same camera and scale) -> (size, k*size, 3) uint8.

    ``normals``: how smooth shading weights the faces around a vertex, by ``area`` or by corner
    ``angle`` as Blender does (which shows needle triangles as dark specks, as Blender would)."""
    meshes = [mesh_or_list] if isinstance(mesh_or_list, trimesh.Trimesh) else list(mesh_or_list)
    if not meshes:
        raise InputError("render: no mesh given")
    if view not in VIEWS:
        raise InputError(f"render: unknown view {view!r} (choose from {', '.join(VIEWS)})")
    if normals not in VERTEX_WEIGHTS:
        raise InputError(f"render: unknown normals {normals!r} (choose from {', '.join(VERTEX_WEIGHTS)})")
    size = int(size)
    if size < 16:
        raise InputError(f"render: size must be at least 16 pixels, got {size}")
    if colors is None or isinstance(mesh_or_list, trimesh.Trimesh):
        colors = [colors] * len(meshes)
    if len(colors) != len(meshes):
        raise InputError(f"render: {len(colors)} colour entries for {len(meshes)} meshes")
    rot = VIEWS[view]
    centre, radius = _frame(meshes, rot)
    tiles = [_render_tile(m, c, rot, centre, radius, size, smooth, normals) for m, c in zip(meshes, colors)]
    image = np.concatenate(tiles, axis=1)
    if titles:
        image = _draw_titles(image, titles, size)
    return image


def _draw_titles(image: np.ndarray, titles: Sequence[str], size: int) -> np.ndarray:
    """Write each title at the top-left of its tile with PIL's default font."""
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    for i, title in enumerate(titles):
        if title:
            draw.text((i * size + 6, 4), str(title), fill=(0, 0, 0))
    return np.asarray(pil)


def render_mesh_png(
    mesh_or_list: trimesh.Trimesh | Sequence[trimesh.Trimesh],
    path: str | os.PathLike,
    size: int = 512,
    colors: Any = None,
    view: str = "default",
    titles: Sequence[str] | None = None,
    smooth: bool = True,
    normals: str = "area",
) -> Path:
    """Render (see :func:`render_mesh_image`) and write a PNG at ``path``; returns the path.

    ``colors``: for one mesh, None (its vertex colours or a neutral blue-grey), one RGB(A) 0-255 or
    (n,3|4) per-vertex 0-255 colours; for a list, a list of such entries. ``view``: one of :data:`VIEWS`.
    """
    image = Image.fromarray(
        render_mesh_image(
            mesh_or_list, size=size, colors=colors, view=view, titles=titles, smooth=smooth, normals=normals
        )
    )
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
