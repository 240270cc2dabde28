"""The method's two validation tasks: 1D signal and 2D image regression (docs/method.md §6.1, §6.2).

Both fit an :class:`~sape_geom.nn.model.EncodedField` with an MSE loss on a full batch. The image task holds
out the pixels it does not train on and reports PSNR on all pixels and on the held-out ones (the reference
code computes no metric; this is our protocol).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import FieldConfig, ProgressConfig
from ..errors import ConfigError, InputError
from ..fileio import atomic_write
from ..nn.model import EncodedField
from ..nn.trainer import TrainCallbacks, TrainStats, choose_device, seed_everything, train
from ..viz.colors import coolwarm


# --------------------------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class SignalFitConfig:
    """1D chirp regression (docs/method.md §6.1, §7): 26 samples, 32x2 MLP, sigma 5, eps 1e-5, 20k steps."""

    field: FieldConfig = FieldConfig(sigma=5.0, hidden_width=32, hidden_layers=2)
    progress: ProgressConfig = ProgressConfig(epsilon=1e-5, grid_resolution=12)
    steps: int = 20_000
    lr: float | None = None
    """None = 1e-5 for Fourier-feature encodings, 1e-4 otherwise (docs/method.md §6.1)."""
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        _check_steps(self.steps)

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-5 if self.field.base_encoding == "ff" else 1e-4


@dataclass(frozen=True)
class ImageFitConfig:
    """2D image regression (docs/method.md §6.2, §7): 25 % of pixels, 256x3 MLP, sigma 20, eps 1e-3, 5k steps."""

    field: FieldConfig = FieldConfig(sigma=20.0, hidden_width=256, hidden_layers=3)
    progress: ProgressConfig = ProgressConfig(epsilon=1e-3, grid_resolution=128)
    steps: int = 5_000
    lr: float = 1e-3
    sample_rate: float = 0.25
    max_size: int = 512
    """Images whose longer edge is at least this are resized (bicubic) so that edge equals it."""
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        _check_steps(self.steps)
        if not (0 < self.sample_rate <= 1):
            raise ConfigError(f"sample rate must be in (0, 1], got {self.sample_rate}")
        if self.max_size < 2:
            raise ConfigError(f"max_size must be >= 2, got {self.max_size}")


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or steps <= 0:
        raise ConfigError(f"steps must be a positive integer, got {steps!r}")


# ----------------------------------------------------------------------------------------------- 1D
def chirp(x: np.ndarray) -> np.ndarray:
    """The reference target ``0.5 sin(0.01 (2x + 4)^4.5)`` on [-1, 1]."""
    return 0.5 * np.sin(0.01 * (2 * x + 4) ** 4.5)


def chirp_training_inputs() -> np.ndarray:
    """The 26 reference samples: -0.96, -0.88, ..., 0.96 and 0.99."""
    return np.append(np.arange(25) * 0.08 - 0.96, 0.99)


@dataclass
class SignalFit:
    model: EncodedField
    train_x: np.ndarray
    dense_x: np.ndarray
    dense_target: np.ndarray
    dense_prediction: np.ndarray
    sample_open_fraction: np.ndarray
    stats: TrainStats
    metrics: dict = field(default_factory=dict)


def fit_signal(config: SignalFitConfig = SignalFitConfig(), callbacks: TrainCallbacks | None = None) -> SignalFit:
    """Fit the 1D chirp from 26 samples; report MSE on the samples and on a dense grid of 3000 points."""
    generator = seed_everything(config.seed)
    device = choose_device(config.device)
    train_x = chirp_training_inputs()
    x = torch.tensor(train_x, dtype=torch.float32, device=device)[:, None]
    y = torch.tensor(chirp(train_x), dtype=torch.float32, device=device)[:, None]
    model = EncodedField(1, 1, config.field, config.progress, config.steps, generator).to(device)
    stats = train(model, lambda _: (x, y), _mse, lr=config.learning_rate, steps=config.steps, callbacks=callbacks)
    dense_x = np.linspace(-1, 1, 3000)
    dense = torch.tensor(dense_x, dtype=torch.float32, device=device)[:, None]
    prediction = model.evaluate(dense)[:, 0].cpu().numpy()
    target = chirp(dense_x)
    metrics = {
        "train_mse": float(((model.evaluate(x) - y) ** 2).mean()),
        "dense_mse": float(np.mean((prediction - target) ** 2)),
        "steps": stats.steps,
        "seconds": stats.seconds,
    }
    return SignalFit(model, train_x, dense_x, target, prediction, model.open_fraction(x).cpu().numpy(), stats, metrics)


def save_signal_plot(fit: SignalFit, path: str | Path, size: tuple[int, int] = (900, 420)) -> None:
    """PNG: dense target (grey), fit (blue), training samples coloured by their open fraction."""
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    values = np.concatenate([fit.dense_target, fit.dense_prediction])
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low or 1.0)
    low, high = low - pad, high + pad

    def to_pixels(xs: np.ndarray, ys: np.ndarray) -> list[tuple[float, float]]:
        px = (xs + 1) / 2 * (width - 40) + 20
        py = (1 - (ys - low) / (high - low)) * (height - 60) + 20
        return list(zip(px.tolist(), py.tolist()))

    draw.line(to_pixels(fit.dense_x, fit.dense_target), fill=(150, 150, 150), width=3)
    draw.line(to_pixels(fit.dense_x, fit.dense_prediction), fill=(40, 90, 200), width=2)
    colours = coolwarm(fit.sample_open_fraction)
    for (px, py), colour in zip(to_pixels(fit.train_x, chirp(fit.train_x)), colours):
        draw.ellipse((px - 5, py - 5, px + 5, py + 5), fill=tuple(int(c) for c in colour), outline="black")
    draw.text(
        (20, height - 30), "grey: target   blue: fit   dots: samples (blue = few, red = many frequencies)", fill="black"
    )
    _save_image(image, path)


# ----------------------------------------------------------------------------------------------- 2D
def load_image(path: str | Path, max_size: int = 512) -> np.ndarray:
    """(H, W, C) float32 in [0, 1]; C = 1 for grey images (all channels equal), else 3 (alpha dropped)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InputError(f"cannot read {path} as an image ({error.__class__.__name__})") from error
    if image.width < 2 or image.height < 2:
        raise InputError(f"image {path} is empty or too small ({image.width}x{image.height} pixels)")
    longer = max(image.size)
    if longer >= max_size:
        scale = max_size / longer
        image = image.resize(
            (max(2, int(image.width * scale)), max(2, int(image.height * scale))), Image.Resampling.BICUBIC
        )
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    if np.allclose(pixels[..., 0], pixels[..., 1]) and np.allclose(pixels[..., 0], pixels[..., 2]):
        pixels = pixels[..., :1]
    return pixels


