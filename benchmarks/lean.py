"""What makes the lean net fast: the compact net, then one change at a time, on tiles of F16.

    cd benchmarks
    python lean.py                      # ~25 min on 2 CPU cores
    python lean.py --tiles 0 --steps compact lean --tag quick
    python lean.py --smoke              # the lean step on a 32² synthetic image, 10 iterations

`dip denoise` fits a 512² image as four tiles of about 272² (`--tile auto`), so the time of a
512² denoise is four tile fits. This fits 272² tiles of F16 (top-left and bottom-right, σ = 25,
noise seed 0) as `dip denoise --sigma 25` would, with the discrepancy stop and a budget of 1,200
iterations, for five configurations, each adding one change to the one before:

1. ``compact``: the compact net as it was the denoising default (reflection padding, a 3×3
   layer after the last upsampling, the DIP paper's input jitter 1/30, average decay 0.99).
2. ``+ warm average``: the average's decay warms up (FitConfig.ema_warmup = 9).
3. ``+ half jitter``: input jitter 1/60.
4. ``+ zero padding``.
5. ``lean``: + a 1×1 layer after the last upsampling — the lean preset with its fit settings.

Writes benchmarks/results/lean/lean[-<tag>].json and .md: per tile and step, the iteration the stop
fired at, the PSNR written, the peak PSNR seen, wall seconds and seconds per iteration.
``--smoke``: the last step on a synthetic image, into a temporary folder (or ``--out``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from common import (
    DATA,
    SMOKE_ITERS,
    SMOKE_SIZE,
    add_smoke_argument,
    device_name,
    mean,
    parse_smoke,
    results_folder,
    smoke_image,
    write_results,
)

from dipcli import Denoise, FitConfig, NetSpec, build_net, fit
from dipcli.api.plan import reg_noise  # internal: plans as `dip` does, to score what it runs
from dipcli.optim.stopping import make_stop  # internal: the stop rules are what this compares

SIGMA = 25
SIDE = 272
BUDGET = 1200
F16 = DATA / "denoising" / "F16_GT.png"
TILES = {0: (0, 0), 1: (512 - SIDE, 512 - SIDE)}  # top-left, bottom-right (F16 is 512²)

COMPACT, LEAN = NetSpec("compact"), NetSpec("lean")
STEPS = {  # name: (net, jitter, EMA warm-up)
    "compact": (COMPACT, 1 / 30, 0.0),
    "+ warm average": (COMPACT, 1 / 30, 9.0),
    "+ half jitter": (COMPACT, 1 / 60, 9.0),
    "+ zero padding": (replace(COMPACT, padding="zeros"), 1 / 60, 9.0),
    # as dipcli.api.plan.fit_config sets up the lean net for `dip denoise --sigma 25`
    "lean": (LEAN, reg_noise(SIGMA / 255) * LEAN.architecture.jitter, LEAN.architecture.ema_warmup),
}
# The last step is the lean preset itself: the compact net with both knobs turned.
assert replace(LEAN.resolved(), arch="compact") == replace(
    COMPACT, padding="zeros", top_kernel=1).resolved()


def run(step: str, tile: int, budget: int = BUDGET, smoke: bool = False) -> dict:
    """One step on one tile (a smoke run: on a synthetic image, whatever the tile)."""
    spec, jitter, warm = STEPS[step]
    top, left = TILES[tile]
    side = SMOKE_SIZE if smoke else SIDE
    if smoke:
        clean = smoke_image(side)
    else:
        clean = iio.imread(F16)[top:top + side, left:left + side].astype(np.float32) / 255
    problem = Denoise(SIGMA / 255)
    noisy = problem.observe(clean, 0)
    config = FitConfig(iters=budget, reg_noise=jitter, ema_warmup=warm, precision="auto",
                       stop=make_stop("auto", problem.noise, budget))
    start = time.perf_counter()
    res = fit(problem, build_net(spec, 3, seed=0), noisy, config, reference=clean)
    seconds = time.perf_counter() - start
    peak = max(res.history, key=lambda h: h["psnr_ema"])
    written = float(10 * np.log10(1 / np.mean((res.ema - clean) ** 2)))
    row = {"step": step, "tile": tile, "window": [top, left, side, side], "psnr": written,
           "peak_psnr": peak["psnr_ema"], "peak_iteration": peak["iteration"],
           "iterations": res.iterations, "stop_reason": res.stop_reason, "seconds": seconds,
           "sec_per_iter": seconds / res.iterations, "precision": res.precision}
    print(f"{step} tile {tile}: {written:.2f} dB at {res.iterations} ({res.stop_reason}), "
          f"{seconds:.0f} s", flush=True)
    return row


def table(rows: list[dict], device: str, side: int = SIDE, budget: int = BUDGET) -> str:
    lines = [f"Lean net ablation: {side}² tiles of F16, σ = {SIGMA}, discrepancy stop, budget {budget}, "
             f"one change per row. Device: {device}.", "",
             "| step | tile | PSNR at stop (dB) | peak (it) | stop at | seconds | s/iter |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['step']} | {r['tile']} | {r['psnr']:.2f} | {r['peak_psnr']:.2f} "
                     f"({r['peak_iteration']}) | {r['iterations']} ({r['stop_reason']}) | "
                     f"{r['seconds']:.0f} | {r['sec_per_iter']:.3f} |")
    lines += ["", "| step | mean PSNR (dB) | mean seconds per tile | × faster than compact |",
              "|---|---|---|---|"]
    base = mean(r["seconds"] for r in rows if r["step"] == "compact") if any(
        r["step"] == "compact" for r in rows) else None
    for step in dict.fromkeys(r["step"] for r in rows):
        mine = [r for r in rows if r["step"] == step]
        secs = mean(r["seconds"] for r in mine)
        speed = f"{base / secs:.2f}×" if base else "—"
        lines.append(f"| {step} | {mean(r['psnr'] for r in mine):.2f} | {secs:.0f} | {speed} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, nargs="+", default=sorted(TILES), choices=sorted(TILES))
    ap.add_argument("--steps", nargs="+", default=list(STEPS), choices=list(STEPS))
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default benchmarks/results/lean)")
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap)
    side, budget = SIDE, BUDGET
    if smoke:  # the last step (the lean preset) on one synthetic tile, a few iterations
        args.steps, args.tiles, side, budget = args.steps[-1:], args.tiles[:1], SMOKE_SIZE, SMOKE_ITERS
    folder = results_folder(args.out, smoke, "lean")
    rows = [run(step, tile, budget, smoke) for step in args.steps for tile in args.tiles]
    device = device_name()
    name = "lean" + (f"-{args.tag}" if args.tag else "")
    write_results(name, {"sigma": SIGMA, "side": side, "budget": budget, "device": device,
                         "rows": rows}, table(rows, device, side, budget), folder)


if __name__ == "__main__":
    main()
