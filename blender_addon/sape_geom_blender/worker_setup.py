"""Set Up Worker: a private Python environment for the worker, built with pip in a background thread.

No bpy here (the operator in ``setup_ops`` drives it). The environment is built next to its final place
(``<env>.partial``) and moved there only after the worker's check job passed in it, so a failed or
cancelled set-up leaves nothing half-built, and a working environment stays usable until its
replacement works. Steps: ``python -m venv``, pip installs torch (``job_settings.TORCH_REQUIREMENT``;
the CPU build unless asked for CUDA), pip installs the library's other dependencies
(``job_settings.WORKER_REQUIREMENTS``), then the worker's ``check`` job runs with the add-on's copy of
sape_geom. Everything pip and venv print goes to a log file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import job_settings as js
from .worker_client import run_check, worker_env

MARKER = "sape_setup.json"
"""Written into a finished environment: what was installed and what the check reported."""
LOG_NAME = "setup.log"
PIP_RETRIES = 3
PIP_TIMEOUT_S = 60
STOP_GRACE_S = 3.0

#: (step, share of the progress bar)
WEIGHTS = {"venv": 0.05, "torch": 0.6, "deps": 0.3, "check": 0.05}

_CONNECTION = re.compile(
    r"NewConnectionError|Failed to establish a new connection|NameResolutionError|Name or service not known|"
    r"Temporary failure in name resolution|getaddrinfo failed|Could not fetch URL|ConnectTimeout|ProxyError|"
    r"Connection refused|Network is unreachable|SSLError|Max retries exceeded"
)


def env_python(env_dir: str | os.PathLike) -> Path:
    """The interpreter inside a virtual environment folder."""
    env = Path(env_dir)
    return env / "Scripts" / "python.exe" if sys.platform == "win32" else env / "bin" / "python"


def blender_python() -> str:
    """The interpreter of the Python running this code (Blender's own), as a program path.

    ``sys.executable`` is Blender's Python in official builds and the venv's Python for the bpy module; a
    Blender linked to the system Python may report the Blender binary, so the prefix is searched too.
    """
    exe = sys.executable or ""
    if exe and "blender" not in Path(exe).name.lower() and Path(exe).exists():
        return exe
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for prefix in (sys.prefix, sys.base_prefix, "/usr"):
        for rel in (f"bin/python{version}", "bin/python3", "python.exe", "bin/python.exe"):
            cand = Path(prefix) / rel
            if cand.is_file():
                return str(cand)
    return shutil.which(f"python{version}") or ""


def environment_info(env_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The marker of a finished environment whose Python still exists, else None."""
    env = Path(env_dir)
    try:
        info = json.loads((env / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not env_python(env).exists():
        return None
    return info


def requirements() -> list[str]:
    return [js.TORCH_REQUIREMENT, *js.WORKER_REQUIREMENTS]


def pip_sources(
    package_index: str, torch_build: str, platform: str = sys.platform
) -> tuple[list[str], list[str], dict]:
    """``(pip arguments for torch, pip arguments for the rest, environment changes)``.

    ``package_index`` blank: pip's own configuration (pip.conf, PIP_* variables), plus the PyTorch index
    that serves the chosen build where PyPI's default is another. A URL: that index only. A folder: its
    wheels only, offline. With an index of the user's, pip's configuration files and variables are off,
    so nothing else is consulted.
    """
    index = clean_index(package_index)
    if index:
        if "://" in index:
            args = ["--index-url", index]
        else:
            args = ["--no-index", "--find-links", index]
        return args, list(args), {"PIP_CONFIG_FILE": os.devnull}
    torch_args: list[str] = []
    if torch_build == "CPU" and platform in ("linux", "win32"):
        torch_args = ["--extra-index-url", js.TORCH_CPU_INDEX]
    elif torch_build == "CUDA" and platform == "win32":
        torch_args = ["--extra-index-url", js.TORCH_CUDA_INDEX]
    return torch_args, [], {}


def clean_index(text: str) -> str:
    index = (text or "").strip().strip("\"'").strip()
    if index and "://" not in index:
        index = os.path.abspath(os.path.expanduser(index))
    return index


def explain_pip_failure(output: list[str], package_index: str, what: str) -> str:
    """One line for the user from pip's output."""
    text = "\n".join(output)
    where = clean_index(package_index) or "the package index in pip's configuration"
    missing = re.findall(r"No matching distribution found for (\S+)", text)
    connection = _CONNECTION.search(text)
    reason = connection.group(0) if connection else ""
    if not reason and "(from versions: none)" in text and "://" in where:
        reason = probe(where)  # pip without retries does not say why it saw no versions
    if reason:
        return (
            f"pip cannot reach {where} ({reason}) while installing {what}: check the network, or "
            "set Package Index in the add-on preferences to a reachable mirror or a folder of wheels"
        )
    if missing:
        return (
            f"{where} has no {missing[0]} for this Python and system: set Package Index to one that has it, "
            "or pick another Python for the set-up"
        )
    errors = [ln.strip() for ln in output if ln.strip().startswith("ERROR:")]
    last = errors[-1] if errors else (output[-1].strip() if output else "no output")
    return f"pip failed installing {what}: {last}"


def probe(url: str, timeout: float = 10.0) -> str:
    """ "" when ``url`` answers (any HTTP status), else why not."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        return ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))
    return ""


@dataclass
class SetupOptions:
    base_python: str
    env_dir: Path
    package_index: str = ""
    torch_build: str = "CPU"
    force: bool = False
    """Rebuild even when a working environment is there."""


@dataclass
class SetupJob:
    """One set-up run; ``start`` runs it in a thread, ``run`` in the caller's."""

    options: SetupOptions
    log_path: Path | None = None
    progress: float = 0.0
    stage: str = ""
    last_line: str = ""
    done: bool = False
    ok: bool = False
    reused: bool = False
    error: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    _cancel: threading.Event = field(default_factory=threading.Event)
    _proc: subprocess.Popen | None = None
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.options.env_dir = Path(self.options.env_dir)
        if self.log_path is None:
            self.log_path = self.options.env_dir.parent / LOG_NAME

    @property
    def partial_dir(self) -> Path:
        return self.options.env_dir.with_name(self.options.env_dir.name + ".partial")

    @property
    def running(self) -> bool:
        return self._thread is not None and not self.done

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="sape-geom-setup", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done

    def cancel(self) -> None:
        self._cancel.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    # ------------------------------------------------------------------ the run
    def run(self) -> None:
        env = self.options.env_dir
        try:
            env.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "w", encoding="utf-8")
            self._write(f"SAPE Set Up Worker, {time.strftime('%Y-%m-%d %H:%M:%S')}: {env}")
            if not self.options.force and self._reuse(env):
                self.ok = self.reused = True
            else:
                self._build(env)
                self.ok = True
        except _Stop as stop:
            self.error = str(stop)
        except Exception as exc:  # anything unexpected: still no half-built environment
            self.error = f"set-up failed: {exc}"
        finally:
            if not self.ok:
                self._write(f"stopped: {self.error}")
                _remove(self.partial_dir)
            log = getattr(self, "_log", None)
            if log is not None:
                log.close()
            self.progress = 1.0 if self.ok else self.progress
            self.stage = "Done" if self.ok else ("Cancelled" if self._cancel.is_set() else "Failed")
            self.done = True

    def _reuse(self, env: Path) -> bool:
        info = environment_info(env)
        if info is None or info.get("requirements") != requirements():
            return False
        self.stage = "Checking environment"
        check = self._check(env_python(env))
        if not check.get("ok"):
            self._write(f"the existing environment does not work ({check.get('reason')}); rebuilding")
            return False
        self.info = {**info, "check": check}
        self._write("the existing environment works; nothing to install")
        return True

    def _build(self, env: Path) -> None:
        partial = self.partial_dir
        _remove(partial)
        base = self.options.base_python
        if not base or not Path(base).exists():
            raise _Stop(f"the Python to build the environment with does not exist: {base or '(none)'}")
        self._step("venv", "Creating environment", [base, "-m", "venv", str(partial)], fail=self._venv_failure)
        python = str(env_python(partial))
        torch_args, dep_args, env_changes = pip_sources(self.options.package_index, self.options.torch_build)
        pip = [
            python,
            "-m",
            "pip",
            "install",
            "--no-input",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "--retries",
            str(PIP_RETRIES),
            "--timeout",
            str(PIP_TIMEOUT_S),
        ]
        for step, label, args, reqs in (
            ("torch", "Installing torch", torch_args, [js.TORCH_REQUIREMENT]),
            ("deps", "Installing the rest", dep_args, [*js.WORKER_REQUIREMENTS, js.TORCH_REQUIREMENT]),
        ):
            what = " ".join(reqs[:1] if step == "torch" else reqs[:-1])
            self._step(
                step,
                label,
                [*pip, *args, *reqs],
                env_changes,
                fail=lambda out, what=what: explain_pip_failure(out, self.options.package_index, what),
            )
        self._begin("check", "Checking worker")
        check = self._check(python)
        if not check.get("ok"):
            raise _Stop(f"the new environment does not run the worker: {check.get('reason') or 'unknown problem'}")
        info = {
            "requirements": requirements(),
            "torch_build": self.options.torch_build,
            "package_index": clean_index(self.options.package_index),
            "base_python": base,
            "torch": check.get("torch"),
            "devices": check.get("devices"),
            "python": check.get("python"),
            "built": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        (partial / MARKER).write_text(json.dumps(info, indent=1), encoding="utf-8")
        if self._cancel.is_set():
            raise _Stop("cancelled")
        _remove(env)  # the old environment (if any) goes only now that the new one works
        partial.rename(env)
        self.info = {**info, "check": check}
        self._write(f"done: {env_python(env)}")

    def _check(self, python: str | Path) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="sape_setup_check_") as tmp:
            check = run_check(str(python), tmp)
        self._write(f"check: {json.dumps(check, default=str)}")
        return check

    # ------------------------------------------------------------------ steps
    def _begin(self, step: str, label: str) -> None:
        if self._cancel.is_set():
            raise _Stop("cancelled")
        order = list(WEIGHTS)
        self.progress = sum(WEIGHTS[s] for s in order[: order.index(step)])
        self.stage = label
        self._write(f"== {label} ({self.options.torch_build} build)" if step == "torch" else f"== {label}")

    def _step(self, step: str, label: str, argv: list[str], env_changes: dict | None = None, fail=None) -> None:
        self._begin(step, label)
        self._write("$ " + " ".join(argv))
        env = worker_env()
        env.pop("PYTHONPATH", None)
        if env_changes:
            env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
            env.update(env_changes)
        output: list[str] = []
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(self.options.env_dir.parent),
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError as exc:
            raise _Stop(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        start, share = self.progress, WEIGHTS[step]
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            output.append(line)
            self._write(line)
            self.last_line = shown_line(line, self.last_line)
            if line.startswith(("Collecting", "Downloading", "Processing", "Installing", "Successfully")):
                self.progress = min(start + share * 0.95, self.progress + share * 0.08)
        code = self._wait()
        self._proc = None
        if self._cancel.is_set():
            raise _Stop("cancelled")
        if code != 0:
            raise _Stop(fail(output) if fail else f"{label} failed (exit code {code})")
        self.progress = start + share

    def _wait(self) -> int:
        proc = self._proc
        assert proc is not None
        try:
            return proc.wait(timeout=STOP_GRACE_S if self._cancel.is_set() else None)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def _venv_failure(self, output: list[str]) -> str:
        text = "\n".join(output)
        base = self.options.base_python
        if "ensurepip" in text:
            return (
                f"{base} cannot create environments with pip (Debian/Ubuntu: install python3-venv); "
                "choose another Python for the set-up in the add-on preferences"
            )
        return f"{base} cannot create a virtual environment: {output[-1] if output else 'no output'}"

    def _write(self, line: str) -> None:
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.write(line + "\n")
            log.flush()


class _Stop(Exception):
    """Ends the set-up with a message for the user."""


def _remove(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


RETRYING = "Retrying the package index (network)..."


def shown_line(line: str, previous: str) -> str:
    """What the panel shows for a line of pip's output (every line goes to the log as it is): pip's own
    progress ("Collecting torch==2.13.0"), but a retry of the package index in the add-on's words and no
    other warning, which would look like a failure while pip goes on."""
    if line.startswith("WARNING: Retrying"):
        return RETRYING
    if line.startswith(("WARNING:", "DEPRECATION:")):
        return previous
    return line[:200]
