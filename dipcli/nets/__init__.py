"""Generators for DIP, their upsamplers and the registry that builds one from a small spec."""

from dipcli.nets.describe import describe_archs, seconds_per_iteration
from dipcli.nets.registry import ARCHITECTURES, ARCHS, NetSpec, build_net, count_params
from dipcli.nets.upsample import FILTERS, UPSAMPLERS, lowpass_taps, make_upsampler

__all__ = [
    "ARCHS", "FILTERS", "ARCHITECTURES", "UPSAMPLERS", "NetSpec", "build_net", "count_params",
    "describe_archs", "lowpass_taps", "make_upsampler", "seconds_per_iteration",
]
