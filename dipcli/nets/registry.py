"""Build a generator from a small, printable spec.

Named architectures (:class:`Arch`: a family, its defaults, and how a net of it is fitted):

* ``compact`` — the 2-scale DIP of "The Devil is in the Upsampling" (ICCV 2023), width 64 at
  every scale, a skip link only at the deepest scale, bilinear upsampling; every knob is open:
  ``scales`` S, ``width`` W at every scale, skip links (``skip`` channels) only at the deepest
  ``skip_scales`` K scales.
* ``lean`` — ``compact`` with a 1×1 convolution after the last upsampling (so only the fixed
  upsampler mixes pixels at full resolution) and zero padding, fitted with half the paper's input
  jitter and an average that warms up: a third cheaper per iteration, a few tenths of a dB less
  (results/lean).
* ``original`` — the DIP paper's denoising net: 5 scales × 128 channels, skip 4 at every scale.
* ``deep-decoder`` — Heckel & Hand's Deep Decoder: 1×1 convolutions, 5 upsamplings, width 64.
* ``convdecoder`` — Darestani & Heckel's ConvDecoder: 3×3 convolutions, 5 upsamplings, width 64.

Every one takes any upsampler of :mod:`dipcli.nets.upsample`. Skip nets take a full-resolution
input code, decoders a code 2^scales times smaller: :meth:`NetSpec.input_shape` (and the built
net's ``input_shape``) say which.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn

from dipcli.nets.decoders import ConvDecoder, DeepDecoder
from dipcli.nets.skip import PADDINGS, SkipNet, check_divisible
from dipcli.nets.upsample import UPSAMPLERS


@dataclass(frozen=True)
class Arch:
    family: str  # "skip", "deep-decoder" or "convdecoder": which class builds it
    about: str  # one line for listings
    defaults: dict = field(default_factory=dict)
    # How this net is fitted, chosen with it: the input jitter as a multiple of the DIP paper's,
    # and the EMA warm-up (:attr:`dipcli.optim.loop.FitConfig.ema_warmup`).
    jitter: float = 1.0
    ema_warmup: float = 0.0


_COMPACT = dict(width=64, scales=2, skip=4, skip_scales=1, upsample="bilinear", input_depth=32)
# None: skip_scales follows scales (skips at every scale), input_depth follows width.
ARCHITECTURES: dict[str, Arch] = {
    "lean": Arch("skip", "compact, 1×1 at full size, zero padding, half the jitter",
                   {**_COMPACT, "top_kernel": 1, "padding": "zeros"}, jitter=0.5, ema_warmup=9.0),
    "compact": Arch("skip", "2-scale DIP (any --scales, --width), skip at the deepest scale (the default)",
                      _COMPACT),
    "original": Arch("skip", "DIP paper's hourglass: 5 scales × 128, skip 4 at every scale",
                       dict(width=128, scales=5, skip=4, skip_scales=None, upsample="bilinear",
                            input_depth=32)),
    "deep-decoder": Arch("deep-decoder", "Deep Decoder: 1×1 convs, upsample, ReLU, BatchNorm",
                           dict(width=64, scales=5, skip=0, skip_scales=0, upsample="bilinear",
                                input_depth=None)),
    "convdecoder": Arch("convdecoder", "ConvDecoder: 3×3 convs, upsample, ReLU, BatchNorm",
                          dict(width=64, scales=5, skip=0, skip_scales=0, upsample="bilinear",
                               input_depth=None)),
}
ARCHS = tuple(ARCHITECTURES)
# Beyond these a net cannot be built even to be costed (dipcli.engine.memory): tensor sizes overflow.
# The memory check refuses far smaller nets; these bounds only keep its arithmetic finite.
MAX_SCALES = 16
MAX_WIDTH = 2**20


@dataclass(frozen=True)
class NetSpec:
    """What to build. ``None`` fields take the architecture's own default."""

    arch: str = "compact"
    width: int | None = None
    scales: int | None = None
    skip: int | None = None  # channels of each skip link
    upsample: str | None = None
    input_depth: int | None = None  # channels of the input code
    skip_scales: int | None = None  # how many of the deepest scales have a skip link
    padding: str | None = None  # "reflect" or "zeros"
    top_kernel: int | None = None  # kernel after the last upsampling (skip nets): 3 or 1

    def resolved(self) -> NetSpec:
        """The spec with every default filled in, as it will be built and reported."""
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; choose one of: {', '.join(ARCHS)}")
        arch = ARCHITECTURES[self.arch]
        spec = replace(self, **{k: v for k, v in arch.defaults.items() if getattr(self, k) is None})
        if spec.upsample not in UPSAMPLERS:
            raise ValueError(
                f"unknown upsampler {spec.upsample!r}; choose one of: {', '.join(UPSAMPLERS)}"
            )
        _check_size(spec)
        spec = replace(spec, skip_scales=spec.scales if spec.skip_scales is None else spec.skip_scales,
                       input_depth=spec.width if spec.input_depth is None else spec.input_depth,
                       padding=spec.padding or "reflect")
        if spec.padding not in PADDINGS:
            raise ValueError(f"unknown padding {spec.padding!r}; choose one of: {', '.join(PADDINGS)}")
        if arch.family == "skip":
            spec = replace(spec, top_kernel=3 if spec.top_kernel is None else spec.top_kernel)
            if spec.top_kernel not in (1, 3):
                raise ValueError(f"top_kernel must be 1 or 3, got {spec.top_kernel}")
        elif spec.top_kernel is not None:
            raise ValueError(f"{spec.arch} has no top_kernel; leave it unset")
        if spec.input_depth < 1:
            raise ValueError("input_depth must be at least 1")
        if arch.family != "skip" and (spec.skip or spec.skip_scales):
            raise ValueError(f"{spec.arch} has no skip links; leave skip and skip_scales unset")
        if not 0 <= spec.skip_scales <= spec.scales:
            raise ValueError(f"skip_scales must be between 0 and scales ({spec.scales})")
        return spec

    @property
    def family(self) -> str:
        self.resolved()  # refuse an unknown arch with the list of valid ones
        return ARCHITECTURES[self.arch].family

    @property
    def architecture(self) -> Arch:
        """The named architecture this spec starts from, with the fit settings chosen for it."""
        self.resolved()
        return ARCHITECTURES[self.arch]

    @property
    def multiple(self) -> int:
        """Image sides must be divisible by this for the net's down/up path to line up."""
        return 2 ** self.resolved().scales

    def input_shape(self, h: int, w: int) -> tuple[int, int, int]:
        """(channels, height, width) of the input code for an ``h × w`` output."""
        s = self.resolved()
        check_divisible(h, w, s.multiple)
        if s.family == "skip":
            return s.input_depth, h, w
        return s.input_depth, h // s.multiple, w // s.multiple


