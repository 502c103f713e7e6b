"""The one optimisation loop that every subcommand runs.

A subcommand describes its job as a problem (forward model and noise model), a generator and a
:class:`~dipcli.optim.config.FitConfig`; :func:`fit` does the rest and reports what happens as
:class:`~dipcli.optim.config.Event` s to subscribers. It never prints. Two-stage denoising,
automatic stopping and the recorrupted loss are configurations of this loop (a regulariser with a
weight schedule, a stop rule, an objective: :mod:`dipcli.optim.losses`), not new loops; its parts
(the input, the average, backtracking, each member's record) are in :mod:`dipcli.optim.parts`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from dipcli.optim.config import SHARED, FitConfig, FitResult, Member, Subscriber
from dipcli.optim.device import resolve_precision
from dipcli.optim.losses import Objective
from dipcli.optim.parts import Average, Backtracking, Input, Track
from dipcli.physics import Problem
from dipcli.tensors import to_nchw


def fit(
    problem: Problem,
    net: nn.Module,
    observed: np.ndarray,
    config: FitConfig,
    *,
    input_depth: int | None = None,
    out_size: tuple[int, int] | None = None,
    crop: tuple[int, int] | None = None,
    reference: np.ndarray | None = None,
    device: torch.device | str = "cpu",
    subscribers: Sequence[Subscriber] = (),
) -> FitResult:
    """Fit ``net`` so that the problem's loss between its output and ``observed`` falls.

    ``observed`` is ``(H, W, C)`` float32, already padded to the net's multiple. ``out_size`` is
    the size the net generates (default: the observed size; larger for super-resolution);
    ``crop`` the size to cut the result (and metrics) back to; ``reference`` a clean
    ``crop``-sized image for live PSNR/SSIM, scored the problem's way. The input code's shape
    comes from ``net.input_shape(h, w)`` where the net has one (decoders take a small code), else
    it is ``input_depth`` channels at full size. Ctrl-C ends the fit early and still returns the
    result so far.
    """
    member = Member(problem, observed, config, crop, reference, subscribers)
    return fit_group([member], net, input_depth=input_depth, out_size=out_size, device=device)[0]


def fit_group(members: Sequence[Member], net: nn.Module, *, input_depth: int | None = None,
              out_size: tuple[int, int] | None = None,
              device: torch.device | str = "cpu") -> list[FitResult]:
    """:func:`fit` for several images of one size at once: the loop, for a group of one or more.

    With more than one member, ``net`` is a :class:`dipcli.nets.stack.Stack` of one net per
    image, which runs them as one batched call; each image keeps its own weights, optimiser
    state (Adam is elementwise, so one Adam over the stacked weights is one per image), average,
    backtracking and stop rule. All members share the seed, so they share the input code and
    its jitter, as separate fits with that seed would. A member whose rule stops is settled
    there (its slot keeps computing until the last one stops, at no extra cost to the others).
    """
    config = _shared_config(members)
    device = torch.device(device)
    torch.manual_seed(config.seed)
    size = out_size or members[0].observed.shape[:2]
    ys = [to_nchw(m.observed, device, channels_last=True) for m in members]
    source = Input(config, net, ys, size, input_depth, torch.Generator().manual_seed(config.seed), device,
                   [m.problem.noise for m in members])
    tracks = [Track(m, y, size, device) for m, y in zip(members, ys, strict=True)]
    objectives = [Objective(m.problem, m.config) for m in members]
    net = net.to(device)
    if len(members) == 1:  # a stack's weights are 5-d: channels-last is for plain 4-d convolutions
        net = net.to(memory_format=torch.channels_last)
    net = net.train()
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    average, guard = Average(config.ema, config.ema_warmup), Backtracking(net, opt, len(members), config)
    precision = resolve_precision(config.precision, device)
    out, it, start = torch.cat(ys), 0, time.perf_counter()
    active = list(range(len(members)))
    try:
        for it in range(1, config.iters + 1):
            inp, shake = source.draw()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = net(inp)
            out = out.float()  # losses, the average and metrics stay in float32
            one = len(members) == 1
            terms = [objective(out if one else out[i:i + 1], ys[i], _own(shake, i), it)
                     for i, objective in enumerate(objectives)]
            loss = terms[0][0]
            for term, _, _ in terms[1:]:
                loss = loss + term
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                out = out.detach()
                average.update(out, it)
            if it % config.check_every == 0 or it == config.iters:
                active = _check(tracks, active, terms, it, config.iters, out, average, guard, start,
                                precision)
                if not active:
                    break
    except KeyboardInterrupt:
        # Kept here so that the layers above can still assemble the best so far (blend the tiles,
        # average an ensemble) and the CLI write it; the Python API raises it again afterwards
        # (dipcli.api.tasks.interrupted): a library must not swallow Ctrl-C.
        _settle(tracks, active, "interrupted", it, out, average.value, start, precision)
    _settle(tracks, range(len(members)), "budget", it, out, average.value, start, precision)
    return [t.result for t in tracks]


def _own(shake: torch.Tensor | None, i: int) -> torch.Tensor | None:
    """Member ``i``'s part of the step's jitter: all of a shared one, its own of one per member."""
    return shake if shake is None or shake.shape[0] == 1 else shake[i:i + 1]


def _shared_config(members: Sequence[Member]) -> FitConfig:
    """The configuration a group shares (:data:`dipcli.optim.config.SHARED`): one net call, one
    optimiser step and one stream of random numbers per iteration."""
    config = members[0].config
    for m in members[1:]:
        differ = [k for k in SHARED if getattr(m.config, k) != getattr(config, k)]
        if differ:
            raise ValueError(f"fit_group: members differ in {', '.join(differ)}")
    return config


def _check(tracks: list[Track], active: list[int], terms: list, it: int, total: int, out: torch.Tensor,
           average: Average, guard: Backtracking, start: float, precision: str) -> list[int]:
    """One check: undo diverged steps, then let each healthy member's track observe, score and
    report; the members still fitting afterwards."""
    for i in active:
        tracks[i].loss = terms[i][1].item()
    diverged = [i for i in active if guard.diverged(i, tracks[i].loss)]
    for i in diverged:  # go back to the last good weights and carry on from there
        tracks[i].backtracks += 1
        guard.restore(i, average)
    healthy = [i for i in active if i not in diverged]
    if not healthy:
        return active
    guard.keep(healthy, [t.loss for t in tracks], average.value)
    for i in healthy:
        ema = average.value[i:i + 1]
        if tracks[i].check(it, total, out[i:i + 1], ema, terms[i][2], time.perf_counter() - start):
            tracks[i].settle(tracks[i].member.config.stop.name, it, out[i:i + 1], ema, start, precision)
    return [i for i in active if tracks[i].result is None]


def _settle(tracks: list[Track], which, reason: str, it: int, out: torch.Tensor, ema: torch.Tensor | None,
            start: float, precision: str) -> None:
    """Settle the members among ``which`` that have no result yet, for ``reason``."""
    for i in which:
        if tracks[i].result is None:
            own = None if ema is None else ema[i:i + 1]
            tracks[i].settle(reason, it, out[i:i + 1], own, start, precision)
