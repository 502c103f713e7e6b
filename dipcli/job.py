"""One restoration job from start to finish: read, pad, build, fit, crop, write.

Every subcommand goes through :func:`run_job`; the CLI only turns options into a :class:`Job`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dipcli.fit import FitConfig, FitResult, Subscriber, fit, resolve_device
from dipcli.io import Image, crop_to, pad_to_multiple, write_image
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
    result = fit(
        job.problem, net, padded, job.config,
        input_depth=spec.input_depth, crop=size, reference=job.reference,
        device=device, subscribers=job.subscribers,
    )
    pixels = result.raw if job.write_raw else result.ema
    image = job.observed.with_pixels(crop_to(pixels, size))
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
