"""Upsampler study: one net, each upsampler in turn, the same budget, on F16, House and Baboon at σ = 25.

    python benchmarks/upsampling.py                  # 256×256 centre crops, ~30 min on a 2-core CPU
    python benchmarks/upsampling.py --full           # 512×512 (House is 256²), 3,000 iterations: a GPU
    python benchmarks/upsampling.py --smoke          # two upsamplers on a 32² synthetic image, seconds

Writes upsampling.json, upsampling.md and upsampling.png (PSNR against iteration) into ``--out``
(default benchmarks/results/upsampling): per image and upsampler the peak PSNR of the raw and of the averaged
output with its iteration, both at the end, the parameter count and seconds per iteration.

Why these defaults. The net is ``compact`` (the DIP family this tool uses by default: 2
scales, a skip only at the deepest one) at width 32, the cheapest width that still fits fast: on a
128² F16 crop it reached 30.1 dB (averaged output) after 600 iterations, width 16 27.6 dB, and
the decoders were slower still (ConvDecoder width 32: 24.6 dB, Deep Decoder width 64: 26.5 dB;
their tiny input code makes them need thousands of iterations). At 256² the net costs ~0.19 s
per iteration on 2 cores, and the fixed filters ~10 % more, so 27 runs (3 images × 9 upsamplers)
× 350 iterations take about 30 minutes. That budget shows the rising part of the curves, where
the upsamplers part ways; the compact net's peak lies later (~1,000+ iterations), so run
``--iters 1200`` (~2 hours) or ``--full`` on a GPU to see the peaks and the overfitting after them.
The images span the three texture classes of FasterDIP's width labels: House 32, F16 64, Baboon 128.
"""

from __future__ import annotations

import argparse
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from common import (
    DATA,
    SMOKE_ITERS,
    SMOKE_SIZE,
    add_smoke_argument,
    centre_crop_file,
    device_name,
    into_study,
    mean,
    parallel_map,
    parse_smoke,
    results_folder,
    smoke_files,
    tempdir,
    write_results,
)

from dipcli import (
    UPSAMPLERS,
    Denoise,
    Event,
    FitConfig,
    NetSpec,
    build_net,
    count_params,
    fit,
    read_image,
    resolve_device,
)
from dipcli.api.plan import reg_noise  # internal: plans as `dip` does, to score what it runs
from dipcli.io import pad_to_multiple  # internal: pads as the fit does

IMAGES = [DATA / "denoising" / "F16_GT.png", DATA / "set9" / "image_House256rgb.png",
          DATA / "set9" / "image_Baboon512rgb.png"]


