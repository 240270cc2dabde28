"""One batch per output folder: a lock the operating system drops when its holder dies, even by kill -9.

The lock is ``<out>/.sape-geom-batch.lock``, locked with ``flock`` (``msvcrt.locking`` on Windows) for as
long as the batch runs; it holds the holder's process id, host and start time for the error message.
A killed batch leaves the file but not the lock, so the next run starts at once.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from ...errors import InputError
from ...fileio import output_error

LOCK_NAME = ".sape-geom-batch.lock"


class BatchLocked(InputError):
    """Another batch is writing into the same output folder."""


class BatchLock:
    """``with BatchLock(out_dir):`` holds the folder's lock or raises :class:`BatchLocked` at once."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> BatchLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise output_error(self.path, error) from None
        if not _try_lock(fd):
            holder = _read(fd)
            os.close(fd)
            raise BatchLocked(
                f"another sape-geom batch ({holder or 'unknown process'}) is writing into "
                f"{self.path.parent}; wait for it to finish or choose another output folder"
            )
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(
                fd,
                f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(),
            )
        except OSError:  # a full disk must not hide the real error the batch will report
            pass
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # no fcntl
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _read(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 200).decode(errors="replace").strip()
    except OSError:
        return ""
