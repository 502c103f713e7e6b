"""The loop's parts, each with one job: the input, the running average, backtracking, each member's record.

:func:`dipcli.optim.loop.fit_group` is a short loop over these: it draws the input
(:class:`Input`), steps the net, updates the average of the outputs (:class:`Average`), and at
each check lets :class:`Backtracking` undo a diverged step and each member's :class:`Track`
consult its stop rule, score against a reference and tell its subscribers.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence

import torch
from torch import nn

from dipcli.metrics import psnr, ssim
from dipcli.optim.config import Check, Event, FitConfig, FitResult, Member
from dipcli.optim.losses import data_loss
from dipcli.tensors import jitter, to_hwc, to_nchw

# A fit that diverges at this many checks in a row, each time from the last good weights, will
# not recover (an impossible learning rate, a broken input): it fails instead of writing garbage.
MAX_RESTARTS = 5


class FitDiverged(RuntimeError):
    """The fit kept diverging however often it went back to its last good weights."""


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


class Input:
    """What the net takes in at each step: a fixed random code (the DIP paper's) or the
    observations themselves (Jo, Chun & Choi, ICCV 2021), moved by fresh jitter at every step.

    One jitter draw serves a whole group (broadcast over its members), so each member sees the
    noise it would see fitted alone with the seed. A recorrupted fit of a problem whose noise
    model is not white (a photo's: :class:`dipcli.physics.noise_models.CameraNoise`) is shaken by a draw
    of that noise instead, e = α·n with α = ``reg_noise`` / σ, one per member (each has its own
    noise and brightness), so that the input's noise and the target's are independent
    (:mod:`dipcli.optim.losses`).
    """

    def __init__(self, config: FitConfig, net: nn.Module, ys: Sequence[torch.Tensor], size: tuple[int, int],
                 input_depth: int | None, gen: torch.Generator, device: torch.device,
                 noises: Sequence = ()) -> None:
        if config.input == "observation":
            z = torch.cat(list(ys))  # each member's own observation (a Stack maps input i to net i)
            if code_shape(net, *size, input_depth)[0] != z.shape[1]:
                raise ValueError(f"fit: input 'observation' has {z.shape[1]} channels; build the net with "
                                 f"input_depth={z.shape[1]}")
        elif config.input == "code":
            z = torch.rand(1, *code_shape(net, *size, input_depth), generator=gen) * config.input_scale
            z = z.to(device)
        else:
            raise ValueError(f"fit: unknown input {config.input!r}; choose code or observation")
        self.z = z.contiguous(memory_format=torch.channels_last)
        self.jitter = config.reg_noise
        self.members = len(ys)
        shaped = config.recorrupt and self.jitter > 0 and any(n is not None and not n.white for n in noises)
        # Each member's noise, drawn at its own brightness: (α, its sampler).
        self.shaped = [(self.jitter / n.sigma, n.sampler(y)) for n, y in zip(noises, ys, strict=True)] \
            if shaped else None

    def draw(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This step's input and the jitter added to it (None without jitter): ``(1, …)`` for a
        white jitter shared by a group, one per member for a draw of their noise."""
        if self.shaped is not None:
            shake = torch.cat([alpha * draw() for alpha, draw in self.shaped])
            return self.z + shake, shake
        shake = self.jitter * jitter(self.z[:1]) if self.jitter > 0 else None
        inp = self.z + shake if shake is not None else self.z
        if self.members > 1 and inp.shape[0] == 1:
            inp = inp.expand(self.members, *inp.shape[1:])
        return inp, shake


class Average:
    """The exponential moving average of the outputs, which is what a fit writes.

    With a warm-up w > 0 the decay at iteration t is min(decay, 1 − w / (w + 1 + t)): the average
    spans about t / w iterations until that reaches 1 / (1 − decay), so it follows the fast early
    climb instead of dragging the first, poor outputs along.
    """

    def __init__(self, decay: float, warmup: float) -> None:
        self.decay, self.warmup = decay, warmup
        self.value: torch.Tensor | None = None

    def update(self, out: torch.Tensor, it: int) -> None:
        decay = self.decay
        if self.warmup:
            decay = min(decay, 1.0 - self.warmup / (self.warmup + 1 + it))
        self.value = out.clone() if self.value is None else self.value.lerp_(out, 1.0 - decay)


class Backtracking:
    """Goes back to the last good weights, optimiser state and average when a member diverges.

    A group restores only the diverged member's slice of every stacked weight and Adam moment;
    the others go on where they are.
    """

    def __init__(self, net: nn.Module, opt: torch.optim.Optimizer, members: int, config: FitConfig) -> None:
        self.net, self.opt, self.n, self.config = net, opt, members, config
        self.good = self.snapshot(None)
        self.good_loss = [math.inf] * members
        self.in_a_row = [0] * members

    def snapshot(self, ema: torch.Tensor | None) -> tuple[dict, dict, torch.Tensor | None]:
        average = None if ema is None else ema.clone()
        return copy.deepcopy(self.net.state_dict()), copy.deepcopy(self.opt.state_dict()), average

    def diverged(self, i: int, loss: float) -> bool:
        return not math.isfinite(loss) or loss > self.config.backtrack_ratio * self.good_loss[i]

    def restore(self, i: int, average: Average) -> None:
        """Put member ``i`` back; refuse to go on after :data:`MAX_RESTARTS` restarts in a row."""
        self.in_a_row[i] += 1
        if self.in_a_row[i] > MAX_RESTARTS:
            raise FitDiverged(f"the loss became non-finite or exploded at {MAX_RESTARTS + 1} checks in a "
                              f"row, even from the last good weights (learning rate {self.config.lr:g}); "
                              "lower --lr")
        weights, moments, saved = self.good
        if self.n == 1:
            self.net.load_state_dict(weights)
            self.opt.load_state_dict(moments)
            average.value = saved.clone() if saved is not None else None
            return
        with torch.no_grad():
            for name, tensor in self.net.state_dict().items():
                if tensor.dim() and tensor.shape[0] == self.n:
                    tensor[i] = weights[name][i]
            for k, param in enumerate(self.opt.param_groups[0]["params"]):
                kept = moments["state"].get(k, {})
                for key, value in self.opt.state.get(param, {}).items():
                    if key in kept and value.dim() and value.shape[0] == self.n:
                        value[i] = kept[key][i]
            if saved is not None and average.value is not None:
                average.value[i] = saved[i]

    def keep(self, healthy: Sequence[int], losses: Sequence[float], ema: torch.Tensor | None) -> None:
        """This check's state is the new good one for the members that did not diverge."""
        self.good = self.snapshot(ema)
        for i in healthy:
            self.in_a_row[i] = 0
            self.good_loss[i] = losses[i]


class Track:
    """One member of a fit: its stop rule's candidate, its curves and scores, its result.

    ``crop`` cuts the padded output back to the image; ``reference`` (a clean image, same size)
    gives live PSNR/SSIM, measured the problem's way.
    """

    def __init__(self, member: Member, observed: torch.Tensor, size: tuple[int, int],
                 device: torch.device) -> None:
        self.member, self.y = member, observed
        self.crop = member.crop or size
        self.ref = (to_nchw(member.reference, device, channels_last=True)
                    if member.reference is not None else None)
        mask = member.problem.free_pixels(observed)
        self.free = mask[..., :self.crop[0], :self.crop[1]] if mask is not None else None
        self.best: torch.Tensor | None = None  # the stop rule's candidate, kept on the device
        self.best_at = 0
        self.best_psnr, self.best_psnr_at = -math.inf, 0
        self.history: list[dict] = []
        self.backtracks = 0
        self.loss = math.nan
        self.result: FitResult | None = None

    def check(self, it: int, total: int, out: torch.Tensor, ema: torch.Tensor, lam: float | None,
              elapsed: float) -> bool:
        """A check of ``out``/``ema`` (this member's, uncropped): the stop rule's verdict, an
        event to the subscribers; True when the rule says to stop."""
        m, (ch, cw) = self.member, self.crop
        raw_c, ema_c = out[:, :, :ch, :cw], ema[:, :, :ch, :cw]
        stop = m.config.stop
        if stop.observe(Check(it, total, self.loss, data_loss(m.problem, ema, self.y).item(), raw_c, ema_c,
                              self.free)):
            self.best, self.best_at = ema_c.clone(), it
        event = Event(iteration=it, total=total, loss=self.loss, elapsed=elapsed, reg_weight=lam,
                      stop_state=stop.describe(), raw=raw_c, ema=ema_c, backtracks=self.backtracks)
        if self.ref is not None:
            self.score(event, it)
        self.history.append({k: v for k, v in vars(event).items() if not isinstance(v, torch.Tensor)})
        for sub in m.subscribers:
            sub.on_event(event)
        return stop.should_stop()

    def score(self, event: Event, it: int) -> None:
        problem = self.member.problem
        luma, border = problem.luma, problem.border
        event.psnr_raw = psnr(problem.scored(event.raw, self.ref), self.ref, luma=luma, border=border).item()
        event.psnr_ema = psnr(problem.scored(event.ema, self.ref), self.ref, luma=luma, border=border).item()
        event.ssim_ema = ssim(event.ema, self.ref).item()
        if event.psnr_ema > self.best_psnr:
            self.best_psnr, self.best_psnr_at = event.psnr_ema, it
        event.best_psnr, event.best_iteration = self.best_psnr, self.best_psnr_at

    def settle(self, reason: str, it: int, out: torch.Tensor, ema: torch.Tensor | None, start: float,
               precision: str) -> None:
        """This member is done: keep its result as of now (``out``/``ema``: its own, uncropped).

        A rule that never fired leaves the latest average as the best guess: in the stopping
        benchmark's 22 budget-ended runs it beat the rule's interim candidate in 21.
        """
        ch, cw = self.crop
        chosen = self.best if reason != "budget" and self.best is not None else None
        if ema is None:  # interrupted before the first step finished
            kept = out[:, :, :ch, :cw]
        else:
            kept = chosen if chosen is not None else ema[:, :, :ch, :cw]
        self.result = FitResult(
            raw=to_hwc(out[:, :, :ch, :cw]), ema=to_hwc(kept), iterations=it,
            best_iteration=self.best_at if chosen is not None else it, seconds=time.perf_counter() - start,
            final_loss=self.loss, interrupted=reason == "interrupted", backtracks=self.backtracks,
            stop_reason=reason, precision=precision, history=self.history)
