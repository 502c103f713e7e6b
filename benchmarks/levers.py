"""Exploration of denoising quality levers on a few 256² crops (issue 16), before building them in.

A small stand-alone loop (not the product's): every lever here is a variant of DIP denoising,
fitted for a whole budget while the clean image is watched, so the peak, the stop rules'
choices and the averages of several fits (ensembles) can be compared afterwards:

* ``input``: ``z`` (the DIP paper's random code) or ``y`` (the noisy image itself, as Jo, Chun
  & Choi, "Rethinking Deep Image Prior for Denoising", ICCV 2021, do);
* ``loss``: ``mse`` (plain DIP) or ``sure`` (Stein's unbiased risk estimate of the MSE with a
  one-probe Monte-Carlo divergence, Ramani, Blu & Unser, IEEE TIP 2008; as a training loss:
  Metzler et al. 2018, Soltanayev & Chun 2018). Only a net whose input is ``y`` has a
  divergence with respect to ``y`` to penalise;
* ``holdout``: a share of pixels left out of the loss; their error against the noisy image is
  an unbiased estimate of the MSE (+σ²), a stop signal that needs no noise model.

Rows go to a JSON Lines log (resumable: a run already in the log is not repeated); averaged
outputs every ``--snap-every`` iterations go to ``--cache`` so that ensembles can be scored
offline by ``--analyse``.

    python benchmarks/levers.py --log benchmarks/results/levers.jsonl --cache /tmp/levers
    python benchmarks/levers.py --log benchmarks/results/levers.jsonl --cache /tmp/levers --analyse
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from common import DATA, centre_crop  # noqa: E402

from dipcli import NetSpec, build_net, read_image  # noqa: E402

IMAGES = {
    "Lena": "set9/image_Lena512rgb.png",
    "Peppers": "set9/image_Peppers512rgb.png",
    "House": "set9/image_House256rgb.png",
    "F16": "set9/image_F16_512rgb.png",
    "Baboon": "set9/image_Baboon512rgb.png",
    "kodim03": "set9/kodim03.png",
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((np.clip(a, 0, 1) - b) ** 2)))


def to_t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].float()


def run(clean: np.ndarray, noisy: np.ndarray, sigma: float, v: dict, snap_every: int):
    """Fit one variant; return per-check rows and the averaged output every ``snap_every``."""
    torch.manual_seed(v["seed"])
    gen = torch.Generator().manual_seed(v["seed"])
    spec = NetSpec(arch=v["arch"], width=v.get("width"),
                   input_depth=3 if v["input"] == "y" else None).resolved()
    net = build_net(spec, out_channels=noisy.shape[2], seed=v["seed"]).train()
    net = net.to(memory_format=torch.channels_last)
    y = to_t(noisy).contiguous(memory_format=torch.channels_last)
    ref = to_t(clean)
    h, w = noisy.shape[:2]
    if v["input"] == "z":
        z = torch.rand(1, spec.input_depth, h, w, generator=gen) * 0.1
    else:
        z = y.clone()
    z = z.contiguous(memory_format=torch.channels_last)
    keep = torch.ones(1, 1, h, w)
    if v.get("holdout"):
        keep = (torch.rand(1, 1, h, w, generator=gen) >= v["holdout"]).float()
    held = 1 - keep
    opt = torch.optim.Adam(net.parameters(), lr=v.get("lr", 0.01))
    sched = None
    if v.get("cosine"):
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, v["iters"]) / v["iters"])))
    bf16 = v.get("bf16", True)
    eps = v.get("eps", 0.02)
    ema = None
    rows, snaps = [], {}
    start = time.perf_counter()
    for it in range(1, v["iters"] + 1):
        inp = z + v["jitter"] * torch.randn(z.shape).contiguous(memory_format=torch.channels_last) \
            if v["jitter"] else z
        if v["loss"] == "sure":
            b = torch.randn(y.shape).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                both = net(torch.cat([inp, inp + eps * b]))
            both = both.float()
            out, pert = both[:1], both[1:]
            div = torch.mean(b * (pert - out)) / eps
            loss = torch.mean((out - y) ** 2) - sigma**2 + 2 * sigma**2 * div
        else:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = net(inp)
            out = out.float()
            loss = torch.sum(keep * (out - y) ** 2) / (keep.sum() * 3)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        with torch.no_grad():
            out = out.detach()
            decay = v.get("ema", 0.99)
            if v.get("warmup"):
                decay = min(decay, 1 - v["warmup"] / (v["warmup"] + 1 + it))
            ema = out.clone() if ema is None else ema.lerp_(out, 1 - decay)
        if it % 10 == 0:
            e = ema[0].permute(1, 2, 0).numpy()
            r = out[0].permute(1, 2, 0).numpy()
            row = {"it": it, "t": round(time.perf_counter() - start, 2), "psnr_raw": round(psnr(r, clean), 3),
                   "psnr_ema": round(psnr(e, clean), 3),
                   "ema_loss": float(torch.mean((ema - y) ** 2)), "loss": loss.item()}
            if v.get("holdout"):
                row["holdout"] = float(torch.sum(held * (ema - y) ** 2) / (held.sum() * 3))
            rows.append(row)
        if it % snap_every == 0:
            snaps[it] = ema[0].permute(1, 2, 0).numpy().astype(np.float16)
    del ref
    secs = time.perf_counter() - start
    if v["input"] == "y":  # test-time augmentation with the final weights: the 8 flips and turns
        outs = []
        with torch.no_grad():
            for k in range(4):
                for flip in (False, True):
                    t = torch.rot90(y, k, (2, 3))
                    t = torch.flip(t, (3,)) if flip else t
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        o = net(t.contiguous(memory_format=torch.channels_last)).float()
                    o = torch.flip(o, (3,)) if flip else o
                    outs.append(torch.rot90(o, -k, (2, 3)))
        tta = torch.stack(outs).mean(0)[0].permute(1, 2, 0).numpy()
        rows[-1]["psnr_tta"] = round(psnr(tta, clean), 3)
        rows[-1]["psnr_tta_ema"] = round(psnr((tta + ema[0].permute(1, 2, 0).numpy()) / 2, clean), 3)
    return rows, snaps, secs


def run_crops(clean: np.ndarray, noisy: np.ndarray, sigma: float, v: dict, snap_every: int):
    """y-SURE trained on random ``crop``² patches of the image (``batch`` per step); the net is a
    denoiser, so it is then applied to the whole image with an average of its weights."""
    import copy

    torch.manual_seed(v["seed"])
    gen = torch.Generator().manual_seed(v["seed"])
    c = noisy.shape[2]
    spec = NetSpec(arch=v["arch"], width=v.get("width"), input_depth=c).resolved()
    net = build_net(spec, out_channels=c, seed=v["seed"]).train().to(memory_format=torch.channels_last)
    avg = copy.deepcopy(net)
    y = to_t(noisy).contiguous(memory_format=torch.channels_last)
    h, w = noisy.shape[:2]
    size, batch, eps = v["crop"], v.get("batch", 1), v.get("eps", 0.02)
    opt = torch.optim.Adam(net.parameters(), lr=v.get("lr", 0.01))
    bf16 = v.get("bf16", True)
    rows, snaps = [], {}
    start = time.perf_counter()
    for it in range(1, v["iters"] + 1):
        tops = torch.randint(0, h - size + 1, (batch,), generator=gen).tolist()
        lefts = torch.randint(0, w - size + 1, (batch,), generator=gen).tolist()
        patch = torch.cat([y[:, :, t:t + size, x:x + size] for t, x in zip(tops, lefts, strict=True)])
        patch = patch.contiguous(memory_format=torch.channels_last)
        b = torch.randn(patch.shape).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(patch).float()
            pert = net(patch + eps * b).float()
        div = torch.mean(b * (pert - out)) / eps
        loss = torch.mean((out - patch) ** 2) - sigma**2 + 2 * sigma**2 * div
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        decay = min(v.get("ema", 0.99), 1 - v.get("warmup", 9.0) / (v.get("warmup", 9.0) + 1 + it))
        with torch.no_grad():
            for pa, pn in zip(avg.parameters(), net.parameters(), strict=True):
                pa.lerp_(pn, 1 - decay)
        if it % snap_every == 0 or it == v["iters"]:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                full_avg = avg(y).float()[0].permute(1, 2, 0).numpy()
                full_raw = net(y).float()[0].permute(1, 2, 0).numpy()
            rows.append({"it": it, "t": round(time.perf_counter() - start, 2),
                         "psnr_raw": round(psnr(full_raw, clean), 3),
                         "psnr_ema": round(psnr(full_avg, clean), 3),
                         "loss": loss.item()})
            snaps[it] = full_avg.astype(np.float16)
    return rows, snaps, time.perf_counter() - start


VARIANTS = [
    dict(name="crop128", arch="compact", input="y", loss="sure", crop=128, batch=1, iters=1500, seed=0),
    dict(name="crop64x4", arch="compact", input="y", loss="sure", crop=64, batch=4, iters=1500, seed=0),
    dict(name="compact-y-sure", arch="compact", input="y", loss="sure", jitter=0.0, iters=1000, seed=0),
    dict(name="cy-w", arch="compact", input="y", loss="sure", jitter=0.0, iters=1500, seed=0, warmup=9.0),
    dict(name="ly-w", arch="lean", input="y", loss="sure", jitter=0.0, iters=1500, seed=0, warmup=9.0),
    dict(name="cy-fp32", arch="compact", input="y", loss="sure", jitter=0.0, iters=1500, seed=0, warmup=9.0,
         bf16=False, eps=0.01),
    dict(name="cy-eps1", arch="compact", input="y", loss="sure", jitter=0.0, iters=1500, seed=0, warmup=9.0,
         eps=0.1),
    dict(name="cy-w-j", arch="compact", input="y", loss="sure", jitter=0.05, iters=1500, seed=0, warmup=9.0),
    dict(name="compact-z", arch="compact", input="z", loss="mse", jitter=1 / 30, iters=2000, seed=0,
         holdout=0.03),
    dict(name="cy-lr2", arch="compact", input="y", loss="sure", jitter=0.0, iters=1000, seed=0, warmup=9.0,
         lr=0.02),
    dict(name="cy-lr3", arch="compact", input="y", loss="sure", jitter=0.0, iters=1000, seed=0, warmup=9.0,
         lr=0.03),
    dict(name="ly-lr2", arch="lean", input="y", loss="sure", jitter=0.0, iters=1000, seed=0, warmup=9.0,
         lr=0.02),
    dict(name="cy-s1", arch="compact", input="y", loss="sure", jitter=0.0, iters=1000, seed=1, warmup=9.0),
    dict(name="cy-cos", arch="compact", input="y", loss="sure", jitter=0.0, iters=1200, seed=0, warmup=9.0,
         cosine=True),
    dict(name="cy-j", arch="compact", input="y", loss="sure", jitter=0.05, iters=1200, seed=0, warmup=9.0),
    dict(name="cy-j2", arch="compact", input="y", loss="sure", jitter=0.1, iters=1200, seed=0, warmup=9.0),
    dict(name="cy-j4", arch="compact", input="y", loss="sure", jitter=0.2, iters=1200, seed=0, warmup=9.0),
    dict(name="lz", arch="lean", input="z", loss="mse", jitter=1 / 60, iters=1200, seed=0, warmup=9.0),
    dict(name="lz1", arch="lean", input="z", loss="mse", jitter=1 / 60, iters=1200, seed=1, warmup=9.0),
    dict(name="ly", arch="lean", input="y", loss="sure", jitter=0.0, iters=1000, seed=0, warmup=9.0),
    dict(name="cz", arch="compact", input="z", loss="mse", jitter=1 / 30, iters=2000, seed=0, warmup=9.0),
]
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[25])
    ap.add_argument("--images", nargs="+", default=list(IMAGES))
    ap.add_argument("--first-sigma", action="store_true", help="all variants at one σ before the next")
    ap.add_argument("--only", nargs="+", default=None, help="variant names")
    ap.add_argument("--snap-every", type=int, default=50)
    ap.add_argument("--analyse", action="store_true")
    args = ap.parse_args()
    if args.analyse:
        return analyse(args)
    done = set()
    if args.log.exists():
        for line in args.log.read_text().splitlines():
            r = json.loads(line)
            done.add((r["image"], r["sigma"], r["variant"]))
    args.cache.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    for variant in VARIANTS:
        if args.only and variant["name"] not in args.only:
            continue
        for sigma in args.sigmas:
            for name in args.images:
                if (name, sigma, variant["name"]) in done:
                    continue
                clean = centre_crop(read_image(DATA / IMAGES[name]).pixels, 256)
                rng = np.random.default_rng(0)
                noisy = np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1).astype(np.float32)
                fit = run_crops if variant.get("crop") else run
                rows, snaps, secs = fit(clean, noisy, sigma / 255, variant, args.snap_every)
                np.savez_compressed(args.cache / f"{name}-{sigma:g}-{variant['name']}.npz",
                                    **{str(k): v for k, v in snaps.items()})
                best = max(rows, key=lambda r: r["psnr_ema"])
                rec = {"image": name, "sigma": sigma, "variant": variant["name"], "settings": variant,
                       "seconds": round(secs, 1), "s_per_iter": round(secs / variant["iters"], 4),
                       "peak": best["psnr_ema"], "peak_it": best["it"], "rows": rows}
                with args.log.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
                print(f"{name} σ={sigma:g} {variant['name']}: peak {best['psnr_ema']:.2f} @ {best['it']}, "
                      f"{secs / variant['iters']:.3f} s/it", flush=True)


PAIRS = (("cy-j2", "cy-j"), ("cy-w", "cy-fp32"), ("cy-w", "lz"), ("cy-w", "lz1"), ("lz", "lz1"),
         ("compact-y-sure", "lz"),
         ("compact-y-sure", "lz1"))


def analyse(args) -> None:
    """levers.md: every run's peak and its PSNR along the way; pairs of runs averaged (ensembles),
    each member at its own peak, from the averaged outputs kept in ``--cache``."""
    recs = [json.loads(line) for line in args.log.read_text().splitlines()]
    lines = ["Denoising levers, 256² centre crops, σ = 25 (`benchmarks/levers.py`). PSNR (dB) of the "
             "averaged output at iterations 300 / 600 / 1000 and its peak over the run. Seconds per "
             "iteration as measured, several while other work shared the CPU (upper bounds).", "",
             "| image | variant | @300 | @600 | @1000 | peak (iteration) | s/it |",
             "|---|---|---|---|---|---|---|"]
    for r in recs:
        at = {row["it"]: row["psnr_ema"] for row in r["rows"]}
        cells = [f"{at[i]:.2f}" if i in at else "" for i in (300, 600, 1000)]
        lines.append(f"| {r['image']} | {r['variant']} | {' | '.join(cells)} "
                     f"| {r['peak']:.2f} ({r['peak_it']}) | {r['s_per_iter']:.3f} |")
    lines += ["", "Two runs averaged, each at its own peak:", "", "| image | runs | members | average |",
              "|---|---|---|---|"]
    for name in IMAGES:
        clean = None
        for a, b in PAIRS:
            files = [args.cache / f"{name}-25-{v}.npz" for v in (a, b)]
            if not all(f.exists() for f in files):
                continue
            if clean is None:
                clean = centre_crop(read_image(DATA / IMAGES[name]).pixels, 256)
            peaks = []
            for f in files:
                snaps = np.load(f)
                best = max(snaps.files, key=lambda k: psnr(snaps[k].astype(np.float32), clean))
                peaks.append(snaps[best].astype(np.float32))
            members = " / ".join(f"{psnr(x, clean):.2f}" for x in peaks)
            lines.append(f"| {name} | {a} + {b} | {members} | {psnr(np.mean(peaks, 0), clean):.2f} |")
    lines += ["", "Variants:", ""]
    ran = {r["variant"] for r in recs}
    lines += [f"* `{v['name']}`: {json.dumps({k: x for k, x in v.items() if k != 'name'})}" for v in VARIANTS
              if v["name"] in ran]
    out = args.log.with_suffix(".md")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
