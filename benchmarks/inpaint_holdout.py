"""Exploration (issue 21): known pixels held out of the fit, to stop it and to choose the filler.

A DIP inpainting fit has no noise level to stop at, and on some images a classical filler beats
it (inpaint_quality.py). Both can be decided from the image alone by cross-validation: hide a
few known pixels from the fit, in holes of the same shape as the real ones (the mask moved by
half the image, so each held-out pixel keeps known neighbours like a real hole's), and measure
every candidate's error there, where the truth is known. The fit is stopped at the iterate with
the least held-out error, and the candidate (the DIP fit, a classical filler, their average)
with the least held-out error is the one written. Cross-validation for choosing a smoothing
parameter is old (Stone 1974; Wahba 1990, generalised cross-validation); as a stop for DIP,
the idea of a validation split of the observed pixels is that of Ding et al. (2022, "Self-
validation: early stopping for single-instance deep generative priors").

For each case of inpaint_quality.py (same crops, same masks) this fits `dip inpaint`'s default
net, with every defaults but the mask (known minus held-out), its whole budget, and records per
check the held-out error and the true PSNR in the holes; then scores the choices offline:

    python benchmarks/inpaint_holdout.py --cases scratches/image_F16_512rgb block64/image_House256rgb
    python benchmarks/inpaint_holdout.py --smoke

Rows go to benchmarks/results/inpaint_holdout/inpaint_holdout.jsonl (resumable) and a table to .md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import add_smoke_argument, parse_smoke, results_folder, study_folder  # noqa: E402
from inpaint_quality import CLASSICAL, load, run_classical, scores, written  # noqa: E402

from dipcli import Inpaint  # noqa: E402

HELD_SHARE = 0.2  # at most this share of the known pixels is held out


def held_out(known: np.ndarray, seed: int = 0) -> np.ndarray:
    """Known pixels to hide from the fit: the holes moved by half the image, capped at
    :data:`HELD_SHARE` of the known pixels (a seeded subset)."""
    h, w = known.shape
    held = np.roll(~known, (h // 2, w // 2), axis=(0, 1)) & known
    cap = int(HELD_SHARE * known.sum())
    if held.sum() > cap:
        idx = np.flatnonzero(held)
        keep = np.random.default_rng(seed).choice(idx, cap, replace=False)
        held = np.zeros_like(held)
        held.flat[keep] = True
    return held


class Snapshots:
    """Subscriber: the averaged output at every check."""

    def __init__(self) -> None:
        self.images: dict[int, np.ndarray] = {}

    def on_event(self, e) -> None:
        self.images[e.iteration] = e.ema[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def mse(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(np.mean((a[where] - b[where]) ** 2))


def run_case(kind: str, name: str, size: int, smoke: bool, iters: int | None) -> dict:
    # internal: the fit's averaged output at every check, watched through the plan's events
    from dipcli import Image
    from dipcli.api.execute import run_plan  # internal: plans as `dip` does, to score what it runs
    from dipcli.api.inputs import TaskInput  # internal: plans as `dip` does, to score what it runs
    from dipcli.api.plan import make_plan  # internal: plans as `dip` does, to score what it runs
    from dipcli.api.spec import Options, make_spec  # internal: plans as `dip` does, to score what it runs

    clean, known = load(kind, name, size, smoke)
    held = held_out(known)
    fit_known = known & ~held
    o = Options(preset="fast", iters=iters, stop="fixed")  # one fit, as the study's `fast`
    image = Image(clean, np.dtype(np.uint8), clean.shape[2] == 1)
    mask = Image(fit_known[:, :, None].astype(np.float32), np.dtype(np.uint8), True)
    spec = make_spec("inpaint", o, has_clean=True, has_mask=True, mask_known="white")
    plan = make_plan(spec, TaskInput(image, clean=image, mask=mask))
    snaps = Snapshots()
    run_plan(plan, [snaps])
    holes = ~known
    trace = []
    for it, x in sorted(snaps.images.items()):
        out = written(np.where(known[:, :, None], clean, x))
        trace.append({"it": it, "held_mse": mse(x, clean, held), **scores(out, clean, known)})
    candidates = {"dip@budget": trace[-1]}
    best = min(trace, key=lambda t: t["held_mse"])
    candidates["dip@held"] = best
    dip_img = snaps.images[best["it"]]
    candidates["dip@peak"] = max(trace, key=lambda t: t["psnr"])
    observed_fit = Inpaint(fit_known).observe(clean)
    observed = Inpaint(known).observe(clean)
    for c in CLASSICAL:
        # held-out error: the filler given the fit's mask; the result: given the real one
        probe = run_classical(c, observed_fit, fit_known)
        out = run_classical(c, observed, known)
        candidates[c] = {"held_mse": mse(probe, clean, held), **scores(out, clean, known)}
        blend_probe = (probe + dip_img) / 2
        blend = (out + dip_img) / 2
        candidates[f"dip+{c}"] = {"held_mse": mse(blend_probe, clean, held), **scores(blend, clean, known)}
    # The choice sees the held-out errors only: the peak is hindsight, the budget's end is dip@held's rival.
    chosen = min(((k, v) for k, v in candidates.items() if k not in ("dip@peak", "dip@budget")),
                 key=lambda kv: kv[1]["held_mse"])
    return {"kind": kind, "image": name, "missing": float(holes.mean()), "held": float(held.mean()),
            "candidates": candidates, "chosen": chosen[0], "chosen_psnr": chosen[1]["psnr"],
            "trace": [{k: round(v, 6) for k, v in t.items()} for t in trace[::5]]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=[
        "scratches/image_F16_512rgb", "text/image_F16_512rgb", "block64/image_House256rgb",
        "quarter/image_House256rgb", "scratches/kodim01", "random50/image_House256rgb"])
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--log", type=Path, default=study_folder("inpaint_holdout") / "inpaint_holdout.jsonl")
    ap.add_argument("--out", type=Path, default=None)
    add_smoke_argument(ap)
    args, smoke = parse_smoke(ap, argv)
    folder = results_folder(args.out, smoke, "inpaint_holdout")
    folder.mkdir(parents=True, exist_ok=True)
    size = 256
    if smoke:
        args.cases, args.iters, size, args.log = ["block64/card"], 20, 32, folder / "inpaint_holdout.jsonl"
    done = {}
    if args.log.exists():
        for line in args.log.read_text().splitlines():
            r = json.loads(line)
            done[f"{r['kind']}/{r['image']}"] = r
    for case in args.cases:
        if case in done:
            continue
        kind, name = case.split("/")
        row = run_case(kind, name, size, smoke, args.iters)
        done[case] = row
        with args.log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        c = row["candidates"]
        held, peak, end = c["dip@held"], c["dip@peak"], c["dip@budget"]
        print(f"{case}: chosen {row['chosen']} {row['chosen_psnr']:.2f}; dip@held {held['psnr']:.2f} "
              f"(it {held['it']}), peak {peak['psnr']:.2f}, budget {end['psnr']:.2f}, "
              f"biharmonic {c['biharmonic']['psnr']:.2f}", flush=True)
    # `dip inpaint --preset fast` (one fit, the default when this ran) on the same case, from the study
    study = study_folder("inpaint_quality") / "inpaint_quality.jsonl"
    default = {}
    if study.exists() and not smoke:
        for line in study.read_text().splitlines():
            r = json.loads(line)
            if r["method"] == "fast":
                default[f"{r['kind']}/{r['image']}"] = r["psnr"]
    lines = ["Held-out known pixels as the stop and the choice of filler (`inpaint_holdout.py`). PSNR (dB, "
             "whole image, known pixels kept) of: `dip inpaint --preset fast`, one fit (inpaint_quality.py, "
             "no pixel held out); the fit with pixels held out at its budget, at its peak (hindsight), at "
             "the least held-out error; the best classical filler (hindsight); the candidate the held-out "
             "error chose.",
             "", "| case | held | default | DIP budget | DIP peak | DIP held-out stop (it) | best classical "
             "| chosen | chosen PSNR |", "|---|---|---|---|---|---|---|---|---|"]
    means = []
    for case, r in done.items():
        c = r["candidates"]
        best = max(CLASSICAL, key=lambda k: c[k]["psnr"])
        held, peak, end = c["dip@held"], c["dip@peak"], c["dip@budget"]
        base = f"{default[case]:.2f}" if case in default else ""
        lines.append(f"| {case} | {r['held']:.1%} | {base} | {end['psnr']:.2f} | {peak['psnr']:.2f} "
                     f"| {held['psnr']:.2f} ({held['it']}) | {c[best]['psnr']:.2f} ({best}) "
                     f"| {r['chosen']} | {r['chosen_psnr']:.2f} |")
        if case in default:
            means.append((default[case], end["psnr"], peak["psnr"], held["psnr"], c[best]["psnr"],
                          r["chosen_psnr"]))
    if means:
        m = np.mean(means, axis=0)
        lines.append(f"| **mean of {len(means)}** | | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.2f} | {m[3]:.2f} "
                     f"| {m[4]:.2f} | | **{m[5]:.2f}** |")
    (folder / "inpaint_holdout.md").write_text("\n".join(lines) + "\n")
    (folder / "inpaint_holdout.json").write_text(json.dumps({"cases": list(done.values())}, indent=1) + "\n")
    print(f"wrote {folder / 'inpaint_holdout.md'}")


if __name__ == "__main__":
    main()
