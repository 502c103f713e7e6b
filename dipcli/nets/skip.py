"""The DIP encoder–decoder with skip connections (Ulyanov et al., CVPR 2018)."""

from __future__ import annotations

import torch
from torch import nn

from dipcli.nets.upsample import make_upsampler


def check_divisible(h: int, w: int, multiple: int) -> None:
    """Refuse an output size the net's down/up path cannot produce (pad the image first)."""
    if h % multiple or w % multiple:
        raise ValueError(f"{w}×{h} is not a multiple of {multiple} on both sides; "
                         "pad the image first (dipcli.io.pad_to_multiple)")


PADDINGS = ("reflect", "zeros")


def conv(c_in: int, c_out: int, k: int, stride: int = 1, padding: str = "reflect") -> nn.Conv2d:
    """A convolution that keeps the size (``stride`` 1). Reflection padding keeps borders from
    being pulled towards zero; zero padding costs nothing (the convolution does it), where
    reflection is a copy of every activation in the forward pass and another in the backward:
    a quarter of an iteration of the compact net on a CPU."""
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, padding_mode=padding)


def block(c_in: int, c_out: int, k: int, stride: int = 1, padding: str = "reflect") -> nn.Sequential:
    return nn.Sequential(conv(c_in, c_out, k, stride, padding), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2))


class _Level(nn.Module):
    """One scale of the hourglass: down, the deeper levels, up; an optional skip beside."""

    def __init__(
        self, c_in: int, down: int, up: int, skip: int, deeper: nn.Module | None, deeper_out: int,
        upsample: str, padding: str = "reflect", up_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.skip = block(c_in, skip, 1) if skip else None
        self.down = nn.Sequential(block(c_in, down, 3, 2, padding), block(down, down, 3, 1, padding))
        self.deeper = deeper
        self.upsample = make_upsampler(upsample, deeper_out)
        merged = skip + deeper_out
        self.up = nn.Sequential(nn.BatchNorm2d(merged), block(merged, up, up_kernel, 1, padding),
                                block(up, up, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(x)
        if self.deeper is not None:
            y = self.deeper(y)
        y = self.upsample(y)
        if self.skip is not None:
            y = torch.cat([self.skip(x), y], dim=1)
        return self.up(y)


class SkipNet(nn.Module):
    """Hourglass generator: `scales` levels, each halving the size on the way down.

    Inputs must have sides divisible by 2**scales (the I/O layer pads for this).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        down: list[int],
        up: list[int],
        skip: list[int],
        upsample: str = "bilinear",
        padding: str = "reflect",
        top_kernel: int = 3,
    ) -> None:
        """``top_kernel``: the kernel of the convolution right after the last upsampling (the
        rest are 3×3 on the way and 1×1 after). With 1, every full-resolution layer is per pixel
        and only the fixed upsampler mixes neighbours there, as in the Deep Decoder."""
        super().__init__()
        if not (len(down) == len(up) == len(skip)):
            raise ValueError("down, up and skip need one entry per scale")
        level: nn.Module | None = None
        for i in reversed(range(len(down))):
            c_in = in_channels if i == 0 else down[i - 1]
            deeper_out = up[i + 1] if i + 1 < len(down) else down[i]
            level = _Level(c_in, down[i], up[i], skip[i], level, deeper_out, upsample, padding,
                           top_kernel if i == 0 else 3)
        self.body = level
        self.head = nn.Sequential(conv(up[0], out_channels, 1), nn.Sigmoid())
        self.scales = len(down)
        self.in_channels = in_channels

    @property
    def multiple(self) -> int:
        return 2**self.scales

    def input_shape(self, h: int, w: int) -> tuple[int, int, int]:
        """The input code for an ``h × w`` output: full resolution, ``in_channels`` deep."""
        check_divisible(h, w, self.multiple)
        return self.in_channels, h, w

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(z))
