"""Exploration (issue 32): the noise readout's variants on the real ISO series.

    python benchmarks/explore/iso_readout.py --isos 3200 51200 --readouts fq0.1 fq0.2

The mended readout (``dip``'s since 2026-12-07) gained on the simulated camera and lost 0.1–0.4 dB
on the real ISO frames (camera_iso.py), where it reads σ 8–14 % lower and the correlation width
about 5 % narrower. Which of its two parts costs there: the fine curve's low quantile (σ) or the
stricter flat test of the correlation's blocks (width)? Each ISO frame is denoised as
``dip denoise`` does by default (``noise="auto"``, the `fast` preset, tiles), under each readout,
and scored as camera_iso.py scores it (registered to the ISO 100 frame, brightness matched).

Readouts (readout_trial.py's): ``before``, ``mended`` (the product's), and the product's with one
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

sys.path.insert(0, str(HERE))  # the readouts under trial, beside this file
from readout_trial import READOUTS, reading  # noqa: E402

import dipcli  # noqa: E402

LOG = RESULTS / "camera" / "iso_readout.jsonl"


def run(frame, readout: str) -> tuple[object, float]:
    """``dipcli.denoise(frame)`` as the CLI's default runs it, under ``readout``; the result and seconds."""
    with reading(readout, frame):
        start = time.perf_counter()
        result = dipcli.denoise(frame, noise="auto")
        return result, time.perf_counter() - start


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
