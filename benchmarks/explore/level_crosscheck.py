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
none (its reference is another frame). ``geo`` is what `dip` reads since 2026-12-07's last
change (:func:`dipcli.physics.noise_models.level_checked`). numpy only, a minute. Rows and table:
results/camera/level_crosscheck-<set>.jsonl and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
from camera import LEVELS, camera, case_seed, cases, true_sigma  # noqa: E402
from camera_iso import FRAMES, load_series  # noqa: E402
from common import RESULTS  # noqa: E402

sys.path.insert(0, str(HERE))  # the level as read, beside this file
from readout_trial import camera_model  # noqa: E402

from dipcli.physics import camera as cam  # noqa: E402  # internal: the read itself
from dipcli.physics.noise import finest_scale_sigma  # noqa: E402  # internal: the second reading
from dipcli.physics.noise_models import read_camera_noise  # noqa: E402  # internal: the level checked

OUT = RESULTS / "camera"


def readings(noisy: np.ndarray) -> dict:
    """The model's RMS σ as read, the finest scale's share of the modelled noise, ``alt`` and ``geo``
    (0–255). ``geo`` is the level `dip` takes since (:func:`dipcli.physics.noise_models.level_checked`,
    first built here as ``geo_read``); ``alt`` and the share follow from it."""
    read = camera_model(cam.read_noise, noisy)  # the level as read
    geo = read_camera_noise(noisy).sigma
    alt = geo**2 / read.sigma
    share = finest_scale_sigma(noisy) / alt
    return {"read": read.sigma * 255, "share": share, "alt": alt * 255, "geo": geo * 255}


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
