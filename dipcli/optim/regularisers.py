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


class TV:
    """The TV term as a regulariser for the loop (the observation is not needed)."""

    def __init__(self, kind: str = "anisotropic") -> None:
        if kind not in TV_KINDS:
            raise ValueError(f"unknown TV kind {kind!r}; choose one of: {', '.join(TV_KINDS)}")
        self.kind = kind

    def __call__(self, output: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        return total_variation(output, self.kind)


class PrefilterTarget:
    """Stage 1 of the report's other reading: fit a TV-denoised copy of the observation.

    Used with the data term switched off in stage 1, so the net first learns the smooth
    image, then (stage 2) the noisy one from those weights. The Chambolle weight is σ (0–1
    scale), the strength at which TV removes noise of that level without flattening edges.
    """

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma
        self.target: torch.Tensor | None = None

    def __call__(self, output: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        if self.target is None:
            from skimage.restoration import denoise_tv_chambolle

            y = observed[0].detach().float().permute(1, 2, 0).cpu().numpy()
            smooth = denoise_tv_chambolle(y, weight=self.sigma, channel_axis=2)
            self.target = torch.from_numpy(smooth.transpose(2, 0, 1).copy())[None].to(
                device=observed.device, dtype=observed.dtype).contiguous(
                memory_format=torch.channels_last)
        return torch.mean((output - self.target) ** 2)


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
