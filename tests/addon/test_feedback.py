"""What the artist is told while the add-on works: a failing worker's message, progress, previews while
Blender is busy, and the state machine of the panel's status line and the status bar's SAPE entry (bpy
module, fake workers)."""

from __future__ import annotations

import sys
import time

import pytest
from blender_scene import (  # tests/addon/blender_scene.py
    Recorder,
    add_cube,
    draw_panel,
    drive,
    drive_until,
    fake_worker,
    fit_with_fake,
    mod,
    runner,
    select_only,
    texts,
    use_python,
)

pytestmark = pytest.mark.blender

bpy = pytest.importorskip("bpy")


ERROR_WORKER = """#!/bin/sh
echo '{"event": "started", "protocol": 1, "task": "fit_surface"}'
echo '{"event": "error", "message": "the mesh has no inside: close its holes", "type": "InputError"}'
exit 1
"""


def test_a_failing_worker_shows_its_message_in_the_panel_and_the_status_bar(addon, tmp_path):
    use_python(fake_worker(tmp_path, ERROR_WORKER))
    select_only(add_cube())
    assert bpy.ops.sape.fit_selected() == {"FINISHED"}
    drive()
    state = runner().RUNNER.state
    assert state.level == "ERROR" and state.status != "Done"
    panel = texts(draw_panel("SAPE"))
    assert "Cube: the mesh has no inside: close its holes" in panel
    bar = Recorder()
    mod("ui").draw_status_bar(type("Bar", (), {"layout": bar})(), bpy.context)
    assert "SAPE: Cube: the mesh has no inside: close its holes" in texts(bar.calls)
    assert [c[2]["icon"] for c in bar.calls if c[0] == "label"] == ["ERROR"]


def test_done_only_when_the_result_is_in_the_scene(addon, tmp_path):
    empty = fake_worker(
        tmp_path,
        f"""#!/bin/sh
echo '{{"event": "started", "protocol": 1, "task": "fit_surface"}}'
{sys.executable} -c "import numpy as np; z = np.zeros; np.savez('mesh.npz', vertices=z((0, 3)), faces=z((0, 3), int), colors=z((0, 4), 'u1'))"
echo '{{"event": "result", "task": "fit_surface", "mesh": "'$PWD/mesh.npz'", "checkpoint": ""}}'
""",
    )
    use_python(empty)
    select_only(add_cube())
    assert bpy.ops.sape.fit_selected() == {"FINISHED"}
    drive()
    state = runner().RUNNER.state
    assert "Cube_sape" not in bpy.data.objects and state.status != "Done" and state.level == "ERROR"
    assert "cannot use the result" in state.status and "surface is empty" in state.status


BURST_WORKER = """#!/bin/sh
echo '{"event": "started", "protocol": 1, "task": "fit_surface"}'
burst() { for i in $(seq $1 $2); do
  echo '{"event": "progress", "step": '$i', "total": 60, "loss": 0.5, "eta_s": 1.0, "stage": "training"}'; done; }
burst 1 30; sleep 0.4; burst 31 60; sleep 1.5
echo '{"event": "error", "message": "stopped here", "type": "InputError"}'
exit 1
"""


def test_progress_redraws_at_most_once_a_second_and_shows_the_last_step(addon, tmp_path, monkeypatch):
    """Each redraw of the sidebar redraws the 3D view under it (a core's worth at five a second under
    software OpenGL): sixty progress lines in two bursts give two redraws (one if a late poll reads both
    bursts at once), the last showing step 60."""
    drawn = []
    monkeypatch.setattr(runner(), "_redraw", lambda: drawn.append(runner().RUNNER.state.status))
    use_python(fake_worker(tmp_path, BURST_WORKER))
    select_only(add_cube())
    assert bpy.ops.sape.fit_selected() == {"FINISHED"}
    drive()
    progress = [text for text in drawn if "training" in text]
    assert 1 <= len(progress) <= 2 and progress[-1].endswith("training 60/60, loss 0.5, ETA 1 s")
    assert "stopped here" in drawn[-1]


PREVIEW_WORKER = f"""#!{sys.executable}
import json, sys, time
import numpy as np
job = json.load(open(sys.argv[-1])); out = job["output_dir"]
def emit(**e):
    print(json.dumps(e), flush=True)
emit(event="started", task=job["task"], protocol=1)
d = np.load(job["inputs"])
for k in range(5):
    np.savez(f"{{out}}/preview_{{k}}.npz", vertices=d["vertices"] * 0.9, faces=d["faces"])
    emit(event="preview", path=f"{{out}}/preview_{{k}}.npz", step=k)
    time.sleep(0.3)
emit(event="error", message="stopped here", type="InputError")
"""


@pytest.mark.parametrize("busy, shown", [(False, 5), (True, 1)])
def test_live_previews_wait_while_blender_is_busy(addon, tmp_path, monkeypatch, busy, shown):
    """Under software OpenGL each preview costs Blender seconds of drawing: a busy Blender (here one
    whose CPU clock runs at twice the wall clock) shows the first preview and skips the rest."""
    start = time.monotonic()
    monkeypatch.setattr(mod("preview"), "blender_cpu_s", lambda: 2 * (time.monotonic() - start) if busy else 1.0)
    made = []
    real = mod("preview").Preview.show
    monkeypatch.setattr(mod("preview").Preview, "show", lambda self, *a: made.append(1) or real(self, *a))
    use_python(fake_worker(tmp_path, PREVIEW_WORKER))
    select_only(add_cube())
    assert bpy.ops.sape.fit_selected() == {"FINISHED"}
    drive()
    assert len(made) == shown and "Cube_sape_preview" not in bpy.data.objects


