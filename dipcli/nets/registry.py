"""Build a generator from a small, printable spec.

Named architectures:

* ``compact`` — the 2-scale DIP of "The Devil is in the Upsampling" (ICCV 2023): width W at
  every scale, a skip link only at the deepest scale, bilinear upsampling. Our default.
* ``original`` — the DIP paper's denoising net: 5 scales × 128 channels, skip 4 at every
  scale, bilinear upsampling.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from dipcli.nets.skip import SkipNet
from dipcli.nets.upsample import UPSAMPLERS

ARCHS = ("compact", "original")


@dataclass(frozen=True)
class NetSpec:
    """What to build. ``None`` fields take the architecture's own default."""

    arch: str = "compact"
    width: int | None = None
    scales: int | None = None
    skip: int | None = None
    upsample: str | None = None
    input_depth: int = 32

    def resolved(self) -> NetSpec:
        """The spec with every default filled in, as it will be built and reported."""
        if self.arch not in ARCHS:
            raise ValueError(f"unknown architecture {self.arch!r}; choose one of: {', '.join(ARCHS)}")
        base = {"compact": dict(width=64, scales=2, skip=4, upsample="bilinear"),
                "original": dict(width=128, scales=5, skip=4, upsample="bilinear")}[self.arch]
        filled = {k: v if getattr(self, k) is None else getattr(self, k) for k, v in base.items()}
        spec = replace(self, **filled)
        if spec.upsample not in UPSAMPLERS:
            raise ValueError(
                f"unknown upsampler {spec.upsample!r}; choose one of: {', '.join(UPSAMPLERS)}"
            )
        if spec.width < 1 or spec.scales < 1 or spec.skip < 0:
            raise ValueError("width and scales must be at least 1 and skip at least 0")
        return spec

    @property
    def multiple(self) -> int:
        """Image sides must be divisible by this for the net's down/up path to line up."""
        return 2 ** self.resolved().scales


def build_net(spec: NetSpec, out_channels: int, seed: int | None = None) -> nn.Module:
    """Instantiate the generator described by ``spec`` for ``out_channels`` output channels.

    With ``seed``, the initial weights depend on it alone (the global RNG is left as it was),
    so a run with ``--seed`` repeats exactly.
    """
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_net(spec, out_channels)
    s = spec.resolved()
    widths = [s.width] * s.scales
    if s.arch == "compact":
        # Skip only at the deepest scale: a full-resolution skip bypasses the upsampler,
        # which is the part of the net that does the denoising.
        skips = [0] * (s.scales - 1) + [s.skip]
    else:
        skips = [s.skip] * s.scales
    return SkipNet(s.input_depth, out_channels, widths, widths, skips, s.upsample)


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
