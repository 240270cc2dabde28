"""File output helpers: atomic writes (outputs appear complete or not at all), output checks made
before any work starts, one-line reasons for write errors, and strict JSON values."""

from __future__ import annotations

import errno
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import OutputError

TEMP_SUFFIX = ".tmp"
"""Temporary files are ``.<name>.<random>.tmp`` next to their final name (a killed run can leave some)."""
_REASONS = {
    errno.ENOSPC: "no space left on the disk",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENAMETOOLONG: "the name is too long",
}


def describe_os_error(error: OSError) -> str:
    """A short reason for an ``OSError``, without the temporary file names it may carry."""
    if isinstance(error, OutputError):
        return str(error)
    reason = _REASONS.get(error.errno or -1) or error.strerror or str(error) or type(error).__name__
    return reason if error.filename is None else f"{reason}: {error.filename}"


def output_error(path: str | os.PathLike, error: OSError) -> OutputError:
    """``error`` (raised while writing ``path``) as one line naming ``path``, its errno kept."""
    if isinstance(error, OutputError):
        return error
    reason = _REASONS.get(error.errno or -1) or error.strerror or str(error)
    if isinstance(error, (FileExistsError, NotADirectoryError)):
        blocker = _first_existing(Path(path).parent)
        if not blocker.is_dir():
            reason = f"{blocker} is a file, not a folder"
    out = OutputError(f"cannot write {path}: {reason}")
    out.errno = error.errno
    return out


def _first_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: str | os.PathLike, *, folder: bool = False) -> Path:
    """Raise :class:`OutputError` now, before any work, unless ``path`` (a file, or with ``folder`` a
    folder) can be written: every existing folder on its way must be a folder, and the nearest one must
    take a new file (permissions, a read-only disk). Creates nothing that stays."""
    path = Path(path)
    if not folder and path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"cannot write into {path}: it is a file, not a folder")
    nearest = _first_existing(path if folder else path.parent)
    if not nearest.is_dir():
        raise OutputError(f"cannot write {path}: {nearest} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".sape-geom-check.", suffix=TEMP_SUFFIX, dir=nearest)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise output_error(path, error) from None
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it to ``path``.

    ``write`` must not infer the format from the file name (the temporary name ends in ``.tmp``).
    On any failure the temporary file is removed and the error propagates; an ``OSError`` (no space, a
    read-only disk, a file where a folder should be) becomes an :class:`OutputError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as error:
        raise output_error(path, error) from None
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException as error:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(error, OSError):
            raise output_error(path, error) from None
        raise
    return path


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like one of :func:`atomic_write`'s temporary files."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TEMP_SUFFIX) and name.count(".") >= 3


def save_npz(path: str | os.PathLike, **arrays: Any) -> Path:
    """``numpy.savez`` of ``arrays`` at exactly ``path``, atomically (given a name, numpy would add ``.npz``)."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    return atomic_write(path, write)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_safe(value: Any) -> Any:
    """``value`` with numpy/torch scalars as Python numbers and non-finite floats as None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    item = getattr(value, "item", None)  # as hasattr: only an AttributeError means there is none
    if callable(item):
        return json_safe(item())
    return value
