"""Experiment 3: robustness to the sample rate (10-40 % of pixels): FF vs SAPE, held-out PSNR curve."""

from __future__ import annotations

from .common import Context, markdown_table, write_outputs
from .image_tasks import fit, image_settings

RATES = (0.10, 0.20, 0.30, 0.40)
METHODS = (("FF σ=20", "ff"), ("SAPE", "sape"))


def run(ctx: Context) -> dict:
    settings = image_settings(ctx.size)
    folder = ctx.folder("sample_rate")
    records = []
    for image in settings.images:
        for rate in RATES:
            for label, encoding in METHODS:
                metrics, *_ = fit(image, encoding, ctx, settings, sigma=20.0, sample_rate=rate)
                metrics.update(method=label)
                records.append(metrics)
                print(f"# {image} {rate:.0%} {label}: {metrics['psnr_held_out']:.2f} dB", flush=True)
    rows = []
    for image in settings.images:
        for rate in RATES:
            ff, sape = (
                next(r for r in records if r["image"] == image and r["sample_rate"] == rate and r["method"] == m)
                for m, _ in METHODS
            )
            rows.append(
                [
                    image,
                    f"{rate:.0%}",
                    ff["psnr_held_out"],
                    sape["psnr_held_out"],
                    sape["psnr_held_out"] - ff["psnr_held_out"],
                ]
            )
    table = markdown_table(["image", "pixels trained", "FF PSNR (dB)", "SAPE PSNR (dB)", "SAPE − FF (dB)"], rows, 2)
    _plot(records, settings.images, folder / "figure.png")
    write_outputs(
        folder,
        "Robustness to the sample rate (2D image regression)",
        settings.describe() + " σ = 20.",
        table,
        {"runs": records},
        ctx,
    )
    return {"runs": records}


def _plot(records: list[dict], images, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(4.2 * len(images), 3.4), squeeze=False)
    for ax, image in zip(axes[0], images):
        for (label, _), style in zip(METHODS, ("o--", "s-")):
            pts = sorted(
                (r["sample_rate"], r["psnr_held_out"]) for r in records if r["image"] == image and r["method"] == label
            )
            ax.plot([100 * p[0] for p in pts], [p[1] for p in pts], style, label=label)
        ax.set_title(image)
        ax.set_xlabel("pixels used for training (%)")
        ax.set_ylabel("held-out PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
