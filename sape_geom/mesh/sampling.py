"""Occupancy training data: point sampling and inside/outside labels (docs/method.md §6.3).

All coordinates are in the *unit frame* (see :mod:`sape_geom.mesh.io`): the mesh is expected to be
normalised already and points live in ``[-1, 1]^3``.
"""

from __future__ import annotations

from typing import Any, cast

import igl
import numpy as np

from ..errors import InputError
from .cleanup import face_components
from .holes import boundary_loops
from .outer import OuterSurface, outer_surface
from .queries import MeshQueries
from .surface_points import as_vf, sample_surface, triangle_areas, triangle_normals

__all__ = [
    "FIELD_TARGETS",
    "PointSetBuffer",
    "field_targets",
    "hole_area_fraction",
    "inside_outside",
    "sample_surface",
    "sample_training_points",
    "signed_distance",
    "unsigned_distance",
    "winding_confidence",
    "winding_number",
]

_SURFACE_MODES = ("hybrid", "area")
FIELD_TARGETS = ("occupancy", "sdf")
"""What a training point is labelled with: 1 = outside (occupancy) or the signed distance to the surface
(positive outside). A solid input's inside is where its winding number exceeds 0.5; a shell input (an
open surface read as a sheet of half-thickness t) is inside where the distance to it is below t."""
WINDING_EDGE = 0.1
"""Labels' winding numbers are taken on the input with its faces cut to edges of at most this (unit
frame, a twentieth of the cube) where it has many longer ones (``MeshQueries(winding_edge=...)``):
on the surface benchmark's meshes the labels were the same but for one point of the non-manifold parts
(its winding number near 0.5); the overlapping parts' winding numbers took a third of the time."""


