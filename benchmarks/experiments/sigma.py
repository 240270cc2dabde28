"""Experiment 2: robustness to the frequency range: FF vs SAPE+FF at σ = 1, 20, 40."""

from __future__ import annotations

from .common import Context, image_grid, markdown_table, save_png, write_outputs
from .image_tasks import fit, image_settings, tile_height

SIGMAS = (1.0, 20.0, 40.0)
METHODS = (("FF", "ff"), ("SAPE+FF", "sape"))


def run(ctx: Context) -> dict:
    settings = image_settings(ctx.size)
    folder = ctx.folder("sigma")
    records = []
    tiles: list[list] = [[] for _ in SIGMAS]
    labels: list[list] = [[] for _ in SIGMAS]
    for image in settings.images:
        for row, sigma in enumerate(SIGMAS):
            for label, encoding in METHODS:
                metrics, recon, target, _ = fit(image, encoding, ctx, settings, sigma=sigma)
                metrics.update(method=label)
                records.append(metrics)
                print(f"# {image} σ={sigma:g} {label}: {metrics['psnr_held_out']:.2f} dB", flush=True)
                if encoding == METHODS[0][1]:
                    tiles[row].append(target)
                    labels[row].append(f"{image.split('.')[0]} target\nσ = {sigma:g}")
                tiles[row].append(recon)
                labels[row].append(f"{label} σ={sigma:g}\n{metrics['psnr_held_out']:.2f} dB")
    rows = []
    for image in settings.images:
        for sigma in SIGMAS:
            ff, sape = (
                next(r for r in records if r["image"] == image and r["sigma"] == sigma and r["method"] == m)
                for m, _ in METHODS
            )
            rows.append(
                [
                    image,
                    f"{sigma:g}",
                    ff["psnr_held_out"],
                    sape["psnr_held_out"],
                    sape["psnr_held_out"] - ff["psnr_held_out"],
                ]
            )
    table = markdown_table(["image", "σ", "FF PSNR (dB)", "SAPE+FF PSNR (dB)", "SAPE − FF (dB)"], rows, 2)
    preamble = settings.describe() + " 25 % of the pixels train."
    save_png(image_grid(tiles, labels, tile_height=tile_height(settings)), folder / "figure.png")
    write_outputs(
        folder, "Robustness to the frequency range σ (2D image regression)", preamble, table, {"runs": records}, ctx
    )
    return {"runs": records}
