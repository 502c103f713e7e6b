"""Exploration (issue 32): does a truer camera-noise readout give a better image? `camera.py`'s
`default` rows with the readout's constants changed.

    python benchmarks/explore/readout_trial.py now --sets acceptance --only kodim01 --levels 0.004 0.012
    python benchmarks/explore/readout_trial.py q0.05f1.2 --sets acceptance --only kodim01 --levels 0.004 0.012
    python benchmarks/explore/readout_trial.py q0.05f1.2 --sets heldout --levels 0.004 0.012 0.03

The first argument names a variant of :data:`VARIANTS` (constants of ``dipcli.physics.camera``,
as ``readout_texture.py`` varies them); the rest are ``benchmarks/camera.py``'s arguments, run
with ``--methods default`` and the log and folder of this trial
(results/camera/readout_trial/<variant>.jsonl), the fits' images kept apart from camera.py's.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
import camera  # noqa: E402
from common import RESULTS  # noqa: E402

from dipcli.physics import camera as cam  # noqa: E402  # internal: the readout's constants under trial

VARIANTS = {"now": {}, "q0.05f1.2": {"QUANTILE": 0.05, "FLAT": 1.2}}
OUT = RESULTS / "camera" / "readout_trial"


def main() -> None:
    variant, rest = sys.argv[1], sys.argv[2:]
    for name, value in VARIANTS[variant].items():
        setattr(cam, name, value)
    camera.FITS = OUT / "fits"  # not committed (.gitignore)
    folder = OUT / variant
    camera.main([*rest, "--methods", "default", "--log", str(OUT / f"{variant}.jsonl"), "--out", str(folder)])


if __name__ == "__main__":
    main()
