"""Trial: the recorrupted fit trained on random crops of the image (so that a step's cost would not
grow with the image), scored on the whole image, against the whole image per step.

    python benchmarks/explore/crop_trial.py --images kodim03 --patch 128 --batch 1 \\
        --iters 400 --tag p128b1    # --patch 256: the whole 256² crop

Appends to results/explore/r2r-trials/crop_trial.jsonl.

A quick look, in float32: the average is of the weights (an exponential moving average, warming
up as `dip`'s average of outputs does), and the score is that of the mean of ``--k`` outputs for
jittered inputs; "raw" scores the current weights.
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
LOGS = HERE.parent / "results" / "explore" / "r2r-trials"  # the trials' logs and write-up
from common import centre_crop  # noqa: E402
from quality import acceptance_set, noisy_copy, scores  # noqa: E402

from dipcli import (  # noqa: E402
    NetSpec,
    build_net,
    read_image,
)


def score(net: torch.nn.Module, weights: dict, y: torch.Tensor, clean, s: float, k: int) -> float:
    """PSNR of the mean of ``k`` outputs of ``net`` with ``weights`` for jittered inputs."""
    current = {name: v.clone() for name, v in net.state_dict().items()}
    net.load_state_dict(weights)
    with torch.no_grad():
        out = torch.stack([net(y + s * torch.randn_like(y)) for _ in range(k)]).mean(0)
    net.load_state_dict(current)
    return scores(out[0].permute(1, 2, 0).numpy(), clean)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--sigma", type=float, default=25)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--wema", type=float, default=0.999)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--k", type=int, default=4, help="jittered passes averaged at a score")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--tag", default="")
    ap.add_argument("--log", type=Path, default=LOGS / "crop_trial.jsonl")
    a = ap.parse_args()
    files = acceptance_set()
    for name in a.images:
        clean = centre_crop(read_image(files[name]).pixels, a.crop)
        noisy = noisy_copy(clean, name, a.sigma)
        h, w, channels = noisy.shape
        s = a.sigma / 255
        net = build_net(NetSpec("compact", input_depth=channels), channels, seed=0)
        net = net.train().to(memory_format=torch.channels_last)
        y = torch.from_numpy(noisy).permute(2, 0, 1)[None].contiguous(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), lr=a.lr)
        avg = {k: v.detach().clone() for k, v in net.state_dict().items()}

        p, trace, start = a.patch, [], time.perf_counter()
        for it in range(1, a.iters + 1):
            if p >= min(h, w):
                batch = y
            else:  # crops at multiples of 4, the net's down/up path
                rows = (torch.randint(0, (h - p) // 4 + 1, (a.batch,)) * 4).tolist()
                cols = (torch.randint(0, (w - p) // 4 + 1, (a.batch,)) * 4).tolist()
                batch = torch.cat([y[:, :, i:i + p, j:j + p] for i, j in zip(rows, cols, strict=True)])
                batch = batch.contiguous(memory_format=torch.channels_last)
            e = s * torch.randn_like(batch)
            loss = ((net(batch + e) - (batch - e)) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                decay = min(a.wema, 1 - 9 / (10 + it))
                for k, v in net.state_dict().items():
                    if v.dtype.is_floating_point:
                        avg[k].lerp_(v, 1 - decay)
                    else:
                        avg[k].copy_(v)
            if it % a.eval_every == 0 or it == a.iters:
                t = time.perf_counter() - start
                trace.append((it, round(t, 1), round(score(net, avg, y, clean, s, a.k), 3),
                              round(score(net, net.state_dict(), y, clean, s, a.k), 3)))
                start += time.perf_counter() - start - t  # the scoring is not the fit's time
                print(name, *trace[-1], flush=True)
        with a.log.open("a") as f:
            f.write(json.dumps({"image": name, "sigma": a.sigma, "patch": p, "batch": a.batch, "lr": a.lr,
                                "wema": a.wema, "k": a.k, "tag": a.tag, "trace": trace}) + "\n")


if __name__ == "__main__":
    main()
