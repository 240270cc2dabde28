"""One exception family for everything a user can get wrong.

Every public entry point raises :class:`InputError` (or a subclass) with a message that names the
problem and the value found, so the command line can print one clear line instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable


class SapeGeomError(Exception):
    """Base class of the errors this package raises on purpose."""


class InputError(SapeGeomError, ValueError):
    """A file, array or option given by the user cannot be used as it is."""


class ConfigError(InputError):
    """A configuration has an unknown key or a value outside its allowed range."""


class EmptySurfaceError(SapeGeomError):
    """A fitted field has no surface worth writing (too little training): nothing is written."""


class Cancelled(SapeGeomError):
    """The user asked to stop (labelling, training, extraction or smoothing); not a failure, callers
    show no error for it."""


TrainingCancelled = Cancelled
"""The name :class:`Cancelled` had while only training could be stopped; code catching it still works."""


def check_cancel(should_cancel: Callable[[], bool] | None, what: str) -> None:
    """Raise :class:`Cancelled` ("``what`` cancelled") when ``should_cancel`` says so."""
    if should_cancel is not None and should_cancel():
        raise Cancelled(f"{what} cancelled")


class OutputError(SapeGeomError, OSError):
    """An output cannot be written (a folder on its way is a file, no permission, a read-only or full
    disk); the message names the file and the reason. Still an ``OSError`` for code that catches those."""
