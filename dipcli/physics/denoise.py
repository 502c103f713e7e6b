"""Denoising: the observation is the image plus noise, clipped to [0, 1]: white Gaussian noise of σ,
or a photo's noise (:class:`~dipcli.physics.noise_models.CameraNoise`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from dipcli.physics.base import Problem
from dipcli.physics.noise_models import CameraNoise, GaussianNoise
from dipcli.physics.wiener import wiener_stage


@dataclass(frozen=True)
class Denoise(Problem):
    """Additive white Gaussian noise of standard deviation ``sigma`` (on the 0–1 scale), or with
    ``camera`` the photo's noise that model describes (``sigma`` is then its RMS level).
    ``wiener``: the image written is the noisy image filtered again with the fit as the pilot
    (:meth:`composite`).

    ``sigma_estimated``: σ was estimated from the image (see :class:`GaussianNoise`). A tile's
    problem (:meth:`window`) keeps the model read from the whole image.
    """

    sigma: float | None = None
    sigma_estimated: bool = False
    camera: CameraNoise | None = None
    wiener: bool = False  # write the Wiener stage with the fit as its pilot, not the fit alone
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
        """The image to write: with ``wiener``, the observation filtered again with the fit as
        the pilot of a Wiener filter for this problem's noise (:func:`wiener_stage`); else the fit."""
        noise = self.noise
        if not self.wiener or noise is None:
            return output
        return wiener_stage(observed, output, noise)

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
