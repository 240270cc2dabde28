"""``sape-geom fit-signal`` and ``fit-image``: the method's 1D and 2D regression tasks."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import callbacks, common_training_args, report


def add_fit_signal(sub) -> None:
    parser = sub.add_parser("fit-signal", help="fit the 1D chirp of the method's first experiment")
    common_training_args(parser, sigma=5.0)
    parser.add_argument("--out", "-o", default="out/signal", help="output folder (default out/signal)")
    parser.set_defaults(handler=_run_fit_signal)


def _run_fit_signal(args: argparse.Namespace) -> int:
    from ... import config as cfg
    from ...tasks.regression import SignalFitConfig, fit_signal, save_signal_plot

    changes = {"field.encoding": args.encoding, "seed": args.seed, "device": args.device}
    if args.sigma is not None:
        changes["field.sigma"] = args.sigma
    if args.steps is not None:
        changes["steps"] = args.steps
    config = cfg.replace(SignalFitConfig(), **changes)
    fit = fit_signal(config, callbacks(args, "fit-signal"))
    plot = Path(args.out) / "signal.png"
    save_signal_plot(fit, plot)
    payload = {**fit.metrics, "plot": str(plot)}
    report(
        args,
        payload,
        [f"dense MSE {fit.metrics['dense_mse']:.3g}, train MSE {fit.metrics['train_mse']:.3g}", f"wrote {plot}"],
    )
    return 0


def add_fit_image(sub) -> None:
    parser = sub.add_parser("fit-image", help="fit an image from a fraction of its pixels (2D regression)")
    parser.add_argument("image", help="image file (PNG, JPG, ...)")
    common_training_args(parser, sigma=20.0)
    parser.add_argument("--sample-rate", type=float, default=0.25, help="fraction of pixels to train on (default 0.25)")
    parser.add_argument("--out", "-o", default="out/image", help="output folder (default out/image)")
    parser.add_argument("--gif", action="store_true", help="also write an animation of the optimisation")
    parser.add_argument("--max-size", type=int, default=512, help="resize so the longer edge is at most this")
    parser.set_defaults(handler=_run_fit_image)


def _run_fit_image(args: argparse.Namespace) -> int:
    from ... import config as cfg
    from ...tasks.regression import ImageFitConfig, fit_image, load_image, save_image_outputs

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
    fit = fit_image(image, config, callbacks(args, "fit-image"), frame_every=frame_every)
    paths = save_image_outputs(fit, args.out, gif=args.gif)
    m = fit.metrics
    report(
        args,
        {**m, "outputs": paths},
        [
            f"PSNR all pixels {m['psnr_all']:.2f} dB, held-out {m['psnr_held_out']:.2f} dB, train {m['psnr_train']:.2f} dB"
            f" ({m['steps']} steps, {m['seconds']:.1f} s)",
            f"wrote {', '.join(paths.values())}",
        ],
    )
    return 0
