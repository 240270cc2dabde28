"""Stage-2 loss of the mesh deformation: a surface-to-surface Chamfer with exact closest points, the
edge term, and SAPE's per-vertex feedback (docs/method.md §6.5).

Both directions are exact point-to-triangle distances (libigl's AABB trees, on the CPU):

* deformed source -> target: the deformed vertices and points drawn on the deformed triangles by
  barycentric coordinates (so the gradient reaches the vertices); libigl gives each one's closest point
  ``c`` on the target and the term is ``|p - c|``, whose gradient in ``p`` is exact (``c`` is a constant
  of the step: moving ``p`` a little moves ``c`` along the surface, which does not change ``|p - c|`` to
  first order);
* target -> deformed source: a rotating share of fixed target samples; a tree over the deformed
  triangles (rebuilt every step) gives each one's closest face and barycentric coordinates, and the
  closest point is rebuilt in torch from those three deformed vertices, so the term reaches them.

Feedback to SAPE (one value per vertex, the network's input points): each vertex's own distance to the
target plus the target-to-source distances spread onto the three vertices of the face each target
sample lands on (barycentric weights), so a target region the source does not reach yet keeps the
vertices nearest to it opening frequencies.
"""

from __future__ import annotations

import igl
import numpy as np
import torch

from ...mesh.queries import spatial_order


