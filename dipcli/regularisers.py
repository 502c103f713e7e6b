"""Explicit regularisers for the fitting loop, and the schedules that switch them off.

Two-stage denoising ("It Takes Two to Better Denoise") is the loop with a TV term whose weight
follows a schedule: λ for the first part of the run, then 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

TV_KINDS = ("anisotropic", "isotropic")
SCHEDULES = ("step", "linear", "cosine")


def total_variation(x: torch.Tensor, kind: str = "anisotropic") -> torch.Tensor:
    """TV of a (N, C, H, W) image as a *mean per pixel and channel*, so λ means the same at any size.

    The report used the *sum* over a 512×512×3 image: λ_sum · Σ = λ_mean · mean when
    λ_mean = λ_sum · (H·W·C), so its 1e-6 is 1e-6 · 786,432 ≈ 0.79 here.
    """
    dh = x[..., 1:, :-1] - x[..., :-1, :-1]
    dw = x[..., :-1, 1:] - x[..., :-1, :-1]
    if kind == "anisotropic":
        per_pixel = dh.abs() + dw.abs()
    elif kind == "isotropic":
        # ε keeps the gradient finite where the image is flat; subtracting √ε keeps TV(flat) = 0.
        eps = 1e-12
        per_pixel = torch.sqrt(dh**2 + dw**2 + eps) - eps**0.5
    else:
        raise ValueError(f"unknown TV kind {kind!r}; choose one of: {', '.join(TV_KINDS)}")
    return per_pixel.mean()


def schedule(kind: str, weight: float, total: int, fraction: float) -> Callable[[int], float]:
    """λ(iteration) over a first stage of ``fraction`` × ``total`` iterations, 0 afterwards.

    ``step`` keeps λ for the whole first stage (the report's method); ``linear`` and ``cosine``
    decay it to 0 by the end of the first stage.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule {kind!r}; choose one of: {', '.join(SCHEDULES)}")
    if weight < 0:
        raise ValueError(f"TV weight {weight:g} is negative; give λ ≥ 0")
    if not 0 < fraction < 1:
        raise ValueError(f"stage-1 fraction {fraction:g} must lie strictly between 0 and 1")
    end = max(1, round(total * fraction))

    def lam(it: int) -> float:
        if it > end:
            return 0.0
        t = (it - 1) / end
        if kind == "step":
            return weight
        if kind == "linear":
            return weight * (1.0 - t)
        return weight * 0.5 * (1.0 + math.cos(math.pi * t))

    lam.stage1_end = end  # type: ignore[attr-defined]
    return lam
