"""The worker's task registry: :data:`TASK_FUNCTIONS`, the one dict from task name to task function, and
:data:`TASKS`, its names in order. A task is registered here and nowhere else: its settings go in
:mod:`.settings`, its function in a task module and its documentation in :mod:`.protocol`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .context import TaskContext
from .curve_tasks import task_deform
from .mesh_tasks import task_deform_mesh
from .surface_tasks import task_check, task_extract, task_fit_surface

TASK_FUNCTIONS: dict[str, Callable[[TaskContext], dict[str, Any]]] = {
    "check": task_check,
    "fit_surface": task_fit_surface,
    "extract": task_extract,
    "deform": task_deform,
    "deform_mesh": task_deform_mesh,
}
"""Task name -> function; the worker dispatches through this dict (a test may swap an entry)."""

TASKS = tuple(TASK_FUNCTIONS)
"""The task names a job file may give, in the order error messages list them."""
