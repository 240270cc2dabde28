"""The worker: runs one sape_geom job in its own process (``python -m sape_geom.app.worker JOB.json``)
and streams its events as JSON lines to the front end (the Blender add-on) that started it. The
protocol (job file, settings per task, events, exit status, cancelling) is documented in
:mod:`.protocol`; :mod:`.registry` lists the tasks, :mod:`.settings` parses their settings and
:mod:`.main` runs a job. Importing this package stays light: numpy, trimesh and torch are imported
inside the tasks.
"""

from .context import TaskContext
from .main import CancelFlag, main, run_job_file
from .protocol import (
    EXIT_BAD_JOB,
    EXIT_CANCELLED,
    EXIT_ERROR,
    EXIT_OK,
    PROTOCOL_VERSION,
    EventStream,
    JobFile,
    read_job,
)
from .registry import TASK_FUNCTIONS, TASKS
from .settings import (
    CheckSettings,
    DeformMeshSettings,
    DeformSettings,
    ExtractSettings,
    FitSurfaceSettings,
    JobError,
    parse_settings,
)

__all__ = [
    "EXIT_BAD_JOB",
    "EXIT_CANCELLED",
    "EXIT_ERROR",
    "EXIT_OK",
    "PROTOCOL_VERSION",
    "TASKS",
    "TASK_FUNCTIONS",
    "CancelFlag",
    "CheckSettings",
    "DeformMeshSettings",
    "DeformSettings",
    "EventStream",
    "ExtractSettings",
    "FitSurfaceSettings",
    "JobError",
    "JobFile",
    "TaskContext",
    "main",
    "parse_settings",
    "read_job",
    "run_job_file",
]
