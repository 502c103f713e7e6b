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

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from dipcli.physics.camera import Correlation, NoiseCurve


@dataclass(frozen=True)
class GaussianNoise:
    """Additive white Gaussian noise of standard deviation ``sigma`` (0–1 scale), clipped to [0, 1].

    ``estimated``: σ was read off the image rather than given, so it may be off (and real noise
    is rarely white): stop rules then keep a check that needs no noise model beside it.
    """

    sigma: float
    estimated: bool = False
    name: ClassVar[str] = "gaussian"
    white: ClassVar[bool] = True  # every pixel's noise independent, of one σ

    def sample(self, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw of the noise for an observation shaped like ``like``: σ·N(0, 1) per pixel."""
        return self.sigma * torch.randn(like.shape, device=like.device, generator=generator)

    def sampler(self, like: torch.Tensor,
                generator: torch.Generator | None = None) -> Callable[[], torch.Tensor]:
        """:meth:`sample` for ``like`` as a function of nothing (see :meth:`CameraNoise.sampler`)."""
        return lambda: self.sample(like, generator)

    def readout(self) -> dict:
        """What the record says of the noise (0–255 scale): this model, its level, no correlation."""
        level = round(self.sigma * 255, 2)
        how = "estimated, assumed white" if self.estimated else "given"
        return {"noise_model": self.name, "noise_sigma_range": [level, level], "noise_correlation_px": None,
                "noise": f"noise σ {level:.3g}, white Gaussian ({how})"}


@dataclass(frozen=True, eq=False)
class CameraNoise:
    """A photo's noise: a level that depends on the brightness, spatially and colour correlated.

    Read from the image by :func:`dipcli.physics.camera.read_camera_noise`: ``curve`` gives the
    variance at each brightness per channel (σ²(x) = a·x + b), ``correlation`` the kernel per
    decorrelated colour component and their mixing into channels (white noise through each kernel,
    mixed, has the noise's correlation with unit variance). ``sigma`` is one level for what takes
    one (a stop rule, a preset's budget): the RMS of σ over the image it was read from. Always
    ``estimated``.
    """

    curve: NoiseCurve
    correlation: Correlation
    sigma: float
    estimated: bool = True
    name: ClassVar[str] = "camera"
    white: ClassVar[bool] = False

    def sample(self, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw of the noise for the observation ``like`` ``(N, C, H, W)``: white noise per colour
        component convolved with its kernel (from a margin, so that the statistics hold up to the
        border), mixed into channels, scaled per pixel by σ at the observation's brightness (an
        unbiased guess of σ² at the clean brightness, the variance being affine in it)."""
        return self.sampler(like, generator)()

    def sampler(self, like: torch.Tensor,
                generator: torch.Generator | None = None) -> Callable[[], torch.Tensor]:
        """:meth:`sample` for ``like`` as a function of nothing, what depends on ``like`` alone (the
        kernels on its device, σ at each of its pixels) worked out once: a fit draws at every step."""
        kernels = torch.as_tensor(self.correlation.kernels, dtype=torch.float32, device=like.device)[:, None]
        mixing = torch.as_tensor(self.correlation.mixing, dtype=torch.float32, device=like.device)
        a, b = (torch.as_tensor(v, dtype=torch.float32, device=like.device)[None, :, None, None]
                for v in (self.curve.a, self.curve.b))
        scale = (a * like.detach().float() + b).clamp_min(0).sqrt().contiguous()  # the layout of the draws
        k, side = kernels.shape[0], kernels.shape[-1]
        n, _, h, w = like.shape

        def draw() -> torch.Tensor:
            white = torch.randn((n, k, h + side - 1, w + side - 1), device=like.device, generator=generator)
            unit = torch.einsum("ck,nkhw->nchw", mixing, F.conv2d(white, kernels, groups=k))
            return (unit * scale).contiguous(memory_format=torch.channels_last)

        return draw

    def readout(self) -> dict:
        """What the record says of the noise (0–255 scale): σ at the darkest and brightest level
        measured, the correlation width, the same in words, and the curve between (for a chart)."""
        dark, bright = (round(v * 255, 2) for v in self.curve.sigma_range())
        width = round(self.correlation.width, 2) if self.correlation.measured else None
        levels = np.linspace(*self.curve.span(), 9)
        return {"noise_model": self.name, "noise_sigma_range": [dark, bright], "noise_correlation_px": width,
                "noise": self.curve.summary(self.correlation),
                "noise_curve": {"brightness": levels.round(3).tolist(),  # σ per channel at each (0–255)
                                "sigma": (self.curve.sigma(levels[:, None]).T * 255).round(2).tolist()}}


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
