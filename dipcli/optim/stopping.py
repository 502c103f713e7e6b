"""Stop rules: when to end a fit, and which averaged output to keep.

DIP fits the image before the noise, so the restored image is best somewhere in the middle of
the run and the iteration budget alone is a poor stop. The rules here implement the
:class:`dipcli.optim.loop.StopRule` protocol; the loop consults one at every check (every
``FitConfig.check_every`` iterations) and still enforces the budget as the upper bound.

* :class:`WMVStop` — ES-WMV (Wang et al., "Early Stopping for Deep Image Prior", TMLR 2023):
  the running variance of the recent raw outputs is lowest near the PSNR peak. Needs nothing
  but the outputs, so it works for every task.
* :class:`DiscrepancyStop` — Morozov's discrepancy principle for denoising with a known σ: stop
  once the averaged output explains the observation down to the noise level.
* :class:`AnyStop` — several rules; the first that fires ends the fit.

:func:`make_stop` maps the ``--stop`` option to a rule.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from dipcli.optim.config import Check, FixedStop, StopRule
from dipcli.physics import GaussianNoise
from dipcli.physics.noise import clipped_noise_variance

STOP_NAMES = ("auto", "wmv", "discrepancy", "fixed")


@dataclass
class WMVStop:
    """ES-WMV: keep the averaged output where the windowed variance of raw outputs is lowest.

    The score at a check is the mean over pixels of the per-pixel variance of the raw outputs
    of the last ``window`` iterations; over the free pixels only (``Check.free``: the holes of
    an inpainting) where the problem has some. The rule only sees the outputs at checks, so the window
    is *subsampled*: with checks every k iterations it holds ``window / k`` samples (10 for the
    defaults, the paper used all 100); never fewer than 2. The samples stay on the device and
    the variance is computed there in two passes over at most ``window / k`` images — a few
    image-sized operations every k iterations, negligible beside a forward/backward pass, and
    exact in float32 where running sums of x and x² would lose the small variance to
    cancellation.

    No best is declared until the window spans ``window`` iterations, nor before the score has
    fallen to ``arm`` × its peak so far: in the first iterations the output is a nearly
    constant grey whose variance is low for the wrong reason, and without this guard that early
    minimum won on 512² Baboon at σ = 50 (kept at iteration 110, 5.5 dB below the peak; GPU run
    of benchmarks/stopping.py). Checks up to ``start`` are ignored: two-stage fits start WMV at
    the end of stage 1, whose TV term keeps the output still (the rule fired right after the
    switch, 8 dB early, in the same run). The fit stops once the score has not improved for
    ``patience`` iterations: by default ``fraction`` of the budget with a ``floor`` (the paper:
    1,000 of 5,000 iterations; here 0.2 × budget, at least 300).
    """

    window: int = 100
    patience: int | None = None  # None: max(floor, fraction × check.total)
    fraction: float = 0.2
    floor: int = 300
    arm: float = 0.9
    start: int = 0
    name: str = "wmv"
    best_iteration: int | None = field(default=None, init=False)
    best_score: float = field(default=math.inf, init=False)
    score: float | None = field(default=None, init=False)
    peak_score: float = field(default=0.0, init=False)
    _samples: deque = field(default_factory=deque, init=False, repr=False)
    _iteration: int = field(default=0, init=False, repr=False)
    _total: int = field(default=0, init=False, repr=False)

    def patience_for(self, total: int) -> int:
        """Iterations without a new minimum before the rule fires, for a budget of ``total``."""
        if self.patience is not None:
            return self.patience
        return max(self.floor, round(self.fraction * total))

    @property
    def samples(self) -> int:
        """How many raw outputs the window holds now."""
        return len(self._samples)

    def observe(self, check: Check) -> bool:
        self._iteration, self._total = check.iteration, check.total
        if check.iteration <= self.start:
            return False
        # A copy: the loop owns its tensors and may reuse them.
        self._samples.append((check.iteration, check.raw.detach().clone()))
        while len(self._samples) > 2 and self._samples[0][0] <= check.iteration - self.window:
            self._samples.popleft()
        if check.iteration < self.start + self.window or len(self._samples) < 2:
            self.score = None
            return False
        stack = torch.stack([s for _, s in self._samples]).float()
        variance = stack.var(dim=0, unbiased=False)
        if check.free is None:
            self.score = variance.mean().item()
        else:  # only where the output is free (an inpainting hole)
            self.score = ((variance * check.free).sum() / (check.free.sum() * variance.shape[1])).item()
        self.peak_score = max(self.peak_score, self.score)
        if self.score > self.arm * self.peak_score:  # not yet past the early rise
            return False
        if self.score < self.best_score:
            self.best_score, self.best_iteration = self.score, check.iteration
            return True
        return False

    def should_stop(self) -> bool:
        if self.best_iteration is None:
            return False
        return self._iteration - self.best_iteration >= self.patience_for(self._total)

    def describe(self) -> str:
        if self.start and self._iteration <= self.start:
            return f"WMV idle until iteration {self.start}"
        if self.best_iteration is None and self.score is None:
            filled = min(self._iteration - self.start, self.window)
            return f"WMV filling window {filled}/{self.window}"
        if self.best_iteration is None:
            return "WMV waiting for the output variance to fall from its peak"
        waited = self._iteration - self.best_iteration
        return f"WMV best @ {self.best_iteration}, patience {waited}/{self.patience_for(self._total)}"


@dataclass
class DiscrepancyStop:
    """Morozov's discrepancy principle for denoising with a known noise level σ (0–1 scale).

    The data loss of the averaged output (mean squared residual per pixel) falls towards the
    noise variance from above while the net fits the image, and goes below it once the net
    fits the noise. The rule fires at the first check, at or after ``min_iters``, where

        ema_loss ≤ tolerance × v,   v = clipped_noise_variance(averaged output, σ) ≤ σ²,

    and keeps the averaged output of that check. ``tolerance`` = 1: with the residual modelled
    as (unfitted signal)² + v − (fitted noise)², it reaches v where the two errors are equal,
    which is at or a little before the PSNR peak for an error that decays faster than the noise
    fit grows. The clipping correction v matters more than the tolerance: against σ² itself the
    rule fires with an unfitted-signal error of σ² − v, which at σ = 50/255 reaches several dB
    on images with saturated areas. ``clipped=False`` uses σ² for observations that were not
    clipped. ``min_iters`` (about one EMA time constant at the default decay 0.99) guards
    against firing before the average has settled, e.g. on nearly flat images.
    """

    sigma: float
    tolerance: float = 1.0
    min_iters: int = 100
    clipped: bool = True
    name: str = "discrepancy"
    fired_at: int | None = field(default=None, init=False)
    ratio: float | None = field(default=None, init=False)  # ema_loss / v at the last check
    noise_floor: float | None = field(default=None, init=False)  # v at the last check

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise ValueError(f"the discrepancy stop needs a noise level σ > 0, got {self.sigma!r}")

    def observe(self, check: Check) -> bool:
        if self.fired_at is not None:
            return False
        if self.clipped:
            self.noise_floor = clipped_noise_variance(check.ema, self.sigma)
        else:
            self.noise_floor = self.sigma**2
        self.ratio = check.ema_loss / max(self.noise_floor, 1e-12)
        if check.iteration >= self.min_iters and self.ratio <= self.tolerance:
            self.fired_at = check.iteration
            return True
        return False

    def should_stop(self) -> bool:
        return self.fired_at is not None

    def describe(self) -> str:
        if self.fired_at is not None:
            return f"noise level reached @ {self.fired_at}"
        if self.ratio is None:
            return "residual/noise —"
        return f"residual/noise {self.ratio:.3f} (stop ≤ {self.tolerance:g})"


class AnyStop:
    """Several rules at once: every rule sees every check, and the first to fire ends the fit.

    The kept output is the candidate of the rule that fired. The loop keeps one candidate (the
    averaged output of the last check whose ``observe`` returned True), so this rule passes on
    every rule's "new best" until one fires, and at the firing check only the winner's. That is
    exact when at most one rule flags candidates before it fires (e.g. WMV) and the others flag
    only the check they fire at (discrepancy) — the combinations :func:`make_stop` builds. If
    two rules fire at the same check, the one listed first wins. If none fires, the budget
    ends the fit and the last flagged candidate is kept.

    ``name`` is the combination until a rule fires, then that rule's name, so the loop's
    ``stop_reason`` says which one stopped it.
    """

    def __init__(self, rules: Sequence[StopRule], label: str | None = None) -> None:
        if not rules:
            raise ValueError("AnyStop needs at least one rule")
        self.rules = list(rules)
        self.label = label or "+".join(r.name for r in self.rules)
        self.fired: StopRule | None = None

    @property
    def name(self) -> str:
        return self.fired.name if self.fired is not None else self.label

    def observe(self, check: Check) -> bool:
        flags = [rule.observe(check) for rule in self.rules]
        for rule, flag in zip(self.rules, flags, strict=True):
            if rule.should_stop():
                self.fired = rule
                return flag
        return any(flags)

    def should_stop(self) -> bool:
        return self.fired is not None

    def describe(self) -> str:
        return " · ".join(rule.describe() for rule in self.rules)


def make_stop(name: str, noise: GaussianNoise | None, total: int, start: int = 0) -> StopRule:
    """The rule for ``--stop NAME`` on a problem with noise model ``noise`` and a budget ``total``.

    ``start``: the iteration from which WMV watches (two-stage: the end of stage 1).

    ``auto`` asks the problem's noise model, not the task: with a given σ (additive Gaussian
    noise that the user stated), the discrepancy principle alone (its model then holds, and it
    was the better rule in the benchmark); with an estimated σ, the discrepancy principle and
    WMV together, since WMV catches the runs where the noise model fails; without a noise model
    (inpainting, super-resolution), WMV alone.
    """
    if name not in STOP_NAMES:
        raise ValueError(f"unknown stop rule {name!r}; choose one of: {', '.join(STOP_NAMES)}")
    sigma = None if noise is None else noise.sigma
    if sigma is not None and sigma >= 1:
        raise ValueError(f"sigma {sigma:g} is not on the 0–1 scale (divide a 0–255 value by 255)")
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be a positive noise level, got {sigma:g}")
    if name == "fixed":
        return FixedStop()
    wmv = WMVStop(patience=WMVStop().patience_for(total), start=start)
    if name == "wmv":
        return wmv
    if name == "discrepancy":
        if sigma is None:
            raise ValueError("--stop discrepancy needs the noise level: pass --sigma")
        return DiscrepancyStop(sigma)
    if noise is not None and not noise.estimated:
        # A known σ: the discrepancy principle alone. In the stopping benchmark (36 denoising
        # runs) it was never more than 0.22 dB from the peak, while WMV, each of the 6 times it
        # fired first, cost 0.6–1.2 dB.
        return DiscrepancyStop(sigma)
    if noise is not None:
        # An estimated σ may be off, and real noise is not white: WMV, which needs no noise
        # model, stays armed beside the residual test.
        return AnyStop([DiscrepancyStop(sigma), wmv], label="auto")
    return wmv
