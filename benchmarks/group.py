"""Many images at once (`--group N`): images per minute, and whether the results match fitting alone.

    cd benchmarks
    python group.py                                    # 16 crops of 256², N = 1, 4, 16 (a GPU job)
    python group.py --count 8 --size 96 --groups 1 4 --iters 150 --tag cpu   # this CPU (minutes)
    python group.py --smoke                            # 2 synthetic 32² images, N = 1, 2 (seconds)

Issue 9: "images of the same size can be fitted together as one batched problem ... Measure
images per minute for N = 1, 4, 16 ... and show the results are the same as fitting each alone
with the same seeds". For each N this runs the real CLI once over a folder of ``--count``
centre crops (Set9, then texture_widths, in name order):
`dip denoise FOLDER --sigma 25 --add-noise --stop fixed --iters K --width 64 --group N --json`, so every
image gets the same fixed budget and the only difference between the runs is the grouping.

Per N: the command's wall time (process start, reading and writing included), the fitting time
(per group, the slowest member's seconds, summed over groups), images per minute from each,
and how far each image's PSNR lies from its N = 1 fit (mean and largest |Δ|). The grouped fits
are not bit-identical to lone ones: the batched convolutions add up in another order, and
DIP's training, chaotic, carries the rounding on.

Writes benchmarks/results/group/group[-<tag>].json and .md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
from common import (
    DATA,
    SMOKE_ITERS,
    SMOKE_SIZE,
    add_smoke_argument,
    centre_crop_file,
    device_name,
    mean,
    parse_smoke,
    results_folder,
    synthetic_card,
    write_results,
)


def crops(count: int, size: int, folder: Path, smoke: bool = False) -> list[Path]:
    """The first ``count`` images of Set9 then texture_widths, centre-cropped to ``size``
    (a smoke run: ``count`` synthetic images of that size)."""
    if smoke:
        paths = [folder / f"card{i}.png" for i in range(count)]
        for seed, path in enumerate(paths):
            iio.imwrite(path, synthetic_card(size, seed))
        return paths
    sources = sorted((DATA / "set9").glob("*.png")) + sorted((DATA / "texture_widths").rglob("*.png"))
    if len(sources) < count:
        raise SystemExit(f"only {len(sources)} images under {DATA}; need {count}")
    return [centre_crop_file(p, size, folder) for p in sources[:count]]


def run(folder: Path, out: Path, group: int, args: argparse.Namespace) -> tuple[float, list[dict]]:
    """One `dip denoise` over the folder; its wall seconds and records (in input order)."""
    import json

    cmd = [sys.executable, "-m", "dipcli", "denoise", str(folder), "--sigma", "25", "--add-noise",
           "--stop", "fixed", "--iters", str(args.iters), "--group", str(group), "--tile", "0",
           "--width", str(args.width),
           "--output-dir", str(out), "--json", "--quiet", "--force", "--precision", args.precision]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return wall, sorted(records, key=lambda r: r["input"])


def fitting_seconds(records: list[dict]) -> float:
    """Sum over groups of the slowest member's seconds (a group's members end together)."""
    total, k = 0.0, 0
    ordered = sorted(records, key=lambda r: r["input"])  # the batch fills groups in input order
    while k < len(ordered):
        size = ordered[k].get("group", 1)
        total += max(r["seconds"] for r in ordered[k:k + size])
        k += size
    return total


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=16, help="images (default 16)")
    ap.add_argument("--size", type=int, default=256, help="centre crop side (default 256)")
    ap.add_argument("--groups", type=int, nargs="+", default=[1, 4, 16], help="values of N")
    ap.add_argument("--iters", type=int, default=300, help="fixed budget per image (default 300)")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--width", type=int, default=64,
                    help="net width (default 64: the CPU default, and what the committed GPU run used)")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default benchmarks/results/group)")
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap, argv)
    if smoke:  # two synthetic images, fitted alone and as one group, a few iterations
        args.count, args.size, args.groups, args.iters = 2, SMOKE_SIZE, [1, 2], SMOKE_ITERS
    args.out = results_folder(args.out, smoke, "group")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        crops(args.count, args.size, folder, smoke)
        alone = None
        for n in args.groups:
            wall, records = run(folder, Path(tmp) / f"out{n}", n, args)
            fit = fitting_seconds(records)
            psnr = [r["psnr"] for r in records]
            if alone is None:
                alone = psnr
            delta = [abs(a - b) for a, b in zip(psnr, alone, strict=True)]
            rows.append({
                "group": n, "images": len(records), "wall_seconds": round(wall, 2),
                "fit_seconds": round(fit, 2), "images_per_minute": round(60 * len(records) / wall, 2),
                "images_per_minute_fitting": round(60 * len(records) / fit, 2),
                "mean_psnr": mean(psnr), "mean_abs_delta_psnr": mean(delta), "max_abs_delta_psnr": max(delta),
                "sizes": sorted({r.get("group", 1) for r in records}), "precision": records[0]["precision"],
                "psnr": psnr,
            })
            print(f"N={n}: {rows[-1]['images_per_minute']:.1f} images/min (wall), "
                  f"{rows[-1]['images_per_minute_fitting']:.1f} fitting; mean PSNR {mean(psnr):.2f}, "
                  f"max |Δ| vs N={args.groups[0]} {max(delta):.3f} dB", flush=True)
    device = device_name()
    base = rows[0]
    lines = [
        f"`dip denoise` over {args.count} centre crops of {args.size}² (Set9, then texture_widths), "
        f"σ = 25 added, a fixed budget of {args.iters} iterations each, `--group N`; the default "
        f"net at width {args.width}, precision {base['precision']}. Device: {device}. Wall: the whole "
        "command (start-up, reading, writing); fitting: the fits alone. Δ PSNR: each image "
        f"against its fit with N = {base['group']}.",
        "",
        "| N | images/min (wall) | images/min (fitting) | speed-up (fitting) | wall s | mean PSNR | "
        "mean \\|Δ\\| dB | max \\|Δ\\| dB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        speedup = base["fit_seconds"] / r["fit_seconds"]
        lines.append(f"| {r['group']} | {r['images_per_minute']:.1f} | "
                     f"{r['images_per_minute_fitting']:.1f} | {speedup:.2f}× | {r['wall_seconds']:.1f} | "
                     f"{r['mean_psnr']:.2f} | "
                     f"{r['mean_abs_delta_psnr']:.3f} | {r['max_abs_delta_psnr']:.3f} |")
    payload = {"device": device, "count": args.count, "size": args.size, "iters": args.iters,
               "width": args.width, "rows": rows}
    tag = f"-{args.tag}" if args.tag else ""
    write_results(f"group{tag}", payload, "\n".join(lines), folder=args.out)
    return payload


if __name__ == "__main__":
    main()
