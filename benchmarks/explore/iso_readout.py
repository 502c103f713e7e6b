"""Exploration (issue 32): the noise readout's variants on the real ISO series.

    python benchmarks/explore/iso_readout.py --isos 3200 51200 --readouts fq0.1 fq0.2

The mended readout (``dip``'s since 2026-12-07) gained on the simulated camera and lost 0.1–0.4 dB
on the real ISO frames (camera_iso.py), where it reads σ 8–14 % lower and the correlation width
about 5 % narrower. Which of its two parts costs there: the fine curve's low quantile (σ) or the
stricter flat test of the correlation's blocks (width)? Each ISO frame is denoised as
``dip denoise`` does by default (``noise="auto"``, the `fast` preset, tiles), under each readout,
and scored as camera_iso.py scores it (registered to the ISO 100 frame, brightness matched).

Readouts: ``before`` (readout_trial.py's), ``mended`` (the product's), and the product's with one
constant changed: ``fq0.1`` / ``fq0.2`` (FINE_QUANTILE 0.1 / 0.2: σ nearer the rough curve's,
the correlation as mended reads it), ``ff1.4`` (FINE_FLAT 1.4: the correlation as before, the fine
curve). Split: ``stage-before`` fits with the mended readout's model and gives the Wiener stage
the model read before; ``stage-mended`` the other way round. Rows: results/camera/iso_readout.jsonl
(resumable).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
from camera_iso import FRAMES, Aligner, common_window, load_series, register  # noqa: E402
from common import RESULTS  # noqa: E402
from quality import scores  # noqa: E402

sys.path.insert(0, str(HERE))  # the readout before, beside this file
from readout_trial import before_read  # noqa: E402

import dipcli  # noqa: E402
from dipcli.physics import camera as cam  # noqa: E402  # internal: the readout's constants under trial
from dipcli.physics import denoise as dn  # noqa: E402  # internal: the stage the split swaps a model in
from dipcli.physics import noise_models as nm  # noqa: E402  # internal: the readout `dip` calls

READOUTS = {"before": {}, "mended": {}, "fq0.1": {"FINE_QUANTILE": 0.1}, "fq0.2": {"FINE_QUANTILE": 0.2},
            "ff1.4": {"FINE_FLAT": 1.4}, "stage-before": {}, "stage-mended": {}}
# the readout the fit's model is read with, and the one the stage's is
SPLIT = {"stage-before": (cam.read_noise, before_read), "stage-mended": (before_read, cam.read_noise)}
LOG = RESULTS / "camera" / "iso_readout.jsonl"


def run(frame, readout: str) -> tuple[object, float]:
    """``dipcli.denoise(frame)`` as the CLI's default runs it, under ``readout``; the result and seconds."""
    saved = {k: getattr(cam, k) for k in READOUTS[readout]}
    for k, v in READOUTS[readout].items():
        setattr(cam, k, v)
    nm.read_noise = before_read if readout == "before" else cam.read_noise
    stage = dn.wiener_stage
    if readout in SPLIT:
        fit_read, nm.read_noise = SPLIT[readout]
        model = nm.read_camera_noise(frame)  # the stage's, read from the whole frame as dip reads
        nm.read_noise = fit_read
        dn.wiener_stage = lambda observed, fit, noise: stage(observed, fit, model)
    try:
        start = time.perf_counter()
        result = dipcli.denoise(frame, noise="auto")
        return result, time.perf_counter() - start
    finally:
        for k, v in saved.items():
            setattr(cam, k, v)
        nm.read_noise, dn.wiener_stage = cam.read_noise, stage


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--isos", type=int, nargs="+", default=[3200, 51200])
    ap.add_argument("--readouts", nargs="+", default=list(READOUTS), choices=list(READOUTS))
    args = ap.parse_args()
    frames = load_series(FRAMES)
    ref = frames[100]
    shifts = {iso: register(ref, f) for iso, f in frames.items()}
    window = common_window(list(shifts.values()), ref.shape)
    done = set()
    if LOG.exists():
        done = {(r["iso"], r["readout"]) for r in map(json.loads, LOG.read_text().splitlines())}
    for iso in args.isos:
        align = Aligner(ref, frames[iso], shifts[iso], window)
        for readout in args.readouts:
            if (iso, readout) in done:
                continue
            result, seconds = run(frames[iso], readout)
            psnr, ssim = scores(align(result.image.reshape(frames[iso].shape)), ref[window])
            row = {"iso": iso, "readout": readout, "psnr": psnr, "ssim": ssim, "seconds": seconds,
                   "noise": result.settings.get("noise"), "sigma": result.settings.get("sigma"),
                   "iterations": result.iterations}
            with LOG.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"ISO {iso} {readout}: {psnr:.2f} dB, {seconds:.0f} s ({row['noise']})", flush=True)


if __name__ == "__main__":
    main()
