"""Exploration (issue 32): which noise reading should the Wiener stage filter for?

    python benchmarks/camera.py --sets heldout --methods default   # first: the fits, cached in FITS
    python benchmarks/explore/stage_readout.py

The mended readout (``dip``'s since 2026-12-07) lost 0.1–0.4 dB on the real ISO series, and
explore/iso_readout.py found all of that loss in the Wiener stage: the fit with the mended model
and the stage with the model read before (``stage-before``) gave 42.03 dB at ISO 3,200, the
mended readout in both 41.61. On four acceptance crops that split kept about half of the mended
readout's gain (readout_trial.py). Before putting the split in ``dip``, this scores it where no
choice was made: camera.py's held-out crops, each ``default`` fit (the mended model's, cached
by camera.py) given to ``dip``'s Wiener stage once with the model ``dip`` reads (``mended``)
and once with the model read before (``before``: the rough curve and its correlation). The fit
is the same in both, so the difference is the stage's alone. Rows and table:
results/camera/stage_readout.jsonl and .md.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
sys.path.insert(0, str(HERE))
from camera import FITS, LEVELS, camera, case_seed, cases  # noqa: E402
from common import RESULTS  # noqa: E402
from quality import scores  # noqa: E402
from readout_trial import before_read, camera_model  # noqa: E402

from dipcli.physics import camera as cam  # noqa: E402  # internal: the readouts compared
from dipcli.physics.wiener import wiener_stage  # noqa: E402  # internal: the stage, given each model

OUT = RESULTS / "camera" / "stage_readout"
READS = {"mended": cam.read_noise, "before": before_read}


def rows() -> list[dict]:
    """One row per held-out crop and level whose fit is cached: the stage's PSNR under each read."""
    out = []
    for name_of_set, name, clean in cases(["heldout"], 256, False):
        for shot in LEVELS:
            fit_file = FITS / f"{name_of_set}-{name}-{shot:g}-default.npy"
            if not fit_file.exists():
                print(f"no cached fit {fit_file.name}: run camera.py --sets heldout --methods default")
                continue
            seed = case_seed(name, shot)
            reference, noisy = camera(clean, None, seed), camera(clean, shot, seed)
            fit = np.load(fit_file)
            row = {"image": name, "level": shot, "fit": scores(fit, reference)[0]}
            for readout, read in READS.items():
                model = camera_model(read, noisy)
                row[readout] = scores(wiener_stage(noisy, fit, model), reference)[0]
                row[f"{readout}_sigma"] = round(model.sigma * 255, 2)
            out.append(row)
            print(json.dumps(row), flush=True)
    return out


def table(found: list[dict]) -> str:
    lines = ["| level | fit alone | stage, mended model (`dip`) | stage, model before "
             "| before − mended: mean | median | worst | best | RMS σ mended → before |",
             "|---|---|---|---|---|---|---|---|---|"]
    for shot in LEVELS:
        level = [r for r in found if r["level"] == shot]
        if not level:
            continue
        diff = [r["before"] - r["mended"] for r in level]
        mean = {k: statistics.mean(r[k] for r in level) for k in ("fit", "mended", "before",
                                                                     "mended_sigma", "before_sigma")}
        lines.append(f"| {shot:g} | {mean['fit']:.2f} | {mean['mended']:.2f} | {mean['before']:.2f} "
                     f"| {statistics.mean(diff):+.2f} | {statistics.median(diff):+.2f} | {min(diff):+.2f} "
                     f"| {max(diff):+.2f} | {mean['mended_sigma']:.2f} → {mean['before_sigma']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    found = rows()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{OUT}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in found))
    images = sorted({r["image"] for r in found})
    Path(f"{OUT}.md").write_text(
        "# The Wiener stage under each noise reading, on the held-out fits (`explore/stage_readout.py`)\n\n"
        f"camera.py's held-out crops ({', '.join(images)}), 256², each `default` fit (the mended model's) "
        "given to `dip`'s Wiener stage with the model `dip` reads and with the model read before "
        "2026-12-07. Mean PSNR (dB) over the crops; the differences are per crop.\n\n"
        + table(found) + "\n")
    print(table(found))


if __name__ == "__main__":
    main()
