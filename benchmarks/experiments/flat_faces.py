"""Experiment 8: where the bumps on flat faces come from.

The fitted field is probed on the interior of each test part's largest flat face (points at least 0.03
from its border, unit frame): the angle between the field's gradient and the face normal (what shading
shows), the distance error there, and the share of SAPE's frequencies open. Runs: SAPE as shipped
(`fast`, 1000 steps), the same with 2000 steps, with its node masks blurred over 9 nodes instead of 5
(the mask changes more slowly across space), plain Fourier features at the shipped σ = 20 and at σ = 3
(every frequency low). If the bumps came from high frequencies alone, SAPE (whose face nodes freeze
with 2 to 4 of 16 blocks open) would be as smooth as FF σ = 3.
"""

from __future__ import annotations

import time

import numpy as np

from .common import Context, image_grid, markdown_table, render_tiles, save_png, write_outputs

RUNS = (
    ("SAPE", "sape", None, 1000, {}),
    ("SAPE 2000 steps", "sape", None, 2000, {}),
    ("SAPE, mask blur 9", "sape", None, 1000, {"progress.blur_kernel": 9}),
    ("FF σ=20", "ff", None, 1000, {}),
    ("FF σ=3", "ff", 3.0, 1000, {}),
)
GRID = 0.0025  # probe spacing on the face (unit frame)
BORDER = 0.03  # probes this close to the face's border are left out (edges, holes)
TILE = 300
FACE_NORMAL = np.array([0.0, 0.0, 1.0])  # the probed faces face +z


def meshes() -> list[tuple[str, object]]:
    from sape_geom.mesh import shapes

    return [("thin plate", shapes.thin_plate()), ("bracket (CAD)", shapes.bracket())]


def face_probes(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Points on the interior of the largest flat face facing +z (unit frame)."""
    import trimesh
    from scipy import ndimage

    from sape_geom.mesh.queries import MeshQueries

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    up = mesh.face_normals[:, 2] > 0.999
    heights, which = np.unique(np.round(mesh.triangles_center[up, 2], 5), return_inverse=True)
    height = heights[np.bincount(which, mesh.area_faces[up]).argmax()]
    chosen = np.nonzero(up)[0][np.abs(mesh.triangles_center[up, 2] - height) < 1e-4]
    face = mesh.submesh([chosen], append=True)
    (x0, y0, _), (x1, y1, _) = face.bounds
    X, Y = np.meshgrid(np.arange(x0, x1, GRID), np.arange(y0, y1, GRID), indexing="ij")
    probes = np.stack([X.ravel(), Y.ravel(), np.full(X.size, height)], axis=1)
    squared, _ = MeshQueries(face.vertices, face.faces).squared_distance(probes)
    interior = ndimage.binary_erosion((squared < 1e-12).reshape(X.shape), iterations=int(BORDER / GRID))
    return probes[interior.ravel()]


def probe_field(fit, probes: np.ndarray) -> dict:
    """Angle of the field's gradient to the face normal (degrees), distance error and open share at ``probes``."""
    import torch

    x = torch.tensor(probes, dtype=torch.float32, device=fit.device, requires_grad=True)
    output = fit.model(x)[:, 0]
    gradient = torch.autograd.grad(output.sum(), x)[0].detach().cpu().double().numpy()
    cosine = gradient @ FACE_NORMAL / np.linalg.norm(gradient, axis=1).clip(1e-12)
    angle = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    error = fit.field(probes)
    with torch.no_grad():
        share = fit.model.open_fraction(x.detach()).cpu().numpy()
    return {
        "angle_mean": float(angle.mean()),
        "angle_p90": float(np.percentile(angle, 90)),
        "height_std": float(error.std()),
        "open_share": float(share.mean()),
        "probes": len(probes),
    }


def run(ctx: Context) -> dict:
    import torch

    from sape_geom import fit_occupancy, mesh_metrics, occupancy_preset

    from .surface_quality import flat_normal_consistency

    folder = ctx.folder("flat_faces")
    records, tiles, labels = [], [], []
    for name, reference in meshes():
        row_meshes, row_labels = [reference], [f"{name}\ninput"]
        for label, encoding, sigma, steps, overrides in RUNS:
            cfg = occupancy_preset("fast", encoding=encoding, sigma=sigma, steps=steps, device=ctx.device, **overrides)
            t0 = time.perf_counter()
            fit = fit_occupancy(reference, cfg)
            seconds = time.perf_counter() - t0
            probes = face_probes(fit.normalization.apply(reference.vertices), np.asarray(reference.faces))
            record = {
                "mesh": name,
                "run": label,
                "train_s": fit.timings["train_s"],
                "fit_s": seconds,
                "threads": torch.get_num_threads(),
                **probe_field(fit, probes),
            }
            surface = fit.extract(colors=False)
            m = mesh_metrics(surface, reference, n_points=50_000, iou_points=50_000)
            record.update(
                normal_consistency=m["normal_consistency"],
                chamfer_l1=m["chamfer_l1"],
                flat_nc=flat_normal_consistency(surface, reference),
            )
            records.append(record)
            print(
                f"# {name} {label}: face angle {record['angle_mean']:.2f}° (p90 {record['angle_p90']:.2f}°), "
                f"height std {record['height_std']:.2e}, open {record['open_share']:.3f}, "
                f"NC {record['normal_consistency']:.4f}, {seconds:.0f} s",
                flush=True,
            )
            row_meshes.append(surface)
            row_labels.append(f"{label}\nface {record['angle_mean']:.1f}° mean")
        tiles.append(render_tiles(row_meshes, TILE))
        labels.append(row_labels)
    header = [
        "mesh",
        "run",
        "gradient angle on the face (°, mean)",
        "(°, 90th percentile)",
        "distance error std (×1e-4)",
        "frequencies open on the face",
        "normal consistency",
        "NC on flat parts",
        "Chamfer-L1 (×1e-3)",
        "training (s)",
    ]
    rows = [
        [
            r["mesh"],
            r["run"],
            r["angle_mean"],
            r["angle_p90"],
            r["height_std"] * 1e4,
            r["open_share"],
            r["normal_consistency"],
            r["flat_nc"],
            r["chamfer_l1"] * 1000,
            r["train_s"],
        ]
        for r in records
    ]
    preamble = (
        __doc__.split("\n\n", 1)[1].strip().replace("\n", " ")
        + f" Probes every {GRID} on the face; preset `fast`, extraction at 256³; torch threads "
        + f"{records[-1]['threads']}."
    )
    save_png(image_grid(tiles, labels), folder / "figure.png")
    write_outputs(
        folder,
        "Flat faces: gradient of the fitted field",
        preamble,
        markdown_table(header, rows, 3),
        {"runs": records},
        ctx,
    )
    return {"runs": records}
