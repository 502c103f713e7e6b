"""Denoising benchmark: `dip denoise --add-noise` with its defaults on F16 and Set9.

    python benchmarks/denoise.py                  # full images (slow on a CPU: hours)
    python benchmarks/denoise.py --crop 256 --exclude F16_GT --tag set9-256   # Set9 crops (CPU)
    python benchmarks/denoise.py --only F16_GT --tag f16-512       # F16_GT.png at 512×512 only
    python benchmarks/denoise.py --only F16_GT --dip-args="--tile 0" --tag f16-512-whole
    python benchmarks/denoise.py --smoke           # a 32² synthetic image, 10 iterations (seconds)

Writes benchmarks/results/denoise/denoise[-<tag>].json and .md: PSNR, SSIM, iterations, wall seconds,
parameters and device per image, and seconds per iteration of the default net beside the
original 5×128 DIP network on the same image (timed for a few iterations only).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from common import (
    DATA,
    SMOKE_ITERS,
    add_smoke_argument,
    centre_crop_file,
    device_name,
    mean,
    parse_smoke,
    results_folder,
    run_dip,
    smoke_files,
    tempdir,
    write_results,
)


def images(only: str | None, exclude: str | None = None, smoke: bool = False) -> list[Path]:
    if smoke:
        return [smoke_files(tempdir())[0]]
    f16 = DATA / "denoising" / "F16_GT.png"
    set9 = sorted((DATA / "set9").glob("*.png"))
    chosen = [f16, *set9]
    if only:
        chosen = [p for p in chosen if only.lower() in p.name.lower()]
    if exclude:
        chosen = [p for p in chosen if exclude.lower() not in p.name.lower()]
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crop", type=int, default=0, help="centre crop size (0 = full image)")
    ap.add_argument("--sigma", type=float, default=25)
    ap.add_argument("--only", help="run only images whose name contains this")
    ap.add_argument("--exclude", help="skip images whose name contains this")
    ap.add_argument("--original-iters", type=int, default=10,
                    help="iterations to time the original 5×128 net for (0: do not time it)")
    ap.add_argument("--tag", default="", help="suffix for the results file names")
    ap.add_argument("--dip-args", default="", help="more options for `dip denoise`, e.g. "
                    "--dip-args=\"--tile 0\" (fit whole images)")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default benchmarks/results/denoise)")
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap)
    if smoke:  # a synthetic image, whole, and a few iterations of each net
        args.crop, args.original_iters = 0, 2
        args.dip_args = f"{args.dip_args} --iters {SMOKE_ITERS}"
    folder = results_folder(args.out, smoke, "denoise")

    work = tempdir()
    rows = []
    for path in images(args.only, args.exclude, smoke):
        src = centre_crop_file(path, args.crop, work)
        out = work / f"{path.stem}_out.png"
        rec = run_dip(["denoise", str(src), "--sigma", str(args.sigma), "--add-noise",
                       "--seed", "0", "-o", str(out), *shlex.split(args.dip_args)])
        orig = run_dip(["denoise", str(src), "--sigma", str(args.sigma), "--add-noise", "--seed",
                        "0", "--arch", "original", "--iters", str(args.original_iters),
                        "-o", str(work / "orig.png")]) if args.original_iters else None
        row = {
            "image": path.name, "size": src and list(iio_shape(src)),
            "psnr": rec["psnr"], "ssim": rec["ssim"], "iterations": rec["iterations"],
            "seconds": rec["seconds"], "params": rec["params"], "arch": rec["arch"],
            # a tiled fit's seconds add up its tiles' while its iterations are the longest tile's
            "width": rec["width"],
            "sec_per_iter": None if rec.get("tiles") else rec["seconds"] / rec["iterations"],
            "original_params": orig and orig["params"],
            "original_sec_per_iter": orig and orig["seconds"] / orig["iterations"],
            "stop_reason": rec["stop_reason"], "best_iteration": rec["best_iteration"],
            "precision": rec.get("precision"),
            "peak_psnr": rec.get("peak_psnr"), "peak_iteration": rec.get("peak_iteration"),
            "tile": rec.get("tile"), "tiles": rec.get("tiles"),
        }
        rows.append(row)
        print(f"{row['image']}: {row['psnr']:.2f} dB, {row['seconds']:.0f} s", flush=True)

    device = device_name()
    lines = [
        f"Denoising, σ = {args.sigma:g}, seed 0, `dip denoise` defaults"
        f"{f' with {args.dip_args}' if args.dip_args else ''}"
        f"{f', {args.crop}×{args.crop} centre crops' if args.crop else ', full images'}. "
        f"Device: {device}.",
        "",
        "| image | size | tiles | PSNR (dB) | SSIM | peak PSNR seen (iteration) "
        "| stop: rule @ kept/run | seconds | s/iter | params | original 5×128 s/iter |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        # a tiled fit has no one curve: its peak is not tracked
        peak = "—" if r["peak_psnr"] is None else f"{r['peak_psnr']:.2f} ({r['peak_iteration']})"
        tiles = f"{r['tiles']} × {r['tile']}²" if r.get("tiles") else "whole"
        spi = "—" if r["sec_per_iter"] is None else f"{r['sec_per_iter']:.3f}"
        orig_spi = "—" if r["original_sec_per_iter"] is None else f"{r['original_sec_per_iter']:.3f}"
        lines.append(
            f"| {r['image']} | {r['size'][1]}×{r['size'][0]} | {tiles} | {r['psnr']:.2f} "
            f"| {r['ssim']:.4f} | {peak} | {r['stop_reason']} @ {r['best_iteration']}/{r['iterations']} "
            f"| {r['seconds']:.0f} | {spi} | {r['params']:,} | {orig_spi} |")
    if rows:
        peaks = [r["peak_psnr"] for r in rows if r["peak_psnr"] is not None]
        lines.append(f"| **mean** | | | **{mean(r['psnr'] for r in rows):.2f}** "
                     f"| {mean(r['ssim'] for r in rows):.4f} "
                     f"| {f'{mean(peaks):.2f}' if len(peaks) == len(rows) else ''} | "
                     f"| {mean(r['seconds'] for r in rows):.0f} | | | |")
    payload = {"sigma": args.sigma, "crop": args.crop, "device": device, "rows": rows}
    tag = f"-{args.tag}" if args.tag else ""
    write_results(f"denoise{tag}", payload, "\n".join(lines), folder)


def iio_shape(path):
    import imageio.v3 as iio

    return iio.imread(path).shape[:2]


if __name__ == "__main__":
    main()
