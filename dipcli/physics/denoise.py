"""Denoising: the observation is the image plus noise, clipped to [0, 1]: white Gaussian noise of σ,
or a photo's noise (:class:`~dipcli.physics.noise_models.CameraNoise`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from scipy import ndimage

from dipcli.physics.base import Problem
from dipcli.physics.noise_models import CameraNoise, GaussianNoise

# The side (px) of the box over which the residual's energy is read for :func:`give_back`: smaller
# boxes read the noise's own spread as detail (results/camera/residual_return.md).
DETAIL_WINDOW = 21


def give_back(observed: np.ndarray, restored: np.ndarray, variance: np.ndarray,
              window: int = DETAIL_WINDOW) -> np.ndarray:
    """The restored image plus the share of its residual that is not noise.

    Where the fit stops short of the image (faint noise, fine texture) its residual
    r = y − x̂ holds detail d as well as the noise n. Per pixel, with m the mean of r² over a
    ``window``² box and v the noise model's variance, the Wiener gain β = max(0, 1 − v/m) is
    d²/(d² + v) for d and n independent (E r² = d² + v), the β that makes x̂ + β·r closest to the
    clean image; where the fit explained the image down to the noise, m ≈ v and β ≈ 0. The same
    gain as BM3D's second, empirical Wiener stage (Dabov et al., IEEE TIP 2007), here applied
    to the method noise in the pixel domain.
    """
    r = observed - restored
    size = (window, window) + (1,) * (r.ndim - 2)
    energy = ndimage.uniform_filter(r * r, size=size, mode="reflect")
    gain = np.clip(1.0 - variance / np.maximum(energy, 1e-12), 0.0, 1.0)
    return np.clip(restored + gain * r, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Denoise(Problem):
    """Additive white Gaussian noise of standard deviation ``sigma`` (on the 0–1 scale), or with
    ``camera`` the photo's noise that model describes (``sigma`` is then its RMS level).
    ``detail_return``: the image written gives back what the fit left of the image
    (:meth:`composite`).

    ``sigma_estimated``: σ was estimated from the image (see :class:`GaussianNoise`). A tile's
    problem (:meth:`window`) keeps the model read from the whole image.
    """

    sigma: float | None = None
    sigma_estimated: bool = False
    camera: CameraNoise | None = None
    detail_return: bool = False  # write :func:`give_back` of the fit, not the fit alone
    name: ClassVar[str] = "denoise"
    tileable: ClassVar[bool] = True

    @property
    def noise(self) -> GaussianNoise | CameraNoise | None:
        if self.camera is not None:
            return self.camera
        return None if self.sigma is None else GaussianNoise(self.sigma, self.sigma_estimated)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def composite(self, output: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """The image to write: with ``detail_return``, the fit plus what of its residual is not
        noise by this problem's noise model (:func:`give_back`); else the fit."""
        noise = self.noise
        if not self.detail_return or noise is None:
            return output
        return give_back(observed, output, noise.variance(output))

    def window(self, rows: slice, cols: slice) -> Denoise:
        """The problem on a window of the image (a tile): the same, since noise is per pixel."""
        return self

    def observe(self, clean: np.ndarray, seed: int) -> np.ndarray:
        """Add seeded N(0, σ²) noise and clip to [0, 1], as the DIP literature does."""
        if self.sigma is None or self.camera is not None:
            raise ValueError("a noise level is needed to simulate noise")
        rng = np.random.default_rng(seed)
        noisy = clean + rng.normal(0.0, self.sigma, size=clean.shape)
        return np.clip(noisy, 0.0, 1.0).astype(np.float32)
