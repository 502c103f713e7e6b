"""Inpainting benchmark: DIP (our composite) beside biharmonic inpainting (scikit-image).

    PYTHONPATH=. python benchmarks/inpaint.py                   # 256×256 crops (CPU-sized run)
    PYTHONPATH=. python benchmarks/inpaint.py --full --iters 5000
    PYTHONPATH=. python benchmarks/inpaint.py --only kate --upsample nearest
    python benchmarks/inpaint.py --smoke                        # a 32² synthetic image, 10 iterations

Images: kate, library, vase and DSC_4081 with their masks (white = known), and F16 with a seeded
50 % Bernoulli mask. The observation is the clean image with its holes set to 0, so PSNR against
the clean image is measured over the whole image (``psnr``) and over the holes alone
(``psnr_holes``, the part the methods differ on). Crops (``--size``) are centred on the holes so
that they contain them. DIP is `dip inpaint` (``dipcli.api.tasks.inpaint``) with a fixed budget
(``--stop fixed``), the image fitted whole, and the net of ``--arch``/``--width``/``--upsample``
(the architecture's own upsampler unless given). Writes benchmarks/results/inpaint/inpaint[-<tag>].json
and .md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import (
    DATA,
    SMOKE_ITERS,
    SMOKE_SIZE,
    add_fit_arguments,
    device_name,
    hole_crop,
    mean,
    parallel_map,
    parse_smoke,
    results_folder,
    side_by_side,
    smoke_image,
    smoke_mask,
    write_results,
)
from skimage.metrics import peak_signal_noise_ratio
from skimage.restoration import inpaint_biharmonic

from dipcli import Inpaint, NetSpec, bernoulli_mask, inpaint, load_mask, read_image

MASKED = ("kate", "vase", "library", "DSC_4081")
BERNOULLI = {"F16": (DATA / "denoising" / "F16_GT.png", 0.5)}  # name: (image, share dropped)
SMOKE = "synthetic"  # the smoke run's one case: common.smoke_image and smoke_mask


def load_case(name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Clean pixels, mask (True = known) and how the mask's polarity was found."""
    if name == SMOKE:
        return smoke_image(), smoke_mask(), "synthetic, True = known"
    if name in BERNOULLI:
        path, drop = BERNOULLI[name]
        clean = read_image(path).pixels
        return clean, bernoulli_mask(clean.shape[:2], drop, seed=0), f"Bernoulli {drop:.0%} missing"
    folder = DATA / "inpainting"
    clean = read_image(folder / f"{name}.png").pixels
    mask, polarity = load_mask(folder / f"{name}_mask.png", clean.shape, known="auto")
    return clean, mask, f"{polarity} = known (auto)"


def psnr(ref: np.ndarray, x: np.ndarray) -> float:
    """skimage's PSNR, with identical images given 99 dB (as `dip` reports) so JSON stays finite."""
    if np.array_equal(ref, x):
        return 99.0
    return float(peak_signal_noise_ratio(ref, x, data_range=1.0))


