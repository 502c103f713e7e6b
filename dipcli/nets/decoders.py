"""Decoder-only generators: a small random code is upsampled to the image, with no skips.

* :class:`DeepDecoder` — Heckel & Hand, "Deep Decoder" (ICLR 2019): per layer a 1×1 convolution,
  ×2 upsampling, ReLU and BatchNorm. Only the upsampler mixes neighbouring pixels, so the choice of
  upsampler is the whole spatial prior (with nearest, the output is constant on 2^scales blocks).
* :class:`ConvDecoder` — Darestani & Heckel, "Accelerated MRI with un-trained neural networks"
  (2021): per layer upsampling, a 3×3 convolution, ReLU and BatchNorm, then one more 3×3 layer.
  The original grows the size geometrically by any ratio from a fixed input size; here the ratio
  is 2 (the input is the output size / 2^scales), so that every upsampler in
  :mod:`dipcli.nets.upsample`, the ×2 fixed filters included, can be used with it.

Both end in a 1×1 convolution and a sigmoid, and take their input code at 1/2^scales of the output
size (:meth:`input_shape`).
"""

from __future__ import annotations

import torch
from torch import nn

from dipcli.nets.skip import check_divisible, conv
from dipcli.nets.upsample import make_upsampler


class _Decoder(nn.Module):
    """What both decoders share: a body, a sigmoid head and a code 2^scales times smaller."""

    def __init__(self, in_channels: int, scales: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.scales = scales

    @property
    def multiple(self) -> int:
        return 2**self.scales

    def input_shape(self, h: int, w: int) -> tuple[int, int, int]:
        """The input code for an ``h × w`` output: ``in_channels`` × h/2^scales × w/2^scales."""
        check_divisible(h, w, self.multiple)
        return self.in_channels, h // self.multiple, w // self.multiple

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class DeepDecoder(_Decoder):
    """``scales`` upsampling layers of ``width`` channels, plus one at full size, then the head."""

    def __init__(self, in_channels: int, out_channels: int, width: int, scales: int,
                 upsample: str = "bilinear") -> None:
        super().__init__(in_channels, scales)
        layers: list[nn.Module] = []
        c = in_channels
        for i in range(scales + 1):
            layers.append(nn.Conv2d(c, width, 1, bias=False))  # BatchNorm below supplies the bias
            if i < scales:
                layers.append(make_upsampler(upsample, width))
            layers += [nn.ReLU(), nn.BatchNorm2d(width)]
            c = width
        layers += [nn.Conv2d(width, out_channels, 1, bias=False), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)


class ConvDecoder(_Decoder):
    """``scales`` layers of upsample → 3×3 conv → ReLU → BatchNorm, one more 3×3 layer, the head."""

    def __init__(self, in_channels: int, out_channels: int, width: int, scales: int,
                 upsample: str = "bilinear", padding: str = "reflect") -> None:
        super().__init__(in_channels, scales)
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(scales):
            layers += [make_upsampler(upsample, c), conv(c, width, 3, padding=padding), nn.ReLU(),
                       nn.BatchNorm2d(width)]
            c = width
        layers += [conv(width, width, 3, padding=padding), nn.ReLU(), nn.BatchNorm2d(width),
                   conv(width, out_channels, 1), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)
