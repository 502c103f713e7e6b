"""Exploration (issue 32): which recorruption teaches a DIP fit the noise of a photo, at small scale.

    python benchmarks/explore/camera_recorrupt.py --images kodim01 image_F16_512rgb CBSD68_0013 --iters 300

Crops of the acceptance set through the simulated camera of benchmarks/camera.py (shot 0.012),
each fitted with the Recorrupted-to-Recorrupted loss of dipcli's presets (the observation as the
input, input y + e, target y − e, e drawn like the noise: Pang et al., CVPR 2021; the compact net
at width 32, Adam 0.01, an average of the outputs) for a short budget, with e drawn four ways:

* ``white-est``: white N(0, σ²) at σ from dipcli.physics.noise.estimate_noise (what `dip` uses today);
* ``white-curve``: white, per pixel σ(y) from dipcli.physics.camera's curve (level right, shape not);
* ``correlated``: dipcli.physics.camera.sample_noise: the curve and the correlation read from y;
* ``shuffle2``: pixel-shuffle downsampling by 2 (Zhou et al., AAAI 2020): the four sub-images,
  whose noise is far less correlated, fitted as a batch with white σ(y) recorruption, then put
  back together.

Not the product: a guide for wiring the noise model into the fit. Run with nice and one thread.
Its results (results/camera/recorrupt.jsonl) were read with the readout before 2026-12-07
(readout_trial.py's ``before``); the script now reads the product's.
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
sys.path.insert(0, str(HERE.parent))
from camera import camera, case_seed  # noqa: E402
from common import RESULTS, centre_crop  # noqa: E402
from quality import acceptance_set, scores  # noqa: E402

from dipcli import NetSpec, build_net, read_image  # noqa: E402

# internal: an exploration of the noise model's parts before they were wired into the fit
from dipcli.physics.camera import read_noise, sample_noise  # noqa: E402
from dipcli.physics.noise import estimate_noise  # noqa: E402

VARIANTS = ("white-est", "white-curve", "correlated", "shuffle2")
IMAGES = ("kodim01", "image_F16_512rgb", "CBSD68_0013")


def shuffle(x: np.ndarray) -> np.ndarray:
    """(H, W, C) → (4, H/2, W/2, C): the four phases of a stride-2 sampling."""
    return np.stack([x[i::2, j::2] for i in (0, 1) for j in (0, 1)])


def unshuffle(parts: np.ndarray) -> np.ndarray:
    _, h, w, c = parts.shape
    out = np.zeros((2 * h, 2 * w, c), dtype=parts.dtype)
    for k, (i, j) in enumerate((i, j) for i in (0, 1) for j in (0, 1)):
        out[i::2, j::2] = parts[k]
    return out


def fit(y: np.ndarray, draw, iters: int, seed: int = 0) -> np.ndarray:
    """R2R fit of the compact net on ``y`` ((N, H, W, C) batch), ``draw(rng)`` giving e like y."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_net(NetSpec("compact", width=32, input_depth=y.shape[-1]), y.shape[-1], seed=seed)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    obs = torch.from_numpy(y).permute(0, 3, 1, 2).float()
    ema = None
    for it in range(1, iters + 1):
        e = torch.from_numpy(draw(rng)).permute(0, 3, 1, 2).float()
        out = net(obs + e)
        loss = torch.mean((out - (obs - e)) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        decay = min(0.99, 1 - 9.0 / (9.0 + 1 + it))  # the presets' warm-up (ema_warmup 9)
        ema = out.detach() if ema is None else ema.lerp_(out.detach(), 1 - decay)
    return ema.permute(0, 2, 3, 1).numpy()


def run_variant(variant: str, noisy: np.ndarray, iters: int) -> np.ndarray:
    curve, corr = read_noise(noisy)
    level = noisy  # the best guess of the clean brightness the fit has
    if variant == "white-est":
        s = estimate_noise(noisy)
        return fit(noisy[None], lambda r: (s * r.standard_normal((1, *noisy.shape))).astype(np.float32),
                   iters)[0]
    if variant == "white-curve":
        return fit(noisy[None], lambda r: sample_noise(noisy.shape, curve, None, level, r)[None], iters)[0]
    if variant == "correlated":
        return fit(noisy[None], lambda r: sample_noise(noisy.shape, curve, corr, level, r)[None], iters)[0]
    parts = shuffle(noisy)
    return unshuffle(fit(parts, lambda r: np.stack([sample_noise(p.shape, curve, None, p, r) for p in parts]),
                         iters))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", nargs="+", default=list(IMAGES[:2]), help="acceptance-set names")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--shot", type=float, default=0.012)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--log", type=Path, default=RESULTS / "camera" / "recorrupt.jsonl")
    args = ap.parse_args()
    torch.set_num_threads(1)
    files = acceptance_set()
    for name in args.images:
        clean = centre_crop(read_image(files[name]).pixels, args.crop)
        seed = case_seed(name, args.shot)
        reference, noisy = camera(clean, None, seed), camera(clean, args.shot, seed)
        for variant in args.variants:
            start = time.perf_counter()
            out = np.clip(run_variant(variant, noisy, args.iters), 0, 1)
            row = {"image": name, "crop": args.crop, "shot": args.shot, "iters": args.iters,
                   "variant": variant,
                   "noisy_psnr": scores(noisy, reference)[0], "psnr": scores(out, reference)[0],
                   "seconds": time.perf_counter() - start}
            print(json.dumps(row), flush=True)
            with args.log.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
