"""Specks: the needle triangles of marching cubes, with and without ``corner_gap`` (docs/method.md §6.3).

One ``fast`` fit per mesh (Blender's Suzanne subdivided twice, a CAD bracket, the bunny), each extracted
at 128^3 (the add-on's grid) and 256^3 (the command line's) with plain marching cubes (``corner_gap`` 0)
and with the presets' gap, from the same field. Per extraction: needle faces (normal over 60 degrees off
the area-weighted mean of its edge neighbours), speck vertices (Blender's angle-weighted vertex normal
over 20 degrees off the area-weighted one: a dark dot in its shading), the surface metrics against the
input, and the extraction's seconds. The figure shades Suzanne the way Blender does (angle-weighted
vertex normals): input, plain, with the gap.

    .venv/bin/python benchmarks/specks.py                # writes benchmarks/results/specks/
    .venv/bin/python benchmarks/specks.py --quick --out /tmp/specks   # seconds: a tiny fit (a dry run)
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments.common import QUICK_FIT, bunny_path, markdown_table, save_png, script_context, write_outputs
from experiments.peers import facing_camera, suzanne

NEEDLE_DEGREES, SPECK_DEGREES = 60.0, 20.0


def needle_faces(mesh) -> int:
    """Faces whose normal is over :data:`NEEDLE_DEGREES` off the area-weighted mean of their edge neighbours'."""
    normals, areas = mesh.face_normals, mesh.area_faces
    summed = np.zeros_like(normals)
    for a, b in (mesh.face_adjacency.T, mesh.face_adjacency[:, ::-1].T):
        np.add.at(summed, a, normals[b] * areas[b, None])
    mean = summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)
    return int((np.einsum("ij,ij->i", normals, mean) < np.cos(np.radians(NEEDLE_DEGREES))).sum())


def speck_vertices(mesh) -> int:
    """Vertices whose angle-weighted normal is over :data:`SPECK_DEGREES` off their area-weighted one."""
    from sape_geom.mesh.surface_points import vertex_normals

    by_angle, by_area = (vertex_normals(mesh.vertices, mesh.faces, weights) for weights in ("angle", "area"))
    agree = np.einsum("ij,ij->i", by_angle, by_area)
    return int((agree < np.cos(np.radians(SPECK_DEGREES))).sum())


def meshes(quick: bool) -> list:
    from sape_geom import load_mesh
    from sape_geom.mesh import shapes

    if quick:
        return [("sphere", shapes.sphere(0.8))]
    return [
        ("Suzanne (subdivided twice)", suzanne(2)),
        ("bracket (CAD)", shapes.bracket()),
        ("bunny", load_mesh(bunny_path())),
    ]


def blender_shaded(mesh_list: list, titles: list[str], path: Path) -> None:
    """Render ``mesh_list`` side by side, shaded with angle-weighted vertex normals (as Blender does)."""
    from PIL import Image

    from sape_geom.viz.render import render_mesh_image

    turned = [facing_camera(mesh) for mesh in mesh_list]
    image = render_mesh_image(turned, size=520, view="front", titles=titles, normals="angle")

    save_png(Image.fromarray(image), path)


def main(argv: list[str] | None = None) -> int:
    from sape_geom import fit_occupancy, mesh_metrics
    from sape_geom.tasks.occupancy import occupancy_preset
    from sape_geom.tasks.occupancy.config import CORNER_GAP

    quick, ctx, folder = script_context(
        __doc__.splitlines()[0], "a tiny fit of a sphere at 32^3 and 48^3 (a dry run)", "specks", argv
    )
    overrides = QUICK_FIT if quick else {}
    resolutions = (32, 48) if quick else (128, 256)
    rows, records, shown = [], [], {}
    for name, mesh in meshes(quick):
        fit = fit_occupancy(mesh, occupancy_preset("fast", device="cpu", **overrides))
        for resolution in resolutions:
            for gap in (0.0, CORNER_GAP):
                # marching cubes itself: snapping (docs/method.md §6.3) moves the vertices afterwards
                fit.config = dataclasses.replace(fit.config, corner_gap=gap, snap_to_input=False)
                start = time.perf_counter()
                surface = fit.extract(resolution, colors=False)
                seconds = time.perf_counter() - start
                metrics = mesh_metrics(surface, mesh)
                record = {
                    "mesh": name,
                    "resolution": resolution,
                    "corner_gap": gap,
                    "needles": needle_faces(surface),
                    "specks": speck_vertices(surface),
                    "faces": len(surface.faces),
                    "nc": metrics["normal_consistency"],
                    "p50": metrics["normal_angle_p50"],
                    "p90": metrics["normal_angle_p90"],
                    "deviating": metrics["deviating_area"],
                    "chamfer": metrics["chamfer_l1"],
                    "pieces": metrics["components"],
                    "extract_s": seconds,
                }
                records.append(record)
                rows.append(
                    [
                        name,
                        resolution,
                        gap,
                        record["needles"],
                        record["specks"],
                        record["nc"],
                        record["p50"],
                        record["p90"],
                        100 * record["deviating"],
                        1e3 * record["chamfer"],
                        record["pieces"],
                        seconds,
                    ]
                )
                if not shown or name == shown.get("name"):
                    shown.update(name=name, input=mesh, **{f"{resolution}/{gap}": surface})
    first = resolutions[0]
    blender_shaded(
        [shown["input"], shown[f"{first}/0.0"], shown[f"{first}/{CORNER_GAP}"]],
        ["input", f"{first}^3, plain marching cubes", f"{first}^3, corner gap {CORNER_GAP}"],
        folder / "figure.png",
    )
    header = [
        "mesh",
        "grid",
        "corner gap",
        "needle faces",
        "speck vertices",
        "NC",
        "angle p50 (°)",
        "angle p90 (°)",
        "area > 30° (%)",
        "Chamfer-L1 (×1e-3)",
        "pieces",
        "extraction (s)",
    ]
    preamble = (
        f"One `fast` fit per mesh, extracted at {' and '.join(f'{r}³' for r in resolutions)} with plain "
        f"marching cubes and with the presets' corner gap ({CORNER_GAP} of a cell), from the same field. Needle "
        f"faces: normal over {NEEDLE_DEGREES:.0f}° off its edge neighbours' mean; speck vertices: Blender's "
        f"angle-weighted vertex normal over {SPECK_DEGREES:.0f}° off the area-weighted one (a dark dot in its "
        "shading). Surfaces not snapped onto the input, so that marching cubes is what is measured. Seconds are "
        "the extraction's, smoothing included, timed alone. The figure shades the first "
        "mesh as Blender does."
    )
    write_outputs(
        folder,
        "Specks: the needle triangles of marching cubes",
        preamble,
        markdown_table(header, rows, digits=4),
        {"rows": records},
        ctx,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
