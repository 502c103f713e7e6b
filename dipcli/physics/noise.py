"""Noise: how clipping at 0 and 1 changes Gaussian noise, and how much noise an image holds.

One place for both, used by every part that needs them: the discrepancy stop (what residual a
fit that explains the image but none of the noise leaves), the texture estimator (how much of
an image's detail energy is noise), and the denoising task (σ estimated from the image when
the user gives none). Saved images are clipped to [0, 1], so their noise is not Gaussian near
black and white: its mean is pulled inwards and its variance shrinks, by half and more at a
saturated pixel. Both corrections below follow from the moments of a clipped Gaussian.

The functions take numpy arrays or torch tensors alike (the stop rule computes on the device);
torch is imported only when a tensor is given, so the texture estimator runs without it.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.filters import gaussian
from skimage.restoration import estimate_sigma

ESTIMATE_FLOOR = 1.5 / 255  # an estimated σ below this is rounding, not noise (see estimate_noise)


def _special(x):
    """(erfc, exp) for ``x``'s array library."""
    if type(x).__module__.startswith("torch"):
        import torch

        return torch.special.erfc, torch.exp
    from scipy.special import erfc

    return erfc, np.exp


def clipped_moments(x, sigma: float):
    """For y = clip(x + n, 0, 1), n ~ N(0, σ²), elementwise: E[y] − x, E[(y − x)²] and P(0 < x + n < 1).

    ``x`` is a numpy array or a torch tensor of clean levels; the variance of y is
    ``second − bias²``, and ``inside`` is the slope dE[y]/dx.
    """
    erfc, exp = _special(x)
    a, b = -x / sigma, (1.0 - x) / sigma
    ca, cb = 0.5 * erfc(-a / math.sqrt(2.0)), 0.5 * erfc(-b / math.sqrt(2.0))
    pa, pb = exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi), exp(-0.5 * b * b) / math.sqrt(2.0 * math.pi)
    upper = 1.0 - cb
    inside = cb - ca
    bias = (1.0 - x) * upper - x * ca + sigma * (pa - pb)
    second = sigma**2 * (inside - (b * pb - a * pa)) + x * x * ca + (1.0 - x) ** 2 * upper
    return bias, second, inside


def clipped_noise_variance(mean, sigma: float, steps: int = 6) -> float:
    """Mean over pixels of Var(y) for y = clip(x + n, 0, 1), given the pixels' means E[y] (a tensor).

    This is the residual a fit that explains the image but none of the noise leaves. Clipping
    makes it smaller than σ² (much smaller in near-black or near-white regions: half of σ² and
    less at a saturated pixel), so comparing the residual with σ² itself would stop early on
    images with dark or bright areas, more so at high σ. ``mean`` is an estimate of E[y] — the
    averaged output, which fits E[y] rather than the clean x — so x is recovered per pixel by
    Newton's method on E[y](x) = x + bias(x), whose slope is P(no clipping).
    """
    m = mean.detach().clamp(0.0, 1.0)
    if m.device.type != "mps":
        m = m.double()
    x = m.clone()
    for _ in range(steps):
        bias, _, slope = clipped_moments(x, sigma)
        x = (x - (x + bias - m) / slope.clamp_min(0.05)).clamp(0.0, 1.0)
    bias, second, _ = clipped_moments(x, sigma)
    return (second - bias * bias).mean().item()


def clipped_mean_and_variance(mu: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of clip(mu + s·N(0, 1), 0, 1): what noise looks like after saving to 8 bit."""
    bias, second, _ = clipped_moments(mu, s)
    return mu + bias, np.maximum(second - bias * bias, 0.0)


def finest_scale_sigma(pixels: np.ndarray) -> float:
    """The finest wavelet scale's σ of ``pixels`` ``(H, W, C)`` (scikit-image's ``estimate_sigma``,
    the MAD of the diagonal detail; Donoho & Johnstone 1994), averaged over channels, as seen:
    no floor, no clipping correction (:func:`estimate_noise` adds both)."""
    return float(estimate_sigma(pixels, channel_axis=-1, average_sigmas=True))


def _unclip_sigma(pixels: np.ndarray, observed: float) -> float:
    """The σ before clipping whose clipped noise ``estimate_sigma`` would read as ``observed``.

    ``estimate_sigma`` sees the noise after clipping, so it reads low on images with dark or
    bright areas (by 10-30 % at σ = 50); the noise model here wants the σ before clipping. Find
    it by simulation: clipped noise (fixed seed) around the image's smoothed levels, measured by
    the same estimator, matched to the observation.
    """
    if observed <= 0:
        return 0.0
    smooth = np.stack([gaussian(pixels[:, :, k], sigma=2.0, mode="reflect")
                       for k in range(pixels.shape[2])], axis=2)
    unit = np.random.default_rng(0).standard_normal(pixels.shape)
    s = observed
    for _ in range(5):
        grid = np.linspace(-3 * s, 1 + 3 * s, 1024)
        level = np.interp(smooth, clipped_mean_and_variance(grid, s)[0], grid)
        seen = finest_scale_sigma(np.clip(level + s * unit, 0, 1))
        s = min(s * observed / max(seen, 1e-3 * observed), 3 * observed)
    return float(s)


def _noise_sample(pixels: np.ndarray, tile: int = 256, grid: int = 4) -> np.ndarray:
    """A mosaic of tiles spread over a large image: enough to read a stationary noise level (and
    its clipping) at a fraction of the cost; 12 MP would take ~25 s whole."""

    def spans(n: int) -> list[slice]:
        if n <= tile * grid:
            return [slice(0, n)]
        return [slice(int(t), int(t) + tile) for t in np.linspace(0, n - tile, grid)]

    rows, cols = spans(pixels.shape[0]), spans(pixels.shape[1])
    if len(rows) == len(cols) == 1:
        return pixels
    return np.concatenate([np.concatenate([pixels[r, c] for c in cols], axis=1) for r in rows], axis=0)


def estimate_noise(pixels: np.ndarray) -> float:
    """Noise σ (0-1 scale) of an image with additive white noise, corrected for clipping.

    ``ESTIMATE_FLOOR`` is taken out in quadrature first: on clean images the wavelet estimator reads
    0.5-1.5 grey levels from rounding alone, and jumps within that range between 8- and 16-bit
    copies of one picture (its median falls between quantised values). Real noise is unaffected
    (σ = 25 reads as 24.96).
    """
    pixels = _noise_sample(as_float_image(pixels))
    observed = finest_scale_sigma(pixels)
    return _unclip_sigma(pixels, float(np.sqrt(max(observed**2 - ESTIMATE_FLOOR**2, 0.0))))




def as_float_image(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W, 1) or (H, W, 3) image, got shape {pixels.shape}")
    return pixels
