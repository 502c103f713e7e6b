"""Camera noise: how much noise a photo holds at each brightness, how it is correlated, samples of it.

Noise in a photo is not white Gaussian noise of one σ. Shot noise grows with the signal, so the
variance is close to affine in the brightness, σ²(x) = a·x + b per channel (Poisson–Gaussian: Foi,
Trimeche, Katkovnik & Egiazarian, "Practical Poissonian-Gaussian noise modeling and fitting for
single-image raw-data", IEEE TIP 2008); demosaicking, the camera's own noise reduction and JPEG
then make it spatially correlated and blotchy in colour. A white-noise σ estimate (the finest
wavelet scale) reads such noise as small, and recorruption with white noise (Pang et al.,
Recorrupted-to-Recorrupted, CVPR 2021) teaches a net the wrong noise. So this module reads both:

* :func:`noise_curve`: residuals of smooth blocks (a plane fitted and removed) grouped by the
  blocks' brightness, a robust low quantile per group (texture only adds variance), and a fit of
  σ² = a·x + b per channel in which clipping at 0 and 1 is modelled (:mod:`dipcli.physics.noise`);
* :func:`noise_correlation`: the autocorrelation of the normalised residuals of flat blocks, per
  decorrelated colour component (luma-like and chroma-like noise differ: chroma is blotchier), a
  kernel per component whose convolution with white noise reproduces it, and a width in pixels;
* :func:`read_noise`: both, each read with the other, in the order that keeps texture out of them
  (a rough curve, the correlation against it, then the fine curve);
* :func:`sample_noise`: seeded noise with that curve and correlation, to recorrupt with (numpy;
  the fit draws it in torch: :class:`dipcli.physics.noise_models.CameraNoise`);
* :func:`read_camera_noise` and :func:`camera_like`: the noise model of a photo, read once, and
  the rule by which ``--noise auto`` takes it instead of white Gaussian noise.

The generalised Anscombe transform for this curve is in :mod:`dipcli.physics.vst`.

Removing a plane from a block of correlated noise removes part of its variance and bends its
autocorrelation; both are corrected exactly (:mod:`dipcli.physics.noise_blocks`), so the curve is the
noise's per-pixel variance and a white noise reads as white. Everything is on the 0–1 scale,
numpy in and out; the fit's draws, in torch, are :class:`~dipcli.physics.noise_models.CameraNoise`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, signal, stats

from dipcli.physics import noise_blocks as nb
from dipcli.physics.noise import clipped_mean_and_variance, estimate_noise
from dipcli.physics.noise_blocks import KERNEL, LAG

BLOCK = 8  # side of the blocks that read the curve: small, so that smooth ones are common
CORR_BLOCK = 16  # side of the blocks that read the correlation: long enough for its lags
QUANTILE = 0.2  # per brightness group: texture only adds variance, so read a low quantile (rough curve)
FINE_QUANTILE = 0.05  # the fine curve's, of energies levelled within the group by the rough curve
BINS = 12  # brightness groups over [0, 1]
MIN_BLOCKS = 8  # blocks a group needs to count
FLAT = 1.4  # a block whose residual variance is under FLAT × the curve's is read for correlation
FINE_FLAT = 1.2  # the same test against the rough curve, when reading the correlation the fine curve uses
EDGE = 2 / 255  # groups darker or brighter than this from 0 and 1 are mostly clipped: left out
WHITE_WIDTH = 1.3  # a correlation width under this (px) is white noise, as read


# ---- the noise-level function --------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseCurve:
    """σ²(x) = max(a·x + b, 0) per channel, on the 0–1 scale, and the points it was fitted to.

    ``levels`` and ``sigmas`` are, per channel, the brightness groups that were measured and the
    noise σ read in each; ``measured`` is False when too few smooth blocks were found and the curve
    is a flat white-noise estimate instead (:func:`dipcli.physics.noise.estimate_noise`).
    """

    a: tuple[float, ...]
    b: tuple[float, ...]
    levels: tuple[tuple[float, ...], ...] = ()
    sigmas: tuple[tuple[float, ...], ...] = ()
    measured: bool = True

    @property
    def channels(self) -> int:
        return len(self.a)

    def variance(self, brightness: float | np.ndarray) -> np.ndarray:
        """σ² at ``brightness`` (a number, or an array whose last axis is the channels or 1)."""
        x = np.asarray(brightness, dtype=np.float64)
        x = x[..., None] if x.ndim == 0 else x
        return np.maximum(np.asarray(self.a) * x + np.asarray(self.b), 0.0)

    def sigma(self, brightness: float | np.ndarray) -> np.ndarray:
        """σ at ``brightness`` (see :meth:`variance`)."""
        return np.sqrt(self.variance(brightness))

    def scaled(self, factor: float) -> NoiseCurve:
        """The curve with σ × ``factor`` at every brightness (its shape kept)."""
        square = factor**2
        return NoiseCurve(tuple(v * square for v in self.a), tuple(v * square for v in self.b), self.levels,
                          tuple(tuple(v * factor for v in sg) for sg in self.sigmas), self.measured)

    def span(self) -> tuple[float, float]:
        """The brightness range the curve was measured over (all of [0, 1] when it was not)."""
        seen = [v for lv in self.levels for v in lv]
        return (min(seen), max(seen)) if seen else (0.0, 1.0)

    def sigma_range(self) -> tuple[float, float]:
        """σ (0–1 scale, the channels' mean) at the darkest and at the brightest level measured."""
        lo, hi = self.span()
        return float(np.mean(self.sigma(lo))), float(np.mean(self.sigma(hi)))

    def summary(self, correlation: Correlation | None = None) -> str:
        """One honest line, e.g. ``noise σ 3–11 (dark to bright, 0–255 scale), correlated over ~2 px``."""
        dark, bright = (v * 255 for v in self.sigma_range())
        if max(dark, bright) < 0.5:
            text = "noise σ under 0.5 (0–255 scale): next to none that can be seen"
        elif max(dark, bright) < 1.2 * min(dark, bright) + 0.5:
            text = f"noise σ ≈ {_fmt((dark + bright) / 2)} (0–255 scale, about the same at all brightness)"
        else:
            text = f"noise σ {_fmt(dark)}–{_fmt(bright)} (dark to bright, 0–255 scale)"
        if not self.measured:
            text += ", too few smooth areas to read how it varies"
        return text if correlation is None else f"{text}, {correlation.summary()}"

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        """For ``--json`` and reports: the parameters (0–1 scale) and the measured points."""
        return {"a": list(self.a), "b": list(self.b), "levels": [list(v) for v in self.levels],
                "sigmas": [list(v) for v in self.sigmas], "measured": self.measured,
                "summary": self.summary()}


def _fmt(x: float) -> str:
    return f"{x:.1f}" if x < 3 else f"{x:.0f}"


def _group_variances(means: np.ndarray, sums: np.ndarray, trace: float, dof: float, quantile: float,
                     expected: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per brightness group with enough blocks: its mean level, noise variance and block count.

    The variance is the low ``quantile`` of the blocks' Σ r², turned into σ² through the scaled-χ²
    law of a noise-only block (E = σ²·trace, ``dof`` degrees of freedom): texture and edges only
    add to a block's residual, so the lower part of the spread is the noise's. ``expected`` (each
    block's σ² by a first curve) levels the blocks of a group to its median brightness first: a
    group spans a twelfth of the range, over which shot noise changes, and a quantile as low as
    FINE_QUANTILE would otherwise read the group's darkest blocks' noise as the group's.
    """
    edges = np.linspace(0.0, 1.0, BINS + 1)
    group = np.clip(np.digitize(means, edges) - 1, 0, BINS - 1)
    factor = trace * stats.chi2.ppf(quantile, dof) / dof
    levels, variances, counts = [], [], []
    for g in range(BINS):
        inside = group == g
        if inside.sum() < MIN_BLOCKS:
            continue
        level = float(np.median(means[inside]))
        if level < EDGE or level > 1 - EDGE:
            continue
        energy = sums[inside]
        if expected is not None:
            share = np.maximum(expected[inside], 1e-12)
            energy = energy * np.median(share) / share
        levels.append(level)
        variances.append(float(np.quantile(energy, quantile)) / factor)
        counts.append(int(inside.sum()))
    return np.array(levels), np.array(variances), np.array(counts)


def _fit_affine(levels: np.ndarray, variances: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """a, b of σ² = a·x + b fitted to the groups' σ, robustly (soft-L1), with clipping at 0 and 1
    modelled: near black or white the observed variance is that of a clipped Gaussian."""
    s_obs = np.sqrt(np.maximum(variances, 1e-12))
    weight = np.sqrt(counts / counts.sum())

    def residual(p: np.ndarray) -> np.ndarray:
        s = np.sqrt(np.maximum(p[0] * levels + p[1], 1e-12))
        seen = np.sqrt(clipped_mean_and_variance(levels, s)[1])
        return weight * (seen - s_obs) / s_obs.mean()

    if len(levels) < 2:
        return 0.0, float(variances.mean())
    start = np.array([0.0, float(np.median(variances))])
    fit = optimize.least_squares(residual, start, bounds=([0.0, -0.05], [1.0, 1.0]), loss="soft_l1",
                                 f_scale=0.1)
    return float(fit.x[0]), float(fit.x[1])


def noise_curve(pixels: np.ndarray) -> NoiseCurve:
    """The noise level as a function of brightness, per channel, read from one photo
    (:func:`read_noise`'s curve).

    ``pixels``: float ``(H, W)`` or ``(H, W, C)`` in [0, 1] (C = 1 or 3), or 8/16-bit integers.
    """
    return read_noise(pixels)[0]


def read_noise(pixels: np.ndarray) -> tuple[NoiseCurve, Correlation]:
    """The noise curve and the noise correlation of one photo, each read with the other.

    Blocks of BLOCK² pixels (half overlapping) have a plane removed; their residual energy, grouped
    by the blocks' mean, gives σ² per group, corrected for the share of correlated noise that the
    plane absorbs. Texture passes for noise in both readings, and more so the more blocks are read,
    so three steps: a rough curve (QUANTILE of the energies, read with white noise's share, then
    with the correlation that curve gives), the correlation against the rough curve from blocks
    that pass the stricter FINE_FLAT, and the fine curve: FINE_QUANTILE of the energies, each
    levelled by the rough curve. On textured crops through the simulated camera this reads the
    level σ × width 1.23–1.53× the truth where the rough reading gave 1.30–1.73×
    (benchmarks/explore/readout_texture.py, benchmarks/results/camera/README.md).
    """
    img = nb.as_pixels(pixels)
    rough = rough_curve(img)
    if not rough.measured:
        return rough, noise_correlation(img, rough)
    correlation = noise_correlation(img, rough, FINE_FLAT)
    fine = _curve_for(img, correlation.autocorrelation_half, FINE_QUANTILE, levelled_by=rough)
    return (fine if fine.measured else rough), correlation


def rough_curve(pixels: np.ndarray) -> NoiseCurve:
    """The first curve :func:`read_noise` reads (QUANTILE of the blocks' energies): read with white
    noise's share of the plane, then again with the correlation it gives (FLAT). Texture in the
    blocks reads as noise in it, more so where the noise is faint; it is what ``dip`` read alone
    before 2026-12-07 (benchmarks/explore/readout_trial.py compares the two)."""
    img = nb.as_pixels(pixels)
    curve = _curve_for(img, nb.white_rho()[None].repeat(img.shape[2], axis=0))
    if not curve.measured:
        return curve
    return _curve_for(img, noise_correlation(img, curve).autocorrelation_half)


def _curve_for(img: np.ndarray, rho: np.ndarray, quantile: float | None = None,
               levelled_by: NoiseCurve | None = None) -> NoiseCurve:
    """The curve of each channel, given each channel's autocorrelation (half lags), read at
    ``quantile`` (None: QUANTILE, looked up when called, as the studies vary it) of the blocks'
    energies, levelled by a first curve if given (:func:`_group_variances`)."""
    quantile = QUANTILE if quantile is None else quantile
    params, levels, sigmas = [], [], []
    for c in range(img.shape[2]):
        trace, dof = nb.block_stats(rho[c], BLOCK)
        if min(img.shape[:2]) < BLOCK:
            break
        means, resid = nb.block_residuals(img[:, :, c], BLOCK, BLOCK // 2)
        expected = None if levelled_by is None else levelled_by.variance(means[:, None])[:, c]
        lv, var, n = _group_variances(means, (resid**2).sum(axis=(1, 2)), trace, dof, quantile, expected)
        if not len(lv):
            break
        params.append(_fit_affine(lv, var, n))
        levels.append(tuple(float(v) for v in lv))
        sigmas.append(tuple(float(v) for v in np.sqrt(np.maximum(var, 0))))
    if len(params) < img.shape[2]:
        s2 = estimate_noise(img) ** 2
        return NoiseCurve((0.0,) * img.shape[2], (s2,) * img.shape[2], measured=False)
    a, b = zip(*params, strict=True)
    return NoiseCurve(tuple(a), tuple(b), tuple(levels), tuple(sigmas))


# ---- spatial and colour correlation ---------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Correlation:
    """How the noise is correlated in space and across channels.

    The noise is modelled as decorrelated colour components (the eigenvectors of the channels'
    noise correlation: for colour, a luma-like one and two chroma-like ones), each white noise
    convolved with its own ``kernels[k]`` (KERNEL², Σk² = 1), mixed into channels by ``mixing``
    (C × K, rows of unit norm). ``autocorrelation`` is what was read per channel, lags ±LAG.
    """

    kernels: np.ndarray
    mixing: np.ndarray
    autocorrelation: np.ndarray
    blocks: int = 0

    @property
    def measured(self) -> bool:
        return self.blocks > 0

    @property
    def autocorrelation_half(self) -> np.ndarray:
        """``autocorrelation`` at the half lags (:func:`.noise_blocks.half_lags`): ``(C, n)``."""
        lags = nb.half_lags()
        return self.autocorrelation[:, lags[:, 0] + LAG, lags[:, 1] + LAG]

    @property
    def widths(self) -> np.ndarray:
        """Per channel, √(Σ_d ρ(d)): the side in pixels of the patch over which the noise moves
        together (1 for white noise; the noise of a mean over n pixels falls as 1/width², not 1/n)."""
        return np.sqrt(np.maximum(self.autocorrelation.sum(axis=(1, 2)), 1.0))

    @property
    def width(self) -> float:
        return float(self.widths.mean())

    def component_widths(self) -> np.ndarray:
        """√(Σ ρ) of each colour component's kernel (its autocorrelation is the kernel's own)."""
        return np.abs(self.kernels.sum(axis=(1, 2)))

    def summary(self) -> str:
        if not self.measured:
            return "correlation not measured (noise too faint, or too few flat areas)"
        w = self.width
        text = "uncorrelated (white)" if w < WHITE_WIDTH else f"correlated over ~{w:.1f} px" if w < 2.5 else \
            f"correlated over ~{w:.0f} px"
        comp = self.component_widths()
        if len(comp) == 3 and comp[1:].max() >= comp[0] + 1:
            text += f", colour blotches ~{comp[1:].max():.0f} px"
        return text

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {"width_px": self.width, "widths_px": self.widths.round(3).tolist(),
                "channel_correlation": (self.mixing @ self.mixing.T).round(3).tolist(),
                "blocks": self.blocks, "summary": self.summary()}


def white_correlation(channels: int, blocks: int = 0) -> Correlation:
    """Independent white noise in each channel."""
    kernel = np.zeros((KERNEL, KERNEL))
    kernel[KERNEL // 2, KERNEL // 2] = 1.0
    auto = np.zeros((channels, 2 * LAG + 1, 2 * LAG + 1))
    auto[:, LAG, LAG] = 1.0
    return Correlation(np.repeat(kernel[None], channels, axis=0), np.eye(channels), auto, blocks)


def _flat_residuals(img: np.ndarray, curve: NoiseCurve, limit: float) -> np.ndarray:
    """Normalised residuals ``(N, C, s, s)`` of the blocks that look like noise alone in every channel."""
    parts, flat = [], None
    for c in range(img.shape[2]):
        means, resid = nb.block_residuals(img[:, :, c], CORR_BLOCK, CORR_BLOCK // 2)
        sigma = curve.sigma(means[:, None])[:, c]
        ok = (sigma > 0) & (means > EDGE) & (means < 1 - EDGE)
        norm = resid / np.where(ok, sigma, 1.0)[:, None, None]
        energy = (norm**2).sum(axis=(1, 2)) / (CORR_BLOCK**2 - 3)
        keep = ok & (energy < limit)
        flat = keep if flat is None else flat & keep
        parts.append(norm)
    return np.stack(parts, axis=1)[flat]


def noise_correlation(pixels: np.ndarray, curve: NoiseCurve, flat: float | None = None) -> Correlation:
    """How the noise of ``pixels`` is correlated, given its curve.

    Residuals of flat CORR_BLOCK² blocks (a plane removed; flat: their energy under ``flat`` × the
    curve's, None: FLAT), divided by the curve's σ at each block's brightness, give the channels'
    noise correlation; its eigenvectors split the noise into colour
    components whose autocorrelations (the plane's bias undone exactly) become kernels. White noise
    reads as ~1 px; demosaicked JPEG noise as 2–3 px, its chroma wider.
    """
    img = nb.as_pixels(pixels)
    channels = img.shape[2]
    if min(img.shape[:2]) < CORR_BLOCK:
        return white_correlation(channels)
    resid = _flat_residuals(img, curve, FLAT if flat is None else flat)
    if len(resid) < 4:
        return white_correlation(channels)
    cov = np.median(np.einsum("nahw,nbhw->nab", resid, resid), axis=0)  # robust, as the lags
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    values, vectors = np.linalg.eigh(corr)
    order = np.argsort(values)[::-1]
    values, vectors = np.maximum(values[order], 1e-6), vectors[:, order]
    components = np.einsum("nchw,ck->nkhw", resid, vectors)
    kernels = np.stack([nb.kernel_from(nb.autocorrelation(components[:, k])) for k in range(channels)])
    mixing = vectors * np.sqrt(values)[None, :]
    mixing /= np.linalg.norm(mixing, axis=1, keepdims=True)
    auto = np.stack([nb.full_lags(nb.autocorrelation(resid[:, c])) for c in range(channels)])
    return Correlation(kernels, mixing, auto, len(resid))


# ---- sampling -------------------------------------------------------------------------------------


def sample_noise(shape: tuple[int, ...], curve: NoiseCurve, correlation: Correlation | None,
                 brightness: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noise of ``shape`` ((H, W) or (H, W, C)) with ``curve``'s level at ``brightness`` and
    ``correlation``'s structure (None: white), float32.

    White noise per colour component, convolved with its kernel ('valid', from a margin, so the
    statistics hold up to the border), mixed into channels, scaled per pixel by σ(brightness).
    For Recorrupted-to-Recorrupted training (Pang et al., CVPR 2021) the recorruption must be
    drawn from the noise's own distribution; ``brightness`` is then the best guess of the clean
    image (the observation, or a smoothed one).
    """
    h, w = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    if channels != curve.channels:
        raise ValueError(f"sample_noise: shape has {channels} channels, the curve {curve.channels}")
    if correlation is None:
        unit = rng.standard_normal((h, w, channels), dtype=np.float32)
    else:
        r = KERNEL // 2
        white = rng.standard_normal((h + 2 * r, w + 2 * r, correlation.kernels.shape[0]), dtype=np.float32)
        taps = correlation.kernels.transpose(1, 2, 0).astype(np.float32)
        unit = signal.fftconvolve(white, taps, mode="valid", axes=(0, 1)) @ correlation.mixing.T.astype(
            np.float32)
    noise = unit * curve.sigma(np.broadcast_to(np.asarray(brightness, dtype=np.float64)[..., None]
                                               if np.ndim(brightness) == 2 else brightness,
                                               (h, w, channels))).astype(np.float32)
    return noise.reshape(shape).astype(np.float32)
