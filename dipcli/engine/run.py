"""One restoration job from start to finish: pad, build, fit, crop, composite and score.

Every task goes through :func:`run_job` (or :func:`run_group` for ``--group``): the planners
(:mod:`dipcli.api.plan`, :mod:`dipcli.api.execute`) turn a task into a :class:`Job`, and the
caller writes the image it returns.
A tiled job (``--tile``) repeats the fit step, :func:`fit_images`, once per tile (or per group
of tiles) and blends the outputs (:mod:`dipcli.engine.tiles`); the loop itself is the same
:func:`dipcli.optim.loop.fit_group`.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from dipcli.engine.memory import USABLE, Footprint, OutOfMemory, available_bytes, footprint, gib
from dipcli.engine.tiles import Blender, plan_tiles, tile_for, window_slices
from dipcli.io import Image, pad_to_multiple
from dipcli.metrics import psnr, ssim
from dipcli.nets import NetSpec, build_net, count_params
from dipcli.nets.stack import Stack
from dipcli.optim import (
    FitConfig,
    FitResult,
    Member,
    Subscriber,
    fit_group,
    resolve_device,
    resolve_precision,
)
from dipcli.physics import Problem

if TYPE_CHECKING:
    import torch

MIN_SIDE = 8


@dataclass
class Job:
    problem: Problem
    observed: Image  # what the net must explain (noisy image, masked image, ...)
    spec: NetSpec
    config: FitConfig
    device: str = "auto"
    reference: np.ndarray | None = None  # clean image for live PSNR/SSIM
    write_raw: bool = False  # write the last raw output instead of the average
    composite: bool = True  # for problems that know pixels exactly (inpainting): keep them
    subscribers: list[Subscriber] = field(default_factory=list)
    tile: int = 0  # fit tiles of at most this many pixels per side (dipcli.engine.tiles); 0: the whole image
    group: int = 1  # fit up to this many tiles at once as one batched net
    # Tiles after the first start from the weights the first one's fit ended with and run this
    # configuration (a shorter budget); None: every tile starts afresh with ``config``.
    warm: FitConfig | None = None
    begin: Callable[[str], None] = lambda part: None  # noqa: E731  before each fit: "" or ", tile 2/6"


@dataclass
class JobResult:
    fit: FitResult
    params: int
    device: str
    psnr: float | None
    ssim: float | None
    image: Image  # what to write: the input's format, composited where the problem knows pixels
    tiles: int | None = None  # how many tiles were fitted (None: the image in one piece)
    members: list[JobResult] = field(default_factory=list)  # an ensemble's fits, each on its own


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


def _padded(observed: np.ndarray, spec: NetSpec) -> tuple[np.ndarray, tuple[int, int]]:
    """``observed`` padded to the net's multiple, and to at least two pixels at the deepest
    scale; and the size to crop the result back to."""
    multiple = spec.multiple
    padded, size = pad_to_multiple(observed, multiple)
    min_side = 2 * multiple
    if min(padded.shape[:2]) < min_side:
        extra = (max(0, min_side - padded.shape[0]), max(0, min_side - padded.shape[1]))
        padded = np.pad(padded, ((0, extra[0]), (0, extra[1]), (0, 0)), mode="symmetric")
    return padded, size


def fit_images(problems: Sequence[Problem], observed: Sequence[np.ndarray],
               references: Sequence[np.ndarray | None], spec: NetSpec, configs: Sequence[FitConfig],
               device: torch.device, subscribers: Sequence[Sequence[Subscriber]],
               start: dict[str, torch.Tensor] | None = None) -> tuple[list[FitResult], int, dict]:
    """Pad, build nets and fit: the fit step of a job, for the whole image or a tile, or for
    several of one size together (``--group``: one batched net, :class:`dipcli.nets.stack.Stack`).

    ``start``: parameters every net begins from (a warm start, :func:`fit_tiles`) instead of the
    seed's random ones. Returns the results (each cropped back to its observation's size), one
    net's parameter count and the first net's trained parameters; the nets are dropped here, so
    a tiled job holds only its current group's.
    """
    padded = [_padded(o, spec) for o in observed]
    size = padded[0][1]
    nets = [build_net(spec, out_channels=padded[0][0].shape[2], seed=c.seed) for c in configs]
    if start is not None:
        for net in nets:
            net.load_state_dict(start, strict=False)
    # Problems whose output is larger than the observation (super-resolution) say how much.
    crop = problems[0].out_size(size)
    members = [Member(problem, pixels, config, crop, reference, subs) for problem, (pixels, _), config,
               reference, subs in zip(problems, padded, configs, references, subscribers, strict=True)]
    net = nets[0] if len(nets) == 1 else Stack(nets)
    results = fit_group(members, net, input_depth=spec.input_depth,
                        device=device, out_size=problems[0].out_size(padded[0][0].shape[:2]))
    trained = (net.member_weights(0) if isinstance(net, Stack)
               else {k: v.detach().clone() for k, v in net.named_parameters()})
    return results, count_params(nets[0]), trained


def choose_tile(problem: Problem, image: Image, spec: NetSpec, config: FitConfig, device: str,
                target: int | None = None, fixed: int | None = None) -> tuple[int, str | None]:
    """``--tile auto``: the tile side to fit with (0: the whole image) and a note saying why.

    Two reasons to tile. Quality: with ``target``, an image larger than about 1.5 × ``target``
    per side is cut into tiles of about that size (:func:`dipcli.engine.tiles.tile_for`), for a net
    that reaches a given quality far sooner on pieces of that size than on the whole image.
    Memory: a fit that would need more than :data:`USABLE` of the device's free memory is cut
    into the largest tiles that fit. With ``fixed`` (``--tile N``, or 0: never), the tile is the
    user's and only checked. A fit that cannot be made to fit (a problem that cannot be tiled,
    a net whose smallest tile is too big, a fixed tile too large) raises :class:`OutOfMemory`
    here, before anything is allocated, not half-way through when the machine runs out.
    """
    spec = spec.resolved()
    channels = image.pixels.shape[2]
    h, w = image.shape
    tile = fixed or 0
    why = None
    if fixed is None and target and problem.tileable and max(h, w) >= 1.5 * target:
        tile = tile_for(h, w, target)
        why = (f"fitting {len(plan_tiles(h, w, tile))} overlapping tiles of at most {tile}×{tile} px "
               f"and blending them: this net reaches a better result sooner on ~{target}² pieces "
               "than on the whole image (--tile 0: fit it whole)")
    dev = resolve_device(device)
    free = available_bytes(dev)
    if free is None:
        return tile, why
    cost, (ph, pw) = fit_cost(problem, (min(h, tile or h), min(w, tile or w), channels), spec, config, dev)
    need = cost.bytes(ph, pw)
    budget = USABLE * free
    if need <= budget:
        return tile, why
    smallest = min(cost.step, max(ph, pw)) if problem.tileable else max(ph, pw)
    padded = min(h, w) < 2 * spec.multiple  # the net's smallest input is larger than the image
    if (padded or problem.tileable) and cost.bytes(smallest, smallest) > budget:
        raise OutOfMemory(too_big(spec, cost, dev, free, smallest, (h, w), (ph, pw)))
    if not problem.tileable:
        raise OutOfMemory(f"a {pw}×{ph} fit with this net needs about {gib(need)} and the {dev.type} "
                          f"has {gib(free)} free; use a smaller image, a narrower net (--width) or "
                          "a device with more memory")
    if fixed is not None:
        raise OutOfMemory(f"a {pw}×{ph} fit with this net needs about {gib(need)} and the {dev.type} "
                          f"has {gib(free)} free; give a smaller --tile, or --tile auto to choose one")
    tile = cost.largest_tile(budget, max(ph, pw)) or cost.step  # the step fits: checked above
    return tile, (f"a {pw}×{ph} fit needs about {gib(need)} and {gib(free)} is free: fitting tiles "
                  f"of at most {tile}×{tile} px")


def too_big(spec: NetSpec, cost: Footprint, dev: torch.device, free: int, side: int,
            size: tuple[int, int], padded: tuple[int, int]) -> str:
    """Why a net cannot be fitted on ``dev`` at all: its smallest fit (``side`` px square) needs
    more than the memory free, for its weights or for the size it pads an image of ``size`` to."""
    (h, w), (ph, pw) = size, padded
    what = f"{spec.scales} scales of width {spec.width}: {cost.params:,} weights"
    if min(h, w) < 2 * spec.multiple:
        what += f", and it pads this {w}×{h} image to {pw}×{ph}"
    return (f"this net ({what}) needs at least {gib(cost.bytes(side, side))} and the {dev.type} has "
            f"{gib(free)} free; give fewer --scales or a smaller --width")


def group_capacity(problem: Problem, shape: tuple[int, ...], spec: NetSpec, config: FitConfig, device: str,
                   wanted: int) -> int:
    """How many images of ``shape`` (h, w, channels) to fit together (``--group``): ``wanted``, or
    fewer if the device's free memory holds fewer such fits at once (never less than one)."""
    dev = resolve_device(device)
    free = available_bytes(dev)
    if free is None or wanted <= 1:
        return max(1, wanted)
    cost, (ph, pw) = fit_cost(problem, shape, spec.resolved(), config, dev)
    return max(1, min(wanted, int(USABLE * free // cost.bytes(ph, pw))))


def fit_cost(problem: Problem, shape: tuple[int, ...], spec: NetSpec, config: FitConfig,
             dev: torch.device) -> tuple[Footprint, tuple[int, int]]:
    """The footprint of ``spec`` on ``dev``, and the size the net generates for an observation
    of ``shape`` (h, w, channels): padded as :func:`_padded` pads it (to the net's multiple, and
    to two of its deepest cells), enlarged for super-resolution."""
    m = spec.multiple
    ph, pw = problem.out_size(tuple(max(2 * m, -(-side // m) * m) for side in shape[:2]))
    return footprint(spec, shape[2], resolve_precision(config.precision, dev)), (ph, pw)


NO_PIXELS = np.zeros((0, 0, 0), np.float32)  # a tile's result once its pixels are blended in


def fit_tiles(job: Job, spec: NetSpec, device: torch.device) -> tuple[FitResult, int, int]:
    """Fit each tile of the image as its own problem and blend the outputs.

    Tiles go one at a time, or ``job.group`` at a time as one batched net (all tiles of a plan
    have one size). Every tile gets a fresh copy of the configuration (stop rules and
    regularisers keep state across a fit). With ``job.warm``, the first tile is fitted alone
    from the seed's weights and every later tile starts from the weights it ended with, for the
    shorter budget of ``job.warm`` (:func:`tile_chunks`); else every tile starts from the seed's
    weights. Only the blended sums outlive a tile. If the fit is interrupted, the tiles not yet
    fitted keep the observation, so the image written is whole. Returns the combined result
    (:func:`combine`), the parameters of one tile's net, and the number of tiles.
    """
    observed = job.observed.pixels
    windows = plan_tiles(*observed.shape[:2], job.tile)
    problems = [job.problem.window(*window_slices(w)) for w in windows]  # a bad tile fails before any fit
    raw, ema = Blender(windows, observed.shape), Blender(windows, observed.shape)
    cuts = [window_slices(w) for w in windows]
    size = 1
    if job.group > 1:
        size = group_capacity(job.problem, observed[cuts[0]].shape, spec, job.config, job.device, job.group)
    parts: list[FitResult] = []
    params, start = 0, None
    for chunk in tile_chunks(len(windows), size, job.warm is not None):
        if parts and parts[-1].interrupted:  # keep the observation where no fit ran
            for k in chunk:
                raw.add(observed[cuts[k]], windows[k])
                ema.add(observed[cuts[k]], windows[k])
            continue
        which = f"{chunk[0] + 1}" if len(chunk) == 1 else f"{chunk[0] + 1}–{chunk[-1] + 1}"
        job.begin(f", tile{'s' if len(chunk) > 1 else ''} {which}/{len(windows)}")
        config = job.config if start is None else job.warm
        results, params, trained = fit_images(
            [problems[k] for k in chunk], [observed[cuts[k]] for k in chunk],
            [None if job.reference is None else job.reference[cuts[k]] for k in chunk], spec,
            [copy.deepcopy(config) for _ in chunk], device,
            # One progress bar per job: a group's first tile speaks for it.
            [job.subscribers if k == chunk[0] else [] for k in chunk], start)
        if job.warm is not None and start is None:
            start = trained
        for k, result in zip(chunk, results, strict=True):
            raw.add(result.raw, windows[k])
            ema.add(result.ema, windows[k])
            # The tiles of a group share its time: each gets its share, so the seconds add up.
            parts.append(replace(result, raw=NO_PIXELS, ema=NO_PIXELS, seconds=result.seconds / len(chunk)))
    return combine(parts, raw.result(), ema.result()), params, len(windows)


def tile_chunks(count: int, size: int, warm: bool) -> list[range]:
    """The tiles fitted together, in order: ``size`` at a time; with a warm start the first alone,
    since the others start from what it learnt."""
    first = 1 if warm and count > 1 else 0
    rest = [range(k, min(k + size, count)) for k in range(first, count, size)]
    return ([range(0, 1)] if first else []) + rest


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
    """Fit (the whole image, or tile by tile with ``job.tile``); the image to write and its scores.

    An interrupted fit still gives its best result so far.
    """
    check_size(job.observed)
    spec = job.spec.resolved()
    device = resolve_device(job.device)
    tiles = None
    if job.tile:
        result, params, tiles = fit_tiles(job, spec, device)
    else:
        job.begin("")
        (result,), params, _ = fit_images([job.problem], [job.observed.pixels], [job.reference], spec,
                                       [job.config], device, [job.subscribers])
    return finish(job, result, params, str(device), tiles)


def run_group(jobs: Sequence[Job]) -> list[JobResult]:
    """Fit several whole images of one size together, as one batched net (``--group``).

    The jobs must share the image size, the net and the fit settings that :data:`dipcli.optim.loop.SHARED`
    names; each keeps its own problem, stop rule, reference and output. Results match fitting
    each alone with the same seed up to floating-point rounding: the batched convolutions add
    in another order, and the fits, being chaotic, drift apart from there.
    """
    if len(jobs) == 1:
        return [run_job(jobs[0])]
    first = jobs[0]
    spec = first.spec.resolved()
    device = resolve_device(first.device)
    for job in jobs:
        check_size(job.observed)
        shape = job.observed.pixels.shape
        if job.tile or job.spec.resolved() != spec or shape != first.observed.pixels.shape:
            raise ValueError("run_group: the jobs of a group need one image size, one net and no tiles")
    for job in jobs:
        job.begin("")
    results, params, _ = fit_images([j.problem for j in jobs], [j.observed.pixels for j in jobs],
                                 [j.reference for j in jobs], spec, [j.config for j in jobs], device,
                                 [j.subscribers for j in jobs])
    return [finish(job, result, params, str(device)) for job, result in zip(jobs, results, strict=True)]


def run_ensemble(jobs: Sequence[Job]) -> JobResult:
    """Fit several jobs of one image one after another and average their results (an ensemble).

    Independent fits of one noisy image err differently (other seeds, other nets, other inputs),
    so their average is better than each: two DIP runs averaged gained 0.57 dB in the DIP paper
    (Ulyanov et al., CVPR 2018, CSet9). If a fit is interrupted, the ensemble stops there and
    averages what it has.
    """
    results: list[JobResult] = []
    for job in jobs:
        results.append(run_job(job))
        if results[-1].fit.interrupted:
            break
    if len(results) == 1:
        return results[0]
    fits = [r.fit for r in results]
    combined = FitResult(
        raw=np.mean([f.raw for f in fits], axis=0).astype(np.float32),
        ema=np.mean([f.ema for f in fits], axis=0).astype(np.float32),
        iterations=sum(f.iterations for f in fits), best_iteration=max(f.best_iteration for f in fits),
        seconds=sum(f.seconds for f in fits), final_loss=float(np.mean([f.final_loss for f in fits])),
        interrupted=any(f.interrupted for f in fits), backtracks=sum(f.backtracks for f in fits),
        stop_reason="interrupted" if fits[-1].interrupted
        else "+".join(dict.fromkeys(f.stop_reason for f in fits)),
        precision="+".join(dict.fromkeys(f.precision for f in fits)), history=fits[0].history,
    )
    tiles = max((r.tiles or 0 for r in results), default=0) or None
    combined_result = finish(jobs[0], combined, sum(r.params for r in results), results[0].device, tiles)
    combined_result.members = results
    return combined_result


def finish(job: Job, result: FitResult, params: int, device: str, tiles: int | None = None) -> JobResult:
    """A fit's image in the input's format (composited where the problem knows pixels exactly), scored."""
    pixels = result.raw if job.write_raw else result.ema
    if job.composite:
        pixels = job.problem.composite(pixels, job.observed.pixels)
    image = resized_like(job.observed, pixels)
    score = quality = None
    if job.reference is not None:  # the written image's, as metrics measures every score
        score, quality = float(psnr(image.pixels, job.reference)), float(ssim(image.pixels, job.reference))
    return JobResult(result, params, device, score, quality, image, tiles)
