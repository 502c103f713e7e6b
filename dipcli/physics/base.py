"""The contract between a forward model and the code that fits it.

A problem is what was done to the image: its forward model (``forward``: what the observation
of an image ``x`` would be, without noise) and its noise model (``noise``). It states what the
loop, the job and the stop rules may ask of it, with defaults that mean "none":

* ``noise``: the noise model (:class:`GaussianNoise`, or :class:`CameraNoise` for a photo's),
  when the problem has one. Stop rules and the recorrupted loss ask for it instead of a task's
  name: its ``sigma`` (one level, for the rules that take one) and ``sample`` (a draw of it).
* ``known``: the pixels the observation gives exactly (an inpainting's mask); the data loss then
  counts only those (:mod:`dipcli.optim.losses`).
* ``out_size``: the size the net must generate (larger than the observation for
  super-resolution).
* ``tileable`` and ``window``: a problem that acts pixel by pixel can be cut to a window of the
  image, which lets a tiled job fit each tile as a problem of its own.
* ``free_pixels``: the pixels no observation pins down (an inpainting hole), which a rule that
  watches the output watches.
* ``composite``: what to write, given the net's output (inpainting keeps the known pixels).
* ``scored``, ``luma``, ``border``: what a clean reference scores (:func:`dipcli.metrics.psnr`):
  inpainting the composite it writes, super-resolution the Y channel inside a border, as its
  literature does.

Nothing about networks, losses or progress bars here (deepinv calls this "physics").
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from dipcli.physics.noise_models import GaussianNoise


class Problem:
    """The contract (see the module's docstring). Subclasses implement :meth:`forward` and
    :meth:`observe`, and override the capabilities they have; the defaults describe a problem with
    no noise model and no mask, that cannot be tiled, generates the observation's size, pins down
    every pixel, writes the net's output as it is and is scored by plain PSNR."""

    name: ClassVar[str] = "problem"
    tileable: ClassVar[bool] = False
    luma: ClassVar[bool] = False  # scored on the Y channel (BT.601) rather than all channels

    @property
    def noise(self) -> GaussianNoise | None:
        return None

    @property
    def border(self) -> int:
        """Pixels left out at each side when scored."""
        return 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """What the observation of ``x`` would be, without noise."""
        raise NotImplementedError

    def known(self, like: torch.Tensor) -> torch.Tensor | None:
        """A ``(1, 1, H, W)`` 0/1 tensor of the pixels observed exactly (None: every pixel)."""
        return None

    def observe(self, clean: np.ndarray, seed: int = 0) -> np.ndarray:
        raise NotImplementedError

    def out_size(self, observed_size: tuple[int, int]) -> tuple[int, int]:
        """The size the net must generate for an observation of ``observed_size``."""
        return tuple(observed_size)

    def window(self, rows: slice, cols: slice) -> Problem:
        """The problem on a window of the image (a tile); only for ``tileable`` problems."""
        raise ValueError(f"--tile works for problems that act pixel by pixel (denoising, inpainting), "
                         f"not {self.name}")

    def free_pixels(self, like: torch.Tensor) -> torch.Tensor | None:
        """A ``(1, 1, H, W)`` 0/1 tensor of the pixels no observation pins down; None: none."""
        return None

    def composite(self, output: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """The image to write, given the net's output and the observation."""
        return output

    def known_mask(self) -> np.ndarray | None:
        """``(H, W)`` bool, True where the observation gives a pixel exactly; None: no such split."""
        return None

    def scored(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """What is scored of a candidate ``x`` against a clean ``ref``: the candidate itself."""
        return x
