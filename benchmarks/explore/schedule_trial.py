"""Trial: the presets' recorrupted fit (bfloat16, as `dip` runs it on this CPU) at a fixed budget
with a learning-rate schedule or zero padding, on chosen 256² crops of the acceptance set.

    python benchmarks/explore/schedule_trial.py --images kodim03 CBSD68_0003 Set12_09 \\
        --lr 0.01 --sched cos --tag cos01   # appends to results/explore/r2r-trials/schedule_trial.jsonl

A stand-alone copy of the loop (input y + e, target y − e, a warm average of the outputs) so that
the schedule can change without touching `dipcli.optim`; its constant-rate fit is `fast`'s.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # explorations import the studies one folder up (common, quality)
LOGS = HERE.parent / "results" / "explore" / "r2r-trials"  # the trials' logs and write-up
from common import centre_crop  # noqa: E402
from quality import acceptance_set, noisy_copy, scores  # noqa: E402

from dipcli import (  # noqa: E402
    NetSpec,
    build_net,
    read_image,
)
from dipcli.tensors import jitter  # noqa: E402  # internal: the jitter is what this tries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--sigma", type=float, default=25)
    ap.add_argument("--iters", type=int, default=700)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--sched", default="const", choices=["const", "cos", "lin"])
    ap.add_argument("--frac", type=float, default=1.0, help="the decay spans this last fraction")
    ap.add_argument("--floor", type=float, default=0.0, help="the rate decays to this fraction")
    ap.add_argument("--padding", default="reflect")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--tag", default="")
    ap.add_argument("--log", type=Path, default=LOGS / "schedule_trial.jsonl")
    a = ap.parse_args()
    files = acceptance_set()

    def rate(it: int) -> float:
        start = a.iters * (1 - a.frac)
        if a.sched == "const" or it <= start:
            return a.lr
        x = (it - start) / (a.iters - start)
        f = 0.5 * (1 + math.cos(math.pi * x)) if a.sched == "cos" else 1 - x
        return a.lr * (a.floor + (1 - a.floor) * f)

    for name in a.images:
        clean = centre_crop(read_image(files[name]).pixels, a.crop)
        noisy = noisy_copy(clean, name, a.sigma)
        channels = noisy.shape[2]
        s = a.sigma / 255
        net = build_net(NetSpec("compact", input_depth=channels, padding=a.padding), channels, seed=0)
        net = net.train().to(memory_format=torch.channels_last)
        y = torch.from_numpy(noisy).permute(2, 0, 1)[None].contiguous(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), lr=a.lr)
        ema, trace, start = None, [], time.perf_counter()
        for it in range(1, a.iters + 1):
            for group in opt.param_groups:
                group["lr"] = rate(it)
            e = s * jitter(y)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = net(y + e)
            out = out.float()
            loss = ((out - (y - e)) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                decay = min(0.99, 1 - 9 / (10 + it))
                ema = out.detach().clone() if ema is None else ema.lerp_(out.detach(), 1 - decay)
            if it % 50 == 0 or it == a.iters:
                psnr, _ = scores(ema[0].permute(1, 2, 0).numpy(), clean)
                trace.append((it, round(time.perf_counter() - start, 1), round(psnr, 3)))
        print(name, a.tag, trace[-1], flush=True)
        with a.log.open("a") as f:
            f.write(json.dumps({"image": name, "sigma": a.sigma, "iters": a.iters, "lr": a.lr,
                                "sched": a.sched, "frac": a.frac, "floor": a.floor,
                                "padding": a.padding, "width": 64, "tag": a.tag, "trace": trace}) + "\n")


if __name__ == "__main__":
    main()
