"""Candidate worker Pythons on this computer, and their checks in a background thread.

No bpy here. Blender started from the macOS Finder or a desktop menu has a minimal PATH, so the usual
places are looked at directly: virtual environments (``VIRTUAL_ENV``, ``~/.virtualenvs``, a source
checkout's ``.venv``), conda environments (``CONDA_PREFIX``, ``~/.conda/environments.txt``, the
usual install folders), pyenv versions, Homebrew / python.org / system Pythons and, last, PATH. Each
candidate is then run through the worker's ``check`` job (Python, torch version, devices, or why not).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from .worker_client import find_source_root, is_store_stub, run_check

MAX_CANDIDATES = 24
CONDA_DIRS = (
    "miniconda3",
    "anaconda3",
    "miniforge3",
    "mambaforge",
    "micromamba",
    ".conda",
    "opt/miniconda3",
    "opt/anaconda3",
)


def _env_python(prefix: Path, windows: bool) -> Path:
    """A venv's (``Scripts\\python.exe`` on Windows) or a conda environment's (``python.exe``) interpreter."""
    if not windows:
        return prefix / "bin" / "python"
    return prefix / "python.exe" if (prefix / "python.exe").exists() else prefix / "Scripts" / "python.exe"


def candidate_pythons(
    setup_python: str = "", home: Path | None = None, environ: dict | None = None, windows: bool | None = None
) -> list[tuple[str, str]]:
    """``(path, where)`` of Python interpreters that exist, most likely first, without duplicates."""
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    windows = sys.platform == "win32" if windows is None else windows
    found: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(path, where: str) -> None:
        if not path:
            return
        path = Path(path)
        key = os.path.normcase(os.path.abspath(path))
        if key in seen or not path.is_file() or is_store_stub(str(path)):
            return
        seen.add(key)
        found.append((str(path), where))

    add(setup_python, "Set Up Worker")
    add(environ.get("SAPE_GEOM_PYTHON", "").strip().strip("\"'"), "SAPE_GEOM_PYTHON")
    for var, where in (("VIRTUAL_ENV", "active virtual environment"), ("CONDA_PREFIX", "active conda environment")):
        if environ.get(var):
            add(_env_python(Path(environ[var]), windows), where)
    root = find_source_root()
    if root is not None:
        add(_env_python(root / ".venv", windows), f"virtual environment in {root}")
    for folder in (".virtualenvs", ".venvs", "venvs", ".local/share/virtualenvs"):
        for env in sorted((home / folder).glob("*")) if (home / folder).is_dir() else ():
            add(_env_python(env, windows), f"virtual environment {env.name}")
    conda_envs: list[Path] = []
    try:
        conda_envs += [
            Path(line.strip())
            for line in (home / ".conda" / "environments.txt").read_text().splitlines()
            if line.strip()
        ]
    except OSError:
        pass
    for name in CONDA_DIRS:
        base = home / name
        if base.is_dir():
            conda_envs += [base, *sorted((base / "envs").glob("*"))]
    for prefix in ("/opt/conda", "/opt/miniconda3", "/opt/anaconda3", "/opt/homebrew/Caskroom/miniforge/base"):
        if Path(prefix).is_dir():
            conda_envs += [Path(prefix), *sorted((Path(prefix) / "envs").glob("*"))]
    for env in conda_envs:
        add(_env_python(env, windows), f"conda environment {env.name}")
    for version in sorted((home / ".pyenv" / "versions").glob("*"), key=_version_key, reverse=True):
        add(version / "bin" / "python", f"pyenv {version.name}")
    system = ["/opt/homebrew/bin/python3", "/usr/local/bin/python3", "/usr/bin/python3"]
    system += sorted(
        map(str, Path("/Library/Frameworks/Python.framework/Versions").glob("3.*/bin/python3")), reverse=True
    )
    if windows:
        local = Path(environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "Programs" / "Python"
        system += sorted(map(str, local.glob("Python3*/python.exe")), reverse=True)
    for path in system:
        add(path, "installed Python")
    for name in ("python3", "python"):
        add(shutil.which(name, path=environ.get("PATH")), "PATH")
    return found[:MAX_CANDIDATES]


def _version_key(path: Path) -> tuple:
    return tuple(int(p) if p.isdigit() else -1 for p in path.name.replace("-", ".").split("."))


class CandidateChecks:
    """Runs the worker's check job on each candidate in turn, in a thread; read ``results`` any time."""

    def __init__(self, candidates: list[tuple[str, str]], timeout: float = 90.0):
        self.candidates = list(candidates)
        self.results: dict[str, dict] = {}
        self.timeout = timeout
        self.done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sape-geom-find-pythons", daemon=True)

    def start(self) -> CandidateChecks:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done

    def _run(self) -> None:
        try:
            for python, _where in self.candidates:
                if self._stop.is_set():
                    break
                self.results[python] = {"checking": True}
                with tempfile.TemporaryDirectory(prefix="sape_find_") as tmp:
                    self.results[python] = run_check(python, tmp, timeout=self.timeout)
        finally:
            self.done = True


def summary(info: dict | None) -> tuple[str, bool]:
    """``(text, usable)`` for one candidate's check result, for the preferences list."""
    if not info:
        return "waiting", False
    if info.get("checking"):
        return "checking...", False
    if info.get("ok"):
        devices = ", ".join(info.get("devices") or []) or "none"
        return f"Python {info.get('python')}, torch {info.get('torch')}, {devices}", True
    return str(info.get("reason") or "cannot run the worker"), False