def _check_size(spec: NetSpec) -> None:
    """Width and scales within what a DIP net uses and what can be costed at all."""
    if spec.width < 1 or spec.scales < 1 or spec.skip < 0:
        raise ValueError("width and scales must be at least 1 and skip at least 0")
    if spec.scales > MAX_SCALES:
        raise ValueError(f"{spec.scales} scales: give at most {MAX_SCALES} (each scale halves the "
                         f"image; {MAX_SCALES} already pad every image to {2 << MAX_SCALES} px a side)")
    if spec.width > MAX_WIDTH:
        raise ValueError(f"width {spec.width}: give at most {MAX_WIDTH} channels (DIP nets use 32 to "
                         "256; a net this wide is too large even to cost)")


def build_net(spec: NetSpec, out_channels: int, seed: int | None = None) -> nn.Module:
    """Instantiate the generator described by ``spec`` for ``out_channels`` output channels.

    With ``seed``, the initial weights depend on it alone (the global RNG is left as it was),
    so a run with ``--seed`` repeats exactly. The net has ``input_shape(h, w)`` and ``multiple``.
    """
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_net(spec, out_channels)
    s = spec.resolved()
    if s.family == "deep-decoder":
        return DeepDecoder(s.input_depth, out_channels, s.width, s.scales, s.upsample)
    if s.family == "convdecoder":
        return ConvDecoder(s.input_depth, out_channels, s.width, s.scales, s.upsample, s.padding)
    widths = [s.width] * s.scales
    # Skips only at the deepest scales: a full-resolution skip bypasses the upsampler, which is
    # the part of the net that does the denoising.
    skips = [0] * (s.scales - s.skip_scales) + [s.skip] * s.skip_scales
    return SkipNet(s.input_depth, out_channels, widths, widths, skips, s.upsample, s.padding,
                   s.top_kernel)


def count_params(net: nn.Module) -> int:
    """Trainable parameters (fixed upsampling filters are buffers and do not count)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
