"""Exploration: cheaper nets for the recorrupted fit, PSNR against iterations and seconds.

    python benchmarks/explore/recipes.py --images dev --recipes w32 w32-z-top1 --iters 1600

Each recipe is the `balanced` fit (the noisy image as the input, the recorrupted loss, the running
average of outputs, bfloat16) with another net; the PSNR of the average is read at every check and
the seconds per iteration are the fit's own. Appends to benchmarks/results/explore/recipes.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # explorations import the studies one folder up (common, quality)
from common import RESULTS, centre_crop  # noqa: E402
from crop_denoiser import bm3d_scores, image_files  # noqa: E402
from quality import noisy_copy  # noqa: E402

from dipcli import (  # noqa: E402
    Denoise,
    FitConfig,
    NetSpec,
    build_net,
    fit,
    read_image,
)

LOG = RESULTS / "explore" / "recipes.jsonl"

RECIPES = {
    "w32": dict(width=32),
    "w32-z": dict(width=32, padding="zeros"),
    "w32-top1": dict(width=32, top_kernel=1),
    "w32-z-top1": dict(width=32, padding="zeros", top_kernel=1),
    "w24": dict(width=24),
    "w16": dict(width=16),
    "w48-z-top1": dict(width=48, padding="zeros", top_kernel=1),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", nargs="+", default=["dev"])
    ap.add_argument("--sigma", type=float, default=25)
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES))
    ap.add_argument("--iters", type=int, default=1600)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    files = image_files(a.images)
    bm3d = bm3d_scores(files, a.sigma, 256)
    s = a.sigma / 255
    marks = (400, 600, 800, 1000, 1200, 1400, 1600, 2000)
    for recipe in a.recipes:
        gaps = {m: [] for m in marks}
        for name, path in files.items():
            clean = centre_crop(read_image(path).pixels, 256)
            noisy = noisy_copy(clean, name, a.sigma)
            spec = NetSpec("compact", input_depth=clean.shape[2], **RECIPES[recipe])
            net = build_net(spec, clean.shape[2], seed=a.seed)
            config = FitConfig(iters=a.iters, lr=a.lr, seed=a.seed, reg_noise=s, ema_warmup=9.0,
                               input="observation", recorrupt=True, precision="bf16")
            t = time.perf_counter()
            result = fit(Denoise(s), net, noisy, config, reference=clean)
            seconds = time.perf_counter() - t
            curve = {h["iteration"]: round(h["psnr_ema"], 3) for h in result.history}
            row = {"image": name, "sigma": a.sigma, "recipe": recipe, "tag": a.tag, "lr": a.lr,
                   "seconds_per_iter": round(seconds / a.iters, 4), "bm3d": bm3d[name], "curve": curve}
            LOG.parent.mkdir(parents=True, exist_ok=True)
            with LOG.open("a") as f:
                f.write(json.dumps(row) + "\n")
            for m in marks:
                if m in curve:
                    gaps[m].append(curve[m] - bm3d[name])
            print(recipe, name, f"{seconds / a.iters:.4f} s/it",
                  {m: curve[m] for m in marks if m in curve}, flush=True)
        means = {m: round(float(np.mean(g)), 2) for m, g in gaps.items() if g}
        print(recipe, "gap to BM3D:", means, flush=True)


if __name__ == "__main__":
    main()
