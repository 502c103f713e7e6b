"""Exploration: does a fit of one image give a fit of another image a head start?

    python benchmarks/explore/transfer.py --mother image_F16_512rgb --targets 32/0047 64/0010 --iters 600

The mother image's centre 256² crop is fitted as `dip denoise --preset balanced` fits it (the
recorrupted fit, ``--mother-iters`` iterations, seed 0); each target's centre crop is then fitted
from the weights that fit ended with, for ``--iters`` iterations with another seed, and the PSNR
of the running average is read at every check. Appends to results/explore/transfer.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

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

LOG = RESULTS / "explore" / "transfer.jsonl"


def fit_crop(name: str, path: Path, sigma: float, iters: int, seed: int, start: dict | None, width: int):
    clean = centre_crop(read_image(path).pixels, 256)
    noisy = noisy_copy(clean, name, sigma)
    s = sigma / 255
    net = build_net(NetSpec("compact", width=width, input_depth=3), 3, seed=seed)
    if start is not None:
        net.load_state_dict(start)
    config = FitConfig(iters=iters, lr=0.01, seed=seed, reg_noise=s, ema_warmup=9.0, input="observation",
                       recorrupt=True, precision="bf16")
    t = time.perf_counter()
    result = fit(Denoise(s), net, noisy, config, reference=clean)
    curve = {h["iteration"]: round(h["psnr_ema"], 3) for h in result.history}
    return net, curve, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mother", default="image_F16_512rgb")
    ap.add_argument("--mother-iters", type=int, default=1400)
    ap.add_argument("--targets", nargs="+", default=["32/0047", "64/0010", "128/0007"])
    ap.add_argument("--iters", type=int, default=600)
    ap.add_argument("--sigma", type=float, default=25)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    torch.set_num_threads(2)
    name, path = next(iter(image_files([a.mother]).items()))
    net, curve, seconds = fit_crop(name, path, a.sigma, a.mother_iters, 0, None, a.width)
    mother = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    print("mother", name, curve[max(curve)], f"{seconds:.0f} s", flush=True)
    targets = image_files(a.targets)
    bm3d = bm3d_scores(targets, a.sigma, 256)
    for target, tpath in targets.items():
        _, curve, seconds = fit_crop(target, tpath, a.sigma, a.iters, 1, mother, a.width)
        row = {"mother": name, "mother_iters": a.mother_iters, "target": target, "sigma": a.sigma,
               "iters": a.iters, "width": a.width, "tag": a.tag, "bm3d": bm3d[target], "curve": curve,
               "seconds": round(seconds, 1)}
        LOG.parent.mkdir(parents=True, exist_ok=True)
        with LOG.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(target, {k: curve[k] for k in (100, 200, 300, 400, 600, 800, 1000) if k in curve},
              "bm3d", bm3d[target], flush=True)


if __name__ == "__main__":
    main()
