"""Exploration: do a tile's fitted weights give the next tile a head start?

    python benchmarks/explore/warm_tiles.py --image image_F16_512rgb --tile 256 --first 1400 --iters 200 400

The image (whole, ``--crop 0``) is cut into non-overlapping ``--tile``² tiles. Each tile is fitted as
`dip denoise --preset balanced` fits one (the recorrupted fit on the noisy tile, the running average
of outputs), from fresh weights (``cold``, ``--first`` iterations), and from the weights the fit of
the first tile ended with (``warm``, each budget of ``--iters``); the PSNR of the average is read
at every check. Appends to benchmarks/results/explore/warm_tiles.jsonl.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # explorations import the studies one folder up (common, quality)
from common import RESULTS, centre_crop  # noqa: E402
from crop_denoiser import image_files  # noqa: E402
from quality import noisy_copy  # noqa: E402

from dipcli import (  # noqa: E402
    Denoise,
    FitConfig,
    NetSpec,
    build_net,
    fit,
    read_image,
)

LOG = RESULTS / "explore" / "warm_tiles.jsonl"


def config(iters: int, sigma: float, seed: int, warmup: float) -> FitConfig:
    return FitConfig(iters=iters, lr=0.01, seed=seed, reg_noise=sigma, ema_warmup=warmup, input="observation",
                     recorrupt=True, precision="bf16", check_every=10)


def fit_tile(net, noisy, clean, sigma, iters, seed, warmup) -> tuple[dict[int, float], float]:
    t = time.perf_counter()
    result = fit(Denoise(sigma), net, noisy, config(iters, sigma, seed, warmup), reference=clean)
    curve = {h["iteration"]: round(h["psnr_ema"], 3) for h in result.history}
    return curve, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="image_F16_512rgb")
    ap.add_argument("--crop", type=int, default=0)
    ap.add_argument("--sigma", type=float, default=25)
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--first", type=int, default=1400)
    ap.add_argument("--iters", type=int, nargs="+", default=[200, 400])
    ap.add_argument("--warmup", type=float, default=9.0)
    ap.add_argument("--cold", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--chain", action="store_true", help="each tile starts from the previous tile's "
                    "weights (with the first of --iters), not the first tile's")
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    torch.set_num_threads(1)
    name, path = next(iter(image_files([a.image]).items()))
    clean_all = centre_crop(read_image(path).pixels, a.crop)
    noisy_all = noisy_copy(clean_all, name, a.sigma)
    s = a.sigma / 255
    t = a.tile
    h, w = clean_all.shape[:2]
    tiles = [(i, j) for i in range(0, h - t + 1, t) for j in range(0, w - t + 1, t)]
    spec = NetSpec("compact", width=32, input_depth=clean_all.shape[2])
    rows = []
    first = None
    for k, (i, j) in enumerate(tiles):
        noisy, clean = noisy_all[i:i + t, j:j + t], clean_all[i:i + t, j:j + t]
        row = {"image": name, "tile": [i, j], "sigma": a.sigma, "tag": a.tag}
        if a.cold or k == 0:
            net = build_net(spec, clean.shape[2], seed=0)
            row["cold"], row["cold_s"] = fit_tile(net, noisy, clean, s, a.first, 0, a.warmup)
            if k == 0:
                first = copy.deepcopy(net.state_dict())
        if k > 0:
            for n in a.iters:
                net = build_net(spec, clean.shape[2], seed=0)
                net.load_state_dict(first)
                key = f"chain{n}" if a.chain else f"warm{n}"
                row[key], row[f"{key}_s"] = fit_tile(net, noisy, clean, s, n, 1, a.warmup)
                if a.chain and n == a.iters[0]:
                    chained = copy.deepcopy(net.state_dict())
            if a.chain:
                first = chained
        print(json.dumps({k: (v if not isinstance(v, dict) else {i: v[i] for i in sorted(v)[-1:]})
                          for k, v in row.items()}), flush=True)
        rows.append(row)
        LOG.parent.mkdir(parents=True, exist_ok=True)
        with LOG.open("a") as f:
            f.write(json.dumps(row) + "\n")
    for key in rows[-1]:
        if key.startswith(("cold", "warm", "chain")) and not key.endswith("_s"):
            finals = [r[key][max(r[key])] for r in rows[1:] if key in r]
            print(key, "mean over tiles 2..:", round(float(np.mean(finals)), 3))


if __name__ == "__main__":
    main()
