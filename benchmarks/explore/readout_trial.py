"""Exploration (issue 32): does a truer camera-noise readout give a better image? `camera.py`'s
`default` rows under each readout.

    python benchmarks/explore/readout_trial.py before --sets acceptance --only kodim01 --levels 0.004 0.03
    python benchmarks/explore/readout_trial.py mended --sets acceptance --only kodim01 --levels 0.004 0.03
    python benchmarks/explore/readout_trial.py q0.05f1.2 --sets heldout --levels 0.004 0.012 0.03

The first argument names the readout; the rest are ``benchmarks/camera.py``'s arguments, run with
``--methods default`` and the log of this trial (results/camera/readout_trial/<readout>.jsonl); the
fits' images and camera.py's tables of each run go to folders beside it, not committed (.gitignore).

Every readout but ``geo`` leaves the level as read (the product's
:func:`dipcli.physics.noise_models.level_checked` patched out, as before it was built).

* ``mended``: the product's curve and correlation (:func:`dipcli.physics.camera.read_noise`,
  since 2026-12-07): a rough curve, the correlation against it (FLAT 1.2), then the 0.05 quantile
  of the blocks' energies, each first levelled to its brightness group's median by the rough curve.
* ``before``: the readout before it (:func:`before_read`): the rough curve alone (QUANTILE 0.2)
  and the correlation against it (FLAT 1.4).
* ``q0.05f1.2``: ``before`` with QUANTILE 0.05 and FLAT 1.2, which reads truer but fails the unit
  tests (the ramp's dark end σ 5 for 8; correlation unmeasured on small images): what ``mended`` mends.
* ``stage-before``: the fit with ``mended``'s model, the Wiener stage with ``before``'s, read from
  the same observation (explore/iso_readout.py found the real series' loss in the stage).
* ``fq0.2``: ``mended`` with FINE_QUANTILE 0.2: the fine curve at the rough curve's quantile (its σ
  about the rough one's), the correlation as ``mended`` reads it. On the real ISO series the
  mended readout's loss came from its lower σ alone (explore/iso_readout.py).
* ``geo``: ``mended`` with the curve scaled to the geometric mean of its RMS σ and the finest
  wavelet scale's reading, for the fit and the stage (first explore/level_crosscheck.py's
  ``geo_read``; the product since: :func:`dipcli.physics.noise_models.level_checked`).
"""

from __future__ import annotations

import sys
from contextlib import ExitStack, nullcontext
from pathlib import Path
from unittest import mock

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the studies beside this folder
import camera  # noqa: E402
from common import RESULTS  # noqa: E402

from dipcli.physics import camera as cam  # noqa: E402  # internal: the readout's constants under trial
from dipcli.physics import denoise as dn  # noqa: E402  # internal: the stage the split gives another model
from dipcli.physics import noise_models as nm  # noqa: E402  # internal: the readout `dip` calls

OUT = RESULTS / "camera" / "readout_trial"


def before_read(pixels: np.ndarray) -> tuple[cam.NoiseCurve, cam.Correlation]:
    """:func:`dipcli.physics.camera.read_noise` as it was before 2026-12-07: the rough curve and
    the correlation against it."""
    curve = cam.rough_curve(pixels)
    return curve, cam.noise_correlation(pixels, curve)


# readout → the read the fit's model comes from, constants of dipcli.physics.camera, the read the
# Wiener stage's model comes from (None: the fit's), and whether the level is cross-checked as the
# product does since `geo` (nm.level_checked). iso_readout.py takes its readouts from here.
READOUTS = {"mended": (cam.read_noise, {}, None, False), "before": (before_read, {}, None, False),
            "q0.05f1.2": (before_read, {"QUANTILE": 0.05, "FLAT": 1.2}, None, False),
            "fq0.1": (cam.read_noise, {"FINE_QUANTILE": 0.1}, None, False),
            "fq0.2": (cam.read_noise, {"FINE_QUANTILE": 0.2}, None, False),
            "ff1.4": (cam.read_noise, {"FINE_FLAT": 1.4}, None, False),
            "stage-before": (cam.read_noise, {}, before_read, False),
            "stage-mended": (before_read, {}, cam.read_noise, False),
            "geo": (cam.read_noise, {}, None, True)}


def level_as_read() -> mock._patch:
    """A patch under which ``read_camera_noise`` keeps the level its read gives (as before
    :func:`dipcli.physics.noise_models.level_checked`)."""
    return mock.patch.object(nm, "level_checked", lambda model, pixels: model)


def camera_model(read, pixels: np.ndarray, checked: bool = False) -> nm.CameraNoise:
    """``read_camera_noise(pixels)`` with the curve and correlation read by ``read``, the level as
    read unless ``checked``."""
    with mock.patch.object(nm, "read_noise", read), (nullcontext() if checked else level_as_read()):
        return nm.read_camera_noise(pixels)


def reading(readout: str, frame: np.ndarray | None = None) -> ExitStack:
    """A context in which ``dip`` reads the noise with ``readout``. Where the stage reads with
    another read, its model comes from ``frame`` once (the whole photo, as ``dip`` reads it) or,
    without one, from each observation the stage is given; white noise is left as it is."""
    read, constants, stage_read, checked = READOUTS[readout]
    patches = ExitStack()
    if constants:
        patches.enter_context(mock.patch.multiple(cam, **constants))
    if stage_read is not None:
        stage, fixed = dn.wiener_stage, None if frame is None else camera_model(stage_read, frame, checked)

        def wrapped(observed: np.ndarray, fit: np.ndarray, noise):
            if not isinstance(noise, nm.CameraNoise):
                return stage(observed, fit, noise)
            model = camera_model(stage_read, observed, checked) if fixed is None else fixed
            return stage(observed, fit, model)

        patches.enter_context(mock.patch.object(dn, "wiener_stage", wrapped))
    patches.enter_context(mock.patch.object(nm, "read_noise", read))  # read_camera_noise looks it up
    if not checked:
        patches.enter_context(level_as_read())
    return patches


def main() -> None:
    readout, rest = sys.argv[1], sys.argv[2:]
    camera.FITS = OUT / "fits"
    folder = OUT / readout
    log = OUT / f"{readout}.jsonl"
    with reading(readout):
        camera.main([*rest, "--methods", "default", "--log", str(log), "--out", str(folder)])


if __name__ == "__main__":
    main()
