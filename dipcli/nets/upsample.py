"""Upsampling layers: the fixed, unlearnt upsampler is what gives a DIP network its prior."""

from __future__ import annotations

from torch import nn

UPSAMPLERS = ("nearest", "bilinear", "bicubic")


def make_upsampler(name: str, channels: int) -> nn.Module:
    """A ×2 upsampler by name; fixed interpolation has no parameters to learn."""
    if name not in UPSAMPLERS:
        raise ValueError(f"unknown upsampler {name!r}; choose one of: {', '.join(UPSAMPLERS)}")
    if name == "nearest":
        return nn.Upsample(scale_factor=2, mode="nearest")
    return nn.Upsample(scale_factor=2, mode=name, align_corners=False)