def pixel_coordinates(height: int, width: int) -> np.ndarray:
    """(H*W, 2) coordinates; feature 0 is the row, feature 1 the column, both spanning [-1, 1] (docs/method.md §6.2)."""
    rows, cols = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    return np.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.float32)


def psnr(prediction: np.ndarray, target: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for values in [0, 1] (prediction clipped first)."""
    mse = float(np.mean((np.clip(prediction, 0, 1) - target) ** 2))
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


@dataclass
class ImageFit:
    model: EncodedField
    target: np.ndarray
    """(H, W, C) in [0, 1]."""
    train_mask: np.ndarray
    """(H, W) bool: pixels used for training."""
    reconstruction: np.ndarray
    open_fraction: np.ndarray
    """(H, W) fraction of encoding channels open per pixel (all 1 without a controller)."""
    stats: TrainStats
    metrics: dict = field(default_factory=dict)
    frames: list[np.ndarray] = field(default_factory=list)


def fit_image(
    image: np.ndarray | str | Path,
    config: ImageFitConfig = ImageFitConfig(),
    callbacks: TrainCallbacks | None = None,
    frame_every: int = 0,
) -> ImageFit:
    """Fit an image from a random ``sample_rate`` of its pixels; PSNR on all and on held-out pixels."""
    target = load_image(image, config.max_size) if isinstance(image, (str, Path)) else np.asarray(image, np.float32)
    if target.ndim == 2:
        target = target[..., None]
    if target.ndim != 3 or target.shape[0] < 2 or target.shape[1] < 2 or not np.isfinite(target).all():
        raise InputError(f"image array must be (H, W, C) with finite values, got shape {target.shape}")
    height, width, channels = target.shape
    generator = seed_everything(config.seed)
    device = choose_device(config.device)
    coords = torch.tensor(pixel_coordinates(height, width), device=device)
    colours = torch.tensor(target.reshape(-1, channels), device=device)
    count = max(1, int(config.sample_rate * height * width))
    train_index = torch.randperm(height * width, generator=generator)[:count].to(device)
    train_x, train_y = coords[train_index], colours[train_index]
    model = EncodedField(2, channels, config.field, config.progress, config.steps, generator).to(device)

    frames: list[np.ndarray] = []
    callbacks = callbacks or TrainCallbacks()
    if frame_every:
        user_snapshot = callbacks.on_snapshot

        def capture(step: int, live: EncodedField) -> None:
            frames.append(_render(model, coords, height, width))
            if user_snapshot:
                user_snapshot(step, live)

        callbacks = TrainCallbacks(
            callbacks.on_progress, callbacks.should_cancel, frame_every, capture, callbacks.progress_every
        )
    stats = train(model, lambda _: (train_x, train_y), _mse, lr=config.lr, steps=config.steps, callbacks=callbacks)
    reconstruction = _render(model, coords, height, width)
    held_out = np.ones(height * width, dtype=bool)
    held_out[train_index.cpu().numpy()] = False
    flat_prediction, flat_target = reconstruction.reshape(-1, channels), target.reshape(-1, channels)
    metrics = {
        "psnr_all": psnr(flat_prediction, flat_target),
        "psnr_train": psnr(flat_prediction[~held_out], flat_target[~held_out]),
        "psnr_held_out": psnr(flat_prediction[held_out], flat_target[held_out]) if held_out.any() else math.nan,
        "steps": stats.steps,
        "seconds": round(stats.seconds, 3),
        "steps_per_second": round(stats.steps_per_second, 3),
        "encoding": config.field.encoding,
        "sigma": config.field.sigma,
        "sample_rate": config.sample_rate,
    }
    open_fraction = torch.cat([model.open_fraction(c) for c in coords.split(32768)]).cpu().numpy()
    return ImageFit(
        model,
        target,
        ~held_out.reshape(height, width),
        reconstruction,
        open_fraction.reshape(height, width),
        stats,
        metrics,
        frames,
    )


def save_image_outputs(fit: ImageFit, out_dir: str | Path, gif: bool = False) -> dict[str, str]:
    """Write reconstruction, heat-map, target and training-pixel PNGs (and the GIF); returns their paths."""
    from PIL import Image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "reconstruction": out / "reconstruction.png",
        "heatmap": out / "heatmap.png",
        "target": out / "target.png",
        "target_masked": out / "target_masked.png",
    }
    _save_image(Image.fromarray(_to_uint8(fit.reconstruction)), paths["reconstruction"])
    _save_image(Image.fromarray(coolwarm(fit.open_fraction)), paths["heatmap"])
    _save_image(Image.fromarray(_to_uint8(fit.target)), paths["target"])
    masked = np.where(fit.train_mask[..., None], fit.target, 1.0)
    _save_image(Image.fromarray(_to_uint8(masked)), paths["target_masked"])
    if gif and fit.frames:
        paths["animation"] = out / "optimisation.gif"
        frames = [Image.fromarray(_to_uint8(frame)).convert("RGB") for frame in fit.frames + [fit.reconstruction]]
        atomic_write(
            paths["animation"],
            lambda tmp: frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0),
        )
    return {name: str(path) for name, path in paths.items()}


# ------------------------------------------------------------------------------------------- helpers
def _mse(prediction: torch.Tensor, target: torch.Tensor, _x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    per_sample = (prediction - target).square().mean(dim=1)
    return per_sample.mean(), per_sample


def _render(model: EncodedField, coords: torch.Tensor, height: int, width: int) -> np.ndarray:
    return model.evaluate(coords).cpu().numpy().reshape(height, width, -1)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    image = np.clip(image, 0, 1)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    return np.round(image * 255).astype(np.uint8)


def _save_image(image, path: str | Path) -> None:
    """Write to a temporary name, then rename: a crash never leaves half an image."""
    image_format = Path(path).suffix.lstrip(".").upper().replace("JPG", "JPEG") or "PNG"
    atomic_write(path, lambda tmp: image.save(tmp, format=image_format))
