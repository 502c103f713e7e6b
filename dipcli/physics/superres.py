"""Super-resolution: the observation is the image blurred by a fixed kernel and decimated F×."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dipcli.physics.base import Problem
from dipcli.tensors import to_nchw

SR_FACTORS = (2, 3, 4, 8)
SR_KERNELS = ("lanczos2", "bicubic", "box", "gauss")


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel (a = −0.5: MATLAB ``imresize``, PIL)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def downsampling_kernel(factor: int, kernel: str = "lanczos2") -> np.ndarray:
    """The 1-D anti-aliasing kernel for ×``factor`` decimation (float64, sums to 1).

    Taps sit at the high-resolution pixel centres around the centre of each ``factor``-wide
    block (half-pixel offsets for even factors, whole ones for odd), as in the DIP paper's
    Lanczos-2 downsampler (kernel width 4F+1, support 2 low-resolution pixels). The 2-D kernel
    is the outer product of this one with itself.
    """
    if factor not in SR_FACTORS:
        raise ValueError(f"super-resolution factor must be one of {', '.join(map(str, SR_FACTORS))} "
                         f"(got {factor})")
    if kernel not in SR_KERNELS:
        raise ValueError(f"unknown downsampling kernel {kernel!r}; choose one of: {', '.join(SR_KERNELS)}")
    taps = 4 * factor + (factor % 2)  # even factor: 4F half-pixel taps; odd: 4F+1 whole-pixel taps
    x = (np.arange(taps) - (taps - 1) / 2) / factor  # tap positions in low-resolution pixels
    if kernel == "lanczos2":
        k = np.sinc(x) * np.sinc(x / 2) * (np.abs(x) < 2)
    elif kernel == "bicubic":
        k = _cubic(x)  # MATLAB's antialiased imresize: the cubic stretched by the factor
    elif kernel == "box":
        k = (np.abs(x) < 0.5).astype(np.float64)  # the mean of each F×F block
    else:
        sigma = (factor - 1) / 2 / factor  # skimage's anti-aliasing σ = (F−1)/2 HR pixels
        k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


class Downsampler(nn.Module):
    """Blur with a fixed kernel, then keep every ``factor``-th pixel: the SR forward operator.

    The kernel is a buffer, not a parameter: it moves with ``.to(device)`` but is never trained.
    Reflect padding keeps the borders unbiased; an ``(H, W)`` input gives ``(H // F, W // F)``.
    """

    def __init__(self, factor: int, kernel: str = "lanczos2") -> None:
        super().__init__()
        k = torch.from_numpy(downsampling_kernel(factor, kernel)).float()
        self.register_buffer("weight", torch.outer(k, k)[None, None])
        self.factor = factor
        self.pad = (k.numel() - factor) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.device != x.device:
            self.to(x.device)
        c, (h, w) = x.shape[1], x.shape[-2:]
        p = self.pad
        x = F.pad(x, (p, p, p, p), mode="reflect" if p < min(h, w) else "replicate")
        weight = self.weight.to(x.dtype).expand(c, 1, -1, -1)
        return F.conv2d(x, weight, stride=self.factor, groups=c)


@dataclass(eq=False)
class SuperRes(Problem):
    """×``factor`` super-resolution: the output is F× the observation in each direction.

    The net's output, downsampled by a fixed anti-aliasing kernel (Lanczos-2 by default, as in
    the DIP paper), must match the low-resolution observation.
    """

    factor: int
    kernel: str = "lanczos2"
    name: ClassVar[str] = "superres"
    luma: ClassVar[bool] = True
    downsampler: Downsampler = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.downsampler = Downsampler(self.factor, self.kernel)  # validates factor and kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsampler(x)

    def out_size(self, observed_size: tuple[int, int]) -> tuple[int, int]:
        """The size the net must generate for an observation of ``observed_size``."""
        return observed_size[0] * self.factor, observed_size[1] * self.factor

    def crop_hr(self, clean: np.ndarray) -> np.ndarray:
        """Crop the bottom/right so both sides divide by the factor (what :meth:`observe` sees)."""
        h, w = clean.shape[:2]
        return clean[: h - h % self.factor, : w - w % self.factor]

    def observe(self, clean: np.ndarray, seed: int = 0) -> np.ndarray:
        """Downsample a clean high-resolution image, clipped to [0, 1] like a saved image.

        Sides that do not divide by the factor are cropped first (:meth:`crop_hr`): score the
        result against ``crop_hr(clean)``. ``seed`` is unused (no noise is added).
        """
        hr = self.crop_hr(np.asarray(clean, dtype=np.float32))
        t = to_nchw(hr)
        with torch.no_grad():
            low = self.downsampler(t.to(self.downsampler.weight.device)).cpu()
        return np.clip(low[0].permute(1, 2, 0).numpy(), 0.0, 1.0).astype(np.float32)

    @property
    def border(self) -> int:
        """The SR literature scores the Y channel (:attr:`luma`) inside a ``factor``-pixel border."""
        return self.factor


def bicubic_upscale(lr: np.ndarray, factor: int) -> np.ndarray:
    """The bicubic baseline: ``(h, w, C)`` → ``(h·F, w·F, C)``, clipped to [0, 1].

    Keys' cubic with a = −0.5 (MATLAB ``imresize``, PIL — the DIP paper's bicubic baseline).
    In torch that kernel is the ``antialias=True`` path; when enlarging it adds no smoothing.
    """
    h, w = lr.shape[:2]
    t = to_nchw(lr)
    up = F.interpolate(t, size=(h * factor, w * factor), mode="bicubic", align_corners=False,
                       antialias=True)
    return np.clip(up[0].permute(1, 2, 0).numpy(), 0.0, 1.0).astype(np.float32)
