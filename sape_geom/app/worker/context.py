"""What a worker task gets: :class:`TaskContext` (the job's raw settings, its inputs file, where results
go, the protocol's event writer and cancel test, with helpers for progress callbacks and input arrays)
and :func:`write_mesh_npz`, the protocol's mesh file. numpy is imported only inside the functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ...fileio import save_npz
from .settings import JobError

if TYPE_CHECKING:
    import trimesh
    from trimesh.visual import ColorVisuals

    from ...nn.trainer import ProgressInfo, TrainCallbacks


@dataclass(frozen=True)
class TaskContext:
    """What a task gets from the protocol: the raw settings, the inputs file, where results go, and
    the protocol's event writer and cancel test (so this module needs nothing from :mod:`.protocol`)."""

    settings: Mapping[str, Any]
    inputs: Path | None
    output_dir: Path
    emit: Callable[..., None]
    is_cancelled: Callable[[], bool]

    def train_callbacks(self, also: Callable[[ProgressInfo], None] | None = None) -> TrainCallbacks:
        """``TrainCallbacks`` that stream progress (at most ten events a second) and answer cancel."""
        from ...nn.trainer import TrainCallbacks

        last = [0.0]

        def on_progress(info: ProgressInfo) -> None:
            now = time.monotonic()
            if info.step >= info.total or now - last[0] >= 0.1:
                last[0] = now
                self.emit(
                    "progress",
                    step=int(info.step),
                    total=int(info.total),
                    loss=float(info.loss),
                    elapsed_s=float(info.elapsed_s),
                    eta_s=float(info.eta_s),
                    stage=str(info.stage),
                )
            if also is not None:
                also(info)

        return TrainCallbacks(on_progress=on_progress, should_cancel=self.is_cancelled)

    def load_inputs(self, required: tuple[str, ...]) -> dict[str, Any]:
        """The input arrays, checked for the names ``required`` (before any heavy import)."""
        import numpy as np

        if self.inputs is None:
            if required:
                raise JobError(f"this task needs an 'inputs' npz with: {', '.join(required)}")
            return {}
        try:
            with np.load(self.inputs, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except FileNotFoundError:
            raise JobError(f"input file not found: {self.inputs}") from None
        except Exception as exc:
            raise JobError(f"cannot read input arrays from {self.inputs}: {exc}") from None
        missing = [k for k in required if k not in arrays]
        if missing:
            raise JobError(
                f"input file {self.inputs} lacks array(s) {', '.join(missing)}; found: {', '.join(arrays) or 'none'}"
            )
        return arrays


def write_mesh_npz(path: Path, mesh: trimesh.Trimesh, colors: bool) -> Path:
    """The protocol's mesh file: ``vertices`` float32, ``faces`` int32, ``colors`` RGBA uint8 or empty."""
    import numpy as np

    visual = cast("ColorVisuals", mesh.visual)  # our meshes carry colours, never a texture
    rgba = np.asarray(visual.vertex_colors, dtype=np.uint8) if colors and len(mesh.vertices) else None
    return save_npz(
        path,
        vertices=np.asarray(mesh.vertices, dtype=np.float32).reshape(-1, 3),
        faces=np.asarray(mesh.faces, dtype=np.int32).reshape(-1, 3),
        colors=np.zeros((0, 4), dtype=np.uint8) if rgba is None else rgba,
    )
