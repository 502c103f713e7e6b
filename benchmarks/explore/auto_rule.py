"""Exploration (issue 32): what `--noise auto` takes, white or camera noise, under each readout.

    python benchmarks/explore/auto_rule.py                 # numpy only, a few minutes
    python benchmarks/explore/auto_rule.py --table-only    # auto_rule.md from auto_rule.jsonl

``dip denoise`` without ``--sigma`` reads the camera noise model of the image and takes it when
:func:`dipcli.physics.noise_models.camera_like` says the noise is not white (correlated: the
white-noise estimate of the finest scale under 0.75 × the model's RMS σ; or signal-dependent).
A readout that reads lower σ moves that ratio up, so a change of readout can move an image
across the rule. Read here, for the readout before 2026-12-07 (readout_trial.py's ``before``,
with the line at 0.7 as it was then), the mended one (``mended``, the line at
:data:`dipcli.physics.noise_models.CORRELATED`) and the product's, its level cross-checked by the
finest wavelet scale (``geo``, the same line), on:

* the nine Set9 images, 256² centre crops, with white Gaussian noise of σ 0, 5, 15, 25 and 50
  (0–255; seeded per image and σ): white noise should stay white from σ 15 up;
* the same crops through the simulated camera of benchmarks/camera.py at its three shot levels:
  should be taken as camera noise;
* the real ISO series in data/real_noise_iso/ (512² frames, as shot).

Writes results/camera/auto_rule.jsonl (a row per input and readout) and auto_rule.md.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from unittest import mock

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
from camera import LEVELS, camera, case_seed  # noqa: E402
from camera_iso import FRAMES, load_series  # noqa: E402
from common import DATA, RESULTS, centre_crop  # noqa: E402

sys.path.insert(0, str(HERE))  # the readout before, beside this file
from readout_trial import before_read, camera_model  # noqa: E402

from dipcli import read_image  # noqa: E402
from dipcli.physics import camera as cam  # noqa: E402  # internal: the product's readout
from dipcli.physics import noise_models as nm  # noqa: E402  # internal: the readout `dip` calls
from dipcli.physics.noise import estimate_noise  # noqa: E402  # internal: the white σ auto compares with

OUT = RESULTS / "camera"
SIGMAS = (0, 5, 15, 25, 50)
# readout → how it reads, the line of `auto`'s correlated test that went with it, and whether the
# level is cross-checked (``geo``: the product's since 2026-12-07's last change, nm.level_checked)
READOUTS = {"before": (before_read, 0.7, False), "mended": (cam.read_noise, nm.CORRELATED, False),
            "geo": (cam.read_noise, nm.CORRELATED, True)}


def inputs() -> list[tuple[str, str, np.ndarray]]:
    """(kind, name, pixels) for every input of the module doc."""
    out = []
    for path in sorted((DATA / "set9").glob("*.png")):
        clean = centre_crop(read_image(path).pixels, 256)
        for sigma in SIGMAS:
            seed = int.from_bytes(hashlib.sha256(f"auto/{path.stem}/{sigma}".encode()).digest()[:4], "little")
            noise = np.random.default_rng(seed).standard_normal(clean.shape) * sigma / 255
            out.append((f"white σ {sigma}", path.stem, np.clip(clean + noise, 0, 1)))
        for shot in LEVELS:
            out.append((f"camera {shot:g}", path.stem, camera(clean, shot, case_seed(path.stem, shot))))
    for iso, frame in sorted(load_series(FRAMES).items()):
        out.append((f"ISO {iso}", f"ISO {iso}", frame))
    return out


def decide(pixels: np.ndarray, readout: str) -> dict:
    """What ``auto`` reads and takes for ``pixels`` under ``readout``."""
    read, line, checked = READOUTS[readout]
    model = camera_model(read, pixels, checked)
    white = estimate_noise(pixels)
    with mock.patch.object(nm, "CORRELATED", line):
        taken = nm.camera_like(model, white)
    dark, bright = model.curve.sigma_range()
    return {"camera": taken, "ratio": round(white / max(model.sigma, 1e-9), 3),
            "sigma": round(model.sigma * 255, 2), "dark": round(dark * 255, 2),
            "bright": round(bright * 255, 2),
            "width": round(model.correlation.width, 2) if model.correlation.measured else None,
            "white": round(white * 255, 2)}


def table(rows: list[dict]) -> str:
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    lines = ["What `--noise auto` takes under each readout (benchmarks/explore/auto_rule.py). Ratio: the "
             "white-noise estimate / the model's RMS σ (camera noise if under the line, 0.7 before and "
             f"{nm.CORRELATED:g} since, or if the σ read depends on the brightness).", "",
             "| input | readout | ratio (range) | RMS σ read (0–255, range) | taken as camera noise |",
             "|---|---|---|---|---|"]
    for kind in kinds:
        for readout in READOUTS:
            sel = [r[readout] for r in rows if r["kind"] == kind]
            names = [r["name"] for r in rows if r["kind"] == kind and r[readout]["camera"]]
            ratios = [s["ratio"] for s in sel]
            sigmas = [s["sigma"] for s in sel]
            some = f" ({', '.join(names)})" if 0 < len(names) < len(sel) else ""
            taken = f"{len(names)}/{len(sel)}{some}"
            lines.append(f"| {kind} | {readout} | {min(ratios):.2f}–{max(ratios):.2f} "
                         f"| {min(sigmas):.1f}–{max(sigmas):.1f} | {taken} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if "--table-only" in sys.argv[1:]:
        rows = [json.loads(line) for line in (OUT / "auto_rule.jsonl").read_text().splitlines()]
        (OUT / "auto_rule.md").write_text(table(rows))
        return
    rows = []
    for kind, name, pixels in inputs():
        row = {"kind": kind, "name": name, **{readout: decide(pixels, readout) for readout in READOUTS}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    (OUT / "auto_rule.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = table(rows)
    (OUT / "auto_rule.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
