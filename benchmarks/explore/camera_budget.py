"""Exploration (issue 32): how many iterations the camera noise model's fit wants, traced.

    python benchmarks/explore/camera_budget.py --images kodim01 image_F16_512rgb CBSD68_0013 Set12_01 \
        --shots 0.012 0.03 --iters 2400

Crops of the acceptance set (the part the choices are made on; the held-out set stays out) through
the simulated camera of benchmarks/camera.py, each denoised once by ``dipcli.denoise(noisy,
noise="camera", clean=reference, iters=N)``: the product's camera fit, run past its budget, with
the PSNR of its running average against the reference at every check (every 10 iterations). The
average's warm-up does not depend on the budget, so one long trace gives the PSNR of every
shorter budget. The log keeps the whole trace, the budget the product would have run
(:func:`dipcli.api.presets.budget` at the RMS σ of the noise read), and where the trace peaks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
from camera import camera, case_seed  # noqa: E402
from common import RESULTS, centre_crop, write_results  # noqa: E402
from quality import acceptance_set, scores  # noqa: E402

import dipcli  # noqa: E402
from dipcli import read_image  # noqa: E402
from dipcli.api import presets  # noqa: E402  # internal: the budget rule and the recipe under study
from dipcli.api.presets import R2R, budget  # noqa: E402  # internal: the budget rule under study
from dipcli.physics.noise_models import read_camera_noise  # noqa: E402  # internal: its σ and width

LOG = RESULTS / "camera" / "budget.jsonl"
BUDGETS = (300, 400, 600, 800, 1000, 1200, 1400, 1700, 2000, 2400)


def trace(noisy: np.ndarray, reference: np.ndarray, iters: int) -> dict:
    """One camera fit of ``iters`` iterations: its trace, the product's budget, the peak."""
    observed = torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1)))[None].float()
    residual = {}  # iteration → mean squared residual of the running average to the observation

    def watch(event) -> None:
        ema = event.ema.detach().float()
        if ema.shape == observed.shape:
            residual[event.iteration] = float(torch.mean((ema - observed) ** 2))

    start = time.perf_counter()
    result = dipcli.denoise(noisy, noise="camera", clean=reference, iters=iters, progress=watch)
    seconds = time.perf_counter() - start
    points = [(h["iteration"], h["psnr_ema"]) for h in result.history if h.get("psnr_ema") is not None]
    sigma = result.settings["sigma"] / 255
    own = budget(R2R, sigma)
    at = dict(points)
    peak_it, peak = max(points, key=lambda p: p[1])
    return {"sigma": round(result.settings["sigma"], 2), "noise": result.settings.get("noise"),
            "product_budget": own, "psnr_at_product_budget": round(at.get(own, points[-1][1]), 3),
            "peak_iteration": peak_it, "peak_psnr": round(peak, 3),
            "at": {str(b): round(at[b], 3) for b in BUDGETS if b in at},
            "final_psnr": round(scores(np.asarray(result.image, np.float32), reference)[0], 3),
            "seconds": round(seconds, 1), "seconds_per_iteration": round(seconds / iters, 4),
            "noise_variance": (sigma) ** 2,
            "trace": [[i, round(p, 3), residual.get(i)] for i, p in points]}


def psnr_at(row: dict, iteration: int) -> float:
    """The trace's PSNR at ``iteration`` (the last check at or before it)."""
    return max((t for t in row["trace"] if t[0] <= iteration), key=lambda t: t[0])[1]


