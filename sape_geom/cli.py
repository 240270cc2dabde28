"""Command line: ``sape-geom <command>`` (also ``python -m sape_geom``).

Each command is a thin face over a library call. Errors the user can fix print one line on stderr and
exit with status 2; a cancel (Ctrl-C) exits with 130. Progress bars go to stderr so ``--json`` output on
stdout stays one parseable object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable, Sequence

from .config import ENCODINGS
from .errors import SapeGeomError, TrainingCancelled

Handler = Callable[[argparse.Namespace], int]


def _common_training_args(parser: argparse.ArgumentParser, sigma: float | None = None) -> None:
    parser.add_argument("--encoding", default="sape", choices=ENCODINGS, help="input encoding (default: sape)")
    parser.add_argument("--sigma", type=float, default=sigma, help="Fourier-feature scale sigma")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _callbacks(args: argparse.Namespace, description: str):
    from .trainer import TrainCallbacks, console_progress

    if args.quiet:
        return TrainCallbacks()
    return TrainCallbacks(on_progress=console_progress(description), progress_every=1)


def _report(args: argparse.Namespace, payload: dict, lines: Sequence[str]) -> None:
    if args.json:
        print(json.dumps(_json_safe(payload), sort_keys=True))
    else:
        for line in lines:
            print(line)


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):
        return _json_safe(value.item())
    return value


# ---------------------------------------------------------------------------------------- fit-signal
def _add_fit_signal(sub) -> None:
    parser = sub.add_parser("fit-signal", help="fit the 1D chirp of the method's first experiment")
    _common_training_args(parser, sigma=5.0)
    parser.add_argument("--out", "-o", default="out/signal", help="output folder (default out/signal)")
    parser.set_defaults(handler=_run_fit_signal)


def _run_fit_signal(args: argparse.Namespace) -> int:
    from . import config as cfg
    from .regression import SignalFitConfig, fit_signal, save_signal_plot

    changes = {"field.encoding": args.encoding, "seed": args.seed, "device": args.device}
    if args.sigma is not None:
        changes["field.sigma"] = args.sigma
    if args.steps is not None:
        changes["steps"] = args.steps
    config = cfg.replace(SignalFitConfig(), **changes)
    fit = fit_signal(config, _callbacks(args, "fit-signal"))
    plot = Path(args.out) / "signal.png"
    save_signal_plot(fit, plot)
    payload = {**fit.metrics, "plot": str(plot)}
    _report(args, payload, [f"dense MSE {fit.metrics['dense_mse']:.3g}, train MSE {fit.metrics['train_mse']:.3g}", f"wrote {plot}"])
    return 0


# ----------------------------------------------------------------------------------------- fit-image
def _add_fit_image(sub) -> None:
    parser = sub.add_parser("fit-image", help="fit an image from a fraction of its pixels (2D regression)")
    parser.add_argument("image", help="image file (PNG, JPG, ...)")
    _common_training_args(parser, sigma=20.0)
    parser.add_argument("--sample-rate", type=float, default=0.25, help="fraction of pixels to train on (default 0.25)")
    parser.add_argument("--out", "-o", default="out/image", help="output folder (default out/image)")
    parser.add_argument("--gif", action="store_true", help="also write an animation of the optimisation")
    parser.add_argument("--max-size", type=int, default=512, help="resize so the longer edge is at most this")
    parser.set_defaults(handler=_run_fit_image)


def _run_fit_image(args: argparse.Namespace) -> int:
    from . import config as cfg
    from .regression import ImageFitConfig, fit_image, load_image, save_image_outputs

    changes = {
        "field.encoding": args.encoding,
        "seed": args.seed,
        "device": args.device,
        "sample_rate": args.sample_rate,
        "max_size": args.max_size,
    }
    if args.sigma is not None:
        changes["field.sigma"] = args.sigma
    if args.steps is not None:
        changes["steps"] = args.steps
    config = cfg.replace(ImageFitConfig(), **changes)
    image = load_image(args.image, config.max_size)
    frame_every = max(1, config.steps // 50) if args.gif else 0
    fit = fit_image(image, config, _callbacks(args, "fit-image"), frame_every=frame_every)
    paths = save_image_outputs(fit, args.out, gif=args.gif)
    m = fit.metrics
    _report(
        args,
        {**m, "outputs": paths},
        [
            f"PSNR all pixels {m['psnr_all']:.2f} dB, held-out {m['psnr_held_out']:.2f} dB, train {m['psnr_train']:.2f} dB"
            f" ({m['steps']} steps, {m['seconds']:.1f} s)",
            f"wrote {', '.join(paths.values())}",
        ],
    )
    return 0


# ------------------------------------------------------------------------------------------- parser
def _optional_commands() -> list[Callable]:
    """Commands of the task modules; each module adds its own sub-parsers."""
    adders: list[Callable] = []
    try:
        from .occupancy_cli import add_commands as add_occupancy
    except ImportError:  # pragma: no cover - during development only
        add_occupancy = None
    if add_occupancy:
        adders.append(add_occupancy)
    try:
        from .silhouette import add_deform_command
    except ImportError:  # pragma: no cover
        add_deform_command = None
    if add_deform_command:
        adders.append(add_deform_command)
    return adders


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sape-geom",
        description="Neural shape fitting with Spatially-Adaptive Progressive Encoding (SAPE).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for adder in _optional_commands():
        adder(sub)
    _add_fit_image(sub)
    _add_fit_signal(sub)
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
    except (TrainingCancelled, KeyboardInterrupt):
        print("sape-geom: cancelled", file=sys.stderr)
        return 130
    except SapeGeomError as error:
        print(f"sape-geom {args.command}: error: {error}", file=sys.stderr)
        return 2


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())
