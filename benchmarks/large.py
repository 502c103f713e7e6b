"""Images of any size: denoise a 4096×4096 synthetic image here and report the peak memory.

    python benchmarks/large.py                                 # default net, --tile auto
    python benchmarks/large.py --arch original --iters 1       # tiles chosen for memory alone
    python benchmarks/large.py --smoke                         # a 64² image in 32² tiles (seconds)

A fit keeps every activation of the net for the backward pass, so the default net would need
about 64 GB for a 4096² image in one piece. With `--tile auto` (the default), `dip` cuts an image
that large into tiles: for the default net, tiles of ~256² (the size it reaches good quality
soonest on); for any other net, the largest tiles
whose estimated memory (`dipcli.engine.memory`) fits in what the machine has free. This measures memory
and whether the run completes, not quality: each tile gets only `--iters` iterations (a
full-quality run of a 4096² image takes about 64 times as long as a 512² one).

Adds a row to benchmarks/results/large/large.json and .md (or to those in ``--out``): the estimate for
the whole image, the memory free, the tile `dip` chose and the estimate for it, the number of
tiles, the seconds, and the peak resident memory of the `dip` process (from the operating system,
after it exits).
"""

from __future__ import annotations

import argparse
import json
import resource
from pathlib import Path

import imageio.v3 as iio
import torch
from common import (
    SMOKE_SIZE,
    add_smoke_argument,
    device_name,
    parse_smoke,
    results_folder,
    run_dip,
    synthetic_card,
    tempdir,
    write_results,
)

from dipcli import NetSpec, resolve_device, resolve_precision

# internal: the memory model is what this measures
from dipcli.engine.memory import available_bytes, fit_bytes, gib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--iters", type=int, default=3, help="iterations per tile")
    ap.add_argument("--tile", default="auto", help="passed to dip --tile")
    ap.add_argument("--arch", default="compact", help="passed to dip --arch")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default benchmarks/results/large)")
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap)
    if smoke:  # four tiles of the smoke size, one iteration each
        args.size, args.tile, args.iters = 2 * SMOKE_SIZE, str(SMOKE_SIZE), 1
    folder = results_folder(args.out, smoke, "large")

    work = tempdir()
    src = work / f"card{args.size}.png"
    iio.imwrite(src, synthetic_card(args.size))
    device = resolve_device("auto")
    spec = NetSpec(args.arch).resolved()
    need = fit_bytes(spec, args.size, args.size, 3, resolve_precision("auto", device))
    free = available_bytes(device)
    rec = run_dip(["denoise", str(src), "--sigma", "25", "--add-noise", "--seed", "0",
                   "--iters", str(args.iters), "--stop", "fixed", "--tile", args.tile, "--arch", args.arch,
                   "-o", str(work / "out.png")])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kB on Linux
    if torch.cuda.is_available():
        peak_note = " (peak RSS is host memory; the GPU's is not measured here)"
    else:
        peak_note = ""
    tile_need = fit_bytes(spec, rec["tile"], rec["tile"], 3, resolve_precision("auto", device)) \
        if rec.get("tile") else need
    row = {"size": args.size, "arch": args.arch, "iters_per_tile": args.iters,
           "whole_image_estimate_bytes": need, "tile_estimate_bytes": tile_need,
           "free_bytes": free, "tile": rec.get("tile"), "tiles": rec.get("tiles"),
           "seconds": rec["seconds"], "peak_rss_bytes": peak, "psnr": rec["psnr"],
           "status": rec["status"]}
    stored = folder / "large.json"
    rows = json.loads(stored.read_text())["rows"] if stored.exists() else []
    rows = [r for r in rows if (r["size"], r["arch"], r.get("tile_arg")) != (args.size, args.arch, args.tile)]
    rows.append({**row, "tile_arg": args.tile})
    lines = [
        f"`dip denoise` on synthetic images (σ = 25) with a few iterations per tile: memory, not "
        f"quality. Device: {device_name()}{peak_note}.",
        "",
        "| image | net | --tile | whole-image estimate | free | tile chosen | tiles | estimate per tile "
        "| seconds | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        free = r["free_bytes"]
        lines.append(
            f"| {r['size']}×{r['size']} | {r['arch']} | {r['tile_arg']} "
            f"| {gib(r['whole_image_estimate_bytes'])} "
            f"| {gib(free) if free else '—'} | {r['tile'] or 'none'} | {r['tiles'] or 1} "
            f"| {gib(r['tile_estimate_bytes'])} | {r['seconds']:.0f} | {gib(r['peak_rss_bytes'])} |")
    write_results("large", {"device": device_name(), "rows": rows}, "\n".join(lines), folder)


if __name__ == "__main__":
    main()
