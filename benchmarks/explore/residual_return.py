"""Exploration (issue 32): give back what the fit took that was not noise (the method noise's Wiener gain).

    python benchmarks/explore/residual_return.py --images kodim01 image_F16_512rgb CBSD68_0013 Set12_01 \
        --cases white:5 white:10 camera:0.004 --crop 128
    python benchmarks/explore/residual_return.py --apply-heldout   # the windows on camera.py's outputs

Where the noise is faint a DIP fit stops short of the image (on the real ISO series `dip` ends
below the noisy frame at ISO 3200 and 6400): its residual r = y − x̂ then holds image as well as
noise. With r's local energy m(p) (a box mean of r² over ``window`` pixels) and the noise
model's variance v(p) at each pixel, the Wiener gain β = max(0, 1 − v/m) is the share of r that is
not noise (for detail d and noise n independent, E r² = d² + v, and the error of x̂ + βr is
least at β = d²/(d² + v)); the output is x̂ + β·r. Where the fit explained the image down to the
noise, m ≈ v and little comes back.

Choose on acceptance-set crops (white noise of σ 5, 10 and 25, the simulated camera's two lower
levels), each denoised once by `dipcli.denoise` (the ``fast`` preset, its fit cached) and the
return applied with several boxes and thresholds k (β = max(0, 1 − k·v/m)); ``--apply-heldout``
then applies them, and what `dip denoise` wrote with this return (before its Wiener stage), to
the held-out fits that benchmarks/camera.py cached (results/camera-fits), which no choice saw.
Rows go to results/camera/residual_return.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
from camera import FITS, camera, case_seed, heldout_set  # noqa: E402
from common import RESULTS, centre_crop  # noqa: E402
from quality import acceptance_set, noisy_copy, scores  # noqa: E402

import dipcli  # noqa: E402
from dipcli import Image, read_image  # noqa: E402
from dipcli.api.plan import noise_model  # noqa: E402  # internal: the product's noise model of an image
from dipcli.api.spec import DenoiseParams  # noqa: E402  # internal: (as above)
from dipcli.physics.noise_models import read_camera_noise  # noqa: E402  # internal: the variance map

OUT = [RESULTS / "camera" / "residual_return.jsonl"]  # the log (--log)
# (box side px, k, gate): β = max(0, 1 − k·v/m); with gate, β = max(0, 1 − v/m) where m > k·v, else 0
VARIANTS = ((9, 1.0, False), (15, 1.0, False), (21, 1.0, False), (15, 1.2, False), (15, 1.2, True),
            (15, 1.5, True), (21, 1.2, True), (21, 1.5, True))
CACHE = RESULTS / "camera-fits" / "residual_return"  # the dev fits, to score variants again


def give_back(noisy: np.ndarray, fitted: np.ndarray, variance: np.ndarray, window: int,
              k: float = 1.0, gate: bool = False) -> np.ndarray:
    """x̂ + β·(y − x̂) per pixel and channel, m the local mean of the residual² over the box:
    β = max(0, 1 − k·v/m) (k > 1: shrink every return), or with ``gate`` the plain Wiener gain
    1 − v/m where m > k·v and nothing elsewhere (only energy clearly above the noise's)."""
    r = noisy - fitted
    energy = np.maximum(ndimage.uniform_filter(r * r, size=(window, window, 1), mode="reflect"), 1e-12)
    if gate:
        gain = np.where(energy > k * variance, 1 - variance / energy, 0.0)
    else:
        gain = np.clip(1 - k * variance / energy, 0, 1)
    return np.clip(fitted + gain * r, 0, 1)


def variant_name(w: int, k: float, gate: bool) -> str:
    return f"w{w}" + ("" if k == 1 else f"{'g' if gate else 'k'}{k:g}")


def variance_map(noisy: np.ndarray, fitted: np.ndarray, kind: str, level: float) -> np.ndarray:
    if kind == "white":
        return np.full_like(noisy, (level / 255) ** 2)
    curve = read_camera_noise(noisy).curve
    return np.broadcast_to(curve.variance(fitted), noisy.shape).astype(np.float32)


def scored(name: str, kind: str, level: float, noisy, fitted, reference) -> dict:
    v = variance_map(noisy, fitted, kind, level)
    row = {"image": name, "kind": kind, "level": level, "noisy": scores(noisy, reference)[0],
           "fit": scores(fitted, reference)[0]}
    for w, k, gate in VARIANTS:
        row[variant_name(w, k, gate)] = scores(give_back(noisy, fitted, v, w, k, gate), reference)[0]
    return row


def develop(args: argparse.Namespace) -> None:
    files = acceptance_set()
    for case in args.cases:
        kind, level = case.split(":")
        level = float(level)
        for name in args.images:
            clean = centre_crop(read_image(files[name]).pixels, args.crop)
            if kind == "white":
                reference, noisy = clean, noisy_copy(clean, name, level)
            else:
                seed = case_seed(name, level)
                reference, noisy = camera(clean, None, seed), camera(clean, level, seed)
            cached = CACHE / f"{name}-{case}-{args.crop}.npy"
            if cached.exists():
                out = np.load(cached)
            else:
                given = level if kind == "white" else None
                fit = dipcli.denoise(noisy, given, preset="fast", detail_return=False)
                out = np.asarray(fit.image, np.float32)
                CACHE.mkdir(parents=True, exist_ok=True)
                np.save(cached, out)
            row = {"set": "acceptance", "crop": args.crop, **scored(name, kind, level, noisy, out, reference)}
            log(row)


def apply_heldout() -> None:
    files = heldout_set()
    for path in sorted(FITS.glob("heldout-*-default.npy")):
        _, name, shot, _ = path.stem.split("-")  # heldout-{name}-{shot}-default (camera.py)
        shot = float(shot)
        clean = centre_crop(read_image(files[name]).pixels, 256)
        seed = case_seed(name, shot)
        reference, noisy = camera(clean, None, seed), camera(clean, shot, seed)
        fitted = np.load(path)
        row = scored(name, "camera", shot, noisy, fitted, reference)
        model = noise_model(Image(noisy, np.dtype(np.uint8)), DenoiseParams(), [])
        # what `dip denoise` wrote until its Wiener stage: the return (w21) by the model it reads
        row["product"] = scores(give_back(noisy, fitted, model.noise.variance(fitted), 21), reference)[0]
        log({"set": "heldout", "crop": 256, **row})


def table() -> None:
    """residual_return.md: per set and case, the mean PSNR of the fit and of each variant, with
    the mean and worst change to the fit (dB)."""
    rows = [json.loads(line) for line in OUT[0].read_text().splitlines() if line.strip()]
    names = [variant_name(*v) for v in VARIANTS] + ["product"]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["set"], r["kind"], r["level"]), []).append(r)
    cols = [n for n in names if any(n in r for r in rows)]
    lines = ["# Giving back what the fit missed (benchmarks/explore/residual_return.py)", "",
             "Mean PSNR (dB) over the images; each variant's change to the fit alone: mean / worst. "
             "wN: boxes of N px, β = max(0, 1 − v/m); wNkK: β = max(0, 1 − K·v/m); wNgK: β = 1 − v/m "
             "where m > K·v, else 0; product: what `dip denoise` writes.", "",
             "| set | noise | images | noisy | fit | " + " | ".join(cols) + " |",
             "|---|---|---|---|---|" + "---|" * len(cols)]
    for (name_of_set, kind, level), group in sorted(groups.items()):
        fit = [r["fit"] for r in group]
        cells = []
        for c in cols:
            have = [(r[c], r["fit"]) for r in group if c in r]
            if not have:
                cells.append("")
                continue
            change = [a - b for a, b in have]
            cells.append(f"{np.mean([a for a, _ in have]):.2f} ({np.mean(change):+.2f} / {min(change):+.2f})")
        label = f"white σ {level:g}" if kind == "white" else f"camera, shot {level:g}"
        lines.append(f"| {name_of_set} | {label} | {len(group)} | {np.mean([r['noisy'] for r in group]):.2f} "
                     f"| {np.mean(fit):.2f} | " + " | ".join(cells) + " |")
    (OUT[0].parent / "residual_return.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def log(row: dict) -> None:
    row = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
    print(json.dumps(row), flush=True)
    with OUT[0].open("a") as f:
        f.write(json.dumps(row) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", nargs="+", default=["kodim01", "image_F16_512rgb", "CBSD68_0013", "Set12_01"])
    ap.add_argument("--cases", nargs="+", default=["white:5", "white:10", "white:25", "camera:0.004",
                                                   "camera:0.012"])
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--apply-heldout", action="store_true")
    ap.add_argument("--log", type=Path, default=OUT[0])
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    OUT[0] = args.log
    if not args.table_only:
        apply_heldout() if args.apply_heldout else develop(args)
    table()


if __name__ == "__main__":
    main()
