"""Super-resolution benchmark: DIP beside bicubic upscaling, ×4 and ×8, in make-LR mode.

    PYTHONPATH=. python benchmarks/superres.py                  # 256×256 HR centre crops (CPU)
    PYTHONPATH=. python benchmarks/superres.py --full           # full images
    PYTHONPATH=. python benchmarks/superres.py --factors 4 --only zebra --iters 500
    python benchmarks/superres.py --smoke                       # a 32² synthetic image, ×4, 10 iterations

Each clean (HR) image is cropped to a multiple of the factor and downsampled with the problem's
own operator (Lanczos-2 by default, as in the DIP paper); DIP and bicubic (Keys a = −0.5, the
paper's baseline) bring it back up. Scored as the SR literature does: PSNR of the Y channel
(BT.601) with a border of F pixels left out; RGB PSNR too. Iterations default to the DIP
paper's: 2000 at ×4, 4000 at ×8 (otherwise 2000 × F / 4). DIP is `dip superres --make-lr`
(``dipcli.api.tasks.superres``) with that fixed budget (``--stop fixed``), in fp32, with the net of
``--arch``/``--width``/``--upsample``. Writes benchmarks/results/superres/superres[-<tag>].json and .md.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import (
    DATA,
    SMOKE_ITERS,
    SMOKE_SIZE,
    add_fit_arguments,
    centre_crop,
    device_name,
    mean,
    parallel_map,
    parse_smoke,
    results_folder,
    side_by_side,
    smoke_image,
    write_results,
)

from dipcli import SuperRes, read_image, superres
from dipcli.physics import SR_KERNELS  # internal: the blur kernels superres offers

IMAGES = {
    "zebra": DATA / "sr" / "zebra_GT.png",
    "Baboon": DATA / "set9" / "image_Baboon512rgb.png",
    "House": DATA / "set9" / "image_House256rgb.png",
    "Peppers": DATA / "set9" / "image_Peppers512rgb.png",
}
PAPER_ITERS = {4: 2000, 8: 4000}
SMOKE = "synthetic"  # the smoke run's one image: common.smoke_image


def superres_case(task: tuple[str, int, argparse.Namespace]) -> dict:
    """One image at one factor: ours and bicubic (a task for :func:`common.parallel_map`).

    ``dip superres --make-lr`` shrinks the HR crop with the problem's own operator, fits, and
    scores the result and the bicubic upscaling of the same low-resolution image against it.
    """
    name, factor, args = task
    iters = args.iters or PAPER_ITERS.get(factor, 500 * factor)
    clean = smoke_image() if name == SMOKE else read_image(IMAGES[name]).pixels
    hr = SuperRes(factor, args.kernel).crop_hr(clean if args.full else centre_crop(clean, args.size))
    result = superres(hr, factor, kernel=args.kernel, make_lr=True, iters=iters, arch=args.arch,
                      width=args.width, upsample=args.upsample, stop="fixed", precision="fp32", lr=args.lr,
                      seed=args.seed, device=args.device)
    s = result.settings  # the scores `dip superres` reports: Y and RGB, an F-pixel border left out
    best = max(result.history, key=lambda h: h["psnr_ema"] or -np.inf) if result.history else {}
    ours = {"psnr_y": s["psnr_y"], "psnr_rgb": s["psnr_rgb"], "iterations": result.iterations,
            "seconds": result.seconds, "params": s["params"],
            "net": f"{s['arch']} w{s['width']} {s['upsample']}",
            "best_psnr_y": best.get("psnr_ema"), "best_iteration": best.get("iteration")}
    bicubic = {"psnr_y": s["psnr_bicubic_y"], "psnr_rgb": s["psnr_bicubic_rgb"]}
    print(f"{name} ×{factor}: ours {ours['psnr_y']:.2f} dB ({ours['seconds']:.0f} s), "
          f"bicubic {bicubic['psnr_y']:.2f} dB", flush=True)
    return {"image": name, "factor": factor, "hr_size": list(hr.shape[:2]),
            "lr_size": [hr.shape[0] // factor, hr.shape[1] // factor], "ours": ours, "bicubic": bicubic}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="HR centre crop size (CPU runs)")
    ap.add_argument("--full", action="store_true", help="use the full images (ignores --size)")
    ap.add_argument("--factors", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--kernel", default="lanczos2", choices=SR_KERNELS)
    ap.add_argument("--iters", type=int, default=None, help="DIP iterations (default: the paper's)")
    add_fit_arguments(ap)
    args, smoke = parse_smoke(ap, argv)
    if smoke:  # one synthetic image at ×4 (an 8² low-resolution image), a few iterations
        args.size, args.iters, args.factors, args.full, args.jobs = SMOKE_SIZE, SMOKE_ITERS, [4], False, 1
    folder = results_folder(args.results, smoke, "superres")

    names = [SMOKE] if smoke else [n for n in IMAGES if not args.only or args.only.lower() in n.lower()]
    cases = [(name, factor, args) for factor in args.factors for name in names]
    rows = parallel_map(superres_case, cases, args.jobs)

    device = device_name()
    net = rows[0]["ours"]["net"] if rows else args.arch
    lines = [
        f"Super-resolution (make-LR: HR → {args.kernel} ↓F → restore), DIP ({net}, seed {args.seed}) "
        f"beside bicubic, {'full images' if args.full else f'{args.size}×{args.size} HR centre crops'}. "
        f"PSNR in dB of the Y channel (BT.601), F-pixel border left out; RGB beside it. "
        f"Device: {device}{side_by_side(args.jobs)}.",
        "",
        "| image | ×F | HR size | bicubic Y | ours Y | bicubic RGB | ours RGB | best ours Y (iter) "
        "| iterations | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o, b = r["ours"], r["bicubic"]
        best = f"{o['best_psnr_y']:.2f} ({o['best_iteration']})" if o["best_psnr_y"] is not None else "–"
        lines.append(
            f"| {r['image']} | {r['factor']} | {r['hr_size'][1]}×{r['hr_size'][0]} | {b['psnr_y']:.2f} "
            f"| {o['psnr_y']:.2f} | {b['psnr_rgb']:.2f} | {o['psnr_rgb']:.2f} | {best} "
            f"| {o['iterations']} | {o['seconds']:.0f} |")
    for factor in args.factors:
        sel = [r for r in rows if r["factor"] == factor]
        if sel:
            lines.append(
                f"| **mean** | {factor} | | **{mean(r['bicubic']['psnr_y'] for r in sel):.2f}** "
                f"| **{mean(r['ours']['psnr_y'] for r in sel):.2f}** "
                f"| {mean(r['bicubic']['psnr_rgb'] for r in sel):.2f} "
                f"| {mean(r['ours']['psnr_rgb'] for r in sel):.2f} | | "
                f"| {mean(r['ours']['seconds'] for r in sel):.0f} |")
    payload = {"size": None if args.full else args.size, "factors": args.factors, "kernel": args.kernel,
               "iters": args.iters, "arch": args.arch, "width": args.width, "upsample": args.upsample,
               "lr": args.lr, "seed": args.seed, "device": device, "rows": rows}
    tag = f"-{args.tag}" if args.tag else ""
    write_results(f"superres{tag}", payload, "\n".join(lines), folder)


if __name__ == "__main__":
    main()
