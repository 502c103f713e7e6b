"""Exploration (issues 31, 32): with the Wiener stage after it, how short can a fit be?

    python benchmarks/explore/wiener_budget.py --images kodim01 image_F16_512rgb CBSD68_0013 Set12_01 \
        --cases white:5 white:10 white:25 camera:0.004 camera:0.012 --crop 128
    python benchmarks/explore/wiener_budget.py --images kodim01 image_F16_512rgb CBSD68_0013 Set12_01 \
        image_Baboon512rgb --cases white:25 white:15 --crop 256        # and white:50 with --iters 1200

The Wiener stage (``dipcli.physics.wiener.wiener_stage``: the noisy image filtered again with the
fit, its missed detail given back, as the pilot) recovers detail a fit stopped short of, so a fit
stopped early may lose little once the stage is applied: if so, the budget, and with it the
seconds, can fall. Each
acceptance-set crop (the part choices are made on), with white noise of σ or through the
simulated camera of benchmarks/camera.py, is fitted once for 2,000 iterations (``--iters``; the ``R2R``
recipe, ``stop="fixed"``); the running average is kept at each of CHECKS, scored alone and with
the stage (the noise model the product uses: white noise of σ, or the camera model read from
the image). The running average's warm-up does not depend on the budget, so the
image at N iterations is what a fit with budget N gives. Rows: results/camera/wiener_budget.jsonl;
table: results/camera/wiener_budget.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
sys.path.insert(0, str(HERE))
from camera import camera, case_seed  # noqa: E402
from common import RESULTS, centre_crop  # noqa: E402
from quality import acceptance_set, noisy_copy, scores  # noqa: E402

import dipcli  # noqa: E402
from dipcli import read_image  # noqa: E402
from dipcli.physics.noise_models import GaussianNoise, read_camera_noise  # noqa: E402  # internal: the stage's noise models
from dipcli.physics.wiener import wiener_stage  # noqa: E402  # internal: the stage under study

LOG = RESULTS / "camera" / "wiener_budget.jsonl"
CHECKS = (100, 200, 300, 400, 500, 600, 800, 1000, 1200, 1400, 2000)


def trace(noisy: np.ndarray, reference: np.ndarray, kind: str, level: float, iters: int) -> dict:
    """One fit of ``iters`` iterations: PSNR alone and with the stage at each of CHECKS up to it,
    and seconds."""
    kept: dict[int, tuple[np.ndarray, float]] = {}

    def watch(event) -> None:
        if event.iteration in CHECKS and event.iteration <= iters and event.ema.shape[-2:] == noisy.shape[:2]:
            kept[event.iteration] = (event.ema.detach().float()[0].permute(1, 2, 0).numpy().copy(),
                                     event.elapsed)

    sigma, noise = (level, "gaussian") if kind == "white" else (None, "camera")
    dipcli.denoise(noisy, sigma, noise=noise, preset="fast", iters=iters, stop="fixed",
                   wiener=False, progress=watch)
    noise = GaussianNoise(level / 255) if kind == "white" else read_camera_noise(noisy)
    at = {}
    for it, (ema, seconds) in sorted(kept.items()):
        ema = np.clip(ema, 0, 1)
        back = wiener_stage(noisy, ema, noise)
        at[str(it)] = {"fit": round(scores(ema, reference)[0], 3),
                       "returned": round(scores(back, reference)[0], 3), "seconds": round(seconds, 2)}
    return at


def table() -> None:
    rows = [json.loads(line) for line in LOG.read_text().splitlines()]
    lines = ["With the Wiener stage, PSNR against the budget: each against the same fit at its longest "
             "budget (2,000 iterations unless the row says less) with the stage (dB; mean / worst over "
             "the crops). Acceptance-set crops (benchmarks/explore/wiener_budget.py).", "",
             "| case | crop | crops | iterations | fit alone: Δ, mean / worst | with the stage: Δ, mean / "
             "worst | seconds (share of the longest) |", "|---|---|---|---|---|---|---|"]
    for case, crop in dict.fromkeys((r["case"], r["crop"]) for r in rows):
        group = [r for r in rows if (r["case"], r["crop"]) == (case, crop)]
        last = str(min(max(map(int, r["at"])) for r in group))
        for it in [c for c in CHECKS if all(str(c) in r["at"] for r in group)]:
            full = [r["at"][last]["returned"] for r in group]
            alone = [r["at"][str(it)]["fit"] - f for r, f in zip(group, full, strict=True)]
            back = [r["at"][str(it)]["returned"] - f for r, f in zip(group, full, strict=True)]
            share = statistics.fmean(r["at"][str(it)]["seconds"] / r["at"][last]["seconds"]
                                     for r in group)
            lines.append(f"| {case} | {crop} | {len(group)} | {it} "
                         f"| {statistics.fmean(alone):+.2f} / {min(alone):+.2f} "
                         f"| {statistics.fmean(back):+.2f} / {min(back):+.2f} | {share:.2f} |")
    (LOG.parent / "wiener_budget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", nargs="+", default=["kodim01", "image_F16_512rgb", "CBSD68_0013", "Set12_01"])
    ap.add_argument("--cases", nargs="+", default=["white:5", "white:10", "white:25", "camera:0.004",
                                                   "camera:0.012"])
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--iters", type=int, default=max(CHECKS), help="the longest budget traced")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    done = set()
    if LOG.exists():
        done = {(r["image"], r["case"], r["crop"]) for r in map(json.loads, LOG.read_text().splitlines())}
    files = acceptance_set()
    for case in [] if args.table_only else args.cases:
        kind, level = case.split(":")
        for name in args.images:
            if (name, case, args.crop) in done:
                continue
            clean = centre_crop(read_image(files[name]).pixels, args.crop)
            if kind == "white":
                reference, noisy = clean, noisy_copy(clean, name, float(level))
            else:
                seed = case_seed(name, float(level))
                reference, noisy = camera(clean, None, seed), camera(clean, float(level), seed)
            row = {"image": name, "case": case, "crop": args.crop,
                   "noisy": round(scores(noisy, reference)[0], 3),
                   "at": trace(noisy, reference, kind, float(level), args.iters)}
            with LOG.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    table()


if __name__ == "__main__":
    main()
