"""Set Up Worker, Check Worker and Find Pythons: operators whose work runs in background threads.

Blender stays responsive: each operator starts a thread (``worker_setup.SetupJob``, a check job,
``worker_find.CandidateChecks``) and returns; a persistent timer (:func:`tick`, it survives opening
another file) redraws the progress and reports the outcome. ``wait=True`` runs the work to completion
inside the call instead, for scripts and ``blender -b``.
"""

from __future__ import annotations

import os
import tempfile
import threading

import bpy
from bpy.props import BoolProperty, StringProperty

from . import reports, runner, worker_client, worker_find, worker_setup
from .paths import absolute, get_preferences, resolve_worker_python, setup_env_dir, setup_python

#: The background work in flight or last finished: SetupJob, _Check, CandidateChecks.
JOBS: dict = {"setup": None, "check": None, "find": None}


class _Check:
    def __init__(self, python: str, where: str):
        self.python, self.where, self.result, self.done = python, where, None, False
        self.background = bpy.app.background  # read here: the thread must not touch bpy
        self._thread = threading.Thread(target=self._run, name="sape-geom-check", daemon=True)

    def start(self) -> _Check:
        self._thread.start()
        return self

    def wait(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        try:
            with tempfile.TemporaryDirectory(prefix="sape_check_") as tmp:
                self.result = worker_client.run_check(
                    self.python, tmp, threads=worker_client.worker_threads(self.background)
                )
        finally:
            self.done = True

    def text(self) -> tuple[str, str]:
        info = self.result or {}
        if info.get("ok"):
            devices = ", ".join(info.get("devices") or []) or "none"
            threads = f", {info['threads']} CPU thread(s) for a fit" if info.get("threads") else ""
            return "INFO", (
                f"{self.python}: Python {info.get('python')}, torch {info.get('torch')}, devices: {devices}{threads}"
            )
        return "ERROR", f"{self.python or '(no Python)'} ({self.where}): {info.get('reason') or 'unknown problem'}"


def tick() -> float | None:
    """The background jobs' timer: redraw while they run, report each outcome once."""
    running = False
    job = JOBS["setup"]
    if job is not None:
        if job.done and not getattr(job, "reported", False):
            job.reported = True
            level, text = setup_outcome(job)
            reports.notify(level, text)
        running |= not job.done
    check = JOBS["check"]
    if check is not None:
        if check.done and not getattr(check, "reported", False):
            check.reported = True
            level, text = check.text()
            prefs = get_preferences()
            if prefs is not None:
                prefs.check_report = text
            reports.notify(level, f"SAPE worker check: {text}")
        running |= not check.done
    find = JOBS["find"]
    running |= find is not None and not find.done
    reports.tag_redraw()
    return 0.5 if running else None


def _ensure_tick() -> None:
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=0.2, persistent=True)


def stop_all() -> None:
    """Unregister: stop the threads' processes (a cancelled set-up removes its partial environment)."""
    for key in ("setup", "find"):
        job = JOBS[key]
        if job is not None and not job.done:
            job.cancel() if key == "setup" else job.stop()
            job.wait(10.0)
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)


def setup_outcome(job: worker_setup.SetupJob) -> tuple[str, str]:
    if job.ok:
        info = job.info.get("check") or job.info
        devices = ", ".join(info.get("devices") or []) or "cpu"
        how = "already set up" if job.reused else "set up"
        return "INFO", f"SAPE: worker {how}: torch {info.get('torch')}, devices: {devices}"
    if job.stage == "Cancelled":
        return "INFO", "SAPE: Set Up Worker cancelled; nothing was left behind"
    return "ERROR", f"SAPE: Set Up Worker: {job.error}"


