"""Inpainting: the observation gives some pixels exactly and none of the others (the holes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from dipcli.physics.base import Problem


def bernoulli_mask(shape: tuple[int, int], drop: float, seed: int) -> np.ndarray:
    """A ``(H, W)`` bool mask (True = known) with each pixel missing with probability ``drop``.

    The DIP paper's "restoration" experiment (50 % of pixels dropped at random). Seeded, so a
    benchmark makes the same holes every run.
    """
    if not 0.0 <= drop < 1.0:
        raise ValueError(f"drop must be in [0, 1) (got {drop})")
    rng = np.random.default_rng(seed)
    return rng.random(tuple(shape)[:2]) >= drop


def _pad_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The mask at ``size``; rows/columns beyond it (the job layer's padding) count as missing."""
    h, w = mask.shape
    if (h, w) == tuple(size):
        return mask
    if h > size[0] or w > size[1]:
        raise ValueError(f"the mask is {w}×{h} but the image is {size[1]}×{size[0]}; "
                         "give a mask of the same size as the image")
    return np.pad(mask, ((0, size[0] - h), (0, size[1] - w)), constant_values=False)


@dataclass(eq=False)
class Inpaint(Problem):
    """Missing pixels: the net must match the observation on the known ones only.

    ``mask`` is ``(H, W)`` bool, True = known. The device copy of the mask is made on first use,
    on the output's device, and kept. Observations padded at the bottom/right (to the net's
    multiple) are fine: the padding counts as missing, so it constrains nothing.
    """

    mask: np.ndarray
    name: ClassVar[str] = "inpaint"
    tileable: ClassVar[bool] = True
    _device_masks: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        mask = np.asarray(self.mask)
        if mask.ndim != 2:
            raise ValueError(f"the mask must be (H, W) (got shape {mask.shape})")
        self.mask = mask.astype(bool, copy=False)
        if not self.mask.any():
            raise ValueError("the mask has no known pixel; nothing to fit")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The image itself where it is known; :meth:`known` says where that is."""
        return x

    def known(self, like: torch.Tensor) -> torch.Tensor:
        """The mask as a ``(1, 1, H, W)`` 0/1 tensor on ``like``'s device, dtype and size."""
        size = tuple(like.shape[-2:])
        key = (like.device, like.dtype, size)
        if key not in self._device_masks:
            m = torch.from_numpy(_pad_mask(self.mask, size))[None, None]
            self._device_masks[key] = m.to(device=like.device, dtype=like.dtype)
        return self._device_masks[key]

    def known_mask(self) -> np.ndarray:
        return self.mask

    def free_pixels(self, like: torch.Tensor) -> torch.Tensor | None:
        """The holes as a ``(1, 1, H, W)`` 0/1 tensor (None if there are none inside the image).

        The net's output there is constrained by nothing but its own structure, so that is
        where ES-WMV watches it settle and wander: over the whole image the known pixels, which
        settle early and stay, drown the signal (on the vase mask the rule never fired).
        """
        holes = 1 - self.known(like)
        return holes if (~self.mask).any() else None

    def window(self, rows: slice, cols: slice) -> Inpaint:
        """The problem on a window of the image (a tile): that window's part of the mask."""
        part = self.mask[rows, cols]
        if not part.any():
            raise ValueError(f"the tile at row {rows.start}, column {cols.start} lies wholly in a hole, "
                             "with no known pixel to fit; use a larger --tile")
        return Inpaint(part)

    def observe(self, clean: np.ndarray, seed: int = 0) -> np.ndarray:
        """Set the missing pixels to 0 (the loss ignores them; 0 makes the holes visible).

        ``seed`` is unused (the mask is fixed); it is accepted to match the other problems.
        """
        m = _pad_mask(self.mask, clean.shape[:2])
        return np.where(m[:, :, None], clean, 0.0).astype(np.float32)

    def composite(self, output: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """Known pixels exactly as observed, holes from the network: what to write out."""
        if output.shape != observed.shape:
            raise ValueError(f"output {output.shape} and observation {observed.shape} differ in shape")
        m = _pad_mask(self.mask, output.shape[:2])
        return np.where(m[:, :, None], observed, output).astype(np.float32)

    def scored(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """The composite, i.e. the image that will be written: the known pixels are taken from
        ``ref`` (for inpainting they are the observed pixels, kept exactly), so only the holes
        (and the net's fill of them) count against the score."""
        m = self.known(x).bool()
        return torch.where(m, ref, x.clamp(0, 1))
