"""A second, Wiener stage with the fit as its pilot: the noisy image filtered again, guided by the fit.

BM3D (Dabov, Foi, Katkovnik & Egiazarian, IEEE TIP 2007) denoises twice: its first estimate is the
*pilot* of an empirical Wiener filter applied to the noisy image, each transform coefficient
shrunk by G = P² / (P² + s²), P the pilot's coefficient and s² the noise's variance there. A DIP
fit is such a pilot, once the detail it missed where it stopped short of the image (faint noise,
fine texture) is given back to it (:func:`give_back`, a Wiener gain on its residual in the pixel
domain): a coefficient the pilot lacks is shrunk away. The filter then keeps the noisy image's
detail the pilot holds and takes out the noise the fit kept. Here the transform is the 8×8 DCT
of the patch at every pixel (no block matching), in an orthonormal opponent colour space (a luma
and two chroma components, as BM3D's colour version), and the patches are put back with BM3D's
weights 1 / Σ G² s². Each patch's mean (the DC coefficient) is the pilot's, not the shrunk noisy
one: BM3D averages a DC coefficient over a group of similar blocks, which this filter has not,
and a DIP fit is most accurate at the lowest frequencies, which it fits first (Shi et al., "On
Measuring and Controlling the Spectral Bias of the Deep Image Prior", IJCV 2022). On the
acceptance set with `fast`'s fits that adds 0.01 / 0.07 / 0.18 dB on average at σ = 15 / 25 / 50
over the noisy DC shrunk, up to 1.25 on a smooth image (benchmarks/results/quality/README.md).

The noise variance of each coefficient is the noise model's, exactly: σ² for white Gaussian noise
(an orthonormal transform keeps it white); for a photo's noise (:class:`CameraNoise`), each colour
component of the model is white noise through a kernel, so coefficient (u, v) of component k has
variance Σ_d ρ_k(d) A_uv(d) (ρ_k the kernel's autocorrelation, A_uv the basis function's own), and
component j of the opponent space gets Σ_k (T D M)²_jk of those, D the channels' σ at the pilot's
brightness, M the model's mixing. Rows are filtered in strips, so memory does not grow with the
image's height. Chosen on acceptance-set crops against the fit alone and the return alone
(benchmarks/explore/wiener_return.py), reported on held-out crops and the acceptance set
(benchmarks/results/camera/, benchmarks/results/quality_return/).
"""

from __future__ import annotations

import numpy as np
from scipy import fft, ndimage, signal

from dipcli.physics.noise_models import CameraNoise, GaussianNoise

PATCH = 8  # the DCT's side, BM3D's for its Wiener stage
# The side (px) of the box over which the residual's energy is read for :func:`give_back`: smaller
# boxes read the noise's own spread as detail (results/camera/residual_return.md).
DETAIL_WINDOW = 21
STEP = 1  # patches at every STEP-th pixel
STRIP = 64  # rows of patches filtered at once: bounds the memory to ~STRIP × width × PATCH² numbers

_opponent = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], dtype=np.float64)
OPPONENT = _opponent / np.linalg.norm(_opponent, axis=1, keepdims=True)  # orthonormal: its inverse is .T


def dct_variances(autocorrelation: np.ndarray, n: int = PATCH) -> np.ndarray:
    """``(n, n)``: the variance of each orthonormal n×n DCT coefficient of unit-variance noise with
    ``autocorrelation`` (odd side, lag 0 at the centre): Σ_d ρ(d) A_uv(d)."""
    lag = autocorrelation.shape[0] // 2
    basis = _dct_matrix(n).T.reshape(n * n, n, n)  # row k: the k-th coefficient's basis function
    out = np.empty(n * n)
    for i, b in enumerate(basis):
        own = signal.correlate(b, b, mode="full")  # lags ±(n − 1)
        reach = min(lag, n - 1)
        window = own[n - 1 - reach:n + reach, n - 1 - reach:n + reach]
        rho = autocorrelation[lag - reach:lag + reach + 1, lag - reach:lag + reach + 1]
        out[i] = float((window * rho).sum())
    return out.reshape(n, n)