SLOW_WORKER = """#!/bin/sh
echo '{"event": "started", "protocol": 1, "task": "fit_surface"}'
echo '{"event": "progress", "step": 1, "total": 100, "loss": 1.0, "elapsed_s": 0.1, "eta_s": 10.0, "stage": "training"}'
exec sleep 60
"""


def test_the_status_bar_is_redrawn_when_a_job_starts_and_ends_and_never_for_progress(addon, tmp_path, monkeypatch):
    """Blender 3.4 keeps the status bar out of ``screen.areas``: its "working" outlived a cancelled job until
    the add-on redrew it itself; now it is redrawn on every change of its entry, and only then."""
    reports = mod("reports")
    redrawn = []
    busy = lambda: runner().RUNNER.busy
    monkeypatch.setattr(reports, "redraw_status_bar", lambda: redrawn.append(reports.status_bar_entry(busy())))
    reports.tag_redraw(busy())  # what the bar shows before the job (earlier tests leave their last message)
    redrawn.clear()
    use_python(fake_worker(tmp_path, SLOW_WORKER))
    select_only(add_cube())
    assert bpy.ops.sape.fit_selected() == {"FINISHED"}
    drive_until(lambda: runner().RUNNER.state.stage == "training")
    drive_until(lambda: bool(redrawn))  # progress redraws come at most once a second (PROGRESS_REDRAW_S)
    assert redrawn[-1] == ("TIME", reports.WORKING) == reports.status_bar_entry(busy())
    count = len(redrawn)
    for _ in range(3):
        reports.tag_redraw(busy())  # progress: the entry is the same
    assert len(redrawn) == count
    assert bpy.ops.sape.cancel() == {"FINISHED"}
    drive()
    assert not runner().RUNNER.busy
    assert reports.status_bar_entry(busy())[1] != reports.WORKING  # "working" does not outlive its job...
    assert redrawn[-1] == reports.status_bar_entry(busy())  # ...and the bar was redrawn to show what holds now


def shown_now() -> tuple[str, str]:
    """What the artist reads now: the panel's status text (all its lines) and the status bar's SAPE entry."""
    bar = Recorder()
    mod("ui").draw_status_bar(type("Bar", (), {"layout": bar})(), bpy.context)
    return texts(draw_panel("SAPE")), texts(bar.calls)


def test_the_panel_and_the_status_bar_show_the_newest_outcome_and_working_never_outlives_its_job(
    addon, tmp_path, monkeypatch
):
    """The state machine of what is shown: done, failed, cancelled, refused and another file opened, in
    turn; after each, both places lead with that outcome, and "working" is shown only while a job runs."""
    worker_client = mod("worker_client")
    monkeypatch.setattr(worker_client, "CANCEL_GRACE_S", 0.3)
    monkeypatch.setattr(worker_client, "TERMINATE_GRACE_S", 0.3)
    working = mod("reports").WORKING
    cube = add_cube()

    fit_with_fake(tmp_path, cube)
    assert working in shown_now()[1]
    drive()
    panel, bar = shown_now()
    assert panel.startswith("Done") and "Cube done -> Cube_sape" in panel
    assert "Cube done -> Cube_sape" in bar and working not in bar

    use_python(fake_worker(tmp_path, ERROR_WORKER, name="failing"))
    select_only(cube)
    assert bpy.ops.sape.fit_selected() == {"FINISHED"}
    drive()
    panel, bar = shown_now()
    assert panel.startswith("Cube: the mesh has no inside") and "Done" not in panel  # a new run starts clean
    assert "Cube: the mesh has no inside" in bar and working not in bar

    fit_with_fake(tmp_path, cube, fake={"hang": True, "ignore_cancel": True, "ignore_term": True})
    drive_until(lambda: runner().RUNNER.state.progress > 0)
    assert working in shown_now()[1]
    assert bpy.ops.sape.cancel() == {"FINISHED"}
    drive(timeout=20)
    panel, bar = shown_now()
    assert panel.startswith("Cancelled") and "no inside" not in panel
    assert "Cube: cancelled" in bar and working not in bar

    select_only()
    with pytest.raises(RuntimeError, match="select one or more mesh objects"):
        bpy.ops.sape.fit_selected()
    panel, bar = shown_now()
    assert panel.startswith("select one or more mesh objects") and "select one or more mesh objects" in bar

    fit_with_fake(tmp_path, cube, fake={"hang": True})
    drive_until(lambda: runner().RUNNER.state.progress > 0)
    bpy.ops.wm.read_homefile(use_empty=True)  # File > New mid-fit
    panel, bar = shown_now()
    assert "select one" not in panel and "Cancelled" not in panel  # the new file's panel holds no old outcome
    assert "Cube cancelled: another file was opened" in bar and working not in bar
