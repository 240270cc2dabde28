"""The worker's mesh task: ``deform_mesh`` (docs/method.md §6.5), a source mesh's vertices moved onto a
target mesh, and :data:`REQUIRED`, its input arrays. Its settings (:class:`.settings.DeformMeshSettings`)
are parsed like every task's (unknown keys and wrong types are one-line errors).
"""

from __future__ import annotations

from typing import Any

from ...fileio import save_npz
from .context import TaskContext
from .settings import DeformMeshSettings, JobError, parse_settings

REQUIRED = ("source_vertices", "source_faces", "target_vertices", "target_faces")
"""Input arrays of the task: two triangle meshes, each in any frame."""


def task_deform_mesh(ctx: TaskContext) -> dict[str, Any]:
    """Deform ``source_*`` onto ``target_*``; writes ``deformed.npz`` (see :mod:`.protocol`)."""
    s = parse_settings(DeformMeshSettings, "deform_mesh", ctx.settings)
    try:
        config = s.mesh_config()
    except (TypeError, ValueError) as exc:
        raise JobError(f"settings of the deform_mesh task: {exc}") from None
    arrays = ctx.load_inputs(REQUIRED)
    import numpy as np

    from ...tasks.mesh_deform import deform_mesh

    result = deform_mesh(
        (arrays["source_vertices"], arrays["source_faces"]),
        (arrays["target_vertices"], arrays["target_faces"]),
        config,
        ctx.train_callbacks(),
    )
    steps = [s for s, _ in result.snapshots]
    path = save_npz(
        ctx.output_dir / "deformed.npz",
        vertices=np.asarray(result.mesh.vertices, dtype=np.float32),
        faces=np.asarray(result.mesh.faces, dtype=np.int32),
        levels=np.zeros(0, np.float32) if result.levels is None else result.levels.astype(np.float32),
        snapshot_steps=np.asarray(steps, dtype=np.int64),
        snapshots=(
            np.stack([v for _, v in result.snapshots]).astype(np.float32)
            if steps
            else np.zeros((0, len(result.mesh.vertices), 3), np.float32)
        ),
    )
    return {"mesh": str(path), "metrics": result.metrics}