def _noise_terms(noise: GaussianNoise | CameraNoise, pilot: np.ndarray,
                 transform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per colour component k of the noise, the coefficients' unit variances ``(K, n, n)``, and per
    pixel and transformed channel j the weight of each ``(H, W, J, K)``: coefficient variance
    Σ_k weight_jk · unit_k."""
    h, w = pilot.shape[:2]
    if isinstance(noise, GaussianNoise):
        return np.ones((1, PATCH, PATCH)), np.full((h, w, transform.shape[0], 1), noise.sigma**2, np.float32)
    kernels = noise.correlation.kernels
    # exact, so never negative but for rounding; a coefficient without noise would divide by zero
    unit = np.maximum(np.stack([dct_variances(signal.correlate(k, k, mode="full")) for k in kernels]), 1e-6)
    brightness = ndimage.uniform_filter(pilot.astype(np.float64), size=(PATCH, PATCH, 1), mode="reflect")
    sigma = np.sqrt(np.broadcast_to(noise.curve.variance(brightness), pilot.shape))
    weights = np.einsum("jc,hwc,ck->hwjk", transform, sigma, noise.correlation.mixing) ** 2
    return unit, weights.astype(np.float32)


def give_back(observed: np.ndarray, restored: np.ndarray, variance: np.ndarray,
              window: int = DETAIL_WINDOW) -> np.ndarray:
    """The restored image plus the share of its residual that is not noise: the pilot's first step.

    Where the fit stops short of the image (faint noise, fine texture) its residual
    r = y − x̂ holds detail d as well as the noise n. Per pixel, with m the mean of r² over a
    ``window``² box and v the noise model's variance, the Wiener gain β = max(0, 1 − v/m) is
    d²/(d² + v) for d and n independent (E r² = d² + v), the β that makes x̂ + β·r closest to the
    clean image; where the fit explained the image down to the noise, m ≈ v and β ≈ 0. A pilot
    without the detail would have the Wiener stage take it out of the noisy image too.
    """
    r = observed - restored
    size = (window, window) + (1,) * (r.ndim - 2)
    energy = ndimage.uniform_filter(r * r, size=size, mode="reflect")
    gain = np.clip(1.0 - variance / np.maximum(energy, 1e-12), 0.0, 1.0)
    return np.clip(restored + gain * r, 0.0, 1.0).astype(np.float32)


def _dct_matrix(n: int = PATCH) -> np.ndarray:
    """``(n², n²)``: a flattened n×n patch times this is its orthonormal 2-D DCT (times its
    transpose, the inverse): one matrix product for a whole strip of patches."""
    d = fft.dct(np.eye(n), norm="ortho", axis=0)
    return np.kron(d, d).T


def _filter(noisy: np.ndarray, pilot: np.ndarray, unit: np.ndarray, weights: np.ndarray,
            step: int) -> np.ndarray:
    """One transformed channel ``(H, W)``, ``weights`` ``(H, W, K)``: the coefficients of the
    patch at every ``step``-th pixel shrunk by the pilot's Wiener gain, the patches put back
    weighted, a strip of rows at a time."""
    n, pad = PATCH, PATCH // 2
    h, w = noisy.shape
    # pad so that the patches, every step px from the corner, end exactly at the far edges
    padding = ((pad, pad + (n - h - 2 * pad) % step), (pad, pad + (n - w - 2 * pad) % step))
    y, p = (np.pad(a, padding, mode="reflect").astype(np.float32) for a in (noisy, pilot))
    # the noise variance of a patch: the weights at its centre (smoothed over it by _noise_terms)
    s_at = np.pad(weights, (*padding, (0, 0)), mode="reflect")[pad:, pad:].astype(np.float32)
    rows, cols = (y.shape[0] - n) // step + 1, (y.shape[1] - n) // step + 1
    dct, unit = _dct_matrix(n).astype(np.float32), unit.reshape(len(unit), n * n).astype(np.float32)
    acc, norm = np.zeros(y.shape, np.float32), np.zeros(y.shape, np.float32)
    for first in range(0, rows, STRIP):
        count = min(STRIP, rows - first)
        top, span = first * step, (count - 1) * step + 1
        band = slice(top, top + span + n - 1)
        Y, P = (np.lib.stride_tricks.sliding_window_view(a[band], (n, n))[::step, ::step]
                .reshape(-1, n * n) @ dct for a in (y, p))
        s = s_at[top:top + span:step, :(cols - 1) * step + 1:step].reshape(-1, unit.shape[0]) @ unit
        gain = P**2 / (P**2 + s)
        estimate, spread = gain * Y, gain**2 * s
        estimate[:, 0], spread[:, 0] = P[:, 0], 0.0  # the patch's mean: the pilot's (module doc)
        out = (estimate @ dct.T).reshape(count, cols, n, n)
        weight = (1.0 / np.maximum(spread.sum(axis=1), 1e-20)).reshape(count, cols)
        for i in range(n):
            for j in range(n):
                where = (slice(top + i, top + i + span, step), slice(j, j + (cols - 1) * step + 1, step))
                acc[where] += weight * out[:, :, i, j]
                norm[where] += weight
    full = acc / np.maximum(norm, 1e-20)
    return full[pad:pad + h, pad:pad + w]


def wiener_stage(observed: np.ndarray, fit: np.ndarray, noise: GaussianNoise | CameraNoise,
                 step: int = STEP) -> np.ndarray:
    """The noisy ``observed`` ``(H, W, C)`` filtered for ``noise`` with the ``fit`` (same shape), its
    missed detail given back (:func:`give_back`), as the Wiener filter's estimate of the clean
    image, from the patch at every ``step``-th pixel; float32 in [0, 1]."""
    pilot = give_back(observed, fit, noise.variance(fit))
    channels = observed.shape[2]
    transform = OPPONENT if channels == 3 else np.eye(channels)
    unit, weights = _noise_terms(noise, pilot, transform)
    y = observed.astype(np.float64) @ transform.T
    p = pilot.astype(np.float64) @ transform.T
    out = np.stack([_filter(y[..., j], p[..., j], unit, weights[:, :, j], step)
                    for j in range(channels)], axis=2)
    return np.clip(out @ transform, 0.0, 1.0).astype(np.float32)
