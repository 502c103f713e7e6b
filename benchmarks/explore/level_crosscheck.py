"""Exploration (issue 32): can the finest wavelet scale check the camera readout's level?

    python benchmarks/explore/level_crosscheck.py                 # acceptance crops (choose)
    python benchmarks/explore/level_crosscheck.py --set heldout   # held-out crops (report)
    python benchmarks/explore/level_crosscheck.py --set iso       # the real ISO series, 1,600 up

Given the true RMS σ, `dip`'s camera path is ahead of BM3D given its best σ (camera.py's
``camera-true``): the blind default's gap is its readout's, which takes texture for noise. A
second, independent reading of the level: the finest wavelet scale's σ (scikit-image's
``estimate_sigma``, the MAD of the diagonal detail), which sees only the share of correlated
noise that changes from pixel to pixel. That share follows from the model read: noise drawn from
the model (:func:`dipcli.physics.camera.sample_noise`, three draws on flat grey) gives it. So
``alt`` = finest-scale σ of the photo / share, beside the model's RMS σ (``read``) and their
geometric mean (``geo``: the two err in different ways, the block readout over, the finest scale
under). The truth on the simulated camera: the RMS σ of noisy − reference; the real series has
none (its reference is another frame). numpy only, a minute. Rows and table:
results/camera/level_crosscheck-<set>.jsonl and .md.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np
from skimage.restoration import estimate_sigma

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
from camera import LEVELS, camera, case_seed, cases, true_sigma  # noqa: E402
from camera_iso import FRAMES, load_series  # noqa: E402
from common import RESULTS  # noqa: E402

from dipcli.physics import camera as cam  # noqa: E402  # internal: draws from the model read
from dipcli.physics.noise_models import read_camera_noise  # noqa: E402  # internal: the readout checked

OUT = RESULTS / "camera"


def finest(pixels: np.ndarray) -> float:
    return float(estimate_sigma(pixels, channel_axis=-1, average_sigmas=True))


def alt_sigma(curve: cam.NoiseCurve, correlation: cam.Correlation, pixels: np.ndarray) -> tuple[float, float]:
    """``alt`` (0–1 scale): the finest scale's σ of ``pixels`` over the share of the modelled noise
    that scale sees, and that share: the finest scale's σ of noise drawn from the model (at
    ``pixels``' brightness, laid on flat grey) over its RMS σ, three draws."""
    rng = np.random.default_rng(0)
    kind = correlation if correlation.measured else None
    shares = []
    for _ in range(3):
        draw = cam.sample_noise(pixels.shape, curve, kind, pixels, rng)
        shares.append(finest(0.5 + draw - draw.mean()) / float(np.sqrt(np.mean(draw.var(axis=(0, 1))))))
    share = float(np.mean(shares))
    return finest(pixels) / share, share


def geo_read(pixels: np.ndarray) -> tuple[cam.NoiseCurve, cam.Correlation]:
    """:func:`dipcli.physics.camera.read_noise` with the curve scaled to the geometric mean of its
    RMS σ and ``alt``: readout_trial.py's ``geo`` (the fits with this level)."""
    curve, correlation = cam.read_noise(pixels)
    img = np.asarray(pixels, dtype=np.float64)
    rms = float(np.sqrt(np.mean(curve.variance(img))))
    if not curve.measured or rms <= 0:
        return curve, correlation
    alt, _ = alt_sigma(curve, correlation, img)
    return curve.scaled(math.sqrt(alt / rms)), correlation


def readings(noisy: np.ndarray) -> dict:
    """The model's RMS σ, the finest scale's share of the modelled noise, ``alt`` and ``geo`` (0–255)."""
    model = read_camera_noise(noisy)
    alt, share = alt_sigma(model.curve, model.correlation, noisy)
    return {"read": model.sigma * 255, "share": share, "alt": alt * 255,
            "geo": math.sqrt(model.sigma * alt) * 255}


def rows_for(name_of_set: str) -> list[dict]:
    out = []
    if name_of_set == "iso":
        for iso, frame in sorted(load_series(FRAMES).items()):
            if iso >= 1600:
                out.append({"image": f"ISO {iso}", "level": None, "true": None, **readings(frame)})
                print(json.dumps(out[-1]), flush=True)
        return out
    for _, name, clean in cases([name_of_set], 256, False):
        if clean.ndim == 2 or clean.shape[2] == 1:
            continue  # a grey camera has no colour correlation to read: the colour crops only
        for shot in LEVELS:
            seed = case_seed(name, shot)
            reference, noisy = camera(clean, None, seed), camera(clean, shot, seed)
            truth = true_sigma(noisy, reference)
            out.append({"image": name, "level": shot, "true": truth, **readings(noisy)})
            print(json.dumps(out[-1]), flush=True)
    return out


def table(rows: list[dict]) -> str:
    if rows[0]["true"] is None:
        lines = ["| frame | read | alt | geo | finest scale's share |", "|---|---|---|---|---|"]
        lines += [f"| {r['image']} | {r['read']:.2f} | {r['alt']:.2f} | {r['geo']:.2f} | {r['share']:.3f} |"
                  for r in rows]
        return "\n".join(lines)
    lines = ["| shot | reading | σ read / true: mean | median | worst over | worst under |",
             "|---|---|---|---|---|---|"]
    for shot in LEVELS:
        for key in ("read", "alt", "geo"):
            ratios = [r[key] / r["true"] for r in rows if r["level"] == shot]
            lines.append(f"| {shot:g} | {key} | {statistics.mean(ratios):.2f} "
                         f"| {statistics.median(ratios):.2f} | {max(ratios):.2f} | {min(ratios):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["acceptance", "heldout", "iso"], default="acceptance")
    args = ap.parse_args(argv)
    rows = rows_for(args.set)
    stem = OUT / f"level_crosscheck-{args.set}"
    Path(f"{stem}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = (f"# The camera readout's level against the finest scale's, {args.set} "
            "(`explore/level_crosscheck.py`)\n\nRMS σ, 0–255 scale: `read` the model `dip` reads, `alt` "
            "the finest wavelet scale's σ over the share of the modelled noise it sees, `geo` their "
            "geometric mean.\n\n" + table(rows) + "\n")
    Path(f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