def scores(result: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> dict:
    holes = ~mask
    mse_holes = float(np.mean((result[holes] - clean[holes]) ** 2)) if holes.any() else 0.0
    return {
        "psnr": psnr(clean, result),
        "psnr_holes": float(-10 * np.log10(mse_holes)) if mse_holes > 0 else 99.0,
    }


def run_ours(clean: np.ndarray, mask: np.ndarray, args: argparse.Namespace) -> dict:
    """`dip inpaint` of ``clean`` with ``mask``'s holes, for a fixed budget, scored against ``clean``."""
    # The net as given, each field the architecture's own unless set (the task's default
    # upsampler, nearest, is not this benchmark's).
    spec = NetSpec(args.arch, width=args.width, upsample=args.upsample).resolved()
    result = inpaint(clean, mask, clean=clean, iters=args.iters, arch=spec.arch, width=spec.width,
                     upsample=spec.upsample, stop="fixed", precision=args.precision, lr=args.lr,
                     seed=args.seed, device=args.device, tile=0)
    # result.image: the known pixels kept (composited); result.fit.ema: the net's averaged output
    return {**scores(result.image, clean, mask), "iterations": result.iterations,
            "seconds": result.seconds, "params": result.settings["params"],
            "net": f"{spec.arch} w{spec.width} {spec.upsample}",
            "psnr_raw_output": psnr(clean, result.fit.ema),
            # the averaged output's PSNR (uncomposited) along the run: how long the fit needs
            "curve": [(h["iteration"], round(h["psnr_ema"], 3)) for h in result.history
                      if h["iteration"] % 250 == 0]}


def run_biharmonic(observed: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> dict:
    start = time.perf_counter()
    out = inpaint_biharmonic(observed, ~mask, channel_axis=2)
    seconds = time.perf_counter() - start
    return {**scores(np.clip(out, 0, 1).astype(np.float32), clean, mask), "seconds": seconds}


def inpaint_case(task: tuple[str, argparse.Namespace]) -> dict | None:
    """One image: ours and the biharmonic baseline (a task for :func:`common.parallel_map`)."""
    name, args = task
    clean, mask, polarity = load_case(name)
    if not args.full:
        window = hole_crop(mask, args.size)
        clean, mask = clean[window], mask[window]
    if mask.all() or not mask.any():
        lacks = "hole" if mask.all() else "known pixel"
        print(f"{name}: skipped, the {args.size}-pixel crop has no {lacks}; use a larger --size",
              flush=True)
        return None
    observed = Inpaint(mask).observe(clean, seed=0)  # the holes set to 0, as `dip inpaint` fits it
    ours = run_ours(clean, mask, args)
    base = run_biharmonic(observed, clean, mask)
    print(f"{name}: ours {ours['psnr']:.2f} dB ({ours['seconds']:.0f} s), "
          f"biharmonic {base['psnr']:.2f} dB ({base['seconds']:.1f} s)", flush=True)
    return {"image": name, "size": list(clean.shape[:2]), "mask": polarity,
            "missing": float((~mask).mean()), "ours": ours, "biharmonic": base}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="crop size around the holes (CPU runs)")
    ap.add_argument("--full", action="store_true", help="use the full images (ignores --size)")
    ap.add_argument("--iters", type=int, default=3000, help="DIP iterations (the paper: 5000–6000)")
    ap.add_argument("--precision", default="fp32", help="auto|fp32|bf16 (auto: as `dip` runs)")
    add_fit_arguments(ap)
    args, smoke = parse_smoke(ap, argv)
    if smoke:  # one synthetic image with a synthetic mask, a few iterations
        args.size, args.iters, args.full, args.jobs, args.only = SMOKE_SIZE, SMOKE_ITERS, False, 1, None
    folder = results_folder(args.results, smoke, "inpaint")

    names = [SMOKE] if smoke else [*MASKED, *BERNOULLI]
    if args.only:
        names = [n for n in names if args.only.lower() in n.lower()]
    rows = [r for r in parallel_map(inpaint_case, [(n, args) for n in names], args.jobs) if r]

    device = device_name()
    net = rows[0]["ours"]["net"] if rows else args.arch
    lines = [
        f"Inpainting, DIP ({net}, {args.iters} iterations, {args.precision}, seed {args.seed}; "
        f"known pixels kept) "
        f"beside skimage inpaint_biharmonic, "
        f"{'full images' if args.full else f'{args.size}×{args.size} crops around the holes'}. "
        f"PSNR in dB over the whole image / the holes only. Device: {device}{side_by_side(args.jobs)}.",
        "",
        "| image | size | missing | ours PSNR | ours holes | biharmonic PSNR | biharmonic holes "
        "| iterations | ours s | biharmonic s | net output PSNR every 1000 it |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o, b = r["ours"], r["biharmonic"]
        lines.append(
            f"| {r['image']} | {r['size'][1]}×{r['size'][0]} | {r['missing']:.1%} | {o['psnr']:.2f} "
            f"| {o['psnr_holes']:.2f} | {b['psnr']:.2f} | {b['psnr_holes']:.2f} | {o['iterations']} "
            f"| {o['seconds']:.0f} | {b['seconds']:.1f} "
            f"| {' / '.join(f'{p:.2f}' for it, p in o.get('curve', []) if it % 1000 == 0)} |")
    if rows:
        lines.append(
            f"| **mean** | | | **{mean(r['ours']['psnr'] for r in rows):.2f}** "
            f"| {mean(r['ours']['psnr_holes'] for r in rows):.2f} "
            f"| **{mean(r['biharmonic']['psnr'] for r in rows):.2f}** "
            f"| {mean(r['biharmonic']['psnr_holes'] for r in rows):.2f} | "
            f"| {mean(r['ours']['seconds'] for r in rows):.0f} "
            f"| {mean(r['biharmonic']['seconds'] for r in rows):.1f} | |")
    payload = {"size": None if args.full else args.size, "iters": args.iters, "arch": args.arch,
               "width": args.width, "upsample": args.upsample, "lr": args.lr, "seed": args.seed,
               "precision": args.precision,
               "device": device, "rows": rows}
    tag = f"-{args.tag}" if args.tag else ""
    write_results(f"inpaint{tag}", payload, "\n".join(lines), folder)


if __name__ == "__main__":
    main()
