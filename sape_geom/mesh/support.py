"""Where the input has surface: a coarse voxel mask used to drop extracted pieces the input does not support.

A neural field can close small spurious pieces (specks, bubbles) away from the input surface. The
support grid marks the voxels of a ``resolution^3`` grid over the unit cube that lie within ``radius``
of the input surface; an extracted piece whose vertices mostly fall outside it is not part of the
input. A real small part of the input lies on the input surface, so it is always supported. The grid is
small (``resolution^3`` bits) and is stored in checkpoints, so re-extraction cleans up the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import trimesh
from scipy import ndimage

from ..errors import InputError
from .cleanup import face_components
from .sampling import sample_surface

__all__ = ["SupportGrid", "build_support", "remove_unsupported_pieces"]


@dataclass(frozen=True, eq=False)
class SupportGrid:
    """Boolean (r, r, r) voxel mask over ``[-1, 1]^3`` (unit frame, axis 0 = x), True near the input."""

    mask: np.ndarray

    def __post_init__(self) -> None:
        mask = np.asarray(self.mask, dtype=bool)
        if mask.ndim != 3 or len(set(mask.shape)) != 1 or mask.shape[0] < 2:
            raise InputError(f"support grid must be a cube of voxels, got shape {mask.shape}")
        object.__setattr__(self, "mask", mask)

    @property
    def resolution(self) -> int:
        return int(self.mask.shape[0])

    def contains(self, points: Any) -> np.ndarray:
        """(n,) bool: whether each (n, 3) unit-frame point lies in a supported voxel."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        r = self.resolution
        idx = np.clip(np.floor((p + 1.0) * (r / 2.0)).astype(np.int64), 0, r - 1)
        return self.mask[idx[:, 0], idx[:, 1], idx[:, 2]]

    def to_array(self) -> np.ndarray:
        """Packed bits (uint8) for a checkpoint; :meth:`from_array` reads them back."""
        return np.packbits(self.mask.reshape(-1))

    @classmethod
    def from_array(cls, packed: Any, resolution: int) -> SupportGrid:
        bits = np.unpackbits(np.asarray(packed, dtype=np.uint8))[: resolution**3]
        if len(bits) != resolution**3:
            raise InputError(f"support grid holds {len(bits)} voxels, expected {resolution}^3")
        return cls(bits.reshape(resolution, resolution, resolution).astype(bool))


def build_support(
    vertices: Any, faces: Any, *, resolution: int = 128, radius: float = 0.04, samples: int = 400_000, seed: int = 0
) -> SupportGrid:
    """Voxels within about ``radius`` (unit frame) of the surface (V, F), from dense surface samples."""
    rng = np.random.default_rng(seed)
    points, _ = sample_surface(vertices, faces, int(samples), rng, mode="area")
    points = np.concatenate([points, np.asarray(vertices, dtype=np.float64)])
    mask = np.zeros((resolution,) * 3, dtype=bool)
    idx = np.clip(np.floor((points + 1.0) * (resolution / 2.0)).astype(np.int64), 0, resolution - 1)
    mask[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    voxel = 2.0 / resolution
    steps = max(1, int(np.ceil(radius / voxel)))
    return SupportGrid(ndimage.binary_dilation(mask, iterations=steps))


def remove_unsupported_pieces(
    mesh: trimesh.Trimesh, support: SupportGrid, *, min_supported: float = 0.5
) -> tuple[trimesh.Trimesh, int]:
    """Drop the face-connected pieces of ``mesh`` (unit frame) with fewer than ``min_supported`` of their
    vertices in supported voxels; returns the kept mesh and the number of pieces removed."""
    if len(mesh.faces) == 0:
        return mesh, 0
    vertex_ok = support.contains(mesh.vertices)
    if vertex_ok.all():  # the usual case: no piece can fall short, and pieces need not be found
        return mesh, 0
    labels = face_components(mesh.faces)
    n_pieces = int(labels.max()) + 1
    # per face: fraction of its corners supported, then per piece the face-weighted mean
    face_ok = vertex_ok[np.asarray(mesh.faces)].mean(axis=1)
    supported = np.bincount(labels, weights=face_ok, minlength=n_pieces) / np.bincount(labels, minlength=n_pieces)
    keep_piece = supported >= min_supported
    removed = int(n_pieces - keep_piece.sum())
    if removed == 0:
        return mesh, 0
    if not keep_piece.any():
        return trimesh.Trimesh(), removed
    # append=True: one mesh, not a list
    kept = cast(trimesh.Trimesh, mesh.submesh([np.nonzero(keep_piece[labels])[0]], append=True, repair=False))
    return kept, removed
