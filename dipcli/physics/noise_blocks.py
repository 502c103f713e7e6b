"""Residuals of small image blocks, their autocorrelation, and the exact bias of removing a plane.

The machinery under :mod:`dipcli.physics.camera`. A block's residual after a least-squares plane is
noise plus whatever texture the plane did not take; removing the plane also takes a share of the
noise, more of it when the noise is correlated, and bends the autocorrelation read from the
residual. Both effects are linear in the noise's autocovariance, so they are undone exactly
(:func:`plane_lag_operator`) rather than by a rule of thumb. Pure numpy/scipy.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import stats
from skimage.util import view_as_windows

LAG = 4  # autocorrelation read for lags up to ±LAG pixels
KERNEL = 7  # side of the kernel that reproduces it


def as_pixels(pixels: np.ndarray) -> np.ndarray:
    """Float64 ``(H, W, C)`` in [0, 1]; 8- and 16-bit integers are scaled by their range."""
    a = np.asarray(pixels)
    if a.dtype.kind in "ui":
        a = a / float(np.iinfo(a.dtype).max)
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ValueError(f"expected an (H, W), (H, W, 1) or (H, W, 3) image, got shape {a.shape}")
    return a


# ---- blocks and the exact effect of removing a plane ------------------------------------------


@lru_cache(maxsize=4)
def plane_basis(side: int) -> np.ndarray:
    """Orthonormal basis ``(side², 3)`` of the constant and the two ramps over a block."""
    y, x = np.mgrid[0:side, 0:side].reshape(2, -1).astype(np.float64)
    return np.linalg.qr(np.stack([np.ones_like(x), x, y], axis=1))[0]


def block_residuals(channel: np.ndarray, side: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Each block's mean and its residual after a least-squares plane: ``(N,)`` and ``(N, side, side)``."""
    win = view_as_windows(channel, (side, side), step).reshape(-1, side * side)
    q = plane_basis(side)
    resid = win - (win @ q) @ q.T
    return win.mean(axis=1), resid.reshape(-1, side, side)


def half_lags() -> np.ndarray:
    """The lags ``(dy, dx)`` up to ±LAG with one of each ±pair: ``(n, 2)``, (0, 0) first."""
    lags = [(dy, dx) for dy in range(0, LAG + 1) for dx in range(-LAG, LAG + 1) if dy > 0 or dx >= 0]
    return np.array(lags)


def lag_sums(resid: np.ndarray) -> np.ndarray:
    """Σ_p r(p)·r(p + d) within each block for each half lag: ``(N, n)`` for blocks ``(N, s, s)``."""
    side = resid.shape[-1]
    f = np.fft.rfft2(resid, s=(2 * side, 2 * side))
    auto = np.fft.irfft2(f * f.conj(), s=(2 * side, 2 * side))
    lags = half_lags()
    return auto[:, lags[:, 0] % (2 * side), lags[:, 1] % (2 * side)]


@lru_cache(maxsize=4)
def pair_lags(side: int) -> np.ndarray:
    """For each pair of pixels of a block, the index of its lag in :func:`half_lags` (a pair and
    its mirror share one), or len(half_lags()) when the lag is longer than LAG: ``(side², side²)``."""
    y, x = np.mgrid[0:side, 0:side].reshape(2, -1)
    dy, dx = y[None, :] - y[:, None], x[None, :] - x[:, None]
    flip = (dy < 0) | ((dy == 0) & (dx < 0))
    dy, dx = np.where(flip, -dy, dy), np.where(flip, -dx, dx)
    lags = half_lags()
    table = np.full((side, 2 * side + 1), len(lags))
    table[lags[:, 0], lags[:, 1] + side] = np.arange(len(lags))
    return table[dy, dx + side]


def stationary(rho_half: np.ndarray, side: int) -> np.ndarray:
    """The ``(side², side²)`` covariance of unit noise with autocorrelation ``rho_half`` (half lags)."""
    return np.append(rho_half, 0.0)[pair_lags(side)]


@lru_cache(maxsize=2)
def plane_lag_operator(side: int) -> np.ndarray:
    """M with E[lag sums of one plane-removed block] = M · c for noise of autocovariance c (half lags).

    Removing the plane (projector P) turns the block covariance Σ into (I − P) Σ (I − P), which is
    linear in Σ's values at each lag, so the bias of the read autocorrelation is undone by solving
    M c = observed lag sums instead of dividing by pixel counts.
    """
    n = len(half_lags())
    units = (pair_lags(side)[None] == np.arange(n)[:, None, None]).astype(np.float64)
    return np.stack([cov_lag_sums(a, side) for a in project_out(units, side)], axis=1)


