"""One restoration job from start to finish: read, pad, build, fit, crop, write.

Every subcommand goes through :func:`run_job`; the CLI only turns options into a :class:`Job`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dipcli.fit import FitConfig, FitResult, Subscriber, fit, resolve_device
from dipcli.io import Image, pad_to_multiple, write_image
from dipcli.nets import NetSpec, build_net, count_params

MIN_SIDE = 8


@dataclass
class Job:
    problem: object
    observed: Image  # what the net must explain (noisy image, masked image, ...)
    spec: NetSpec
    config: FitConfig
    output: Path
    device: str = "auto"
    reference: np.ndarray | None = None  # clean image for live PSNR/SSIM
    write_raw: bool = False  # write the last raw output instead of the average
    composite: bool = True  # for problems that know pixels exactly (inpainting): keep them
    subscribers: list[Subscriber] = field(default_factory=list)


@dataclass
class JobResult:
    fit: FitResult
    params: int
    device: str
    psnr: float | None
    ssim: float | None
    image: Image


def check_size(image: Image) -> None:
    h, w = image.shape
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"image is {w}×{h}; dip needs at least {MIN_SIDE} pixels per side")


def resized_like(template: Image, pixels: np.ndarray) -> Image:
    """``pixels`` in the template's format; an alpha channel follows a change of size."""
    image = template.with_pixels(pixels)
    if template.alpha is not None and template.alpha.shape != pixels.shape[:2]:
        from skimage.transform import resize

        alpha = resize(template.alpha, pixels.shape[:2], order=1, preserve_range=True)
        image = replace(image, alpha=np.round(alpha).astype(template.alpha.dtype))
    return image


def run_job(job: Job) -> JobResult:
    """Fit and write. The output is written even when the fit was interrupted (best so far)."""
    check_size(job.observed)
    spec = job.spec.resolved()
    device = resolve_device(job.device)
    # Pad to the net's multiple, and to at least two pixels at the deepest scale.
    multiple = spec.multiple
    padded, size = pad_to_multiple(job.observed.pixels, multiple)
    min_side = 2 * multiple
    if min(padded.shape[:2]) < min_side:
        extra = (max(0, min_side - padded.shape[0]), max(0, min_side - padded.shape[1]))
        padded = np.pad(padded, ((0, extra[0]), (0, extra[1]), (0, 0)), mode="symmetric")
    net = build_net(spec, out_channels=padded.shape[2], seed=job.config.seed)
    # Problems whose output is larger than the observation (super-resolution) say how much.
    out_size = getattr(job.problem, "out_size", None)
    result = fit(
        job.problem, net, padded, job.config,
        input_depth=spec.input_depth, reference=job.reference, device=device,
        out_size=out_size(padded.shape[:2]) if out_size else None,
        crop=out_size(size) if out_size else size, subscribers=job.subscribers,
    )
    pixels = result.raw if job.write_raw else result.ema
    if job.composite and hasattr(job.problem, "composite"):
        pixels = job.problem.composite(pixels, job.observed.pixels)
    image = resized_like(job.observed, pixels)
    write_image(job.output, image)
    psnr = ssim = None
    if job.reference is not None:
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity

        psnr = float(peak_signal_noise_ratio(job.reference, image.pixels, data_range=1.0))
        ssim = float(structural_similarity(
            job.reference, image.pixels, data_range=1.0, channel_axis=2,
            gaussian_weights=True, use_sample_covariance=False,
        ))
        psnr = psnr if math.isfinite(psnr) else 99.0
    return JobResult(result, count_params(net), str(device), psnr, ssim, image)
