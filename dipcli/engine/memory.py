"""How much memory a fit needs, how much the device has, and what tile size that allows.

A DIP fit keeps every activation of the generator for the backward pass, so its memory grows
with the number of pixels: a few kB per pixel (about 2.7 kB for the default net under bfloat16,
6 kB for the DIP paper's 5×128 net). That is measured, not guessed: the net is run forward once
on a small input (:data:`PROBE` px a side) while :func:`torch.autograd.graph.saved_tensors_hooks`
records what autograd keeps, and the bytes per pixel are scaled to the image. The per-pixel
figure falls slightly with size, so scaling up errs on the safe side.

Measuring must never be what exhausts the memory, so nothing big is allocated for it:

* the parameters are counted on a net built on the ``meta`` device (shapes, no storage): a net
  of width 100,000, whose weights alone would take terabytes, is costed in a fraction of a second;
* a net deeper than :data:`PROBE_SCALES` needs a probe of twice its deepest cell (8192² px for
  12 scales), so it is probed with its first :data:`PROBE_SCALES` scales only: the deeper ones
  run on a 4^k-th of the pixels, and the per-pixel figure of 7 to 10 scales on their own larger
  probes was below that of 6 on 128² for every architecture;
* a net wider than :data:`PROBE_WIDTH` is run forward on the ``meta`` device too (in float32:
  autocast has no meta device, so under bfloat16 this is an upper bound). That pass costs a second
  or two of imports the first time, which the usual nets never pay.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from dipcli.engine.tiles import smallest_tile
from dipcli.nets import NetSpec, build_net

# Backward needs room beside what autograd kept (gradients of the activations, temporaries):
# peak/kept was 1.0–1.1 on a GPU and, less the interpreter, ~1.5 on this CPU (benchmarks/speed.py);
# a 2112² tile estimated at 17.1 GB peaked at 16.1 GB on this CPU (benchmarks/large.py).
OVERHEAD = 1.5
FIXED_BYTES = 64 * 2**20  # the image, code, average and candidate, and allocator slack
USABLE = 0.8  # of what the device reports free: leave room for everything else
PROBE = 128  # side of the input the activations are measured on
PROBE_SCALES = 6  # the most scales a PROBE-sized input takes (two cells at the deepest)
PROBE_WIDTH = 128  # the widest net measured for real (the DIP paper's; ~160 MB at PROBE px)


class OutOfMemory(RuntimeError):
    """A fit that would not fit in the device's memory (and cannot be tiled)."""


def kept_bytes(net: nn.Module, code: torch.Tensor, precision: str) -> int:
    """Bytes autograd keeps for one forward pass of ``net`` on ``code``: each storage it saves,
    counted once (several saved tensors may share one)."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage._cdata] = storage.nbytes()  # _cdata: meta storages have no data pointer
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast(
        "cpu", dtype=torch.bfloat16, enabled=precision == "bf16"
    ):
        net.train()(code)
    return sum(storages.values())


def measure(spec: NetSpec, channels: int, precision: str) -> tuple[float, int]:
    """Bytes autograd keeps per output pixel for one step of the net ``spec`` builds for
    ``channels`` outputs, and its parameter count, with nothing big allocated (see the
    module's docstring)."""
    with torch.device("meta"):
        net = build_net(spec, channels)
    params = sum(p.numel() for p in net.parameters())
    if max(spec.width, spec.input_depth) > PROBE_WIDTH:
        side = max(PROBE, 2 * spec.multiple)
        with torch.device("meta"):
            return kept_bytes(net, torch.zeros(1, *spec.input_shape(side, side)), "fp32") / side**2, params
    depth = min(spec.scales, PROBE_SCALES)
    probe = replace(spec, scales=depth, skip_scales=min(spec.skip_scales, depth))
    net = build_net(probe, channels, seed=0)
    return kept_bytes(net, torch.zeros(1, *probe.input_shape(PROBE, PROBE)), precision) / PROBE**2, params


@dataclass(frozen=True)
class Footprint:
    """A fit's peak memory: ``per_pixel`` bytes per output pixel plus ``fixed`` bytes."""

    per_pixel: float
    fixed: int
    step: int  # tiles are multiples of this: tiling.smallest_tile
    params: int = 0  # the net's parameters (counted in ``fixed``), for messages

    def bytes(self, h: int, w: int) -> int:
        return int(self.per_pixel * h * w + self.fixed)

    def largest_tile(self, budget: float, start: int) -> int | None:
        """The largest square tile, at most ``start`` px and a multiple of ``step``, whose fit
        needs no more than ``budget`` bytes; None if not even ``step`` px does."""
        if budget <= self.fixed:
            return None
        side = min(start, int(((budget - self.fixed) / self.per_pixel) ** 0.5)) // self.step * self.step
        return side if side >= self.step else None


@functools.lru_cache(maxsize=64)
def footprint(spec: NetSpec, channels: int, precision: str) -> Footprint:
    """How much memory fitting with ``spec`` takes, measured (see the module's docstring); cached,
    since every fit of an ensemble and every image of a batch asks again for the same net."""
    spec = spec.resolved()
    per_pixel, params = measure(spec, channels, precision)
    # Weights, their gradients and Adam's two moments are float32.
    return Footprint(OVERHEAD * per_pixel, 16 * params + FIXED_BYTES, smallest_tile(spec.multiple), params)


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
