"""Experiment 1: encodings compared on 2D image regression at 25 % sampling (held-out PSNR)."""

from __future__ import annotations

import time

from .common import Context, image_grid, markdown_table, save_png, write_outputs
from .image_tasks import fit, image_settings, tile_height

#: (label, encoding, sigma); sigma is ignored by none / pe / siren.
METHODS = (
    ("none", "none", 20.0),
    ("PE", "pe", 20.0),
    ("FF σ=5", "ff", 5.0),
    ("FF σ=25", "ff", 25.0),
    ("RBF", "rbf", 20.0),
    ("periodic RBF", "prbf", 20.0),
    ("SIREN", "siren", 20.0),
    ("global progressive", "progressive", 20.0),
    ("SAPE", "sape", 20.0),
)


PER_ROW = 6


def run(ctx: Context) -> dict:
    settings = image_settings(ctx.size)
    folder = ctx.folder("encodings")
    rows, records, tiles, labels = [], [], [], []
    for image in settings.images:
        row_tiles, row_labels = [], []
        for label, encoding, sigma in METHODS:
            t0 = time.perf_counter()
            metrics, recon, target, masked = fit(image, encoding, ctx, settings, sigma=sigma)
            metrics.update(method=label, wall_s=time.perf_counter() - t0)
            records.append(metrics)
            print(f"# {image} {label}: held-out PSNR {metrics['psnr_held_out']:.2f} dB", flush=True)
            if not row_tiles:
                row_tiles += [target, masked]
                row_labels += ["target", "training pixels (25 %)"]
            row_tiles.append(recon)
            row_labels.append(f"{label}\n{metrics['psnr_held_out']:.2f} dB")
        for start in range(0, len(row_tiles), PER_ROW):  # wrap each image's tiles over rows of PER_ROW
            tiles.append(row_tiles[start : start + PER_ROW])
            labels.append(row_labels[start : start + PER_ROW])
    header = (
        ["method"]
        + [f"{img} PSNR held-out (dB)" for img in settings.images]
        + ["mean", "PSNR train (mean)", "s per fit"]
    )
    for label, _, _ in METHODS:
        mine = [r for r in records if r["method"] == label]
        held = [r["psnr_held_out"] for r in mine]
        rows.append(
            [
                label,
                *held,
                sum(held) / len(held),
                sum(r["psnr_train"] for r in mine) / len(mine),
                sum(r["seconds"] for r in mine) / len(mine),
            ]
        )
    best = max(rows, key=lambda r: r[len(settings.images) + 1])
    table = markdown_table(header, rows, 2) + f"\n\nBest mean held-out PSNR: **{best[0]}**."
    preamble = (
        settings.describe() + " 25 % of the pixels train; σ=20 for RBF, periodic RBF, global progressive and SAPE."
    )
    save_png(image_grid(tiles, labels, tile_height=tile_height(settings)), folder / "figure.png")
    write_outputs(folder, "Encodings on 2D image regression (25 % of pixels)", preamble, table, {"runs": records}, ctx)
    return {"runs": records}
