"""Experiment 9: sape_geom against what a user would pick instead, for "a clean watertight surface of this mesh".

Per mesh, with the same metrics and each method's time alone on the machine:

* ``SAPE fast``: ``fit_occupancy`` with the ``fast`` preset, extraction at 256^3 (labels, training,
  extraction, smoothing);
* ``Voxel Remesh``: Blender's Remesh modifier in voxel mode (OpenVDB, through ``bpy``) at the voxel
  size of our 256^3 grid, so both give surfaces of about the same face count;
* ``screened Poisson``: pymeshlab's, depth 8, from 200k surface samples with their face normals;
* ``Manifold (pcu)``: point-cloud-utils' ``make_mesh_watertight`` (the Manifold algorithm that
  ManifoldPlus refines), 20k octree leaves (its default; about our face count), faces turned outward.

* ``mesh2sdf``: its exact distance grid at 256^3 with ``fix`` (flood fill from outside at one voxel,
  ``level = 2 / 256``, for inputs that are not closed) and its marching cubes, in its own [-1, 1] frame
  (our unit frame, so the grids match).

Metrics in the input's frame (longest side 1), 50k points: IoU (meaningless for open inputs: the
winding-number inside of an open shell), Chamfer-L1, normal consistency, the median and 90th percentile
of the normal angle, the area whose normal is over 30 degrees off (pits, bumps, folds), pieces against
the input's solids, faces. The peers are a benchmark extra (``pip install -e .[peers]``), never needed
by the package.
"""

from __future__ import annotations

import time

import numpy as np

from .common import Context, image_grid, markdown_table, render_tiles, save_png, write_outputs
from .surface_quality import meshes as surface_meshes

METHODS = ("SAPE fast", "Voxel Remesh", "screened Poisson", "Manifold (pcu)", "mesh2sdf")
MESHES = (
    "bunny",
    "Slic3r_friendly_pt",
    "bracket (CAD)",
    "open box (shell)",
    "dome (shell)",
    "overlapping parts",
    "non-manifold parts",
    "Suzanne",
)
"""The surface benchmark's closed animal, CAD part, flat-faced CAD shape, open shell, overlapping and
non-manifold parts, a curved open shell (a hemisphere) and Blender's Suzanne subdivided twice
(separate eyes, small holes)."""
TILE = 220
GRID = 256


def suzanne(subdivisions: int = 2):
    """Blender's Suzanne, Catmull-Clark subdivided, eyes as they come (separate pieces), triangulated."""
    import bpy
    import trimesh

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_monkey_add()
    obj = bpy.context.active_object
    modifier = obj.modifiers.new("subdivide", "SUBSURF")
    modifier.levels = modifier.render_levels = subdivisions
    mesh = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
    vertices, faces = _blender_arrays(mesh)
    return trimesh.Trimesh(vertices, faces, process=False)


def facing_camera(mesh):
    """A copy of ``mesh`` turned so that Blender's front (-Y, with Z up) faces the renderer's camera."""
    import trimesh

    turned = mesh.copy()
    turned.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))
    return turned


def _blender_arrays(mesh) -> tuple[np.ndarray, np.ndarray]:
    mesh.calc_loop_triangles()
    vertices = np.empty(len(mesh.vertices) * 3, np.float64)
    mesh.vertices.foreach_get("co", vertices)
    faces = np.empty(len(mesh.loop_triangles) * 3, np.int64)
    mesh.loop_triangles.foreach_get("vertices", faces)
    return vertices.reshape(-1, 3), faces.reshape(-1, 3)


def grid_cell(mesh) -> float:
    """Our 256^3 grid's spacing in the mesh's own units: 2 / 255 in the unit frame (radius 0.95)."""
    from sape_geom.mesh.io import normalization_for

    return 2.0 / (GRID - 1) / normalization_for(mesh).scale


def voxel_remesh(mesh):
    import bpy
    import trimesh

    bpy.ops.wm.read_factory_settings(use_empty=True)
    data = bpy.data.meshes.new("input")
    data.from_pydata(np.asarray(mesh.vertices).tolist(), [], np.asarray(mesh.faces).tolist())
    obj = bpy.data.objects.new("input", data)
    bpy.context.scene.collection.objects.link(obj)
    modifier = obj.modifiers.new("remesh", "REMESH")
    modifier.mode, modifier.voxel_size, modifier.adaptivity = "VOXEL", grid_cell(mesh), 0.0
    start = time.perf_counter()
    result = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
    vertices, faces = _blender_arrays(result)
    return trimesh.Trimesh(vertices, faces, process=False), time.perf_counter() - start


def screened_poisson(mesh):
    import pymeshlab
    import trimesh

    from sape_geom.mesh.sampling import sample_surface
    from sape_geom.mesh.surface_points import triangle_normals

    start = time.perf_counter()
    V, F = np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64)
    points, face = sample_surface(V, F, 200_000, np.random.default_rng(0), mode="area")
    normals = triangle_normals(V[F[face]])[0]
    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(vertex_matrix=points, v_normals_matrix=normals))
    meshes.generate_surface_reconstruction_screened_poisson(depth=8)
    out = meshes.current_mesh()
    return trimesh.Trimesh(out.vertex_matrix(), out.face_matrix(), process=False), time.perf_counter() - start


