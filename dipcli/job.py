"""One restoration job from start to finish: read, pad, build, fit, crop, write.

Every subcommand goes through :func:`run_job`; the CLI only turns options into a :class:`Job`.
A tiled job (``--tile``) repeats the fit step, :func:`fit_image`, once per tile and blends the
outputs (:mod:`dipcli.tiling`); the loop itself is the same :func:`dipcli.fit.fit`.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dipcli.fit import FitConfig, FitResult, Subscriber, fit, resolve_device, resolve_precision
from dipcli.io import Image, pad_to_multiple, write_image
from dipcli.memory import USABLE, OutOfMemory, available_bytes, footprint, gib
from dipcli.nets import NetSpec, build_net, count_params
from dipcli.tiling import Blender, plan_tiles, tile_for, window_slices

if TYPE_CHECKING:
    import torch

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
    tile: int = 0  # fit tiles of at most this many pixels per side (dipcli.tiling); 0: the whole image
    begin: Callable[[str], None] = lambda part: None  # noqa: E731  before each fit: "" or ", tile 2/6"


@dataclass
class JobResult:
    fit: FitResult
    params: int
    device: str
    psnr: float | None
    ssim: float | None
    image: Image
    tiles: int | None = None  # how many tiles were fitted (None: the image in one piece)


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


def fit_image(problem: object, observed: np.ndarray, reference: np.ndarray | None, spec: NetSpec,
              config: FitConfig, device: torch.device,
              subscribers: Sequence[Subscriber]) -> tuple[FitResult, int]:
    """Pad, build a net and fit: the fit step of a job, for the whole image or one tile.

    Returns the result (cropped back to ``observed``'s size) and the net's parameter count; the
    net itself is dropped here, so a tiled job never holds more than one.
    """
    # Pad to the net's multiple, and to at least two pixels at the deepest scale.
    multiple = spec.multiple
    padded, size = pad_to_multiple(observed, multiple)
    min_side = 2 * multiple
    if min(padded.shape[:2]) < min_side:
        extra = (max(0, min_side - padded.shape[0]), max(0, min_side - padded.shape[1]))
        padded = np.pad(padded, ((0, extra[0]), (0, extra[1]), (0, 0)), mode="symmetric")
    net = build_net(spec, out_channels=padded.shape[2], seed=config.seed)
    # Problems whose output is larger than the observation (super-resolution) say how much.
    out_size = getattr(problem, "out_size", None)
    result = fit(
        problem, net, padded, config,
        input_depth=spec.input_depth, reference=reference, device=device,
        out_size=out_size(padded.shape[:2]) if out_size else None,
        crop=out_size(size) if out_size else size, subscribers=subscribers,
    )
    return result, count_params(net)


def choose_tile(problem: object, image: Image, spec: NetSpec, config: FitConfig, device: str,
                target: int | None = None) -> tuple[int, str | None]:
    """``--tile auto``: the tile side to fit with (0: the whole image) and a note saying why.

    Two reasons to tile. Quality: with ``target``, an image larger than about 1.5 × ``target``
    per side is cut into tiles of about that size (:func:`dipcli.tiling.tile_for`), for a net
    that reaches a given quality far sooner on pieces of that size than on the whole image.
    Memory: a fit that would need more than :data:`USABLE` of the device's free memory is cut
    into the largest tiles that fit. A problem that cannot be tiled (super-resolution) and would
    not fit is refused here, before the machine runs out of memory half-way through.
    """
    spec = spec.resolved()
    channels = image.pixels.shape[2]
    h, w = image.shape
    tileable = getattr(problem, "window", None) is not None
    tile = 0
    why = None
    if target and tileable and max(h, w) >= 1.5 * target:
        tile = tile_for(h, w, target)
        why = (f"fitting {len(plan_tiles(h, w, tile))} overlapping tiles of at most {tile}×{tile} px "
               f"and blending them: this net reaches a better result sooner on ~{target}² pieces "
               "than on the whole image (--tile 0: fit it whole)")
    dev = resolve_device(device)
    free = available_bytes(dev)
    if free is None:
        return tile, why
    ph, pw = (-(-side // spec.multiple) * spec.multiple for side in (min(h, tile or h), min(w, tile or w)))
    out_size = getattr(problem, "out_size", None)
    if out_size:
        ph, pw = out_size((ph, pw))
    cost = footprint(spec, channels, resolve_precision(config.precision, dev))
    need = cost.bytes(ph, pw)
    budget = USABLE * free
    if need <= budget:
        return tile, why
    if not tileable:
        raise OutOfMemory(f"a {pw}×{ph} fit with this net needs about {gib(need)} and the {dev.type} "
                         f"has {gib(free)} free; use a smaller image, a narrower net (--width) or "
                         "a device with more memory")
    tile = cost.largest_tile(budget, max(ph, pw))
    if tile is None:
        raise OutOfMemory(f"not even the smallest tile of this net fits in the {gib(free)} free on "
                         f"the {dev.type}; use a narrower net (--width) or free some memory")
    return tile, (f"a {pw}×{ph} fit needs about {gib(need)} and {gib(free)} is free: fitting tiles "
                  f"of at most {tile}×{tile} px")


NO_PIXELS = np.zeros((0, 0, 0), np.float32)  # a tile's result once its pixels are blended in


def fit_tiles(job: Job, spec: NetSpec, device: torch.device) -> tuple[FitResult, int, int]:
    """Fit each tile of the image as its own problem, one at a time, and blend the outputs.

    Every tile gets a fresh copy of the configuration (stop rules and regularisers keep state
    across a fit) and a net from the same seed. Only the blended sums outlive a tile. If the fit
    is interrupted, the tiles not yet fitted keep the observation, so the image written is whole.
    Returns the combined result (:func:`combine`), the parameters of one tile's net, and the
    number of tiles.
    """
    window_of = getattr(job.problem, "window", None)
    if window_of is None:
        raise ValueError(f"--tile works for problems that act pixel by pixel (denoising, "
                         f"inpainting), not {getattr(job.problem, 'name', 'this one')}")
    observed = job.observed.pixels
    windows = plan_tiles(*observed.shape[:2], job.tile)
    problems = [window_of(*window_slices(w)) for w in windows]  # a bad tile fails before any fit
    raw, ema = Blender(windows, observed.shape), Blender(windows, observed.shape)
    parts: list[FitResult] = []
    params = 0
    for k, (window, problem) in enumerate(zip(windows, problems, strict=True)):
        cut = window_slices(window)
        if parts and parts[-1].interrupted:  # keep the observation where no fit ran
            raw.add(observed[cut], window)
            ema.add(observed[cut], window)
            continue
        job.begin(f", tile {k + 1}/{len(windows)}")
        reference = None if job.reference is None else job.reference[cut]
        result, params = fit_image(problem, observed[cut], reference, spec, copy.deepcopy(job.config),
                                   device, job.subscribers)
        raw.add(result.raw, window)
        ema.add(result.ema, window)
        parts.append(replace(result, raw=NO_PIXELS, ema=NO_PIXELS))
    return combine(parts, raw.result(), ema.result()), params, len(windows)


def combine(parts: list[FitResult], raw: np.ndarray, ema: np.ndarray) -> FitResult:
    """One result for a tiled fit: the blended images, and the tiles' numbers summarised.

    Iterations and the kept iteration are the largest over the tiles (the longest fit), seconds
    and backtracks add up, the final loss is the mean, the stop reason the most common one
    (``interrupted`` if any tile was). The curves are left out: each tile has its own.
    """
    reasons = Counter(p.stop_reason for p in parts)
    interrupted = any(p.interrupted for p in parts)
    return FitResult(
        raw=raw, ema=ema, iterations=max(p.iterations for p in parts),
        best_iteration=max(p.best_iteration for p in parts),
        seconds=sum(p.seconds for p in parts), final_loss=float(np.mean([p.final_loss for p in parts])),
        interrupted=interrupted, backtracks=sum(p.backtracks for p in parts),
        stop_reason="interrupted" if interrupted else reasons.most_common(1)[0][0],
        precision=parts[0].precision,
    )


def run_job(job: Job) -> JobResult:
    """Fit (the whole image, or tile by tile with ``job.tile``) and write.

    The output is written even when the fit was interrupted (best so far).
    """
    check_size(job.observed)
    spec = job.spec.resolved()
    device = resolve_device(job.device)
    tiles = None
    if job.tile:
        result, params, tiles = fit_tiles(job, spec, device)
    else:
        job.begin("")
        result, params = fit_image(job.problem, job.observed.pixels, job.reference, spec, job.config,
                                   device, job.subscribers)
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
    return JobResult(result, params, str(device), psnr, ssim, image, tiles)
