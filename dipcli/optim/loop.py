"""The one optimisation loop that every subcommand runs.

A subcommand describes its job as a Problem (forward operator and data loss), a generator, and a
:class:`FitConfig`; :func:`fit` does the rest and reports what happens as :class:`Event` s to
subscribers. It never prints. Two-stage denoising, automatic stopping and the like are
configurations of this loop (a regulariser with a weight schedule, a stop rule), not new loops.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from dipcli.metrics import ssim
from dipcli.physics.problems import Problem
from dipcli.tensors import jitter, to_hwc, to_nchw


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
    # > 0: the data loss is SURE, Stein's unbiased estimate of the MSE to the clean image for the
    # problem's Gaussian noise (Stein 1981; as a training loss: Metzler et al. 2018, Soltanayev &
    # Chun 2018), its divergence term from one Monte-Carlo probe of this size (Ramani, Blu & Unser,
    # IEEE TIP 2008): a second pass of the net on the input moved by sure_eps · N(0, 1). Only a
    # net whose input is the observation has a divergence to penalise (input="observation").
    sure_eps: float = 0.0
    # True: the data loss is Recorrupted-to-Recorrupted (Pang, Zheng, Quan & Ji, CVPR 2021). The
    # input is the observation plus the step's jitter e = α·N(0, σ²) (reg_noise = α·σ), the target
    # the observation minus e/α². For Gaussian noise of σ the two are independent noisy copies of
    # the clean image, so the mean squared error to the target is, in expectation, the error to
    # the clean image plus a constant: an unbiased loss, like SURE, with one pass of the net
    # instead of two. Needs input="observation" and a problem with Gaussian noise of known σ.
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


PRECISIONS = ("fp32", "bf16")
# A fit that diverges at this many checks in a row, each time from the last good weights, will
# not recover (an impossible learning rate, a broken input): it fails instead of writing garbage.
MAX_RESTARTS = 5


class FitDiverged(RuntimeError):
    """The fit kept diverging however often it went back to its last good weights."""


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` is bfloat16 where the hardware computes it natively (recent CUDA GPUs; CPUs with
    AVX-512 BF16 or AMX), where it roughly halves the time of a step; float32 elsewhere."""
    if name == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        if device.type == "cpu":
            native = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()
            return "bf16" if native else "fp32"
        return "fp32"
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose auto, {', '.join(PRECISIONS)}")
    return name


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is visible; use --device auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps: Apple MPS is not available here; use --device auto or cpu")
    if name not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unknown device {name!r}; choose auto, cpu, cuda or mps")
    return torch.device(name)


