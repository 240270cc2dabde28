"""Command line: ``sape-geom <command>`` (also ``python -m sape_geom``).

Each command is a thin face over a library call, one module per group of commands. Errors the user can
fix, and every read or write error (a full or read-only disk), print one line on stderr and exit with
status 2; a cancel (Ctrl-C) exits with 130. Progress bars go to
stderr so ``--json`` output on stdout stays one parseable object.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ...errors import Cancelled, SapeGeomError
from ...fileio import describe_os_error
from . import batch, deform, deform_mesh, fit, regression

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    from ... import __version__

    parser = argparse.ArgumentParser(
        prog="sape-geom",
        description="Neural shape fitting with Spatially-Adaptive Progressive Encoding (SAPE).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for adder in (
        fit.add_demo,
        fit.add_fit,
        fit.add_extract,
        batch.add_batch,
        deform.add_deform,
        deform_mesh.add_deform_mesh,
        regression.add_fit_image,
        regression.add_fit_signal,
    ):
        adder(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except (Cancelled, KeyboardInterrupt):
        print("sape-geom: cancelled", file=sys.stderr)
        return 130
    except SapeGeomError as error:
        print(f"sape-geom {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a read or write the library did not name itself: still one line
        print(f"sape-geom {args.command}: error: {describe_os_error(error)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"sape-geom {args.command}: error: out of memory; try a lower --resolution", file=sys.stderr)
        return 2


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())