@dataclass
class Curve:
    """Subscriber: PSNR of the raw and of the averaged output at each check."""

    points: list[tuple[int, float, float]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # seconds since the fit started

    def on_event(self, event: Event) -> None:
        self.points.append((event.iteration, event.psnr_raw, event.psnr_ema))
        self.times.append(event.elapsed)

    def sec_per_iter(self) -> float | None:
        """Between the first and the last check: the first iterations' warm-up left out."""
        if len(self.points) < 2:
            return None
        return (self.times[-1] - self.times[0]) / (self.points[-1][0] - self.points[0][0])

    def peak(self, which: int) -> tuple[float, int]:
        best = max(self.points, key=lambda p: p[which])
        return best[which], best[0]


def run_one(clean, noisy, spec: NetSpec, args, device) -> dict:
    padded, size = pad_to_multiple(noisy, spec.multiple)
    net = build_net(spec, clean.shape[2], seed=args.seed)
    curve = Curve()
    cfg = FitConfig(iters=args.iters, check_every=25, seed=args.seed,
                    reg_noise=reg_noise(args.sigma / 255))
    res = fit(Denoise(args.sigma / 255), net, padded, cfg, crop=size, reference=clean,
              device=device, subscribers=[curve])
    (peak_raw, at_raw), (peak_ema, at_ema) = curve.peak(1), curve.peak(2)
    return {
        "upsample": spec.upsample, "params": count_params(net),
        "sec_per_iter": curve.sec_per_iter() or res.seconds / res.iterations, "iterations": res.iterations,
        "peak_psnr_ema": peak_ema, "peak_iter_ema": at_ema,
        "peak_psnr_raw": peak_raw, "peak_iter_raw": at_raw,
        "final_psnr_ema": curve.points[-1][2], "final_psnr_raw": curve.points[-1][1],
        "curve": [list(p) for p in curve.points],
    }


def study_one(task: tuple[Path, str, argparse.Namespace]) -> dict:
    """One image with one upsampler: a task for :func:`common.parallel_map`."""
    path, up, args = task
    if args.threads:
        torch.set_num_threads(args.threads)
    clean = read_image(centre_crop_file(path, args.size, tempdir())).pixels
    noisy = Denoise(args.sigma / 255).observe(clean, args.seed)
    spec = NetSpec(args.arch, width=args.width, upsample=up).resolved()
    run = {"image": path.name, "size": list(clean.shape[:2]),
           **run_one(clean, noisy, spec, args, resolve_device(args.device))}
    print(f"{path.name} {up}: peak {run['peak_psnr_ema']:.2f} dB at {run['peak_iter_ema']}, "
          f"end {run['final_psnr_ema']:.2f} dB, {run['sec_per_iter']:.3f} s/iter", flush=True)
    return run


def tables(runs: list[dict], header: str) -> str:
    lines = [header, "", "Mean over images (peak: best check, every 25 iterations; avg: the averaged "
             "output dip writes, raw: the single iterate).", "",
             "| upsampler | params | s/iter | peak avg (dB) | at iter | end avg | peak raw | end raw |",
             "|---|---|---|---|---|---|---|---|"]
    for up in dict.fromkeys(r["upsample"] for r in runs):
        rs = [r for r in runs if r["upsample"] == up]
        lines.append(
            f"| {up} | {rs[0]['params']:,} | {mean(r['sec_per_iter'] for r in rs):.3f} "
            f"| {mean(r['peak_psnr_ema'] for r in rs):.2f} | {mean(r['peak_iter_ema'] for r in rs):.0f} "
            f"| {mean(r['final_psnr_ema'] for r in rs):.2f} | {mean(r['peak_psnr_raw'] for r in rs):.2f} "
            f"| {mean(r['final_psnr_raw'] for r in rs):.2f} |")
    lines += ["", "Per image:", "", "| image | upsampler | peak avg (iter) | end avg | peak raw (iter) "
              "| end raw | s/iter |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(
            f"| {r['image']} | {r['upsample']} | {r['peak_psnr_ema']:.2f} ({r['peak_iter_ema']}) "
            f"| {r['final_psnr_ema']:.2f} | {r['peak_psnr_raw']:.2f} ({r['peak_iter_raw']}) "
            f"| {r['final_psnr_raw']:.2f} | {r['sec_per_iter']:.3f} |")
    return "\n".join(lines)


def plot(runs: list[dict], images: list[str], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(5.5 * len(images), 4.5), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    for ax, image in zip(axes[0], images, strict=True):
        for i, r in enumerate(r for r in runs if r["image"] == image):
            its, raw, ema = zip(*r["curve"], strict=True)
            dots = "." if len(its) < 5 else None
            ax.plot(its, ema, color=colours[i % 10], label=r["upsample"], marker=dots)
            ax.plot(its, raw, color=colours[i % 10], lw=0.7, ls=":", alpha=0.6)
        top = max(max(p[1:]) for r in runs if r["image"] == image for p in r["curve"])
        ax.set_ylim(bottom=top - 10)  # the first averaged outputs are grey; keep the top 10 dB
        ax.set(title=image, xlabel="iteration", ylabel="PSNR (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, title="solid: averaged, dotted: raw", title_fontsize=8)
    fig.suptitle(textwrap.fill(title, 40 * len(images)), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true",
                    help="512×512 crops and 3,000 iterations (the DIP paper's budget): for a GPU")
    ap.add_argument("--size", type=int, help="centre crop side (default 256, 512 with --full)")
    ap.add_argument("--iters", type=int, help="iteration budget (default 350, 3000 with --full)")
    ap.add_argument("--images", type=int, default=len(IMAGES), help="use the first N of F16, House, Baboon")
    ap.add_argument("--arch", default="compact", help="net family (default: compact)")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--upsample", nargs="+", default=list(UPSAMPLERS), choices=UPSAMPLERS,
                    metavar="NAME", help="upsamplers to compare (default: all)")
    ap.add_argument("--sigma", type=float, default=25)
    ap.add_argument("--seed", type=int, default=0, help="seed of the noise, the weights and the fit")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice); "
                    "on a busy machine 1 avoids threads waiting on each other")
    ap.add_argument("--jobs", type=int, default=1, help="fits side by side (for a GPU; their "
                    "s/iter then share the device and are not speed figures)")
    ap.add_argument("--out", type=Path, default=None,
                    help="results folder (default benchmarks/results/upsampling)")
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap)
    images = IMAGES[: args.images]
    if smoke:  # a synthetic image, two upsamplers, a few iterations (one check, at the end)
        images, args.size, args.iters, args.jobs = [smoke_files(tempdir())[0]], SMOKE_SIZE, SMOKE_ITERS, 1
        args.upsample = args.upsample[:2]
    args.size = args.size or (512 if args.full else 256)
    args.iters = args.iters or (3000 if args.full else 350)
    args.out = results_folder(args.out, smoke)  # (as it was: the namespace is part of the fits' keys)
    device = resolve_device(args.device)
    start = time.perf_counter()
    names = [path.name for path in images]
    tasks = [(path, up, args) for path in images for up in args.upsample]
    runs = parallel_map(study_one, tasks, args.jobs)

    spec = NetSpec(args.arch, width=args.width).resolved()
    dev = device_name() if device.type != "mps" else "Apple MPS"
    skips = (f"{spec.skip}-channel skips at the deepest {spec.skip_scales} scale(s)" if spec.skip_scales
             else "no skips")
    header = (f"Upsampler study: `{spec.arch}` net ({spec.scales} scales, width {spec.width}, {skips}), "
              f"σ = {args.sigma:g}, {args.size}×{args.size} "
              f"centre crops, {args.iters} iterations, seed {args.seed}. Device: {dev}"
              f"{f', {args.jobs} fits at a time (s/iter shared)' if args.jobs > 1 else ''}. "
              f"Total {time.perf_counter() - start:.0f} s.")
    payload = {"sigma": args.sigma, "size": args.size, "iters": args.iters, "seed": args.seed,
               "spec": {k: v for k, v in vars(spec).items() if k != "upsample"}, "device": dev,
               "jobs": args.jobs,
               "images": names, "runs": runs}
    folder = into_study(args.out, "upsampling")
    write_results("upsampling", payload, tables(runs, header), folder=folder)
    plot(runs, names, header.split(". Device")[0], folder / "upsampling.png")


if __name__ == "__main__":
    main()