def table(log: Path) -> None:
    """budget.md/.json: per traced case the peak, and the PSNR at the budget of the white law at
    the RMS σ (the product before) and of today's rule (σ × width, the correlated law)."""
    files = acceptance_set()
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    longest = {}
    for r in rows:  # one trace per case: the longest
        key = (r["image"], r["shot"])
        product = r.get("alpha", R2R.jitter_sigma) == R2R.jitter_sigma
        if product and r["iters"] >= longest.get(key, {"iters": 0})["iters"]:
            longest[key] = r
    out, lines = [], ["# The camera fit's budget, traced (benchmarks/explore/camera_budget.py)", "",
                      "Acceptance-set crops (256²) through the simulated camera; one fit of the product's "
                      "camera model each, PSNR (dB) of its running average at every check. The σ·w rule "
                      "(dipcli.api.presets.budget) was fitted to these rows; the held-out images are "
                      "scored in camera.md.", "",
                      "| image | shot | σ (RMS) | width (px) | σ·w | peak: iteration, PSNR "
                      "| white law at σ: iterations, PSNR | σ·w rule: iterations, PSNR |",
                      "|---|---|---|---|---|---|---|---|"]
    for (name, shot), r in sorted(longest.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        clean = centre_crop(read_image(files[name]).pixels, r["crop"])
        model = read_camera_noise(camera(clean, shot, case_seed(name, shot)))
        level, correlated = model.budget_level
        old, new = budget(R2R, model.sigma), budget(R2R, level, correlated)
        row = {"image": name, "shot": shot, "sigma": round(model.sigma * 255, 1),
               "width": round(model.correlation.width, 2), "level": round(level * 255, 1),
               "peak": [r["peak_iteration"], r["peak_psnr"]], "traced_to": r["iters"],
               "white_law": [old, psnr_at(r, old)], "rule": [new, psnr_at(r, new)]}
        out.append(row)
        past = "*" if old > r["iters"] else ""
        lines.append(f"| {name} | {shot:g} | {row['sigma']} | {row['width']} | {row['level']} "
                     f"| {r['peak_iteration']}, {r['peak_psnr']:.2f} | {old}{past}, {psnr_at(r, old):.2f} "
                     f"| {new}, {row['rule'][1]:.2f} |")
    lines += ["", "\\* past the trace's end: the PSNR is the trace's last. The `balanced` preset fills the "
              "time a short budget frees with more fits from other seeds (not traced here)."]
    write_results("budget", {"rows": out}, "\n".join(lines), log.parent)


def done(log: Path) -> set[tuple[str, float, int, float]]:
    if not log.exists():
        return set()
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return {(r["image"], r["shot"], r["iters"], r.get("alpha", R2R.jitter_sigma)) for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", nargs="+", default=["kodim01", "image_F16_512rgb", "CBSD68_0013", "Set12_01"])
    ap.add_argument("--shots", nargs="+", type=float, default=[0.012, 0.03])
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--iters", type=int, default=2400)
    ap.add_argument("--alpha", type=float, default=None,
                    help="the recorruption's α (the recipe's jitter_sigma; default: the product's)")
    ap.add_argument("--log", type=Path, default=LOG)
    ap.add_argument("--table-only", action="store_true", help="write budget.md from the log and stop")
    args = ap.parse_args()
    if args.table_only:
        return table(args.log)
    alpha = R2R.jitter_sigma if args.alpha is None else args.alpha
    if args.alpha is not None:  # the CPU default's recipe with another α, for this run only
        balanced = presets.PRESETS["balanced"]
        presets.PRESETS["balanced"] = replace(balanced, recipes=tuple(replace(r, jitter_sigma=alpha)
                                                                        for r in balanced.recipes))
    files = acceptance_set()
    skip = done(args.log)
    for shot in args.shots:
        for name in args.images:
            if (name, shot, args.iters, alpha) in skip:
                continue
            clean = centre_crop(read_image(files[name]).pixels, args.crop)
            seed = case_seed(name, shot)
            reference, noisy = camera(clean, None, seed), camera(clean, shot, seed)
            row = {"image": name, "shot": shot, "crop": args.crop, "iters": args.iters, "alpha": alpha,
                   "noisy_psnr": round(scores(noisy, reference)[0], 3), **trace(noisy, reference, args.iters)}
            print(json.dumps({k: v for k, v in row.items() if k != "trace"}), flush=True)
            with args.log.open("a") as f:
                f.write(json.dumps(row) + "\n")
    table(args.log)


if __name__ == "__main__":
    main()
