"""Generators for DIP and the registry that builds one from a small spec."""

from dipcli.nets.registry import ARCHS, NetSpec, build_net, count_params

__all__ = ["ARCHS", "NetSpec", "build_net", "count_params"]
