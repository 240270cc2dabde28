"""2D image regression runs shared by the encodings, sigma and sample-rate experiments (docs/method.md §6.2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import IMAGES, Context, to_uint8


@dataclass(frozen=True)
class ImageSettings:
    images: tuple[str, ...]
    max_size: int
    steps: int

    def describe(self) -> str:
        return (
            f"Images {', '.join(self.images)} (longer edge {self.max_size} px), {self.steps} full-batch Adam steps "
            f"at LR 1e-3, 256x3 ReLU MLP, 256 frequencies, seed 0; PSNR on the held-out pixels."
        )


def image_settings(size: str, images: tuple[str, ...] | None = None) -> ImageSettings:
    if size == "paper":
        return ImageSettings(images or ("chibi.jpg", "fence.jpg", "snow.jpg"), 512, 5000)
    return ImageSettings(images or ("chibi.jpg", "fence.jpg"), 96, 300)


#: Figures show the small-size images at twice their size (exact pixel doubling).
def tile_height(settings: ImageSettings) -> int | None:
    return 2 * settings.max_size if settings.max_size <= 128 else 256


def fit(
    path: str, encoding: str, ctx: Context, settings: ImageSettings, sigma: float = 20.0, sample_rate: float = 0.25
):
    """One seeded fit; returns (metrics dict, reconstruction uint8, target uint8, training-pixel image uint8)."""
    from sape_geom import config as C
    from sape_geom.tasks.regression import ImageFitConfig, fit_image

    cfg = C.replace(
        ImageFitConfig(max_size=settings.max_size, steps=settings.steps, sample_rate=sample_rate, device=ctx.device),
        **{"field.encoding": encoding, "field.sigma": float(sigma)},
    )
    result = fit_image(IMAGES / path, cfg)
    metrics = dict(result.metrics, image=path, height=result.target.shape[0], width=result.target.shape[1])
    masked = np.where(result.train_mask[..., None], result.target, 1.0)
    return metrics, to_uint8(result.reconstruction), to_uint8(result.target), to_uint8(masked)