def sample_training_points(
    vertices: Any, faces: Any, n_points: int, seed: Any = 0, *, surface_sampling: str = "hybrid"
) -> np.ndarray:
    """docs/method.md §6.3 training points in the unit frame: (n_points, 3) float32, clamped to ``[-1,1]^3``.

    ``S = 2*floor(floor(n/3)/2)`` surface points; rows ``[0,S)`` are surface + N(0, 0.01^2) noise, rows
    ``[S,2S)`` the *same* surface points + N(0, 0.1^2), the rest uniform in ``[-1,1]^3``.
    ``surface_sampling="hybrid"`` (the method's): half the surface points choose their triangle by area, half
    uniformly; ``"area"``: all by area. ``seed`` is anything ``np.random.default_rng`` accepts.
    """
    if surface_sampling not in _SURFACE_MODES:
        raise InputError(f"surface_sampling must be one of {_SURFACE_MODES}, got {surface_sampling!r}")
    n_points = int(n_points)
    if n_points < 3:
        raise InputError(f"n_points must be at least 3, got {n_points}")
    rng = np.random.default_rng(seed)
    half = (n_points // 3) // 2
    if surface_sampling == "hybrid":
        a, _ = sample_surface(vertices, faces, half, rng, mode="area")
        b, _ = sample_surface(vertices, faces, half, rng, mode="uniform")
        surface = np.concatenate([a, b])
    else:
        surface, _ = sample_surface(vertices, faces, 2 * half, rng, mode="area")
    near = surface + rng.normal(0.0, 0.01, surface.shape)
    far = surface + rng.normal(0.0, 0.1, surface.shape)
    uniform = rng.uniform(-1.0, 1.0, (n_points - 2 * len(surface), 3))
    pts = np.concatenate([near, far, uniform])
    return np.clip(pts, -1.0, 1.0).astype(np.float32)


def winding_number(
    vertices: Any, faces: Any, points: Any, exact: bool = False, *, queries: MeshQueries | None = None
) -> np.ndarray:
    """Generalised winding number of the mesh at each point: (n,) float64; ~1 inside, ~0 outside.

    ``exact=False`` uses libigl's fast (hierarchical) approximation, ``exact=True`` the exact sum.
    ``queries`` (built for the same mesh) reuses its trees and answers a cancel between chunks.
    """
    V, F = as_vf(vertices, faces)
    P = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    if len(P) == 0:
        return np.zeros(0, dtype=np.float64)
    if exact:
        return cast(np.ndarray, igl.winding_number(V, F, P))  # igl types its arrays ArrayLike
    return (queries or MeshQueries(V, F)).winding_number(P)


def inside_outside(
    vertices: Any,
    faces: Any,
    points: Any,
    exact: bool = False,
    *,
    threshold: float = 0.5,
    queries: MeshQueries | None = None,
) -> np.ndarray:
    """Inside labels (n,) bool, True = inside: winding number > ``threshold``.

    Works for open and non-manifold meshes. Mesh and points must be in the same frame. (The original
    code labels "outside" as winding number < 0.9; pass ``threshold=0.9`` for that convention.)
    """
    return winding_number(vertices, faces, points, exact=exact, queries=queries) > threshold


def unsigned_distance(
    vertices: Any, faces: Any, points: Any, *, queries: MeshQueries | None = None, truncate: float | None = None
) -> np.ndarray:
    """Exact Euclidean distance (n,) float64 from each point to the triangle mesh (libigl's AABB tree);
    with ``truncate``, ``min(distance, truncate)`` (:meth:`MeshQueries.truncated_distance`: faster)."""
    V, F = as_vf(vertices, faces)
    P = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    if len(P) == 0:
        return np.zeros(0, dtype=np.float64)
    queries = queries or MeshQueries(V, F)
    return queries.unsigned_distance(P) if truncate is None else queries.truncated_distance(P, truncate)


def signed_distance(
    vertices: Any,
    faces: Any,
    points: Any,
    exact: bool = False,
    *,
    queries: MeshQueries | None = None,
    distance_queries: MeshQueries | None = None,
    truncate: float | None = None,
) -> np.ndarray:
    """Distance to the surface, negative inside (winding number > 0.5): works for open meshes too.
    ``distance_queries`` (another surface, e.g. the outer one) measures the distance instead of ``queries``;
    ``truncate``: see :func:`unsigned_distance`."""
    inside = inside_outside(vertices, faces, points, exact=exact, queries=queries)
    distance = unsigned_distance(vertices, faces, points, queries=distance_queries or queries, truncate=truncate)
    return np.where(inside, -1.0, 1.0) * distance


def field_targets(
    vertices: Any,
    faces: Any,
    points: Any,
    target: str = "occupancy",
    *,
    shell_thickness: float = 0.0,
    exact: bool = False,
    queries: MeshQueries | None = None,
    distance_queries: MeshQueries | None = None,
    band: float | None = None,
) -> np.ndarray:
    """Training targets (n,) float32 at ``points`` for one of :data:`FIELD_TARGETS` (positive = outside).

    ``shell_thickness`` > 0 reads the surface as a shell of that half-thickness instead of a solid.
    ``distance_queries`` measures a solid's distances to another surface than the one whose winding
    number gives the side: its outer surface (:mod:`.outer`). ``band``: a distance target is exact only
    within it; beyond, where a fit enforces only the side (docs/method.md §6.3), it is the float32 nearest
    above ``band``, with its sign, and its points cost a fraction of an exact distance.
    """
    if target not in FIELD_TARGETS:
        raise InputError(f"unknown field target {target!r}; choose one of: {', '.join(FIELD_TARGETS)}")
    if target == "occupancy" and shell_thickness <= 0:
        return (~inside_outside(vertices, faces, points, exact=exact, queries=queries)).astype(np.float32)
    reach = None if band is None else band + max(shell_thickness, 0.0)
    if shell_thickness > 0:
        unsigned = unsigned_distance(vertices, faces, points, queries=queries, truncate=reach)
        distance = unsigned - shell_thickness
    else:
        distance = signed_distance(
            vertices, faces, points, exact=exact, queries=queries, distance_queries=distance_queries, truncate=reach
        )
        unsigned = np.abs(distance)
    if band is not None:
        beyond = unsigned >= cast(float, reach)
        distance[beyond] = np.sign(distance[beyond]) * _float32_at_least(band)
    return (distance > 0).astype(np.float32) if target == "occupancy" else distance.astype(np.float32)


def _float32_at_least(value: float) -> float:
    """The smallest float32 that is at least ``value``: a target stored as it stays outside the band."""
    single = np.float32(value)
    return float(single if single >= value else np.nextafter(single, np.float32(np.inf)))


def hole_area_fraction(vertices: Any, faces: Any) -> float:
    """How open a surface is: the area of its open holes over its own area.

    Each boundary loop (a cycle of edges that have one face) is taken to close with a disc of the same
    perimeter, area ``L^2 / (4 pi)``. A closed mesh scores 0; a scan with a few small holes a fraction
    of a percent; a container without its lid or a car body without its windows several percent or more.
    Reading such an input as a solid (inside = winding number > 0.5) spans each large hole with a film.
    A hole whose rim lies inside the solid that the mesh's *other* pieces make (an eyeball open at the
    back, set into a head; a part pushed into another) spans its film inside that solid, where no one
    sees it, and is not counted.
    """
    V, F = as_vf(vertices, faces)
    boundary, loop_of_vertex = boundary_loops(F, len(V))
    if len(boundary) == 0:
        return 0.0
    lengths = np.linalg.norm(V[boundary[:, 0]] - V[boundary[:, 1]], axis=1)
    loop_length = np.bincount(loop_of_vertex[boundary[:, 0]], weights=lengths)
    loop_length[_buried_loops(V, F, boundary, loop_of_vertex, len(loop_length))] = 0.0
    area = triangle_areas(V, F).sum()
    return float((loop_length**2).sum() / (4.0 * np.pi) / max(area, 1e-30))


def _buried_loops(
    V: np.ndarray, F: np.ndarray, boundary: np.ndarray, loop_of_vertex: np.ndarray, loops: int
) -> np.ndarray:
    """(loops,) bool: the boundary loops whose rim lies inside the other pieces of the mesh (the mean
    winding number of those pieces over the rim's vertices is above 0.5)."""
    rim = np.unique(boundary.reshape(-1))
    piece_of_face = face_components(F)
    buried = np.zeros(loops, dtype=bool)
    if piece_of_face.max(initial=0) < 1:
        return buried
    piece_of_vertex = np.zeros(len(V), dtype=np.int64)
    piece_of_vertex[F.reshape(-1)] = np.repeat(piece_of_face, 3)
    for piece in np.unique(piece_of_vertex[rim]):
        others = F[piece_of_face != piece]
        mine = rim[piece_of_vertex[rim] == piece]
        inside = MeshQueries(V, others).winding_number(V[mine])
        loop = loop_of_vertex[mine]
        count = np.bincount(loop, minlength=loops)
        mean = np.bincount(loop, weights=inside, minlength=loops) / np.maximum(count, 1)
        buried |= (mean > 0.5) & (count > 0)
    return buried


def winding_confidence(
    vertices: Any, faces: Any, *, samples: int = 20_000, offset: float = 0.002, tolerance: float = 0.05, seed: int = 0
) -> float:
    """The share of a surface (area-weighted samples) across which the winding number tells inside from
    outside: just off both sides of the sample (``offset`` along the face normal) its lower value is
    within ``tolerance`` of a whole number (0 beside the outside, 1 beside a buried face).

    A closed surface scores 1 and so does most of an almost closed one (a head with an open neck or eye
    sockets: only the faces next to the hole see it); an open sheet (a bowl, a box without its lid, a
    car body) scores near 0: beside it the winding number is fractional, so a solid read from it would
    span its openings with films. Units: the unit frame (``offset`` about a quarter of a 256^3 cell)."""
    V, F = as_vf(vertices, faces)
    points, face = sample_surface(V, F, int(samples), np.random.default_rng(seed))
    normals = triangle_normals(V[F[face]])[0]
    sides = MeshQueries(V, F).winding_number(np.concatenate([points + offset * normals, points - offset * normals]))
    lower = np.minimum(sides[: len(points)], sides[len(points) :])
    return float(np.mean(np.abs(lower - np.round(lower)) < tolerance))


class PointSetBuffer:
    """docs/method.md §6.3 data schedule: ``num_sets`` labelled point sets, generated lazily and reused in turn.

    Epoch ``e`` uses set ``e % num_sets``; set ``i`` is sampled and labelled the first time it is used
    and cached afterwards (labels are never recomputed). Each epoch returns a fresh permutation of its
    set. Everything is seeded by ``seed``. Points are in the unit frame. ``band``: distance targets are
    exact within it only (see :func:`field_targets`).
    """

    def __init__(
        self,
        vertices: Any,
        faces: Any,
        *,
        num_sets: int = 10,
        n_points: int = 1_000_000,
        seed: int = 0,
        exact: bool = False,
        surface_sampling: str = "hybrid",
        target: str = "occupancy",
        shell_thickness: float = 0.0,
        band: float | None = None,
        should_cancel: Any = None,
        on_progress: Any = None,
    ) -> None:
        if num_sets < 1:
            raise InputError(f"num_sets must be at least 1, got {num_sets}")
        if target not in FIELD_TARGETS:
            raise InputError(f"unknown field target {target!r}; choose one of: {', '.join(FIELD_TARGETS)}")
        self.vertices, self.faces = as_vf(vertices, faces)
        self.num_sets, self.n_points = int(num_sets), int(n_points)
        self.exact, self.surface_sampling = exact, surface_sampling
        self.target, self.shell_thickness, self.band = target, float(shell_thickness), band
        # libigl's trees, built once (big meshes: one part at a time); asked to stop between chunks
        self.queries = MeshQueries(
            self.vertices, self.faces, should_cancel=should_cancel, on_progress=on_progress, winding_edge=WINDING_EDGE
        )
        children = np.random.SeedSequence(seed).spawn(self.num_sets + 1)
        self._set_seeds = children[:-1]
        self._perm_rng = np.random.default_rng(children[-1])
        self._sets: list[tuple[np.ndarray, np.ndarray] | None] = [None] * self.num_sets
        self.epoch = 0
        self.generated = 0  # number of sets sampled and labelled so far
        self._outer: OuterSurface | None = None
        self._outer_queries: MeshQueries | None = None

    @property
    def outer(self) -> OuterSurface:
        """The surface points are sampled on and distances measured to: a solid's outer surface (its
        buried faces left out, :mod:`.outer`), a shell's whole input. Found on first use."""
        if self._outer is None:
            if self.shell_thickness > 0:
                self._outer = OuterSurface(self.vertices, self.faces, 0.0)
            else:
                self._outer = outer_surface(self.vertices, self.faces, self.queries)
            if self._outer.changed:
                self._outer_queries = MeshQueries(
                    self._outer.vertices,
                    self._outer.faces,
                    should_cancel=self.queries.should_cancel,
                    on_progress=self.queries.on_progress,
                )
        return self._outer

    def release(self) -> None:
        """Free libigl's trees (about 220 bytes per face each): the input's and its outer surface's."""
        self.queries.release()
        if self._outer_queries is not None:
            self._outer_queries.release()

    def get_set(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Set ``index`` unshuffled: (points (n,3) float32, targets (n,) float32), generated on first use."""
        if self._sets[index] is None:
            self.prepare([index])
        points_targets = self._sets[index]
        assert points_targets is not None  # prepare() generated it
        return points_targets

    def prepare(self, indices: Any = None) -> None:
        """Sample and label the sets ``indices`` (default: all) not made yet, all in one labelling pass
        (a mesh too big for one tree builds each part once for all of them); same values as one by one."""
        todo = [i for i in (range(self.num_sets) if indices is None else indices) if self._sets[i] is None]
        if not todo:
            return
        outer = self.outer
        points = [
            sample_training_points(
                outer.vertices, outer.faces, self.n_points, self._set_seeds[i], surface_sampling=self.surface_sampling
            )
            for i in todo
        ]
        values = field_targets(
            self.vertices,
            self.faces,
            np.concatenate(points),
            self.target,
            shell_thickness=self.shell_thickness,
            band=self.band,
            exact=self.exact,
            queries=self.queries,
            distance_queries=self._outer_queries,
        )
        for i, pts, vals in zip(todo, points, np.split(values, np.cumsum([len(p) for p in points])[:-1])):
            self._sets[i] = (pts, vals)
            self.generated += 1

    def next_epoch(self) -> tuple[np.ndarray, np.ndarray]:
        """Points (n,3) float32 and their targets (n,) float32 (occupancy: **1 = outside**), shuffled."""
        index, perm = self.next_permutation()
        pts, values = self.get_set(index)
        return pts[perm], values[perm]

    def next_permutation(self) -> tuple[int, np.ndarray]:
        """The next epoch as (set index, permutation of its points), without gathering the points: a
        trainer holding the sets on its device gathers them there (same epochs as :meth:`next_epoch`)."""
        index = self.epoch % self.num_sets
        count = len(self.get_set(index)[0])
        self.epoch += 1
        return index, self._perm_rng.permutation(count)