def manifold(mesh):
    import point_cloud_utils as pcu
    import trimesh

    start = time.perf_counter()
    vertices, faces = pcu.make_mesh_watertight(
        np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int32), resolution=20_000
    )
    surface = trimesh.Trimesh(vertices, faces, process=False)
    if surface.volume < 0:  # it can come out inside out; a user would turn it
        surface.faces = surface.faces[:, ::-1]
    return surface, time.perf_counter() - start


def mesh2sdf_surface(mesh):
    import mesh2sdf
    import trimesh

    from sape_geom.mesh.io import normalization_for

    frame = normalization_for(mesh)
    start = time.perf_counter()
    _, surface = mesh2sdf.compute(
        frame.apply(mesh.vertices), np.asarray(mesh.faces), GRID, fix=True, level=2.0 / GRID, return_mesh=True
    )
    seconds = time.perf_counter() - start
    return trimesh.Trimesh(frame.invert(surface.vertices), surface.faces, process=False), seconds


def sape_fast(mesh, device: str):
    from sape_geom import fit_occupancy, occupancy_preset

    start = time.perf_counter()
    fit = fit_occupancy(mesh, occupancy_preset("fast", device=device))
    surface = fit.extract(colors=False)
    return surface, time.perf_counter() - start


def run(ctx: Context) -> dict:
    import bpy  # noqa: F401  (before pymeshlab: both ship Embree, and bpy breaks when it comes second)

    from sape_geom import mesh_metrics
    from sape_geom.mesh import shapes

    folder = ctx.folder("peers")
    found = dict(surface_meshes())
    found["Suzanne"] = suzanne()
    found["dome (shell)"] = shapes.hemisphere(4)
    makers = {
        "SAPE fast": lambda m: sape_fast(m, ctx.device),
        "Voxel Remesh": voxel_remesh,
        "screened Poisson": screened_poisson,
        "Manifold (pcu)": manifold,
        "mesh2sdf": mesh2sdf_surface,
    }
    records, tiles, labels = [], [], []
    for name in MESHES:
        reference = found[name]
        row, row_labels = [reference], [f"{name}\ninput, {len(reference.faces)} faces"]
        for method in METHODS:
            surface, seconds = makers[method](reference)
            m = mesh_metrics(surface, reference, n_points=50_000, iou_points=50_000)
            m.update(mesh=name, method=method, seconds=seconds, faces=len(surface.faces))
            records.append(m)
            print(
                f"# {name} {method}: IoU {m['iou']:.4f} CD {m['chamfer_l1']:.5f} NC {m['normal_consistency']:.4f} "
                f"angle {m['normal_angle_p50']:.2f}/{m['normal_angle_p90']:.2f} pieces {m['components']}/"
                f"{m['components_input']} {m['faces']} faces {seconds:.1f} s",
                flush=True,
            )
            row.append(surface)
            row_labels.append(
                f"{method}: NC {m['normal_consistency']:.3f}\n"
                f"{m['normal_angle_p50']:.1f}°/{m['normal_angle_p90']:.1f}°, {seconds:.0f} s"
            )
        tiles.append(render_tiles(row, TILE))
        labels.append(row_labels)
        _write(ctx, folder, records, tiles, labels)  # after every mesh, so a long run keeps what it measured
    return {"runs": records}


def _write(ctx: Context, folder, records: list, tiles: list, labels: list) -> None:
    header = [
        "mesh",
        "method",
        "IoU",
        "Chamfer-L1 (×1e-3)",
        "NC",
        "angle p50 (°)",
        "angle p90 (°)",
        "area > 30° (%)",
        "pieces (input)",
        "faces",
        "seconds",
    ]
    rows = [
        [
            r["mesh"],
            r["method"],
            r["iou"],
            r["chamfer_l1"] * 1000,
            r["normal_consistency"],
            r["normal_angle_p50"],
            r["normal_angle_p90"],
            100 * r["deviating_area"],
            f"{r['components']} ({r['components_input']})",
            r["faces"],
            r["seconds"],
        ]
        for r in records
    ]
    preamble = (
        "Each method on the same input, alone on the machine, timed from the mesh in memory to the surface in "
        "memory. Voxel Remesh at our 256³ grid's voxel size; screened Poisson at depth 8 from 200k samples with "
        "normals; Manifold (point-cloud-utils) with 20k leaves. Metrics on 50k "
        "points in the input's frame (longest side 1). The IoU of an open input (the open box) compares with "
        "its winding-number inside, a filled box: read Chamfer and the normals there. Manifold's result is a "
        "closed envelope around the input surface with the solid's inside left hollow (on the bracket, "
        "points inside the input have a mean winding number of 0.13 in it), so its IoU is low by "
        "construction."
    )
    save_png(image_grid(tiles, labels, tile_height=TILE), folder / "figure.png", max_kb=900)
    write_outputs(folder, "Peers", preamble, markdown_table(header, rows, 3), {"runs": records}, ctx)
