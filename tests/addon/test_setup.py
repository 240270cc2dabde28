"""Set Up Worker, Check Worker in the background, candidate Pythons, worker paths (bpy module).

Most set-ups here run a fake "Python" (written into tmp_path) whose ``-m venv`` makes a folder with a
fake interpreter: its ``-m pip`` records the arguments and prints pip-like lines, anything else (the
worker's check job) runs this real interpreter. One test runs the real venv and the real pip against
an index that cannot be reached. The real set-up (torch downloaded) runs in scripts/blender_ui_check.sh.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
from blender_scene import (  # tests/addon/blender_scene.py
    NAME,
    Recorder,
    add_cube,
    draw_panel,
    drive,
    fake_worker,
    mod,
    runner,
    select_only,
    texts,
    use_python,
)

pytestmark = pytest.mark.blender

bpy = pytest.importorskip("bpy")


@pytest.fixture
def setup_env(addon, monkeypatch, tmp_path):
    """A clean set-up folder, no background job left, pip's records in tmp_path/pip.jsonl."""
    env = mod("paths").setup_env_dir()
    for path in (env, env.with_name(env.name + ".partial")):
        shutil.rmtree(path, ignore_errors=True)
    jobs = mod("setup_ops").JOBS
    jobs.update(setup=None, check=None, find=None)
    monkeypatch.setenv("SAPE_FAKE_PIP_RECORD", str(tmp_path / "pip.jsonl"))
    monkeypatch.delenv("SAPE_GEOM_PYTHON", raising=False)
    yield env
    for job in jobs.values():
        if job is not None and not job.done:
            job.cancel() if hasattr(job, "cancel") else job.stop()
            job.wait(10)
    shutil.rmtree(env, ignore_errors=True)


FAKE_ENV_PYTHON = textwrap.dedent(f"""\
    #!{sys.executable}
    import json, os, sys, time
    args = sys.argv[1:]
    if args[:2] == ["-m", "pip"]:
        with open(os.environ["SAPE_FAKE_PIP_RECORD"], "a") as fh:
            fh.write(json.dumps(args) + "\\n")
        print("Collecting " + args[-1], flush=True)
        if os.environ.get("SAPE_FAKE_PIP") == "hang":
            time.sleep(120)
        print("Successfully installed " + args[-1], flush=True)
        sys.exit(0)
    os.execv({sys.executable!r}, [{sys.executable!r}, *args])  # the worker's check job: the real one
    """)


def fake_base_python(tmp_path: Path, venv_fails: str = "") -> str:
    """A Python whose ``-m venv DIR`` writes DIR/bin/python = FAKE_ENV_PYTHON (or fails saying so)."""
    (tmp_path / "env_python.txt").write_text(FAKE_ENV_PYTHON)
    body = textwrap.dedent(f"""\
        #!{sys.executable}
        import os, shutil, sys
        if sys.argv[1:3] != ["-m", "venv"]:
            sys.exit(2)
        if {venv_fails!r}:
            print({venv_fails!r}); sys.exit(1)
        env = sys.argv[3]
        os.makedirs(os.path.join(env, "bin"))
        shutil.copy({str(tmp_path / "env_python.txt")!r}, os.path.join(env, "bin", "python"))
        os.chmod(os.path.join(env, "bin", "python"), 0o755)
        """)
    return fake_worker(tmp_path, body, name="basepython")


def prefs():
    return bpy.context.preferences.addons[NAME].preferences


