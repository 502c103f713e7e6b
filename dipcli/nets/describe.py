"""What each architecture costs: parameters and measured seconds per fitting iteration.

Measured, not estimated: FLOP counts mislead on CPUs, where depthwise filters, BatchNorm and
memory traffic weigh more than their arithmetic (see benchmarks/README.md, "Speed on this CPU" and "A 512²
image in under five minutes", on channels-last and ``torch.compile``).
"""

from __future__ import annotations

import statistics
import time

import torch

from dipcli.nets.registry import ARCHITECTURES, ARCHS, NetSpec, build_net, count_params
from dipcli.tensors import jitter


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def seconds_per_iteration(net: torch.nn.Module, size: tuple[int, int], out_channels: int = 3,
                          device: torch.device | str = "cpu", iters: int = 5, warmup: int = 2,
                          seed: int = 0) -> float:
    """Median wall time of one Adam step of an MSE fit at output ``size``, warm-up excluded.

    Runs the net the way :func:`dipcli.optim.loop.fit` does (channels-last, input jitter, Adam lr 0.01)
    on a random target, so the number predicts a real run. The net is trained in place.
    """
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    z = (torch.rand(1, *net.input_shape(h, w), generator=gen) * 0.1).to(device)
    z = z.contiguous(memory_format=torch.channels_last)
    target = torch.rand(1, out_channels, h, w, generator=gen).to(device)
    net = net.to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    times = []
    for i in range(warmup + iters):
        _sync(device)
        start = time.perf_counter()
        loss = torch.mean((net(z + jitter(z) / 30) - target) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def describe_archs(size: int, device: torch.device | str = "cpu", width: int | None = None, *,
                   out_channels: int = 3, iters: int = 5, warmup: int = 2) -> list[dict]:
    """One record per architecture at its defaults (or at ``width``) for a ``size × size`` image.

    Each record: arch, about, the resolved spec fields, ``side`` (the size after padding to the
    net's multiple, as a job pads it), params and the measured ``sec_per_iter`` on ``device``
    (a resolved ``torch.device`` or name: cpu, cuda, mps).
    """
    rows = []
    for arch in ARCHS:
        spec = NetSpec(arch, width=width).resolved()
        m = spec.multiple
        side = max(-(-size // m) * m, 2 * m)
        net = build_net(spec, out_channels, seed=0)
        rows.append({
            "arch": arch, "about": ARCHITECTURES[arch].about, "family": spec.family,
            "width": spec.width, "scales": spec.scales, "skip": spec.skip,
            "skip_scales": spec.skip_scales, "upsample": spec.upsample,
            "input_depth": spec.input_depth, "multiple": m, "side": side,
            "params": count_params(net),
            "sec_per_iter": seconds_per_iteration(net, (side, side), out_channels, device, iters, warmup),
        })
    return rows