def code_shape(net: nn.Module, h: int, w: int, input_depth: int | None = None) -> tuple[int, int, int]:
    """(channels, height, width) of the input code for an ``h × w`` output of ``net``."""
    declared = getattr(net, "input_shape", None)
    if declared is None:
        if input_depth is None:
            raise ValueError("fit: give input_depth for a net without an input_shape(h, w) method")
        return input_depth, h, w
    shape = tuple(declared(h, w))
    if input_depth is not None and input_depth != shape[0]:
        raise ValueError(f"fit: input_depth {input_depth} but the net takes {shape[0]} input channels")
    return shape


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
          "backtrack_ratio", "input", "sure_eps", "recorrupt")


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
    ``crop``-sized image for live PSNR/SSIM, measured the problem's way (``problem.psnr``: e.g.
    the Y channel for super-resolution). The input code's shape comes from
    ``net.input_shape(h, w)`` where the net has one (decoders take a small code), else it is
    ``input_depth`` channels at full size. Ctrl-C ends the fit early and still returns the result
    so far.
    """
    member = Member(problem, observed, config, crop, reference, subscribers)
    return fit_group([member], net, input_depth=input_depth, out_size=out_size, device=device)[0]


def fit_group(
    members: Sequence[Member],
    net: nn.Module,
    *,
    input_depth: int | None = None,
    out_size: tuple[int, int] | None = None,
    device: torch.device | str = "cpu",
) -> list[FitResult]:
    """:func:`fit` for several images of one size at once: the loop, for a group of one or more.

    With more than one member, ``net`` is a :class:`dipcli.nets.stack.Stack` of one net per
    image, which runs them as one batched call; each image keeps its own weights, optimiser
    state (Adam is elementwise, so one Adam over the stacked weights is one per image), average,
    backtracking and stop rule. All members share the seed, so they share the input code and
    its jitter, as separate fits with that seed would. A member whose rule stops is settled
    there (its slot keeps computing until the last one stops, at no extra cost to the others).
    """
    n = len(members)
    config = members[0].config
    for m in members[1:]:
        differ = [k for k in SHARED if getattr(m.config, k) != getattr(config, k)]
        if differ:
            raise ValueError(f"fit_group: members differ in {', '.join(differ)}")
    device = torch.device(device)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    h, w = out_size or members[0].observed.shape[:2]
    crops = [m.crop or (h, w) for m in members]
    ys = [to_nchw(m.observed, device, channels_last=True) for m in members]
    refs = [to_nchw(m.reference, device, channels_last=True) if m.reference is not None else None
            for m in members]
    if config.input == "observation":
        z = torch.cat(ys)  # each member's own observation (a Stack maps input i to net i)
        if code_shape(net, h, w, input_depth)[0] != z.shape[1]:
            raise ValueError(f"fit: input 'observation' has {z.shape[1]} channels; build the net with "
                             f"input_depth={z.shape[1]}")
    elif config.input == "code":
        z = torch.rand(1, *code_shape(net, h, w, input_depth), generator=gen) * config.input_scale
        z = z.to(device)
    else:
        raise ValueError(f"fit: unknown input {config.input!r}; choose code or observation")
    z = z.contiguous(memory_format=torch.channels_last)
    sure = config.sure_eps > 0
    if sure and config.input != "observation":
        raise ValueError("fit: SURE needs the observation as the net's input (else its divergence is 0)")
    if config.recorrupt and (config.input != "observation" or config.reg_noise <= 0 or sure):
        raise ValueError("fit: recorrupt needs the observation as the input, a jitter (reg_noise > 0) "
                         "and no SURE")
    net = net.to(device)
    if n == 1:  # a stack's weights are 5-d: channels-last is for plain 4-d convolutions
        net = net.to(memory_format=torch.channels_last)
    net = net.train()
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)

    ema: torch.Tensor | None = None
    best: list[torch.Tensor | None] = [None] * n  # each rule's candidate, kept on the device
    best_at = [0] * n
    out = torch.cat(ys)
    good = _snapshot(net, opt, None)
    good_loss = [math.inf] * n
    best_psnr, best_iter = [-math.inf] * n, [0] * n
    history: list[list[dict]] = [[] for _ in members]
    backtracks = [0] * n
    in_a_row = [0] * n  # consecutive checks that each member diverged at
    results: list[FitResult | None] = [None] * n
    last_loss = [math.nan] * n
    it = 0
    start = time.perf_counter()
    precision = resolve_precision(config.precision, device)
    bf16 = precision == "bf16"

    def settle(i: int, reason: str) -> None:
        """Member ``i`` is done: keep its result as of now."""
        ch, cw = crops[i]
        chosen = best[i] if reason != "budget" and best[i] is not None else None
        if ema is None:  # interrupted before the first step finished
            kept = out[i:i + 1, :, :ch, :cw]
        else:
            kept = chosen if chosen is not None else ema[i:i + 1, :, :ch, :cw]
        # A rule that never fired leaves the latest average as the best guess: in the stopping
        # benchmark's 22 budget-ended runs it beat the rule's interim candidate in 21 (+0.10 dB
        # on average, -0.06 dB in the other one).
        results[i] = FitResult(
            raw=to_hwc(out[i:i + 1, :, :ch, :cw]), ema=to_hwc(kept), iterations=it,
            best_iteration=best_at[i] if chosen is not None else it,
            seconds=time.perf_counter() - start, final_loss=last_loss[i],
            interrupted=reason == "interrupted", backtracks=backtracks[i], stop_reason=reason,
            precision=precision, history=history[i],
        )

    free = [_free_pixels(m.problem, y, crop) for m, y, crop in zip(members, ys, crops, strict=True)]
    active = list(range(n))
    try:
        for it in range(1, config.iters + 1):
            # One draw for one image, shared by a group's members (broadcast over the batch), so
            # each member sees the noise it would see fitted alone with the seed.
            shake = config.reg_noise * jitter(z[:1]) if config.reg_noise > 0 else None
            inp = z + shake if shake is not None else z
            if n > 1 and inp.shape[0] == 1:
                inp = inp.expand(n, *inp.shape[1:])
            probe = jitter(inp[:1]) if sure else None
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = net(inp)
                moved = net(inp + config.sure_eps * probe).float() if sure else None
            out = out.float()  # losses, EMA and metrics stay in float32
            data_losses, loss, lams = [], None, []
            for i, m in enumerate(members):
                o = out if n == 1 else out[i:i + 1]
                data_loss = m.problem.loss(o, ys[i])
                lam = m.config.reg_weight(it) if m.config.regulariser is not None else None
                fidelity = data_loss
                if config.recorrupt:
                    target = m.problem.recorrupted(ys[i], shake, config.reg_noise)
                    fidelity = m.problem.loss(o, target)
                if sure:
                    fidelity = m.problem.sure(data_loss, o, moved if n == 1 else moved[i:i + 1], probe,
                                              config.sure_eps)
                term = fidelity if m.config.data_weight is None else m.config.data_weight(it) * fidelity
                if lam:
                    term = term + lam * m.config.regulariser(o, ys[i])
                data_losses.append(data_loss)
                lams.append(lam)
                loss = term if loss is None else loss + term
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                out = out.detach()
                decay = config.ema
                if config.ema_warmup:
                    decay = min(decay, 1.0 - config.ema_warmup / (config.ema_warmup + 1 + it))
                ema = out.clone() if ema is None else ema.lerp_(out, 1.0 - decay)

            if it % config.check_every and it != config.iters:
                continue
            for i in active:
                last_loss[i] = data_losses[i].item()
            limit = config.backtrack_ratio
            diverged = [i for i in active
                        if not math.isfinite(last_loss[i]) or last_loss[i] > limit * good_loss[i]]
            for i in diverged:
                # Divergence: go back to the last good weights and carry on from there.
                ema = _restore(net, opt, good, ema, i, n)
                backtracks[i] += 1
                in_a_row[i] += 1
                if in_a_row[i] > MAX_RESTARTS:
                    raise FitDiverged(
                        f"the loss became non-finite or exploded at {MAX_RESTARTS + 1} checks in a row, "
                        f"even from the last good weights (learning rate {config.lr:g}); lower --lr")
            healthy = [i for i in active if i not in diverged]
            for i in healthy:
                in_a_row[i] = 0
            if not healthy:
                continue
            good = _snapshot(net, opt, ema)
            for i in healthy:
                good_loss[i] = last_loss[i]
                m, (ch, cw) = members[i], crops[i]
                raw_c, ema_c = out[i:i + 1, :, :ch, :cw], ema[i:i + 1, :, :ch, :cw]
                stop = m.config.stop
                check = Check(it, config.iters, last_loss[i], m.problem.loss(ema[i:i + 1], ys[i]).item(),
                              raw_c, ema_c, free[i])
                if stop.observe(check):
                    best[i], best_at[i] = ema_c.clone(), it
                event = Event(
                    iteration=it, total=config.iters, loss=last_loss[i],
                    elapsed=time.perf_counter() - start, reg_weight=lams[i],
                    stop_state=stop.describe(), raw=raw_c, ema=ema_c, backtracks=backtracks[i],
                )
                if refs[i] is not None:
                    event.psnr_raw = m.problem.psnr(event.raw, refs[i]).item()
                    event.psnr_ema = m.problem.psnr(event.ema, refs[i]).item()
                    event.ssim_ema = ssim(event.ema, refs[i]).item()
                    if event.psnr_ema > best_psnr[i]:
                        best_psnr[i], best_iter[i] = event.psnr_ema, it
                    event.best_psnr, event.best_iteration = best_psnr[i], best_iter[i]
                history[i].append({k: v for k, v in vars(event).items() if not isinstance(v, torch.Tensor)})
                for sub in m.subscribers:
                    sub.on_event(event)
                if stop.should_stop():
                    settle(i, stop.name)
            active = [i for i in active if results[i] is None]
            if not active:
                break
    except KeyboardInterrupt:
        # Kept here so that the layers above can still assemble the best so far (blend the tiles,
        # average an ensemble) and the CLI write it; the Python API raises it again afterwards
        # (dipcli.api.tasks.interrupted): a library must not swallow Ctrl-C.
        for i in active:
            if results[i] is None:
                settle(i, "interrupted")
    for i in range(n):
        if results[i] is None:
            settle(i, "budget")
    return results


def _free_pixels(problem: Problem, observed: torch.Tensor, crop: tuple[int, int]) -> torch.Tensor | None:
    """The problem's free pixels (:meth:`Problem.free_pixels`) cropped to the result."""
    mask = problem.free_pixels(observed)
    return mask[..., :crop[0], :crop[1]] if mask is not None else None


