"""Helpers shared by the experiments: sizes, paths, output writing (table.md, results.json, figure.png)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO.parent / "shared" / "assets" / "sape-official"
IMAGES = ASSETS / "images"
MESHES = ASSETS / "meshes"
SILHOUETTES = ASSETS / "silhouettes"
SIZES = ("small", "paper")


def bunny_path() -> Path:
    """The Stanford bunny that pymeshlab ships (found without importing pymeshlab)."""
    spec = importlib.util.find_spec("pymeshlab")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pymeshlab is not installed: its sample bunny is needed")
    return Path(next(iter(spec.submodule_search_locations))) / "tests" / "sample_meshes" / "bunny.obj"


@dataclass
class Context:
    """What every experiment gets: the size, its output folder and the device name."""

    size: str
    out: Path
    device: str
    threads: int

    def folder(self, name: str) -> Path:
        path = self.out / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def setup_torch(threads: int, device: str) -> str:
    import torch

    from sape_geom.nn.trainer import choose_device

    torch.set_num_threads(threads)
    return str(choose_device(device))


#: A dry run's fit: a few hundred steps on small point sets (seconds instead of minutes).
QUICK_FIT = {"steps": 200, "points_per_set": 20_000, "num_sets": 1, "batch_size": 2000}


def script_context(description: str, quick_help: str, name: str, argv: list[str] | None) -> tuple[bool, Context, Path]:
    """The command line of a benchmark script with a dry run (``--out``, ``--quick``): (quick, its context on
    2 CPU threads, its results folder ``<out>/<name>``)."""
    import argparse

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "results")
    ap.add_argument("--quick", action="store_true", help=quick_help)
    args = ap.parse_args(argv)
    ctx = Context("quick" if args.quick else "small", args.out, setup_torch(2, "cpu"), 2)
    return args.quick, ctx, ctx.folder(name)


def machine_line(ctx: Context) -> str:
    import torch

    dev = ctx.device
    if dev.startswith("cuda"):
        dev = f"{dev} ({torch.cuda.get_device_name(0)})"
    return (
        f"Machine: {os.cpu_count()}-core {platform.machine()} CPU, device {dev}, "
        f"torch {torch.__version__} with {ctx.threads} CPU thread(s). Size: {ctx.size}."
    )


def fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(v, digits) for v in row) + " |")
    return "\n".join(lines)


def json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, Path):
        return str(value)
    return value


def write_outputs(folder: Path, title: str, preamble: str, table: str, results: dict, ctx: Context) -> None:
    """``table.md`` (title, settings line, machine line, table) and ``results.json``."""
    text = f"### {title}\n\n{preamble}\n\n{machine_line(ctx)}\n\n{table}\n"
    _atomic(folder / "table.md", text)
    payload = {
        "title": title,
        "size": ctx.size,
        "device": ctx.device,
        "threads": ctx.threads,
        "settings": preamble,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        **results,
    }
    _atomic(folder / "results.json", json.dumps(json_safe(payload), indent=2) + "\n")
    print(text, flush=True)


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


# ------------------------------------------------------------------------------------------ figures
def to_uint8(image: np.ndarray) -> np.ndarray:
    image = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    if image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.round(image * 255).astype(np.uint8)


def image_grid(
    tiles: Sequence[Sequence[np.ndarray | None]],
    labels: Sequence[Sequence[str]] | None = None,
    row_titles: Sequence[str] | None = None,
    tile_height: int | None = None,
    label_height: int = 26,
    row_title_width: int = 0,
    pad: int = 4,
):
    """A PIL image: rows of uint8 tiles (H, W, 3) with a two-line caption above each tile."""
    from PIL import Image, ImageDraw

    tile_height = tile_height or max(t.shape[0] for row in tiles for t in row if t is not None)
    scaled: list[list[Image.Image | None]] = []
    for row in tiles:
        out_row = []
        for t in row:
            if t is None:
                out_row.append(None)
                continue
            im = Image.fromarray(t)
            w = max(1, round(im.width * tile_height / im.height))
            out_row.append(im.resize((w, tile_height), Image.NEAREST if im.height < tile_height else Image.LANCZOS))
        scaled.append(out_row)
    ncol = max(len(r) for r in scaled)
    col_w = [
        max((r[c].width for r in scaled if c < len(r) and r[c] is not None), default=tile_height) for c in range(ncol)
    ]
    width = row_title_width + sum(col_w) + pad * (ncol + 1)
    height = len(scaled) * (tile_height + label_height + pad) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    y = pad
    for r, row in enumerate(scaled):
        x = pad + row_title_width
        if row_titles:
            draw.text((4, y + label_height + tile_height // 2 - 6), row_titles[r].replace("σ", "sigma"), fill="black")
        for c, im in enumerate(row):
            if labels and r < len(labels) and c < len(labels[r]):
                for li, line in enumerate(labels[r][c].replace("σ", "sigma").split("\n")[:2]):
                    draw.text((x + 2, y + 1 + 12 * li), line, fill="black")
            if im is not None:
                canvas.paste(im, (x, y + label_height))
            x += col_w[c] + pad
        y += tile_height + label_height + pad
    return canvas


def render_tiles(meshes: Sequence[Any], size: int) -> list[np.ndarray]:
    """The meshes rendered side by side (same camera and scale), cut into one (size, size, 3) tile each."""
    from sape_geom.viz.render import render_mesh_image

    image = render_mesh_image(list(meshes), size=size)
    return [image[:, i * size : (i + 1) * size] for i in range(len(meshes))]


def save_png(image, path: Path, max_kb: int = 300) -> Path:
    """Save a PIL image as PNG; shrink it (and finally quantise it) until it is under ``max_kb``."""
    from PIL import Image

    tmp = path.with_name(path.name + ".tmp")
    current = image
    for _ in range(6):
        current.save(tmp, format="PNG", optimize=True)
        if tmp.stat().st_size <= max_kb * 1024:
            break
        quantised = current.convert("P", palette=Image.ADAPTIVE, colors=256)
        quantised.save(tmp, format="PNG", optimize=True)
        if tmp.stat().st_size <= max_kb * 1024:
            break
        current = current.resize((int(current.width * 0.8), int(current.height * 0.8)), Image.LANCZOS)
    tmp.replace(path)
    return path


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
