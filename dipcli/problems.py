"""Problems: what was done to the image (the forward operator) and the data-fidelity loss.

Nothing here knows about networks or progress bars. The fitting loop asks a Problem for the loss
between the generator's output and the observation, and the experiment modes ask it to make an
observation from a clean image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Denoise:
    """Additive white Gaussian noise of standard deviation ``sigma`` (on the 0–1 scale)."""

    sigma: float | None = None
    name: str = "denoise"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def loss(self, output: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        return torch.mean((self.forward(output) - observed) ** 2)

    def observe(self, clean: np.ndarray, seed: int) -> np.ndarray:
        """Add seeded N(0, σ²) noise and clip to [0, 1], as the DIP literature does."""
        if self.sigma is None:
            raise ValueError("a noise level is needed to simulate noise")
        rng = np.random.default_rng(seed)
        noisy = clean + rng.normal(0.0, self.sigma, size=clean.shape)
        return np.clip(noisy, 0.0, 1.0).astype(np.float32)
