"""Which net should `dip denoise` use by default? Quality per second on the F16 crop.

    python benchmarks/defaults.py                      # 256×256 centre crop of F16, σ = 25
    python benchmarks/defaults.py --seconds 600 --size 512

Each configuration is fitted for the same wall-clock budget (not the same number of
iterations: what a user waits for is time). Records the PSNR of the averaged output every 25
iterations against time, and writes benchmarks/results/defaults.json and .md.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from common import DATA, device_name, write_results

from dipcli.fit import Check, FitConfig, fit
from dipcli.io import read_image
from dipcli.nets import NetSpec, build_net, count_params
from dipcli.problems import Denoise

CONFIGS = {
    "compact w32": NetSpec("compact", width=32),
    "compact w64": NetSpec("compact", width=64),
    "compact w128": NetSpec("compact", width=128),
    "4 scales w32, skip 4": NetSpec("original", width=32, scales=4),
    "original 5×128": NetSpec("original"),
}


@dataclass
class TimeLimit:
    """A stop rule that ends the fit after a wall-clock budget."""

    seconds: float
    name: str = "time"

    def __post_init__(self) -> None:
        self.start = time.perf_counter()

    def observe(self, check: Check) -> bool:
        return False

    def should_stop(self) -> bool:
        return time.perf_counter() - self.start > self.seconds

    def describe(self) -> str:
        return f"{self.seconds:.0f} s budget"


class Curve:
    def __init__(self) -> None:
        self.points: list[tuple[int, float, float]] = []

    def on_event(self, e) -> None:
        self.points.append((e.iteration, round(e.elapsed, 2), round(e.psnr_ema, 3)))


def psnr_at(points, seconds: float) -> float | None:
    before = [p for t, p in ((t, p) for _, t, p in points) if t <= seconds]
    return max(before) if before else None


def time_to(points, db: float) -> float | None:
    return next((t for _, t, p in points if p >= db), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=240)
    ap.add_argument("--only", nargs="*", help="configuration names to run")
    args = ap.parse_args()

    clean = read_image(DATA / "denoising" / "F16_GT.png").pixels
    h, w = clean.shape[:2]
    s = min(args.size, h, w)
    clean = np.ascontiguousarray(clean[(h - s) // 2:(h + s) // 2, (w - s) // 2:(w + s) // 2])
    problem = Denoise(25 / 255)
    noisy = problem.observe(clean, seed=0)

    rows = []
    for name, spec in CONFIGS.items():
        if args.only and name not in args.only:
            continue
        spec = spec.resolved()
        net = build_net(spec, 3, seed=0)
        curve = Curve()
        cfg = FitConfig(iters=100_000, check_every=25, stop=TimeLimit(args.seconds))
        res = fit(problem, net, noisy, cfg, input_depth=spec.input_depth, reference=clean,
                  subscribers=[curve])
        pts = curve.points
        best = max(pts, key=lambda p: p[2])
        row = {
            "config": name, "params": count_params(net), "iterations": res.iterations,
            "sec_per_iter": res.seconds / res.iterations,
            "psnr_60s": psnr_at(pts, 60), "psnr_120s": psnr_at(pts, 120),
            "psnr_end": pts[-1][2], "best_psnr": best[2], "best_iteration": best[0],
            "time_to_28db": time_to(pts, 28), "time_to_30db": time_to(pts, 30), "curve": pts,
        }
        rows.append(row)
        print(f"{name}: {row['best_psnr']:.2f} dB best @ {best[0]} it, "
              f"{row['sec_per_iter']:.3f} s/it", flush=True)

    def f(x, fmt="{:.2f}"):
        return "—" if x is None else fmt.format(x)

    lines = [
        f"F16 {s}×{s} centre crop, σ = 25, seed 0, {args.seconds:.0f} s of fitting per net. "
        f"Device: {device_name()}.",
        "",
        "| net | params | s/iter | iterations | PSNR @ 60 s | @ 120 s | @ end | best (iteration) "
        "| s to 28 dB | s to 30 dB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['params']:,} | {r['sec_per_iter']:.3f} | {r['iterations']} "
            f"| {f(r['psnr_60s'])} | {f(r['psnr_120s'])} | {f(r['psnr_end'])} "
            f"| {f(r['best_psnr'])} ({r['best_iteration']}) | {f(r['time_to_28db'], '{:.0f}')} "
            f"| {f(r['time_to_30db'], '{:.0f}')} |")
    write_results("defaults", {"size": s, "seconds": args.seconds, "device": device_name(),
                               "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
