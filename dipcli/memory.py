"""How much memory a fit needs, how much the device has, and what tile size that allows.

A DIP fit keeps every activation of the generator for the backward pass, so its memory grows
with the number of pixels: a few kB per pixel (about 2.7 kB for the default net under bfloat16,
6 kB for the DIP paper's 5×128 net). That is measured, not guessed: the net is run forward once
on a small input while :func:`torch.autograd.graph.saved_tensors_hooks` records what autograd
keeps, and the bytes per pixel are scaled to the image. The per-pixel figure falls slightly with
size, so scaling up from a small input errs on the safe side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dipcli.nets import NetSpec, build_net
from dipcli.tiling import smallest_tile

# Backward needs room beside what autograd kept (gradients of the activations, temporaries):
# peak/kept was 1.0–1.1 on a GPU and, less the interpreter, ~1.5 on this CPU (benchmarks/speed.py);
# a 2112² tile estimated at 17.1 GB peaked at 16.1 GB on this CPU (benchmarks/large.py).
OVERHEAD = 1.5
FIXED_BYTES = 64 * 2**20  # the image, code, average and candidate, and allocator slack
USABLE = 0.8  # of what the device reports free: leave room for everything else
PROBE = 128  # side of the input the activations are measured on


class OutOfMemory(RuntimeError):
    """A fit that would not fit in the device's memory (and cannot be tiled)."""


def kept_bytes_per_pixel(net: nn.Module, spec: NetSpec, precision: str) -> float:
    """Bytes autograd keeps per output pixel for one step of ``net`` (built from ``spec``),
    measured on a small input."""
    side = max(PROBE, 2 * spec.multiple)
    code = torch.zeros(1, *spec.input_shape(side, side))
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast(
        "cpu", dtype=torch.bfloat16, enabled=precision == "bf16"
    ):
        net.train()(code)
    return sum(storages.values()) / side**2


@dataclass(frozen=True)
class Footprint:
    """A fit's peak memory: ``per_pixel`` bytes per output pixel plus ``fixed`` bytes."""

    per_pixel: float
    fixed: int
    step: int  # tiles are multiples of this: tiling.smallest_tile

    def bytes(self, h: int, w: int) -> int:
        return int(self.per_pixel * h * w + self.fixed)

    def largest_tile(self, budget: float, start: int) -> int | None:
        """The largest square tile, at most ``start`` px and a multiple of ``step``, whose fit
        needs no more than ``budget`` bytes; None if not even ``step`` px does."""
        if budget <= self.fixed:
            return None
        side = min(start, int(((budget - self.fixed) / self.per_pixel) ** 0.5)) // self.step * self.step
        return side if side >= self.step else None


def footprint(spec: NetSpec, channels: int, precision: str) -> Footprint:
    """How much memory fitting with ``spec`` takes, measured (see the module's docstring)."""
    spec = spec.resolved()
    net = build_net(spec, channels, seed=0)
    params = sum(p.numel() for p in net.parameters())
    # Weights, their gradients and Adam's two moments are float32.
    return Footprint(OVERHEAD * kept_bytes_per_pixel(net, spec, precision),
                     16 * params + FIXED_BYTES, smallest_tile(spec.multiple))


def fit_bytes(spec: NetSpec, h: int, w: int, channels: int, precision: str) -> int:
    """Estimated peak memory of fitting an ``h × w`` image (output size) with ``spec``."""
    return footprint(spec, channels, precision).bytes(h, w)


def available_bytes(device: torch.device) -> int | None:
    """Memory free for a fit on ``device`` (None where it cannot be told, e.g. Apple MPS)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        meminfo = Path("/proc/meminfo")
        if meminfo.exists():
            for line in meminfo.read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return None


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GB"
