"""Exploration: a denoiser of one image fitted on its own random crops, applied once to all of it.

    python benchmarks/explore/crop_denoiser.py --images dev --sigma 25 --net res --steps 2000 \\
        --tag res-p64b8    # one line per image in benchmarks/results/explore/crop_denoiser.jsonl

Each step draws ``--batch`` random ``--patch``² crops of the noisy image (each flipped and turned
at random: the eight symmetries of the square), recorrupts them (input ``y + ασe``, target
``y − σe/α``: Pang et al., CVPR 2021) and takes one Adam step. The weights are averaged
(an exponential moving average that warms up), and at each checkpoint the averaged net is applied
to the whole image, the mean of ``--k`` passes on jittered inputs (0: one pass on the image
itself), and scored. Scoring is not counted in the seconds.

Nets (``--net``), all the compact 2-scale DIP of :mod:`dipcli.nets` at ``--width``:

* ``dip``: as it is (BatchNorm, sigmoid output): each batch is normalised by its own statistics;
* ``res``: its output is the input plus a linear head (a residual), BatchNorm kept; at scoring
  the statistics are re-estimated for the averaged weights on crops (torch's ``update_bn``) and
  frozen (eval mode), so that any tiling of the image gives the same output;
* ``plain``: ``res`` with the BatchNorm layers removed;
* ``nobn``: ``dip`` with the BatchNorm layers removed (output still through the sigmoid).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # explorations import the studies one folder up (common, quality)
from common import DATA, RESULTS, centre_crop  # noqa: E402
from quality import acceptance_set, noisy_copy, scores  # noqa: E402

from dipcli import (  # noqa: E402
    NetSpec,
    build_net,
    read_image,
)

LOG = RESULTS / "explore" / "crop_denoiser.jsonl"

# The images the choices are made on: none is in the acceptance set (benchmarks/quality.py).
DEV = ("32/0047", "64/0010", "64/0011", "64/0014", "128/0007", "128/0008", "32/Set12_02", "64/Set12_08")


def image_files(names: list[str]) -> dict[str, Path]:
    if names == ["dev"]:
        names = list(DEV)
    files = acceptance_set()
    return {n.replace("/", "_"): files[n] if n in files else DATA / "texture_widths" / f"{n}.png"
            for n in names}


class Residual(nn.Module):
    """``x + head(body(x))``: the net says what to change, so a crop keeps its own brightness."""

    def __init__(self, body: nn.Module, width: int, channels: int) -> None:
        super().__init__()
        self.body = body
        self.head = nn.Conv2d(width, channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.head(self.body(x))


def no_norm(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.Identity())
        else:
            no_norm(child)
    return module


class SlowNorm(nn.BatchNorm2d):
    """BatchNorm that normalises by slowly moving statistics, in training too (Ioffe's batch
    renormalisation without its correction terms): a batch of a few crops then does not move each
    feature's scale and offset from one step to the next, as the batch's own statistics would."""

    started = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                mean = x.float().mean((0, 2, 3))
                var = x.float().var((0, 2, 3))
                if not self.started:
                    self.running_mean.copy_(mean)
                    self.running_var.copy_(var)
                    self.started = True
                else:
                    self.running_mean.lerp_(mean, self.slow)
                    self.running_var.lerp_(var, self.slow)
        return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                        False, 0.0, self.eps)


def slow_norm(module: nn.Module, rate: float) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            new = SlowNorm(child.num_features)
            new.slow = rate
            setattr(module, name, new)
        else:
            slow_norm(child, rate)
    return module


class Renorm(nn.BatchNorm2d):
    """Batch renormalisation (Ioffe, NeurIPS 2017): the forward pass normalises by the moving
    statistics, the backward pass sees the batch's own (the correction factors r and d are
    constants), so a batch of a few crops trains like BatchNorm without its step-to-step jumps."""

    started = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        x32 = x.float()
        mean = x32.mean((0, 2, 3))
        var = x32.var((0, 2, 3), unbiased=False)
        std = (var + self.eps).sqrt()
        with torch.no_grad():
            if not self.started:
                self.running_mean.copy_(mean)
                self.running_var.copy_(var)
                self.started = True
            run_std = (self.running_var + self.eps).sqrt()
            r = std / run_std
            d = (mean - self.running_mean) / run_std
            self.running_mean.lerp_(mean, self.slow)
            self.running_var.lerp_(var, self.slow)
        shape = (1, -1, 1, 1)
        xhat = (x32 - mean.view(shape)) / std.view(shape) * r.view(shape) + d.view(shape)
        return (xhat * self.weight.view(shape) + self.bias.view(shape)).to(x.dtype)


def renorm(module: nn.Module, rate: float) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            new = Renorm(child.num_features)
            new.slow = rate
            setattr(module, name, new)
        else:
            renorm(child, rate)
    return module


def make_net(kind: str, width: int, channels: int, seed: int) -> nn.Module:
    net = build_net(NetSpec("compact", width=width, input_depth=channels), channels, seed=seed)
    if kind == "dip":
        return net
    if kind == "nobn":
        return no_norm(net)
    if kind.startswith("renorm"):
        return renorm(net, float(kind[6:] or 0.01))
    if kind.startswith("slow"):
        return slow_norm(net, float(kind[4:] or 0.01))
    torch.manual_seed(seed)
    res = Residual(net.body, width, channels)
    return no_norm(res) if kind == "plain" else res


def d4(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each crop of the batch turned by a random one of the square's eight symmetries."""
    out = []
    for crop in batch:
        k = int(torch.randint(0, 4, (1,), generator=gen))
        crop = torch.rot90(crop, k, (1, 2))
        if torch.randint(0, 2, (1,), generator=gen):
            crop = crop.flip(2)
        out.append(crop)
    return torch.stack(out)