def _snapshot(net: nn.Module, opt: torch.optim.Optimizer,
              ema: torch.Tensor | None) -> tuple[dict, dict, torch.Tensor | None]:
    """The state to go back to when a fit diverges: weights, optimiser state, average."""
    average = None if ema is None else ema.clone()
    return copy.deepcopy(net.state_dict()), copy.deepcopy(opt.state_dict()), average


def _restore(net: nn.Module, opt: torch.optim.Optimizer, good: tuple, ema: torch.Tensor | None,
             i: int, n: int) -> torch.Tensor | None:
    """Put member ``i`` of ``n`` back to the snapshot ``good``; return the average to go on with.

    A group restores only its member's slice of every stacked weight and Adam moment; the others
    go on where they are.
    """
    weights, moments, average = good
    if n == 1:
        net.load_state_dict(weights)
        opt.load_state_dict(moments)
        return average.clone() if average is not None else None
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if tensor.dim() and tensor.shape[0] == n:
                tensor[i] = weights[name][i]
        for k, param in enumerate(opt.param_groups[0]["params"]):
            saved = moments["state"].get(k, {})
            for key, value in opt.state.get(param, {}).items():
                if key in saved and value.dim() and value.shape[0] == n:
                    value[i] = saved[key][i]
        if average is not None and ema is not None:
            ema[i] = average[i]
    return ema