# ------------------------------------------------------------------------------------------ operators
class SAPE_OT_setup_worker(bpy.types.Operator):
    """Build a private Python environment with torch for the worker (in the add-on's user folder), or check and
    reuse the one already there"""

    bl_idname = "sape.setup_worker"
    bl_label = "Set Up Worker"
    bl_options = {"REGISTER"}

    wait: BoolProperty(
        name="Wait",
        description="Run to the end before returning (scripts, blender -b)",
        default=False,
        options={"SKIP_SAVE"},
    )
    rebuild: BoolProperty(
        name="Rebuild", description="Build a new environment even if one works", default=False, options={"SKIP_SAVE"}
    )

    @classmethod
    def poll(cls, context):
        job = JOBS["setup"]
        return job is None or job.done

    def execute(self, context):
        prefs = get_preferences(context)
        base = absolute(prefs.setup_base_python) if prefs is not None else ""
        options = worker_setup.SetupOptions(
            base_python=base or worker_setup.blender_python(),
            env_dir=setup_env_dir(),
            package_index=prefs.package_index if prefs is not None else "",
            torch_build=prefs.torch_build if prefs is not None else "CPU",
            force=self.rebuild,
        )
        job = worker_setup.SetupJob(options)
        JOBS["setup"] = job
        runner.RUNNER.clear_outcome()  # the panel's top line is this set-up's from now on
        started = "SAPE: setting up the worker" + ("" if self.wait else " in the background (see SAPE > Setup)")
        reports.notify("INFO", started, show=False)  # and the status bar's: an earlier failure is past
        if not self.wait:
            job.start()
            _ensure_tick()
            self.report({"INFO"}, started)
            return {"FINISHED"}
        job.start()
        last = ""
        while not job.wait(2.0):
            line = f"SAPE set-up {100 * job.progress:.0f}%: {job.stage}"
            if line != last:
                print(line, flush=True)
                last = line
        job.reported = True
        level, text = setup_outcome(job)
        self.report({level}, text)
        return {"FINISHED"} if job.ok else {"CANCELLED"}


class SAPE_OT_cancel_setup(bpy.types.Operator):
    """Stop Set Up Worker; the environment it was building is removed"""

    bl_idname = "sape.cancel_setup"
    bl_label = "Cancel Set-Up"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        job = JOBS["setup"]
        return job is not None and not job.done

    def execute(self, context):
        JOBS["setup"].cancel()
        return {"FINISHED"}


class SAPE_OT_open_setup_log(bpy.types.Operator):
    """Open the log of the last Set Up Worker (everything venv and pip printed)"""

    bl_idname = "sape.open_setup_log"
    bl_label = "Open Log"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return os.path.isfile(setup_log_path())

    def execute(self, context):
        bpy.ops.wm.path_open(filepath=setup_log_path())
        return {"FINISHED"}


def setup_log_path() -> str:
    job = JOBS["setup"]
    return str(job.log_path if job is not None else setup_env_dir().parent / worker_setup.LOG_NAME)


class SAPE_OT_check_worker(bpy.types.Operator):
    """Run the worker's check job in the background: its torch version and devices, or why it cannot run"""

    bl_idname = "sape.check_worker"
    bl_label = "Check Worker"
    bl_options = {"REGISTER"}

    python: StringProperty(name="Python", description="Interpreter to check (blank: the worker Python)", default="")
    wait: BoolProperty(name="Wait", default=False, options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        check = JOBS["check"]
        return check is None or check.done

    def execute(self, context):
        python, where = resolve_worker_python(context, self.python)
        check = JOBS["check"] = _Check(python, where).start()
        if not self.wait:
            _ensure_tick()
            return {"FINISHED"}
        check.wait()
        check.reported = True
        level, text = check.text()
        prefs = get_preferences(context)
        if prefs is not None:
            prefs.check_report = text
        self.report({level}, f"SAPE worker check: {text}")
        return {"FINISHED"} if level == "INFO" else {"CANCELLED"}


class SAPE_OT_find_pythons(bpy.types.Operator):
    """Look for Python installations and environments on this computer and check each in the background"""

    bl_idname = "sape.find_pythons"
    bl_label = "Find Pythons"
    bl_options = {"REGISTER"}

    wait: BoolProperty(name="Wait", default=False, options={"SKIP_SAVE"})

    def execute(self, context):
        old = JOBS["find"]
        if old is not None:
            old.stop()
        JOBS["find"] = find = worker_find.CandidateChecks(worker_find.candidate_pythons(setup_python())).start()
        if self.wait:
            find.wait()
        else:
            _ensure_tick()
        return {"FINISHED"}


class SAPE_OT_use_python(bpy.types.Operator):
    """Use this Python for the worker (sets Worker Python in the add-on preferences)"""

    bl_idname = "sape.use_python"
    bl_label = "Use"
    bl_options = {"REGISTER", "INTERNAL"}

    python: StringProperty(name="Python", default="")

    def execute(self, context):
        prefs = get_preferences(context)
        if prefs is None:
            return {"CANCELLED"}
        prefs.worker_python = "" if self.python == setup_python() else self.python
        self.report({"INFO"}, f"SAPE: worker Python {self.python}")
        return {"FINISHED"}


# ------------------------------------------------------------------------------------------ drawing
classes = (
    SAPE_OT_setup_worker,
    SAPE_OT_cancel_setup,
    SAPE_OT_open_setup_log,
    SAPE_OT_check_worker,
    SAPE_OT_find_pythons,
    SAPE_OT_use_python,
)
