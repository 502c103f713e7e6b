"""How a fit is configured, what it reports, and what it returns: the loop's contract.

A task describes a fit as a problem (:mod:`dipcli.physics`), a generator, a :class:`FitConfig`
and a stop rule; :func:`dipcli.optim.loop.fit` does the rest and reports what happens as
:class:`Event` s to subscribers (progress bars, snapshots), which it never prints itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from dipcli.physics import Problem


@dataclass
class Check:
    """What a stop rule sees at each check. Tensors are on the device (cropped to the image)."""

    iteration: int
    total: int
    loss: float  # data loss of the raw output
    ema_loss: float  # data loss of the averaged output (what the discrepancy principle needs)
    raw: torch.Tensor
    ema: torch.Tensor
    # Where the output is free, (1, 1, h, w) 0/1, or None for everywhere: the pixels that no
    # observation pins down (an inpainting hole), which a rule that watches the output watches.
    free: torch.Tensor | None = None


class StopRule(Protocol):
    """Decides when to stop and which iterate to keep. Consulted at every check.

    ``observe`` returns True when this check's averaged output is the new best candidate; the
    loop then keeps a copy of it on the device and writes that copy in the end. A rule that
    never returns True leaves the last averaged output as the result.
    """

    name: str

    def observe(self, check: Check) -> bool: ...

    def should_stop(self) -> bool: ...

    def describe(self) -> str: ...


@dataclass
class FixedStop:
    """Run the whole iteration budget and keep the last averaged output."""

    name: str = "fixed"

    def observe(self, check: Check) -> bool:
        return False

    def should_stop(self) -> bool:
        return False

    def describe(self) -> str:
        return "fixed budget"


@dataclass
class FitConfig:
    """How to fit. Defaults are the DIP paper's, except where a benchmark chose otherwise."""

    iters: int = 1000
    lr: float = 0.01
    reg_noise: float = 1.0 / 30.0  # std of the jitter added to the input code each step
    ema: float = 0.99  # decay of the exponential moving average of the outputs
    # With w > 0 the decay at iteration t is min(ema, 1 - w / (w + 1 + t)): the average spans
    # about t / w iterations until that reaches 1 / (1 - ema), so it follows the fast early climb
    # instead of dragging the first, poor outputs along (at 0.99 they hold it ~100 iterations
    # back, several dB below the raw output early in a fit).
    ema_warmup: float = 0.0
    input_scale: float = 0.1  # the input code is U(0, input_scale)
    # What the net takes in: "code", the DIP paper's fixed random code, or "observation", the
    # observation itself (Jo, Chun & Choi, "Rethinking Deep Image Prior for Denoising", ICCV 2021):
    # the net then learns a denoiser of this one image. Input jitter applies to either.
    input: str = "code"
    # True: the data loss is Recorrupted-to-Recorrupted (Pang, Zheng, Quan & Ji, CVPR 2021). The
    # input is the observation plus the step's jitter e = α·N(0, σ²) (reg_noise = α·σ), the target
    # the observation minus e/α². For Gaussian noise of σ the two are independent noisy copies of
    # the clean image, so the mean squared error to the target is, in expectation, the error to
    # the clean image plus a constant: an unbiased loss (:class:`dipcli.optim.losses.Objective`).
    # Needs input="observation" and a problem with a noise model; for one that is not white (a
    # photo's), e is a draw of that noise scaled by α = reg_noise / σ (dipcli.optim.parts.Input).
    recorrupt: bool = False
    precision: str = "fp32"  # "bf16": the generator runs under bfloat16 autocast; "auto"
    seed: int = 0
    check_every: int = 10  # host synchronisation, metrics, backtracking and events happen here
    backtrack_ratio: float = 10 ** 0.5  # a data loss this many times the last good one: restore
    # loss = data_weight(it) · data loss + reg_weight(it) · regulariser(output, observed)
    regulariser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    reg_weight: Callable[[int], float] = lambda it: 0.0  # noqa: E731
    data_weight: Callable[[int], float] | None = None  # None: always 1
    stop: StopRule = field(default_factory=FixedStop)


@dataclass
class Event:
    """What the loop reports at each check. Tensors stay on the device; copy only if needed."""

    iteration: int
    total: int
    loss: float
    elapsed: float
    reg_weight: float | None  # λ now; None when the fit has no regulariser
    stop_state: str
    raw: torch.Tensor
    ema: torch.Tensor
    psnr_raw: float | None = None
    psnr_ema: float | None = None
    ssim_ema: float | None = None
    best_psnr: float | None = None
    best_iteration: int | None = None
    backtracks: int = 0


class Subscriber(Protocol):
    def on_event(self, event: Event) -> None: ...


@dataclass
class FitResult:
    raw: np.ndarray  # (H, W, C) float32, cropped to the requested size: the last raw output
    ema: np.ndarray  # the averaged output at the stop rule's best iteration (or the last)
    iterations: int  # iterations run
    best_iteration: int  # the iteration whose averaged output is ``ema``
    seconds: float
    final_loss: float
    interrupted: bool
    backtracks: int
    stop_reason: str
    precision: str = "fp32"
    history: list[dict] = field(default_factory=list)


@dataclass
class Member:
    """One image of a fit: its problem, observation and configuration (one per image in a group).

    ``observed`` is ``(H, W, C)`` float32, already padded to the net's multiple; ``crop`` the
    size to cut the result (and metrics) back to; ``reference`` a clean ``crop``-sized image for
    live PSNR/SSIM. Each member needs its own ``config`` object: stop rules and schedules keep
    state.
    """

    problem: Problem
    observed: np.ndarray
    config: FitConfig
    crop: tuple[int, int] | None = None
    reference: np.ndarray | None = None
    subscribers: Sequence[Subscriber] = ()


# What must be equal across a group: the members share one net call, one optimiser step and one
# stream of random numbers per iteration.
SHARED = ("iters", "lr", "reg_noise", "ema", "ema_warmup", "input_scale", "precision", "seed", "check_every",
          "backtrack_ratio", "input", "recorrupt")