def project_out(cov: np.ndarray, side: int) -> np.ndarray:
    """(I − P) Σ (I − P) for the plane projector P of a ``side`` block."""
    q = plane_basis(side)
    left = cov - q @ (q.T @ cov)
    return left - (left @ q) @ q.T  # (also for a stack of them: matmul broadcasts)


def cov_lag_sums(cov: np.ndarray, side: int) -> np.ndarray:
    """Σ_p cov[p, p + d] for each half lag d: what :func:`lag_sums` gives in expectation for one
    block of covariance ``cov``."""
    y, x = np.mgrid[0:side, 0:side].reshape(2, -1)
    dy, dx = y[None, :] - y[:, None], x[None, :] - x[:, None]
    lags = half_lags()
    key = (dy + side) * (4 * side) + (dx + 2 * side)
    sums = np.bincount(key.ravel(), weights=cov.ravel(), minlength=(2 * side + 1) * 4 * side)
    return sums[(lags[:, 0] + side) * (4 * side) + lags[:, 1] + 2 * side]


def block_stats(rho_half: np.ndarray, side: int) -> tuple[float, float]:
    """For unit noise of autocorrelation ``rho_half``: E[Σ r²] of a plane-removed block and the
    degrees of freedom of its scaled-χ² (Satterthwaite) approximation, tr(A)² / tr(A²)."""
    a = project_out(stationary(rho_half, side), side)
    trace = float(np.trace(a))
    return trace, trace**2 / float(np.sum(a * a))


def white_rho() -> np.ndarray:
    rho = np.zeros(len(half_lags()))
    rho[0] = 1.0
    return rho


def full_lags(rho_half: np.ndarray) -> np.ndarray:
    """The ``(2·LAG + 1)²`` autocorrelation from its half lags (it is symmetric: ρ(−d) = ρ(d))."""
    out = np.zeros((2 * LAG + 1, 2 * LAG + 1))
    lags = half_lags()
    out[lags[:, 0] + LAG, lags[:, 1] + LAG] = rho_half
    out[-lags[:, 0] + LAG, -lags[:, 1] + LAG] = rho_half
    return out


def kernel_from(rho_half: np.ndarray, pad: int = 32) -> np.ndarray:
    """A symmetric KERNEL² kernel whose autocorrelation is ``rho``: the zero-phase square root of the
    power spectrum (negative estimates clipped), cut to KERNEL² and normalised to Σk² = 1."""
    grid = np.zeros((pad, pad))
    full = full_lags(rho_half)
    idx = (np.arange(-LAG, LAG + 1) % pad)
    grid[np.ix_(idx, idx)] = full
    root = np.fft.fftshift(np.real(np.fft.ifft2(np.sqrt(np.maximum(np.real(np.fft.fft2(grid)), 0)))))
    r, mid = KERNEL // 2, pad // 2
    k = root[mid - r: mid + r + 1, mid - r: mid + r + 1]
    return k / np.sqrt(np.sum(k * k))


def autocorrelation(resid: np.ndarray) -> np.ndarray:
    """The half-lag autocorrelation of plane-removed blocks ``(N, s, s)``, the plane's bias undone.

    Each lag's sum is the median over blocks, not the mean: texture fainter than the noise passes
    the flatness test, and a few such blocks, perfectly correlated, would otherwise read as
    correlated noise. The median of a noise-only block's energy (lag 0, a scaled χ² of ``dof``
    degrees of freedom) is below its mean by chi2.median(dof)/dof; that is undone, for the dof of
    the correlation found.

    Then each lag is shrunk towards 0 by twice its standard error (soft thresholding): the width
    read from the autocorrelation sums all (2·LAG + 1)² lags, and estimation noise at the far
    ones, where noise is rarely correlated, would otherwise add up to a width white noise has not.
    """
    side = resid.shape[-1]
    sums = np.median(lag_sums(resid), axis=0)
    rho = white_rho()
    for _ in range(2):
        _, dof = block_stats(rho, side)
        fixed = sums.copy()
        fixed[0] *= dof / stats.chi2.median(dof)
        cov = np.linalg.lstsq(plane_lag_operator(side), fixed, rcond=None)[0]
        rho = cov / cov[0]
    # Standard error of one lag: 1/√(independent pixels) (the blocks overlap by half: a quarter of
    # their pixels are new), × 1.25 for a median instead of a mean.
    t = 2 * 1.25 / np.sqrt(max(len(resid), 1) * side * side / 4)
    rho[1:] = np.sign(rho[1:]) * np.maximum(np.abs(rho[1:]) - t, 0.0)
    return rho