def crops(y: torch.Tensor, patch: int, batch: int, gen: torch.Generator, aug: bool) -> torch.Tensor:
    _, _, h, w = y.shape
    p = min(patch, h, w) // 4 * 4
    rows = torch.randint(0, h - p + 1, (batch,), generator=gen).tolist()
    cols = torch.randint(0, w - p + 1, (batch,), generator=gen).tolist()
    out = torch.cat([y[:, :, i:i + p, j:j + p] for i, j in zip(rows, cols, strict=True)])
    return d4(out, gen) if aug else out


def pad4(y: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    _, _, h, w = y.shape
    ph, pw = -h % 4, -w % 4
    return torch.nn.functional.pad(y, (0, pw, 0, ph), mode="reflect"), h, w


def apply(net: nn.Module, y: torch.Tensor, s: float, alpha: float, k: int, gen: torch.Generator,
          bf16: bool = False) -> torch.Tensor:
    padded, h, w = pad4(y)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        if k == 0:
            out = net(padded)
        else:
            out = torch.stack([net(padded + alpha * s * torch.randn(padded.shape, generator=gen))
                               for _ in range(k)]).mean(0)
    return out[:, :, :h, :w].float().clamp(0, 1)


def refresh_bn(net: nn.Module, y: torch.Tensor, a, gen: torch.Generator, s: float) -> None:
    """BatchNorm statistics of the averaged weights, on fresh jittered crops (update_bn's way)."""
    if not any(isinstance(m, nn.BatchNorm2d) for m in net.modules()):
        return
    if any(isinstance(m, (SlowNorm, Renorm)) for m in net.modules()):
        net.eval()
        return
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the batches
    net.train()
    with torch.no_grad():
        for _ in range(a.bn_batches):
            b = crops(y, a.patch, a.batch, gen, False)
            net(b + a.alpha * s * torch.randn(b.shape, generator=gen))
    net.eval()


def run(name: str, path: Path, a) -> dict:
    clean = centre_crop(read_image(path).pixels, a.crop)
    noisy = noisy_copy(clean, name, a.sigma)
    channels = noisy.shape[2]
    s = a.sigma / 255
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    net = make_net(a.net, a.width, channels, a.seed).train()
    avg = torch.optim.swa_utils.AveragedModel(
        net, multi_avg_fn=None, use_buffers=True,
        avg_fn=lambda avg_p, p, n: avg_p + (p - avg_p) * max(1 - a.wema, a.warm / (a.warm + 1 + n)))
    y = torch.from_numpy(noisy).permute(2, 0, 1)[None].contiguous()
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    sched = None
    if a.cosine:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.steps, eta_min=a.lr * a.cosine_floor)
    checkpoints = sorted({*a.checkpoints, a.steps})
    trace, fit_seconds = [], 0.0
    start = time.perf_counter()
    fixed = crops(y, a.patch, a.batch, gen, a.aug) if a.fixed_windows else None
    for step in range(1, a.steps + 1):
        b = fixed if fixed is not None else crops(y, a.patch, a.batch, gen, a.aug)
        e = s * torch.randn(b.shape, generator=gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            out = net(b + a.alpha * e)
        err = (out.float() - (b - e / a.alpha)) ** 2
        m = a.margin
        loss = (err[:, :, m:-m, m:-m] if m else err).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        avg.update_parameters(net)
        if step in checkpoints:
            fit_seconds += time.perf_counter() - start
            model = avg.module
            refresh_bn(model, y, a, torch.Generator().manual_seed(1), s)
            t0 = time.perf_counter()
            out = apply(model, y, s, a.alpha, a.k, torch.Generator().manual_seed(2), a.bf16)
            infer = time.perf_counter() - t0
            psnr = scores(out[0].permute(1, 2, 0).numpy(), clean)[0]
            row = {"step": step, "seconds": round(fit_seconds, 2), "infer": round(infer, 3),
                   "psnr": round(psnr, 3)}
            if a.train_bn:
                model.train()
                o = apply(model, y, s, a.alpha, 0, torch.Generator().manual_seed(2), a.bf16)
                row["psnr_trainbn"] = round(scores(o[0].permute(1, 2, 0).numpy(), clean)[0], 3)
                model.eval()
            if a.k_values:
                for k in a.k_values:
                    o = apply(model, y, s, a.alpha, k, torch.Generator().manual_seed(2), a.bf16)
                    row[f"psnr_k{k}"] = round(scores(o[0].permute(1, 2, 0).numpy(), clean)[0], 3)
            trace.append(row)
            print(name, row, flush=True)
            model.train()
            start = time.perf_counter()
    return {"image": name, "sigma": a.sigma, "tag": a.tag, "trace": trace,
            "args": {k: v for k, v in vars(a).items() if k not in ("images", "log")}}


def bm3d_scores(files: dict[str, Path], sigma: float, crop: int) -> dict[str, float]:
    """BM3D's PSNR (σ given) on each image's noisy copy, cached in the log's folder."""
    cache = LOG.parent / "bm3d.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    known = json.loads(cache.read_text()) if cache.exists() else {}
    for name, path in files.items():
        key = f"{name}/{sigma:g}/{crop}"
        if key not in known:
            import bm3d

            clean = centre_crop(read_image(path).pixels, crop)
            noisy = noisy_copy(clean, name, sigma)
            s = sigma / 255
            out = bm3d.bm3d_rgb(noisy, s) if noisy.shape[2] == 3 else bm3d.bm3d(noisy[:, :, 0], s)[:, :, None]
            known[key] = round(scores(np.asarray(out, np.float32), clean)[0], 3)
            cache.write_text(json.dumps(known, indent=1))
    return {name: known[f"{name}/{sigma:g}/{crop}"] for name in files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", nargs="+", default=["dev"])
    ap.add_argument("--sigma", type=float, default=25)
    ap.add_argument("--net", default="res", help="dip, nobn, res, plain, slow[RATE]")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--checkpoints", type=int, nargs="*", default=[250, 500, 1000, 1500])
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--cosine", action="store_true")
    ap.add_argument("--cosine-floor", type=float, default=0.0)
    ap.add_argument("--wema", type=float, default=0.99)
    ap.add_argument("--warm", type=float, default=9.0)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--aug", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--k", type=int, default=0, help="jittered passes averaged at inference (0: y itself)")
    ap.add_argument("--k-values", type=int, nargs="*", default=[])
    ap.add_argument("--bn-batches", type=int, default=16)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--fixed-windows", action="store_true", help="draw the crops once and keep them")
    ap.add_argument("--train-bn", action="store_true", help="also score with the batch statistics of "
                    "the whole image")
    ap.add_argument("--margin", type=int, default=0, help="pixels at each crop border left out of the loss")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="")
    ap.add_argument("--log", type=Path, default=LOG)
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    a.log.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    files = image_files(a.images)
    reference = bm3d_scores(files, a.sigma, a.crop)
    for name, path in files.items():
        row = run(name, path, a)
        row["bm3d"] = reference[name]
        rows.append(row)
        with a.log.open("a") as f:
            f.write(json.dumps(row) + "\n")
    for i, point in enumerate(rows[0]["trace"]):
        gaps = [r["trace"][i]["psnr"] - r["bm3d"] for r in rows]
        print(f"{a.tag} step {point['step']}: gap to BM3D mean {np.mean(gaps):+.2f} worst {min(gaps):+.2f}"
              f" ({point['seconds']:.1f} s on the first image)")


if __name__ == "__main__":
    main()
