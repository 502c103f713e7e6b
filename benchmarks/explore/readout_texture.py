"""Exploration (issue 32): how far texture inflates the camera noise readout, and what reads it truer.

    python benchmarks/explore/readout_texture.py                       # the acceptance set (choose)
    python benchmarks/explore/readout_texture.py --set heldout         # the held-out set (report)

Each 256² crop goes through the simulated camera of benchmarks/camera.py at three shot levels and
without noise. The truth: the RMS σ of noisy − reference, and the correlation width of that noise
laid on flat grey (what the readout gives on noise alone). The readout: ``read_camera_noise`` of
the noisy crop, as the product reads it, under each variant of the readout: the readout before
2026-12-07 (``before``: readout_trial.py's) with its constants varied (:mod:`dipcli.physics.camera`'s
QUANTILE, the low quantile of the blocks' residual energy per brightness group; BLOCK, their side;
FLAT, the flat test of the correlation's blocks), and the product's (``mended``) with the fine
reading's (FINE_QUANTILE, FINE_FLAT). The budget's level is σ × width (σ alone if white:
``CameraNoise.budget_level``), so the ratio of the level read to the true one is the number that
matters; on a clean crop ``--noise auto`` should not take the camera model. numpy only, seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
from camera import camera, case_seed, heldout_set, true_sigma  # noqa: E402
from common import RESULTS, centre_crop  # noqa: E402
from quality import acceptance_set  # noqa: E402

sys.path.insert(0, str(HERE))  # the readout before, beside this file
from readout_trial import before_read, camera_model  # noqa: E402

from dipcli import read_image  # noqa: E402
from dipcli.physics import camera as cam  # noqa: E402  # internal: the readout's constants under study
from dipcli.physics.noise import estimate_noise  # noqa: E402  # internal: the white σ auto compares with
from dipcli.physics.noise_models import camera_like  # noqa: E402  # internal: auto's rule

OUT = RESULTS / "camera"
SHOTS = (0.004, 0.012, 0.03)
# a variant: the product's readout (``mended``) or the one before it, and constants of dipcli.physics.camera
VARIANTS = {"before": {}, "q0.1": {"QUANTILE": 0.1}, "q0.05": {"QUANTILE": 0.05},
            "b6": {"BLOCK": 6}, "b6q0.1": {"BLOCK": 6, "QUANTILE": 0.1},
            # FLAT: how close to the curve a block's energy must be to be read for the correlation
            "f1.2": {"FLAT": 1.2}, "f1.1": {"FLAT": 1.1}, "q0.05f1.2": {"QUANTILE": 0.05, "FLAT": 1.2},
            "q0.05f1.1": {"QUANTILE": 0.05, "FLAT": 1.1},
            "mended": {}, "mended-fq0.1": {"FINE_QUANTILE": 0.1}, "mended-fq0.02": {"FINE_QUANTILE": 0.02},
            "mended-ff1.4": {"FINE_FLAT": 1.4}, "mended-ff1.1": {"FINE_FLAT": 1.1}}


def truth(noisy: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """The true RMS σ (0–1 scale, camera.py's :func:`true_sigma`) and the true noise's width."""
    grey = np.clip(0.5 + (noisy - reference), 0, 1)
    return true_sigma(noisy, reference) / 255, cam.read_noise(grey)[1].width


def level(sigma: float, width: float) -> float:
    return sigma * width if width >= cam.WHITE_WIDTH else sigma


def read(noisy: np.ndarray, tag: str, constants: dict) -> dict:
    with mock.patch.multiple(cam, **constants) if constants else nullcontext():
        model = camera_model(cam.read_noise if tag.startswith("mended") else before_read, noisy)
        width = model.correlation.width if model.correlation.measured else 1.0
        taken = camera_like(model, estimate_noise(noisy))
    return {"sigma": model.sigma * 255, "width": width, "auto_camera": taken}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=["acceptance", "heldout"], default="acceptance")
    ap.add_argument("--crop", type=int, default=256)
    args = ap.parse_args(argv)
    files = acceptance_set() if args.set == "acceptance" else heldout_set()
    rows = []
    for name, path in files.items():
        clean = centre_crop(read_image(path).pixels, args.crop)
        for shot in (*SHOTS, None):
            seed = case_seed(name, shot if shot is not None else SHOTS[1])
            reference = camera(clean, None, seed)
            noisy = camera(clean, shot, seed) if shot is not None else reference
            t_sigma, t_width = truth(noisy, reference) if shot is not None else (0.0, 1.0)
            row = {"image": name, "shot": shot, "true_sigma": t_sigma * 255, "true_width": t_width}
            for tag, constants in VARIANTS.items():
                row[tag] = read(noisy, tag, constants)
            rows.append(row)
            print(json.dumps(row), flush=True)
    lines = [f"Camera noise readout against the truth, {args.set} set, {args.crop}² crops "
             f"(benchmarks/explore/readout_texture.py). Level = σ × width (σ if white), 0–255.", "",
             "| variant | shot | level read / true: mean | median | worst over | worst under "
             "| clean crops taken as camera noise |", "|---|---|---|---|---|---|---|"]
    for tag in VARIANTS:
        for shot in SHOTS:
            ratios = [level(r[tag]["sigma"], r[tag]["width"]) / level(r["true_sigma"] * 1.0, r["true_width"])
                      for r in rows if r["shot"] == shot]
            clean = [r[tag]["auto_camera"] for r in rows if r["shot"] is None]
            lines.append(f"| {tag} | {shot:g} | {statistics.fmean(ratios):.2f} "
                         f"| {statistics.median(ratios):.2f} | {max(ratios):.2f} | {min(ratios):.2f} "
                         f"| {sum(clean)}/{len(clean)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (OUT / f"readout_texture-{args.set}.md").write_text(text)
    (OUT / f"readout_texture-{args.set}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
