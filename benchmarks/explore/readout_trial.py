"""Exploration (issue 32): does a truer camera-noise readout give a better image? `camera.py`'s
`default` rows with the readout's constants changed.

    python benchmarks/explore/readout_trial.py now --sets acceptance --only kodim01 --levels 0.004 0.012
    python benchmarks/explore/readout_trial.py q0.05f1.2 --sets acceptance --only kodim01 --levels 0.004 0.012
    python benchmarks/explore/readout_trial.py q0.05f1.2 --sets heldout --levels 0.004 0.012 0.03

The first argument names a variant of :data:`VARIANTS` (constants of ``dipcli.physics.camera``,
as ``readout_texture.py`` varies them) or ``mended``; the rest are ``benchmarks/camera.py``'s
arguments, run with ``--methods default`` and the log and folder of this trial
(results/camera/readout_trial/<variant>.jsonl), the fits' images kept apart from camera.py's.

``mended`` (:func:`mended_read`) is q0.05f1.2 without the two faults the unit tests found in it:
the correlation is read with the curve as the product reads it now (QUANTILE 0.2), only then
with FLAT 1.2, so that a low curve does not leave too few blocks flat; and the final curve takes
the low quantile (0.05) of the blocks' energies each first brought to its group's median level by
that first curve, so that within a group the darker blocks' lower shot noise is not read as the
group's.
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
from dipcli.physics import noise_blocks as nb  # noqa: E402  # internal: the readout's blocks
from dipcli.physics import noise_models as nm  # noqa: E402  # internal: the readout `dip` calls

VARIANTS = {"now": {}, "q0.05f1.2": {"QUANTILE": 0.05, "FLAT": 1.2}}
OUT = RESULTS / "camera" / "readout_trial"
MENDED_QUANTILE, MENDED_FLAT = 0.05, 1.2


def levelled_curve(img: np.ndarray, rho: np.ndarray, first: cam.NoiseCurve) -> cam.NoiseCurve:
    """``cam._curve_for`` with each block's Σ r² brought to its group's median level by ``first``
    and the MENDED_QUANTILE read of it."""
    edges = np.linspace(0.0, 1.0, cam.BINS + 1)
    params, levels, sigmas = [], [], []
    for c in range(img.shape[2]):
        trace, dof = nb.block_stats(rho[c], cam.BLOCK)
        means, resid = nb.block_residuals(img[:, :, c], cam.BLOCK, cam.BLOCK // 2)
        sums = (resid**2).sum(axis=(1, 2))
        expected = first.variance(means[:, None])[:, c]
        factor = trace * cam.stats.chi2.ppf(MENDED_QUANTILE, dof) / dof
        group = np.clip(np.digitize(means, edges) - 1, 0, cam.BINS - 1)
        lv, var, n = [], [], []
        for g in range(cam.BINS):
            inside = group == g
            level = float(np.median(means[inside])) if inside.sum() >= cam.MIN_BLOCKS else -1.0
            if not cam.EDGE <= level <= 1 - cam.EDGE:
                continue
            energy = sums[inside] * np.median(expected[inside]) / np.maximum(expected[inside], 1e-12)
            lv.append(level)
            var.append(float(np.quantile(energy, MENDED_QUANTILE)) / factor)
            n.append(int(inside.sum()))
        if not lv:
            return first
        params.append(cam._fit_affine(np.array(lv), np.array(var), np.array(n)))
        levels.append(tuple(lv))
        sigmas.append(tuple(float(v) for v in np.sqrt(np.maximum(var, 0))))
    a, b = zip(*params, strict=True)
    return cam.NoiseCurve(tuple(a), tuple(b), tuple(levels), tuple(sigmas))


def mended_read(pixels: np.ndarray) -> nm.CameraNoise:
    """``nm.read_camera_noise`` with the mended readout (module doc)."""
    sample = nm._noise_sample(nb.as_pixels(pixels))
    first = cam.noise_curve(sample)
    if not first.measured:
        return nm.read_camera_noise(pixels)
    saved, cam.FLAT = cam.FLAT, MENDED_FLAT
    try:
        correlation = cam.noise_correlation(sample, first)
    finally:
        cam.FLAT = saved
    curve = levelled_curve(sample, correlation.autocorrelation_half, first)
    return nm.CameraNoise(curve, correlation, float(np.sqrt(np.mean(curve.variance(sample)))))


def main() -> None:
    variant, rest = sys.argv[1], sys.argv[2:]
    if variant == "mended":
        nm.read_camera_noise = mended_read  # dipcli.api.plan imports it when it plans
    for name, value in VARIANTS.get(variant, {}).items():
        setattr(cam, name, value)
    camera.FITS = OUT / "fits"  # not committed (.gitignore)
    folder = OUT / variant
    camera.main([*rest, "--methods", "default", "--log", str(OUT / f"{variant}.jsonl"), "--out", str(folder)])


if __name__ == "__main__":
    main()
