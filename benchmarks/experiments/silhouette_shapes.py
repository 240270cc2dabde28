"""Generated silhouettes for the silhouette experiment: smooth and detailed stretches, holes, two parts.

Each is drawn into a 512 px PNG, so they go through the same image pipeline (threshold, marching squares,
pixel staircase) as the official silhouettes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 512


def _polar(radius, centre=(256.0, 256.0), scale=200.0, n=4000) -> list[tuple[float, float]]:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    r = radius(t)
    return list(zip(centre[0] + scale * r * np.cos(t), centre[1] - scale * r * np.sin(t)))


def gear(t: np.ndarray) -> np.ndarray:
    """A smooth upper half (half an ellipse, 1 x 0.6: not the circle the curve starts from) and square teeth
    on the lower half: where SAPE should and should not open its higher frequencies."""
    ellipse = 1.0 / np.sqrt(np.cos(t) ** 2 + (np.sin(t) / 0.6) ** 2)
    return np.where(np.sin(t) > 0, ellipse, 0.9 + 0.1 * (np.sin(14 * t) > 0))


def star(t: np.ndarray) -> np.ndarray:
    """Five sharp spikes joined by nearly straight flanks."""
    return 0.55 + 0.9 * np.abs((t * 5 / (2 * np.pi)) % 1 - 0.5)


def write_shapes(folder: Path) -> dict[str, Path]:
    """Draw the shapes into ``folder``; returns name -> PNG path."""
    from PIL import Image, ImageDraw, ImageFont

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}

    def draw(name: str, polygons: list[tuple[list, int]], text: str | None = None) -> None:
        img = Image.new("L", (SIZE, SIZE), 255)
        d = ImageDraw.Draw(img)
        for poly, fill in polygons:
            d.polygon(poly, fill=fill)
        if text:
            d.text((SIZE / 2, SIZE / 2), text, font=ImageFont.load_default(size=380), fill=0, anchor="mm")
        paths[name] = folder / f"{name}.png"
        img.save(paths[name])

    draw("gear", [(_polar(gear), 0)])
    draw("star", [(_polar(star), 0)])
    draw("letter-B", [], text="B")  # one outline, two holes
    draw(
        "two-blobs",
        [
            (_polar(lambda t: 0.9 + 0.1 * np.cos(3 * t), (150, 256), 100), 0),
            (_polar(lambda t: 1 + 0.15 * np.sin(2 * t), (370, 256), 90), 0),
        ],
    )
    return paths
