"""One exception family for everything a user can get wrong.

Every public entry point raises :class:`InputError` (or a subclass) with a message that names the
problem and the value found, so the command line can print one clear line instead of a traceback.
"""

from __future__ import annotations


class SapeGeomError(Exception):
    """Base class of the errors this package raises on purpose."""


class InputError(SapeGeomError, ValueError):
    """A file, array or option given by the user cannot be used as it is."""


class ConfigError(InputError):
    """A configuration has an unknown key or a value outside its allowed range."""


class EmptySurfaceError(SapeGeomError):
    """A fitted field has no surface worth writing (too little training): nothing is written."""


class TrainingCancelled(SapeGeomError):
    """The user asked to stop; not a failure, callers show no error for it."""


class OutputError(SapeGeomError, OSError):
    """An output cannot be written (a folder on its way is a file, no permission, a read-only or full
    disk); the message names the file and the reason. Still an ``OSError`` for code that catches those."""
