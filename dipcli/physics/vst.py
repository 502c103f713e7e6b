"""The generalised Anscombe transform: Poisson–Gaussian noise of a :class:`~dipcli.physics.camera.NoiseCurve`
made unit-variance Gaussian, and back.

:func:`stabilise` is f(z) = (2/a)·√(max(a·z + 3a²/8 + b, 0)) per channel for σ²(z) = a·z + b
(Murtagh, Starck & Bijaoui 1995); :func:`unstabilise` the closed-form approximation of its exact
unbiased inverse (Mäkitalo & Foi, "Optimal inversion of the generalized Anscombe transformation
for Poisson-Gaussian noise", IEEE TIP 2013). Numpy in and out, on the 0–1 scale. Kept apart from
:mod:`dipcli.physics.camera` (which reads the curve) as a tool a fit may use on the curve it read.
"""

from __future__ import annotations

import numpy as np

from dipcli.physics.camera import NoiseCurve
from dipcli.physics.noise_blocks import as_pixels


def _gat_params(curve: NoiseCurve) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(curve.a, dtype=np.float64), np.asarray(curve.b, dtype=np.float64)


AFFINE = 1e-5  # a Poisson scale under this is Gaussian noise: the transform is then affine


def stabilise(pixels: np.ndarray, curve: NoiseCurve) -> np.ndarray:
    """The generalised Anscombe transform per channel: Poisson–Gaussian noise → unit variance.

    f(z) = (2/a)·√(max(a·z + 3a²/8 + b, 0)) for σ²(z) = a·z + b (Murtagh, Starck & Bijaoui 1995;
    Mäkitalo & Foi 2013); z/√b when a is ~0 (pure Gaussian). Same shape as ``pixels``.
    """
    z = as_pixels(pixels)
    a, b = _gat_params(curve)
    poisson = a > AFFINE
    safe_a = np.where(poisson, a, 1.0)
    gat = 2 / safe_a * np.sqrt(np.maximum(safe_a * z + 3 * safe_a**2 / 8 + b, 0))
    out = np.where(poisson, gat, z / np.sqrt(np.maximum(b, 1e-12)))
    return out.reshape(np.shape(pixels))


def unstabilise(values: np.ndarray, curve: NoiseCurve) -> np.ndarray:
    """The inverse of :func:`stabilise` for a denoised image: the closed-form approximation of the
    exact unbiased inverse (Mäkitalo & Foi, IEEE TIP 2013, eq. 8), which returns E[z] rather than
    f⁻¹(E[f(z)]) (the algebraic inverse is biased low in the dark)."""
    d = as_pixels(values)
    a, b = _gat_params(curve)
    poisson = a > AFFINE
    safe_a = np.where(poisson, a, 1.0)
    s2 = b / safe_a**2  # the Gaussian variance in units of the Poisson scale
    dd = np.maximum(d, 1e-3)
    r = np.sqrt(1.5)
    inv = 0.25 * dd**2 + 0.25 * r / dd - 11 / 8 / dd**2 + 5 / 8 * r / dd**3 - 1 / 8 - s2
    out = np.where(poisson, safe_a * np.maximum(inv, 0), d * np.sqrt(np.maximum(b, 1e-12)))
    return out.reshape(np.shape(values))
