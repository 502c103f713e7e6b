"""Early-stopping benchmark: how close `--stop auto` comes to the peak PSNR, and the time it saves.

    python benchmarks/stopping.py                  # Set9, 256×256 centre crops, σ = 25 and 50 (CPU: hours)
    python benchmarks/stopping.py --full           # whole images (a GPU job)
    python benchmarks/stopping.py --size 32 --iters 30 --images 1 --out /tmp/stop   # smoke test

One fit per image and σ answers everything. It runs the whole budget (the loop sees a rule that
never stops), while :class:`Shadow` hands each of the loop's own Check objects to the auto rule
and to each of its parts alone, and records where each would have stopped and which averaged
output it would have written. The clean image is recorded but only used to score: the PSNR of
the averaged output at every check gives the peak (measured at the checks, every 10
iterations), and the outputs each rule would have written are scored as written (8-bit).

Per image and σ: peak PSNR and its iteration, PSNR at the detected stop, the gap, iterations to
stop, the kept iteration, the fixed-budget PSNR, and wall time to the stop against the whole
budget (both measured in the same run, so both include the per-check metrics and the shadowed
rules' small cost). For tuning the discrepancy rule it also records, at the peak, the residual
over σ² and over the clipping-corrected noise variance: the tolerance that would have hit it.

Writes benchmarks/results/stopping[-<tag>].json (top-level ``median_gap_db`` and
``worst_gap_db`` over all denoising runs, per-σ summaries, per-image rows) and .md.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

try:
    from common import DATA, RESULTS, centre_crop_file, device_name, mean, tempdir, write_results
except ImportError:  # imported as benchmarks.stopping
    from benchmarks.common import (
        DATA,
        RESULTS,
        centre_crop_file,
        device_name,
        mean,
        tempdir,
        write_results,
    )

from dipcli.cli import reg_noise
from dipcli.fit import Check, Event, FitConfig, StopRule, fit, resolve_device
from dipcli.io import Image, pad_to_multiple, read_image
from dipcli.nets import NetSpec, build_net
from dipcli.problems import Denoise
from dipcli.stopping import clipped_noise_variance, make_stop

RULES = ("auto", "discrepancy", "wmv")  # auto and each of its parts alone


@dataclass
class Verdict:
    """What one rule would have done, had it been in charge."""

    rule: StopRule
    stop_iteration: int | None = None  # the check at which it fired
    reason: str = "budget"
    kept_iteration: int | None = None  # the check whose averaged output it would write
    kept: torch.Tensor | None = None


class Shadow:
    """A stop rule that never stops: it feeds every check to other rules and notes their verdicts.

    Running the full budget this way gives the true peak and every rule's choice from one fit.
    """

    name = "shadow"

    def __init__(self, rules: dict[str, StopRule], sigma: float) -> None:
        self.verdicts = {name: Verdict(rule) for name, rule in rules.items()}
        self.sigma = sigma
        self.ema_loss: dict[int, float] = {}
        self.noise_floor: dict[int, float] = {}

    def observe(self, check: Check) -> bool:
        self.ema_loss[check.iteration] = check.ema_loss
        self.noise_floor[check.iteration] = clipped_noise_variance(check.ema, self.sigma)
        for v in self.verdicts.values():
            if v.stop_iteration is not None:
                continue
            if v.rule.observe(check):
                v.kept_iteration, v.kept = check.iteration, check.ema.detach().clone()
            if v.rule.should_stop():
                v.stop_iteration, v.reason = check.iteration, v.rule.name
        return False

    def should_stop(self) -> bool:
        return False

    def describe(self) -> str:
        return " | ".join(f"{k}: {v.rule.describe()}" for k, v in self.verdicts.items())


class Peak:
    """Subscriber: the averaged output with the best PSNR so far (the loop updates its own in place)."""

    def __init__(self) -> None:
        self.psnr, self.iteration, self.ema = -np.inf, 0, None

    def on_event(self, e: Event) -> None:
        if e.psnr_ema is not None and e.psnr_ema > self.psnr:
            self.psnr, self.iteration, self.ema = e.psnr_ema, e.iteration, e.ema.detach().clone()


def to_hwc(t: torch.Tensor) -> np.ndarray:
    return t[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def written_psnr(pixels: np.ndarray, clean: Image) -> float:
    """PSNR of ``pixels`` after quantisation to the image's bit depth, as `dip` would write it."""
    scale = 65535.0 if clean.dtype == np.uint16 else 255.0
    written = np.round(np.clip(pixels, 0, 1) * scale) / scale
    mse = float(np.mean((written - clean.pixels) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def run_one(path: Path, sigma255: float, args: argparse.Namespace, work: Path) -> dict:
    """Denoise one image for the whole budget with the rules shadowed; return its row."""
    clean = read_image(centre_crop_file(path, args.size, work))
    sigma = sigma255 / 255
    problem = Denoise(sigma)
    noisy = problem.observe(clean.pixels, args.seed)
    spec = NetSpec(args.arch, width=args.width).resolved()
    padded, size = pad_to_multiple(noisy, spec.multiple)
    rules = {name: make_stop(name, "denoise", args.iters, sigma) for name in RULES}
    shadow = Shadow(rules, sigma)
    config = FitConfig(iters=args.iters, lr=args.lr, seed=args.seed, check_every=args.check_every,
                       reg_noise=reg_noise(sigma255), stop=shadow)
    peak = Peak()
    net = build_net(spec, padded.shape[2], seed=args.seed)
    res = fit(problem, net, padded, config, input_depth=spec.input_depth, crop=size,
              reference=clean.pixels, device=resolve_device(args.device), subscribers=[peak])
    elapsed = {h["iteration"]: h["elapsed"] for h in res.history}
    peak_psnr = written_psnr(to_hwc(peak.ema), clean)

    def verdict_row(v: Verdict) -> dict:
        stop_at = v.stop_iteration or res.iterations
        kept = to_hwc(v.kept) if v.kept is not None else res.ema  # never flagged: the last average
        p = written_psnr(kept, clean)
        to_stop = elapsed.get(stop_at, res.seconds) if v.stop_iteration else res.seconds
        return {"stop_iteration": stop_at, "reason": v.reason,
                "kept_iteration": v.kept_iteration or res.iterations, "psnr": p,
                "gap_db": peak_psnr - p, "seconds_to_stop": to_stop}

    parts = {name: verdict_row(v) for name, v in shadow.verdicts.items()}
    auto = parts.pop("auto")
    floor, loss = shadow.noise_floor.get(peak.iteration), shadow.ema_loss.get(peak.iteration)
    row = {
        "image": path.name, "sigma": sigma255, "size": list(size), "budget": args.iters,
        "peak_psnr": peak_psnr, "peak_iteration": peak.iteration,
        "fixed_psnr": written_psnr(res.ema, clean),
        "stop_psnr": auto["psnr"], "gap_db": auto["gap_db"],
        "stop_iteration": auto["stop_iteration"], "kept_iteration": auto["kept_iteration"],
        "stop_reason": auto["reason"],
        "seconds_full": res.seconds, "seconds_to_stop": auto["seconds_to_stop"],
        "seconds_saved": res.seconds - auto["seconds_to_stop"],
        "saved_fraction": 1 - auto["seconds_to_stop"] / res.seconds,
        "sec_per_iter": res.seconds / res.iterations,
        "residual_over_sigma2_at_peak": loss / sigma**2 if loss is not None else None,
        "noise_floor_over_sigma2_at_peak": floor / sigma**2 if floor is not None else None,
        "tolerance_at_peak": loss / floor if loss is not None and floor else None,
        "rules": parts,
    }
    return row


def summary(rows: list[dict]) -> dict:
    gaps = [r["gap_db"] for r in rows]
    out = {"median_gap_db": statistics.median(gaps), "worst_gap_db": max(gaps),
           "mean_saved_fraction": mean(r["saved_fraction"] for r in rows)}
    for name in RULES[1:]:
        g = [r["rules"][name]["gap_db"] for r in rows]
        out[f"{name}_alone"] = {"median_gap_db": statistics.median(g), "worst_gap_db": max(g)}
    return out


def table(rows: list[dict], args: argparse.Namespace, device: str, summ: dict) -> str:
    crop = "whole images" if not args.size else f"{args.size}×{args.size} centre crops"
    lines = [
        f"Early stopping, `--stop auto` (discrepancy + WMV) on Set9 denoising, {crop}, budget "
        f"{args.iters} iterations, {args.arch} net width {args.width}, seed {args.seed}. "
        f"Device: {device}. Peak = best averaged output at a check (every {args.check_every} "
        "iterations); PSNRs of the images as written (8-bit).",
        "",
        "| image | σ | peak dB (@ it) | stop dB | gap dB | stopped @ (rule) | kept it | fixed dB "
        "| s to stop / full | saved | disc. alone gap | WMV alone gap | tol. at peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        tol = r["tolerance_at_peak"]
        lines.append(
            f"| {r['image']} | {r['sigma']:g} | {r['peak_psnr']:.2f} ({r['peak_iteration']}) "
            f"| {r['stop_psnr']:.2f} | {r['gap_db']:.2f} | {r['stop_iteration']} ({r['stop_reason']}) "
            f"| {r['kept_iteration']} | {r['fixed_psnr']:.2f} "
            f"| {r['seconds_to_stop']:.0f} / {r['seconds_full']:.0f} | {100 * r['saved_fraction']:.0f} % "
            f"| {r['rules']['discrepancy']['gap_db']:.2f} | {r['rules']['wmv']['gap_db']:.2f} "
            f"| {'—' if tol is None else f'{tol:.3f}'} |")
    lines += [
        "",
        f"Gap to the peak, auto: median {summ['median_gap_db']:.2f} dB, worst {summ['worst_gap_db']:.2f} dB; "
        f"discrepancy alone: median {summ['discrepancy_alone']['median_gap_db']:.2f}, worst "
        f"{summ['discrepancy_alone']['worst_gap_db']:.2f}; WMV alone: median "
        f"{summ['wmv_alone']['median_gap_db']:.2f}, worst {summ['wmv_alone']['worst_gap_db']:.2f}. "
        f"Mean wall time saved: {100 * summ['mean_saved_fraction']:.0f} %.",
    ]
    return "\n".join(lines)


def images(only: str | None, count: int | None) -> list[Path]:
    chosen = sorted((DATA / "set9").glob("*.png"))
    if only:
        chosen = [p for p in chosen if only.lower() in p.name.lower()]
    return chosen[:count] if count else chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=1500, help="iteration budget (default 1500)")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[25, 50], help="0–255 scale")
    ap.add_argument("--size", type=int, default=256, help="centre crop size (default 256)")
    ap.add_argument("--full", action="store_true", help="whole images (for a GPU)")
    ap.add_argument("--images", type=int, help="only the first N images")
    ap.add_argument("--only", help="only images whose name contains this")
    ap.add_argument("--arch", default="compact")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--check-every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    ap.add_argument("--tag", default="", help="suffix for the results file names")
    args = ap.parse_args(argv)
    if args.full:
        args.size = 0
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    work = tempdir()
    rows = []
    for path in images(args.only, args.images):
        for sigma in args.sigmas:
            row = run_one(path, sigma, args, work)
            rows.append(row)
            print(f"{row['image']} σ={sigma:g}: peak {row['peak_psnr']:.2f} dB @ {row['peak_iteration']}, "
                  f"stop {row['stop_psnr']:.2f} dB @ {row['stop_iteration']} ({row['stop_reason']}), "
                  f"{row['seconds_to_stop']:.0f}/{row['seconds_full']:.0f} s", flush=True)
    if not rows:
        raise SystemExit(f"no images found under {DATA / 'set9'}")
    device = device_name()
    summ = summary(rows)
    by_sigma = {f"{s:g}": summary([r for r in rows if r["sigma"] == s]) for s in args.sigmas}
    payload = {
        **summ, "by_sigma": by_sigma, "budget": args.iters, "size": args.size, "arch": args.arch,
        "width": args.width, "seed": args.seed, "check_every": args.check_every, "device": device,
        "rows": rows,
    }
    tag = f"-{args.tag}" if args.tag else ""
    write_results(f"stopping{tag}", payload, table(rows, args, device, summ), folder=args.out)
    return payload


if __name__ == "__main__":
    main()