def barycentric(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(n, 3) barycentric coordinates of points lying on (n, 3, 3) triangles (degenerate ones: a vertex)."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    denom = d00 * d11 - d01 * d01
    safe = np.where(np.abs(denom) > 1e-30, denom, 1.0)
    v = np.where(np.abs(denom) > 1e-30, (d11 * d20 - d01 * d21) / safe, 0.0)
    w = np.where(np.abs(denom) > 1e-30, (d00 * d21 - d01 * d20) / safe, 0.0)
    out = np.stack([1.0 - v - w, v, w], axis=1)
    out = np.clip(out, 0.0, 1.0)
    return out / np.maximum(out.sum(1, keepdims=True), 1e-30)


def random_barycentric(count: int, generator: torch.Generator) -> torch.Tensor:
    """(count, 3) uniform barycentric coordinates over a triangle (the square-root rule)."""
    r = torch.rand(count, 2, generator=generator, dtype=torch.float64)
    s = r[:, 0].sqrt()
    return torch.stack([1 - s, s * (1 - r[:, 1]), s * r[:, 1]], dim=1).float()


def closest_points(
    tree: igl.AABB | None, vertices: np.ndarray, faces: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Closest face (n,) and closest point (n, 3) on the mesh for each point, exact (libigl). The points are
    queried in Morton order (same answers, fewer tree branches walked); ``tree`` None builds one."""
    order = spatial_order(points)
    query = np.ascontiguousarray(points[order], dtype=np.float64)
    if tree is None:
        _, face, closest = igl.point_mesh_squared_distance(query, vertices, faces)
    else:
        _, face, closest = tree.squared_distance(vertices, faces, query)
    face_out, closest_out = np.empty_like(face), np.empty_like(closest)
    face_out[order], closest_out[order] = face, closest
    return face_out, closest_out


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Volume enclosed by a triangle mesh, positive when its faces are wound outwards."""
    t = vertices[faces]
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)


def edges_of(faces: np.ndarray) -> np.ndarray:
    """(E, 2) unique undirected edges of a triangle mesh."""
    pairs = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    return np.unique(pairs, axis=0)


class SurfaceChamfer:
    """``loss(displacement, _, x) -> (loss, per_vertex)`` as ``trainer.train`` calls it.

    ``x`` (N, 3) are the source vertices in the unit frame, the prediction their displacements. The
    loss is ``mean |p - c| + mean |q - c'| + edge_weight * edge_term``; ``chamfer`` keeps the Chamfer
    part of every step (a tensor per step, read once at the end: no host sync for it per step).
    """

    def __init__(
        self,
        faces: np.ndarray,
        source_areas: np.ndarray,
        target_vertices: np.ndarray,
        target_faces: np.ndarray,
        target_points: np.ndarray,
        *,
        source_samples: int,
        per_step: int,
        edge_weight: float,
        normal_weight: float,
        source_vertices: np.ndarray,
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        self.faces_np = np.ascontiguousarray(faces, dtype=np.int64)
        self.faces = torch.as_tensor(self.faces_np, device=device)
        self.tv, self.tf = (
            np.ascontiguousarray(target_vertices, np.float64),
            np.ascontiguousarray(target_faces, np.int64),
        )
        self.tree = igl.AABB()
        self.tree.init(self.tv, self.tf)
        self.target_points = np.ascontiguousarray(target_points, np.float64)
        self.stride = max(1, -(-len(target_points) // per_step))
        self.face_weights = torch.as_tensor(source_areas / source_areas.sum(), dtype=torch.float64)
        self.source_samples, self.edge_weight = int(source_samples), float(edge_weight)
        self.normal_weight = float(normal_weight)
        normals = np.cross(
            self.tv[self.tf[:, 1]] - self.tv[self.tf[:, 0]], self.tv[self.tf[:, 2]] - self.tv[self.tf[:, 0]]
        )
        if signed_volume(source_vertices, self.faces_np) * signed_volume(self.tv, self.tf) < 0:
            normals = -normals  # the target is wound the other way: compare like with like
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
        self.target_normals = torch.as_tensor(normals, dtype=torch.float32, device=device)
        self.generator, self.device = generator, device
        self.n = len(source_vertices)
        edges = edges_of(self.faces_np)
        self.edges = torch.as_tensor(edges, device=device)
        rest = np.linalg.norm(source_vertices[edges[:, 0]] - source_vertices[edges[:, 1]], axis=1)
        self.rest = torch.as_tensor(np.maximum(rest, 1e-12), dtype=torch.float32, device=device)
        self.calls = 0
        self.chamfer: list[torch.Tensor] = []

    def _source_points(self, vertices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Deformed vertices and barycentric samples on the deformed triangles (area of the source), and
        the deformed triangles (S, 3, 3) the samples lie on."""
        face = torch.multinomial(self.face_weights, self.source_samples, replacement=True, generator=self.generator)
        bary = random_barycentric(self.source_samples, self.generator).to(self.device)
        corners = vertices[self.faces[face.to(self.device)]]  # (S, 3, 3)
        return torch.cat([vertices, (corners * bary[:, :, None]).sum(1)]), corners

    def _to_source(self, vertices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Target samples of this step, their exact closest points on the deformed source (differentiable),
        and the faces and weights those land on (for the feedback)."""
        q = self.target_points[self.calls % self.stride :: self.stride]
        deformed = np.ascontiguousarray(vertices.detach().cpu().numpy(), np.float64)
        face, closest = closest_points(None, deformed, self.faces_np, q)
        bary = barycentric(closest, deformed[self.faces_np[face]])
        face_t = torch.as_tensor(face, device=self.device)
        bary_t = torch.as_tensor(bary, dtype=torch.float32, device=self.device)
        on_source = (vertices[self.faces[face_t]] * bary_t[:, :, None]).sum(1)
        q_t = torch.as_tensor(q, dtype=torch.float32, device=self.device)
        return (q_t - on_source).square().sum(1).clamp_min(1e-24).sqrt(), face_t, bary_t

    def edge_term(self, vertices: torch.Tensor) -> torch.Tensor:
        """Mean squared deviation of the edge length ratios from their mean: 0 for any similarity."""
        e = vertices[self.edges[:, 0]] - vertices[self.edges[:, 1]]
        ratio = e.square().sum(1).clamp_min(1e-24).sqrt() / self.rest
        return (ratio / ratio.mean().detach() - 1).square().mean()

    @staticmethod
    def normal_term(corners: torch.Tensor, target_normals: torch.Tensor) -> torch.Tensor:
        """Mean of ``1 - n . n_t`` over the sampled faces: 0 where a deformed face lies parallel to the
        target at its sample's closest point, 2 where it lies inside out (a fold)."""
        normal = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        normal = normal / normal.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return (1 - (normal * target_normals).sum(1)).mean()

    def __call__(self, displacement: torch.Tensor, _target: torch.Tensor, x: torch.Tensor):
        vertices = x + displacement
        points, corners = self._source_points(vertices)
        nearest, closest = closest_points(self.tree, self.tv, self.tf, points.detach().cpu().numpy())
        closest_t = torch.as_tensor(closest, dtype=torch.float32, device=self.device)
        d_st = (points - closest_t).square().sum(1).clamp_min(1e-24).sqrt()
        d_ts, face, bary = self._to_source(vertices)
        chamfer = d_st.mean() + d_ts.mean()
        self.chamfer.append(chamfer.detach())
        loss = chamfer + self.edge_weight * self.edge_term(vertices) if self.edge_weight > 0 else chamfer
        if self.normal_weight > 0:
            faces_at = torch.as_tensor(nearest[self.n :], device=self.device)
            loss = loss + self.normal_weight * self.normal_term(corners, self.target_normals[faces_at])
        self.calls += 1
        return loss, self.feedback(d_st[: self.n].detach(), d_ts.detach(), face, bary)

    def feedback(
        self, d_vertex: torch.Tensor, d_ts: torch.Tensor, face: torch.Tensor, bary: torch.Tensor
    ) -> torch.Tensor:
        """Per-vertex feedback: own distance plus the barycentric mean of the target samples landing near."""
        corners = self.faces[face].flatten()
        total = torch.zeros(self.n, device=self.device).index_add_(0, corners, (bary * d_ts[:, None]).flatten())
        weight = torch.zeros(self.n, device=self.device).index_add_(0, corners, bary.flatten())
        return d_vertex + total / weight.clamp_min(1.0)
