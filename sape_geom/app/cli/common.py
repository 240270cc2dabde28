"""What the sub-commands share: training options, progress callbacks, reporting, usage errors."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ...config import COMPILE_MODES, ENCODINGS
from ...errors import InputError
from ...fileio import json_safe


def common_training_args(parser: argparse.ArgumentParser, sigma: float | None = None) -> None:
    parser.add_argument("--encoding", default="sape", choices=ENCODINGS, help="input encoding (default: sape)")
    parser.add_argument("--sigma", type=float, default=sigma, help="Fourier-feature scale sigma")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def compile_arg(parser: argparse.ArgumentParser, default: str) -> None:
    """``--compile``: whether training steps run through torch.compile (None: ``default``)."""
    parser.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        default=None,
        help=f"run training steps through torch.compile (default: {default}; auto = on a CUDA GPU only)",
    )


def callbacks(args: argparse.Namespace, description: str):
    from ...nn.trainer import TrainCallbacks, console_progress

    if args.quiet:
        return TrainCallbacks()
    return TrainCallbacks(on_progress=console_progress(description), progress_every=1)


def report(args: argparse.Namespace, payload: dict, lines: Sequence[str]) -> None:
    if args.json:
        print(json.dumps(json_safe(payload), sort_keys=True))
    else:
        for line in lines:
            print(line)


def usage_error(message: str) -> InputError:
    """An error about the command line itself (printed as one line, exit status 2)."""
    return InputError(message)
