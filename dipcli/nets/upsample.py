"""Upsampling layers (all ×2): the fixed, unlearnt upsampler is what gives a DIP network its prior.

Names, as a spec's ``upsample`` field takes them:

* ``nearest``, ``bilinear``, ``bicubic`` — fixed interpolation (``torch.nn.Upsample``).
* ``transposed`` — a learnt ``ConvTranspose2d`` (kernel 4, stride 2), the control that loses the
  denoising effect in "The Devil is in the Upsampling" (Liu et al., ICCV 2023).
* ``lpf:<filter>`` — insert zeros, then a fixed separable low-pass filter with reflect padding:
  ``box`` (≡ nearest), ``tri`` (≡ bilinear away from the border) and Kaiser-windowed sincs with
  about 20, 60 and 100 dB of stop-band attenuation (``sinc20``, ``sinc60``, ``sinc100``).
  The taps are registered buffers, never parameters.

Every filter is even-length and symmetric about the half-sample point, so all upsamplers here put
the low-resolution samples on the same grid as ``align_corners=False`` interpolation, and each of
its two polyphase components sums to one: a constant image stays exactly constant.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import firwin, kaiserord
from torch import nn

INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
FILTERS = ("box", "tri", "sinc20", "sinc60", "sinc100")
UPSAMPLERS = (*INTERPOLATIONS, "transposed", *(f"lpf:{f}" for f in FILTERS))

# Transition band of the sinc designs, as a fraction of the upsampled signal's Nyquist frequency,
# centred on the ideal ×2 cut-off (0.5): pass band up to 0.375, stop band from 0.625. Narrower
# bands need many more taps (54 already for 100 dB), wider ones let more spectral images through.
TRANSITION = 0.25
CUTOFF = 0.5


def stopband_edge() -> float:
    """Where the sinc filters' stop band starts, as a fraction of the upsampled Nyquist frequency."""
    return CUTOFF + TRANSITION / 2


def _sampled_kernel(kernel, length: int) -> np.ndarray:
    """Sample a continuous interpolation kernel at the ×2 output offsets (in input pixels)."""
    t = (np.arange(length) - (length - 1) / 2) / 2
    return kernel(np.abs(t))


def lowpass_taps(name: str) -> np.ndarray:
    """The 1-D taps of the fixed filter ``name`` (see :data:`FILTERS`), summing to 2 (gain of ×2).

    ``box`` and ``tri`` sample the nearest and linear interpolation kernels; ``sincNN`` is a
    Kaiser-windowed sinc whose length and window come from ``scipy.signal.kaiserord`` for NN dB.
    """
    if name == "box":
        taps = _sampled_kernel(lambda t: (t < 0.5).astype(float), 2)
    elif name == "tri":
        taps = _sampled_kernel(lambda t: np.maximum(0.0, 1.0 - t), 4)
    elif name.startswith("sinc") and name[4:].isdigit() and f"lpf:{name}" in UPSAMPLERS:
        numtaps, beta = kaiserord(float(name[4:]), TRANSITION)
        numtaps += numtaps % 2  # even length: symmetric about the half-sample point
        taps = firwin(numtaps, CUTOFF, window=("kaiser", beta))
    else:
        raise ValueError(f"unknown filter {name!r}; choose one of: {', '.join(FILTERS)}")
    return 2.0 * taps / taps.sum()


def reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Map positions ``i`` onto ``0..n-1`` by reflection about the end samples, repeated as often
    as needed (``F.pad(mode="reflect")`` refuses pads as long as the axis, which the long sinc
    filters meet on a decoder's smallest layers)."""
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = i.remainder(period)
    return torch.where(i >= n, period - i, i)


def _layout(x: torch.Tensor) -> torch.memory_format:
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


class LowPassUpsample(nn.Module):
    """×2: insert zeros, then filter each axis with fixed taps (a buffer), reflect-padded.

    Computed in polyphase form — each output phase filters the input with every other tap — which
    gives the same numbers as filtering the zero-stuffed signal for less than half the work.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        taps = lowpass_taps(name)
        length = len(taps)
        # Even filters centre between samples: pad the zero-stuffed axis by length/2 before and
        # length/2 - 1 after, which puts the outputs on the align_corners=False grid (box then
        # equals nearest exactly). Phase s of the output takes taps k with k ≡ pad - s (mod 2),
        # applied to the input from offset (s + k0 - pad) / 2.
        pad = length // 2
        starts = [(pad - s) % 2 for s in (0, 1)]
        offsets = [(s + k0 - pad) // 2 for s, k0 in zip((0, 1), starts, strict=True)]
        self.first = min(offsets)
        width = length // 2 + max(offsets) - self.first
        phases = np.zeros((2, width))
        for s, (k0, off) in enumerate(zip(starts, offsets, strict=True)):
            phases[s, off - self.first: off - self.first + length // 2] = taps[k0::2]
        self.register_buffer("taps", torch.tensor(taps, dtype=torch.float32))
        self.register_buffer("phases", torch.tensor(phases, dtype=torch.float32))

    def _axis(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        n, c = x.shape[dim], x.shape[1]
        width = self.phases.shape[1]
        # Input positions the phases read; reflecting the zero-stuffed axis about its ends is
        # reflecting the input about its first sample and repeating its last one.
        pos = torch.arange(self.first, self.first + n + width - 1, device=x.device)
        x = x.index_select(dim, reflect(2 * pos, 2 * n) // 2)
        shape = (1, 1, width, 1) if dim == 2 else (1, 1, 1, width)
        # One depthwise convolution per phase: PyTorch's CPU kernel for a channel multiplier of
        # 2 (both phases in one call) is several times slower.
        phases = [F.conv2d(x, k.to(x.dtype).view(shape).expand(c, -1, -1, -1), groups=c)
                  for k in self.phases]
        size = list(phases[0].shape)
        size[dim] *= 2
        y = torch.empty(size, dtype=x.dtype, device=x.device, memory_format=_layout(x))
        index = [slice(None)] * 4
        for s, phase in enumerate(phases):
            index[dim] = slice(s, None, 2)
            y[tuple(index)] = phase
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._axis(self._axis(x, 2), 3)

    def extra_repr(self) -> str:
        return f"{self.name}, taps={self.taps.numel()}"


def make_upsampler(name: str, channels: int) -> nn.Module:
    """A ×2 upsampler by name for ``channels`` feature maps (only ``transposed`` has weights)."""
    if name not in UPSAMPLERS:
        raise ValueError(f"unknown upsampler {name!r}; choose one of: {', '.join(UPSAMPLERS)}")
    if name == "nearest":
        return nn.Upsample(scale_factor=2, mode="nearest")
    if name in INTERPOLATIONS:
        return nn.Upsample(scale_factor=2, mode=name, align_corners=False)
    if name == "transposed":
        return nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1)
    return LowPassUpsample(name.removeprefix("lpf:"))