def pip_calls(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "pip.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# ------------------------------------------------------------------------------------------ set-up
def test_set_up_builds_the_environment_uses_it_and_reuses_it(setup_env, tmp_path):
    js = mod("job_settings")
    p = prefs()
    p.worker_python, p.setup_base_python = "", fake_base_python(tmp_path)
    assert bpy.ops.sape.setup_worker(wait=True) == {"FINISHED"}
    env_python = setup_env / "bin" / "python"
    assert env_python.is_file() and (setup_env / "sape_setup.json").is_file()
    assert not setup_env.with_name(setup_env.name + ".partial").exists()
    calls = pip_calls(tmp_path)
    assert [c[-1] for c in calls] == [js.TORCH_REQUIREMENT, js.TORCH_REQUIREMENT]  # torch, then the rest (+ the pin)
    assert calls[0][calls[0].index("--extra-index-url") + 1] == js.TORCH_CPU_INDEX  # the CPU build on Linux
    assert set(js.WORKER_REQUIREMENTS) <= set(calls[1]) and "--extra-index-url" not in calls[1]
    marker = json.loads((setup_env / "sape_setup.json").read_text())
    assert marker["torch"] and "cpu" in marker["devices"]
    log = Path(mod("setup_ops").setup_log_path()).read_text()
    assert "Collecting torch" in log and "-m venv" in log

    # the worker Python now resolves to the environment, with nothing else set
    python, where = mod("paths").resolve_worker_python()
    assert (python, where) == (str(env_python), "Set Up Worker")
    assert mod("worker_client").check_python(python) is None

    # a second run checks the environment and reuses it: no pip
    assert bpy.ops.sape.setup_worker(wait=True) == {"FINISHED"}
    assert len(pip_calls(tmp_path)) == 2 and mod("setup_ops").JOBS["setup"].reused


def test_set_up_reports_an_unreachable_index_and_leaves_nothing(setup_env, tmp_path, monkeypatch):
    """The real venv and the real pip, pointed at a port where nothing listens."""
    monkeypatch.setattr(mod("worker_setup"), "PIP_RETRIES", 0)
    p = prefs()
    p.worker_python, p.setup_base_python = "", sys.executable
    p.package_index = "http://127.0.0.1:9/simple"
    runner().RUNNER.state.status = "Cancelled"  # an earlier run's outcome, which the set-up replaces
    with pytest.raises(
        RuntimeError,
        match=r"pip cannot reach http://127\.0\.0\.1:9/simple \(.*\) while installing "
        r"torch==2\.13\.0: check the network",
    ):
        bpy.ops.sape.setup_worker(wait=True)
    shown = texts(draw_panel("SAPE"))
    assert shown.startswith("Set-up failed: pip cannot reach") and "Cancelled" not in shown  # the reason on top
    assert not setup_env.exists() and not setup_env.with_name(setup_env.name + ".partial").exists()
    assert "Connection refused" in Path(mod("setup_ops").setup_log_path()).read_text()
    p.package_index = ""


def test_a_failed_rebuild_keeps_the_working_environment(setup_env, tmp_path, monkeypatch):
    p = prefs()
    p.worker_python, p.setup_base_python = "", fake_base_python(tmp_path)
    assert bpy.ops.sape.setup_worker(wait=True) == {"FINISHED"}
    other = tmp_path / "other"
    other.mkdir()
    p.setup_base_python = fake_base_python(other, venv_fails="Error: Command '['x', '-m', 'ensurepip']' failed")
    with pytest.raises(RuntimeError, match=r"cannot create environments with pip.*python3-venv"):
        bpy.ops.sape.setup_worker(wait=True, rebuild=True)
    assert (setup_env / "sape_setup.json").is_file()  # the old one still works
    assert mod("paths").resolve_worker_python()[1] == "Set Up Worker"


def test_set_up_in_the_background_shows_progress_and_cancel_removes_it(setup_env, tmp_path, monkeypatch):
    monkeypatch.setenv("SAPE_FAKE_PIP", "hang")
    p = prefs()
    p.worker_python, p.setup_base_python = "", fake_base_python(tmp_path)
    mod("reports").notify("ERROR", "SAPE: Set Up Worker: pip cannot reach the index", show=False)  # an earlier try
    assert bpy.ops.sape.setup_worker() == {"FINISHED"}  # returns at once
    assert "setting up the worker" in mod("reports").current()[1]  # the status bar says what runs now
    job = mod("setup_ops").JOBS["setup"]
    deadline = time.monotonic() + 30
    while not job.last_line.startswith("Collecting torch"):
        assert time.monotonic() < deadline and not job.done, job.error
        time.sleep(0.05)

    layout = Recorder()
    mod("ui").draw_setup(layout, bpy.context)
    ops = [c[1][0] for c in layout.calls if c[0] == "operator"]
    assert "sape.cancel_setup" in ops and "sape.open_setup_log" in ops
    shown = " ".join(str(c[2].get("text", "")) for c in layout.calls)
    assert "Installing torch" in shown and "Collecting torch==2.13.0" in shown
    assert bpy.ops.sape.cancel_setup() == {"FINISHED"}
    assert job.wait(10) and not job.ok and job.stage == "Cancelled"
    assert not setup_env.exists() and not setup_env.with_name(setup_env.name + ".partial").exists()
    assert mod("setup_ops").tick() is None  # reports the outcome once, then the timer stops
    assert "cancelled" in mod("reports").LAST["text"]


# ------------------------------------------------------------------------------------------ checks
def test_check_runs_in_the_background_and_reports_through_the_timer(setup_env):
    assert bpy.ops.sape.check_worker() == {"FINISHED"}
    check = mod("setup_ops").JOBS["check"]
    deadline = time.monotonic() + 120
    while mod("setup_ops").tick() is not None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert check.done and "torch" in prefs().check_report
    assert mod("reports").LAST["text"].startswith("SAPE worker check:")


def test_a_worker_of_another_protocol_is_refused(addon, tmp_path):
    other = fake_worker(
        tmp_path,
        '#!/bin/sh\necho \'{"event": "started", "protocol": 99, "task": "check"}\'\n'
        'echo \'{"event": "result", "task": "fit_surface", "mesh": "/nonexistent.npz"}\'\nsleep 5\n',
    )
    with pytest.raises(RuntimeError, match="speaks protocol 99, this add-on needs 1"):
        bpy.ops.sape.check_worker(python=other, wait=True)
    use_python(other)
    select_only(add_cube())
    assert bpy.ops.sape.fit_selected() == {"FINISHED"}

    drive(timeout=30)
    assert "protocol 99" in runner().RUNNER.state.status and runner().RUNNER.state.level == "ERROR"
    assert not any("cannot use the result" in text for _, text in runner().RUNNER.state.messages)  # nothing used


def test_candidates_are_found_in_the_usual_places_and_checked(addon, tmp_path):
    wf = mod("worker_find")
    home = tmp_path / "home"
    for rel in (
        ".virtualenvs/proj/bin/python",
        "miniconda3/bin/python",
        "miniconda3/envs/gpu/bin/python",
        "elsewhere/env/bin/python",
    ):
        (home / rel).parent.mkdir(parents=True)
        (home / rel).write_text("#!/bin/sh\necho 'No module named torch' >&2\nexit 1\n")
        (home / rel).chmod(0o755)
    (home / ".conda").mkdir()
    (home / ".conda" / "environments.txt").write_text(f"{home / 'elsewhere' / 'env'}\n")
    found = dict(wf.candidate_pythons(sys.executable, home=home, environ={"PATH": ""}, windows=False))
    assert found[sys.executable] == "Set Up Worker"
    for rel in (".virtualenvs/proj", "miniconda3", "miniconda3/envs/gpu", "elsewhere/env"):
        assert str(home / rel / "bin" / "python") in found, rel
    checks = wf.CandidateChecks([(sys.executable, "x"), (str(home / "miniconda3/bin/python"), "y")]).start()
    assert checks.wait(180)
    good, usable = wf.summary(checks.results[sys.executable])
    bad, bad_usable = wf.summary(checks.results[str(home / "miniconda3/bin/python")])
    assert usable and "torch" in good and "cpu" in good
    assert not bad_usable and "lacks the module torch" in bad


def test_paths_are_cleaned_and_made_absolute_and_the_store_stub_is_refused(addon, tmp_path):
    p = prefs()
    p.worker_python = f'  "{sys.executable}"  '  # pasted with quotes
    assert p.worker_python == str(Path(sys.executable).absolute())
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    with warnings.catch_warnings():  # Blender warns that the preference does not keep "//" paths
        warnings.simplefilter("ignore")
        p.worker_python = "//venv/bin/python"  # what the file browser stores with "Relative Path" on
    assert p.worker_python == str(tmp_path / "venv" / "bin" / "python")
    stub = tmp_path / "WindowsApps" / "python.exe"
    stub.parent.mkdir()
    stub.write_bytes(b"")
    stub.chmod(0o755)
    assert "Microsoft Store placeholder" in mod("worker_client").check_python(str(stub))
    assert str(stub) not in dict(mod("worker_find").candidate_pythons(str(stub), home=tmp_path, environ={}))
    p.worker_python = sys.executable
    assert mod("worker_setup").blender_python() == sys.executable
    assert os.path.isfile(mod("worker_setup").blender_python())


def test_pip_failures_are_explained_in_one_line():
    ws = __import__(f"{NAME}.worker_setup", fromlist=["x"])
    # pip 23's own lines when a mirror cannot be reached (retried) and when an index lacks the package
    retried = [
        "Looking in indexes: http://mirror.invalid/simple",
        "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection "
        "broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at 0x7f>: Failed to "
        "establish a new connection: [Errno 111] Connection refused')': /simple/torch/",
        "ERROR: Could not find a version that satisfies the requirement torch==2.13.0 (from versions: none)",
        "ERROR: No matching distribution found for torch==2.13.0",
    ]
    text = ws.explain_pip_failure(retried, "http://mirror.invalid/simple", "torch==2.13.0")
    assert text.startswith("pip cannot reach http://mirror.invalid/simple (NewConnectionError)")
    wheels = ws.explain_pip_failure(retried[2:], "/srv/wheels", "torch==2.13.0")
    assert wheels.startswith("/srv/wheels has no torch==2.13.0 for this Python")
    assert ws.pip_sources("/srv/wheels", "CPU")[0] == ["--no-index", "--find-links", "/srv/wheels"]
    assert ws.pip_sources(' "https://pypi.example/simple" ', "CUDA")[1] == [
        "--index-url",
        "https://pypi.example/simple",
    ]
    assert ws.pip_sources("", "CPU", platform="darwin") == ([], [], {})  # PyPI's macOS torch is the only build
    assert ws.pip_sources("", "CUDA", platform="linux") == ([], [], {})  # PyPI's Linux torch is the CUDA build


def test_preferences_list_the_checked_candidates_with_a_use_button(setup_env, tmp_path):

    no_torch = fake_worker(tmp_path, "#!/bin/sh\necho 'No module named torch' >&2\nexit 1\n", name="python")
    find = mod("worker_find").CandidateChecks([(sys.executable, "here"), (no_torch, "there")]).start()
    mod("setup_ops").JOBS["find"] = find
    assert find.wait(180)
    layout = Recorder()
    mod("ui").draw_setup(layout, bpy.context, full=True)
    props = [c[1][1] for c in layout.calls if c[0] == "prop"]
    assert {"worker_python", "setup_base_python", "package_index", "torch_build"} <= set(props)
    uses = [c for c in layout.calls if c[0] == "operator" and c[1][0] == "sape.use_python"]
    assert len(uses) == 2
    shown = " ".join(str(c[2].get("text", "")) for c in layout.calls)
    assert "torch" in shown and "lacks the module torch" in shown
    assert bpy.ops.sape.use_python(python=sys.executable) == {"FINISHED"}
    assert prefs().worker_python == sys.executable


def test_a_worker_beside_blenders_window_leaves_blender_a_core(addon, tmp_path, monkeypatch):
    wc = mod("worker_client")
    for name in wc.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # Blender with a window draws on a core of its own; in the background it leaves them all to torch
    assert [wc.worker_threads(False, cpus) for cpus in (1, 2, 16)] == [1, 1, 15]
    assert wc.worker_threads(True, 16) is None
    assert wc.run_check(sys.executable, tmp_path / "one", threads=1)["threads"] == 1
    assert wc.run_check(sys.executable, tmp_path / "own")["threads"] >= 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's own setting wins
    assert wc.run_check(sys.executable, tmp_path / "user", threads=1)["threads"] == 2


def test_pip_warnings_are_not_shown_as_progress(addon):
    shown = mod("worker_setup").shown_line
    line = "Collecting torch==2.13.0"
    assert shown(line, "") == line
    retry = (
        "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after "
        "connection broken by 'NewConnectionError(...)': /simple/torch/"
    )
    assert shown(retry, line) == mod("worker_setup").RETRYING == "Retrying the package index (network)..."
    assert shown("WARNING: The script f2py is installed in '/x/bin' which is not on PATH.", line) == line
    assert shown("DEPRECATION: a legacy install", line) == line
