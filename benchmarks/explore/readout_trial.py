"""Exploration (issue 32): does a truer camera-noise readout give a better image? `camera.py`'s
`default` rows under each readout.

    python benchmarks/explore/readout_trial.py before --sets acceptance --only kodim01 --levels 0.004 0.03
    python benchmarks/explore/readout_trial.py mended --sets acceptance --only kodim01 --levels 0.004 0.03
    python benchmarks/explore/readout_trial.py q0.05f1.2 --sets heldout --levels 0.004 0.012 0.03

The first argument names the readout; the rest are ``benchmarks/camera.py``'s arguments, run with
``--methods default`` and the log of this trial (results/camera/readout_trial/<readout>.jsonl); the
fits' images and camera.py's tables of each run go to folders beside it, not committed (.gitignore).

* ``mended``: the product's readout (:func:`dipcli.physics.camera.read_noise`, since 2026-12-07):
  a rough curve, the correlation against it (FLAT 1.2), then the 0.05 quantile of the blocks'
  energies, each first levelled to its brightness group's median by the rough curve.
* ``before``: the readout before it (:func:`before_read`): the rough curve alone (QUANTILE 0.2)
  and the correlation against it (FLAT 1.4).
* ``q0.05f1.2``: ``before`` with QUANTILE 0.05 and FLAT 1.2, which reads truer but fails the unit
  tests (the ramp's dark end σ 5 for 8; correlation unmeasured on small images): what ``mended`` mends.
* ``stage-before``: the fit with ``mended``'s model, the Wiener stage with ``before``'s, read from
  the same observation (explore/iso_readout.py found the real series' loss in the stage).
* ``fq0.2``: ``mended`` with FINE_QUANTILE 0.2: the fine curve at the rough curve's quantile (its σ
  about the rough one's), the correlation as ``mended`` reads it. On the real ISO series the
  mended readout's loss came from its lower σ alone (explore/iso_readout.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
import camera  # noqa: E402
from common import RESULTS  # noqa: E402

from dipcli.physics import camera as cam  # noqa: E402  # internal: the readout's constants under trial
from dipcli.physics import denoise as dn  # noqa: E402  # internal: the stage the split gives another model
from dipcli.physics import noise_models as nm  # noqa: E402  # internal: the readout `dip` calls

READOUTS = {"mended": {}, "before": {}, "q0.05f1.2": {"QUANTILE": 0.05, "FLAT": 1.2},
            "fq0.2": {"FINE_QUANTILE": 0.2}, "stage-before": {}}
BEFORE = ("before", "q0.05f1.2")  # the readouts built on before_read
OUT = RESULTS / "camera" / "readout_trial"


def before_read(pixels: np.ndarray) -> tuple[cam.NoiseCurve, cam.Correlation]:
    """:func:`dipcli.physics.camera.read_noise` as it was before 2026-12-07: the rough curve and
    the correlation against it."""
    curve = cam.rough_curve(pixels)
    return curve, cam.noise_correlation(pixels, curve)


def stage_with(read) -> None:
    """Give the Wiener stage the camera model ``read`` reads from its observation (the fit keeps
    the one ``dip`` read); white noise is left as it is."""
    stage = dn.wiener_stage

    def wrapped(observed: np.ndarray, fit: np.ndarray, noise):
        if not isinstance(noise, nm.CameraNoise):
            return stage(observed, fit, noise)
        product, nm.read_noise = nm.read_noise, read
        try:
            model = nm.read_camera_noise(observed)
        finally:
            nm.read_noise = product
        return stage(observed, fit, model)

    dn.wiener_stage = wrapped


def use(readout: str) -> None:
    """Make ``dip`` read the noise with ``readout`` in this process."""
    if readout in BEFORE:
        nm.read_noise = before_read  # read_camera_noise looks it up in its module when called
    if readout == "stage-before":
        stage_with(before_read)
    for name, value in READOUTS[readout].items():
        setattr(cam, name, value)


def main() -> None:
    readout, rest = sys.argv[1], sys.argv[2:]
    use(readout)
    camera.FITS = OUT / "fits"
    folder = OUT / readout
    camera.main([*rest, "--methods", "default", "--log", str(OUT / f"{readout}.jsonl"), "--out", str(folder)])


if __name__ == "__main__":
    main()
