"""Planning: a :class:`~dipcli.api.spec.TaskSpec` and one input in, a :class:`Plan` out.

A plan is everything a fit of that input needs: the problem (its forward and noise models), the
observation and its reference, the net and the fit's configuration with its stop rule, the tiles,
and for a preset of several fits the others (an ensemble). :mod:`dipcli.api.execute` runs it.

References
----------
.. [1] Ulyanov, Vedaldi & Lempitsky, "Deep Image Prior", CVPR 2018.
.. [2] Liu et al., "The Devil is in the Upsampling: Architectural Decisions Made Simpler for
       Denoising with Deep Image Prior", ICCV 2023.
.. [3] Peng, Hou & Tan, "It Takes Two to Better Denoise" (course report): a TV first stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from dipcli.api.inputs import TaskInput, check_reference
from dipcli.api.presets import PRESETS, Recipe, budget, members
from dipcli.api.spec import (
    DenoiseParams,
    Fit,
    InpaintParams,
    SuperResParams,
    TaskSpec,
    TwoStageParams,
)
from dipcli.engine.memory import OutOfMemory
from dipcli.engine.run import MIN_SIDE, check_size, choose_tile
from dipcli.errors import FAILURE, Fail
from dipcli.io import Image
from dipcli.metrics import psnr
from dipcli.nets import NetSpec
from dipcli.optim import FitConfig
from dipcli.optim.regularisers import TV, PrefilterTarget, schedule
from dipcli.optim.stopping import make_stop
from dipcli.physics import Denoise, Inpaint, Problem, SuperRes, bernoulli_mask, bicubic_upscale, load_mask

MIN_SIGMA = 0.5 / 255  # an estimate of no noise at all still needs a level for the stop rule


@dataclass
class Plan:
    """One input made ready to fit (one fit of it; an ensemble's others in :attr:`ensemble`)."""

    spec: TaskSpec
    image: Image  # what the net must explain (noisy, masked, low-resolution image)
    problem: Problem
    config: FitConfig
    net: NetSpec
    reference: np.ndarray | None = None
    header: str = ""  # the task's part of the one-line description
    extra: dict = field(default_factory=dict)  # task fields for the record
    scores: Callable[[np.ndarray], dict] | None = None  # task measures of the written pixels
    notes: list[str] = field(default_factory=list)  # told to the user before the fit
    tile: int = 0  # tiles of at most this many px (0: the whole image), decided by plan_tiles
    ensemble: list[Plan] = field(default_factory=list)  # more fits of the same image, averaged with this one
    warm: FitConfig | None = None  # tiles after the first start from its weights with this (Job.warm)

    @property
    def composite(self) -> bool:
        """Whether the known pixels are kept exactly (inpainting, unless the user says not)."""
        return not isinstance(self.spec.params, InpaintParams) or self.spec.params.composite


def make_plan(spec: TaskSpec, src: TaskInput) -> Plan:
    """The plan of one input for a task (its planner by the spec's parameters)."""
    planner = {DenoiseParams: plan_denoise, TwoStageParams: plan_two_stage, InpaintParams: plan_inpaint,
               SuperResParams: plan_superres}[type(spec.params)]
    return planner(spec, src)


# ---- the parts every planner uses ----------------------------------------------------------------

def noise_model(image: Image, params: DenoiseParams, notes: list[str]) -> Denoise:
    """The denoising problem for ``params`` (:class:`~dipcli.api.spec.DenoiseParams`): white
    Gaussian noise of σ (0–1 scale) or, if None, of σ estimated from the image with
    :func:`dipcli.physics.noise.estimate_noise`, the one estimator every part uses; or the photo's
    noise model read from it (:func:`dipcli.physics.noise_models.read_camera_noise`), which ``auto``
    takes where :func:`dipcli.physics.noise_models.camera_like` says the noise is not white;
    with ``camera`` and a σ, that model at the RMS level σ."""
    if params.sigma is not None and params.noise != "camera":
        return Denoise(params.sigma)
    from dipcli.physics.noise import estimate_noise

    if params.noise == "gaussian":
        return white_noise(estimate_noise(image.pixels), notes)
    from dipcli.physics.noise_models import camera_like, read_camera_noise

    camera = read_camera_noise(image.pixels)
    read = f"{camera.curve.summary(camera.correlation)}, RMS σ {camera.sigma * 255:.3g}"
    if params.noise == "auto":
        white = estimate_noise(image.pixels)
        if not camera_like(camera, white):
            return white_noise(white, notes, f"; taken as white: the camera model reads {read}")
    if params.sigma is not None:
        camera = camera.at_level(params.sigma)
        notes.append(f"{camera.curve.summary(camera.correlation)}: the camera noise model read from the "
                     f"image ({read}) at the RMS σ given")
    else:
        notes.append(f"{read}: the camera noise model, read from the image (--sigma sets its RMS level; "
                     "--noise gaussian: white noise of one σ)")
    return Denoise(max(camera.sigma, MIN_SIGMA), sigma_estimated=True, camera=camera)


def white_noise(estimate: float, notes: list[str], why: str = "") -> Denoise:
    """White Gaussian noise of the σ estimated, with a note saying so (and ``why`` not another)."""
    estimate = max(estimate, MIN_SIGMA)
    notes.append(f"estimated noise σ ≈ {estimate * 255:.1f} (pass --sigma to set it){why}")
    return Denoise(estimate, sigma_estimated=True)


def reg_noise(sigma: float) -> float:
    """The DIP paper's input jitter: 1/30 of the code, 1/20 for noise heavier than σ = 25 (of 255)."""
    return 1 / 20 if sigma > 25 / 255 else 1 / 30


def fit_config(spec: TaskSpec, fit: Fit, net: NetSpec, problem: Problem, wmv_start: int = 0,
               jitter: float = 1 / 30) -> FitConfig:
    """The fit configuration: the stop rule for the problem's noise model, and the jitter and
    average that go with the net (its architecture's), or with a preset's recipe, whose budget
    unless --iters names one is the recipe's for this σ (:func:`presets.budget`)."""
    o, recipe = spec.options, fit.recipe
    r = recipe or Recipe(net.arch)
    iters = fit.iters
    if recipe is not None and o.iters is None and problem.noise is not None:  # the preset's, for this σ
        iters = budget(recipe, *problem.noise.budget_level)
    try:
        stop = make_stop(r.stop or o.stop or "auto", problem.noise, iters, start=wmv_start)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    arch = net.architecture
    return FitConfig(iters=iters, lr=o.lr, seed=o.seed + r.seed_offset,
                     check_every=math.gcd(10, o.save_every) if o.save_every else 10, stop=stop,
                     precision=r.precision or o.precision,
                     reg_noise=(r.jitter_sigma * problem.noise.sigma if r.jitter_sigma is not None
                                else jitter * (arch.jitter if r.jitter is None else r.jitter)),
                     ema_warmup=arch.ema_warmup if r.ema_warmup is None else r.ema_warmup,
                     input=r.input, recorrupt=r.recorrupt)


def auto_width(spec: TaskSpec, net: NetSpec, image: Image, sigma: float | None,
               notes: list[str]) -> tuple[NetSpec, dict]:
    """With --width auto, the width the texture estimator picks for this (noisy) image."""
    if not spec.width_auto:
        return net, {}
    from dipcli.texture import WIDTH_THRESHOLD, complexity

    try:
        score = complexity(image.pixels, sigma)
    except ValueError as exc:  # too small to measure texture: keep the net's own width
        notes.append(f"width auto: {exc}; using width {net.width}")
        return net, {"width_auto": False}
    notes.append(f"width auto: {score.textured:.0%} of the image is textured → width {score.width} "
                 f"(128 from {WIDTH_THRESHOLD:.0%})")
    return replace(net, width=score.width), {"width_auto": True, "textured": score.textured}


def plan_tiles(spec: TaskSpec, p: Plan) -> Plan:
    """``--tile``: the plan's tile size; with ``auto``, chosen for quality and memory, with a note
    why; a given size (or 0) checked against the memory free."""
    o = spec.options
    try:
        check_size(p.image)
        target = None if o.pictures else spec.tile_target
        tile, why = choose_tile(p.problem, p.image, p.net, p.config, o.device, target,
                                None if o.tile.auto else o.tile.size)
    except ValueError as exc:  # a tiny image; --device cuda without a GPU
        raise Fail(str(exc)) from None
    except OutOfMemory as exc:
        raise Fail(str(exc), FAILURE) from None
    if why and o.pictures:
        raise Fail(f"{why}, so there is no one fit to plot or film; drop --plot/--gif/--snapshots")
    if why:
        p.notes.append(why)
    p.tile = tile
    return p


def as_ensemble(spec: TaskSpec, plans: list[Plan]) -> Plan:
    """The first plan, the others as its :attr:`Plan.ensemble` (fitted after it and averaged)."""
    main = plans[0]
    if spec.preset:
        for p in plans:
            p.extra.update(preset=spec.preset, fits=len(plans))
    if len(plans) > 1:
        main.ensemble = plans[1:]
        main.header += f", an ensemble of {len(plans)} fits ({spec.preset})"
    return main


# ---- denoising ------------------------------------------------------------------------------------

def denoise_inputs(spec: TaskSpec, src: TaskInput,
                   notes: list[str]) -> tuple[Image, np.ndarray | None, Denoise]:
    """The noisy image (made here with ``add_noise``), its reference, and the problem with σ."""
    image, params = src.image, spec.params
    reference = check_reference(src.clean, image, src.clean_name) if src.clean is not None else None
    problem = replace(noise_model(image, params, notes), wiener=params.wiener)
    if params.add_noise:
        reference = image.pixels
        image = image.with_pixels(problem.observe(image.pixels, spec.options.seed))
    return image, reference, problem


def noise_header(problem: Denoise) -> str:
    """The noise's part of the line that starts a fit: its σ, or for a photo's its σ dark to bright."""
    if problem.camera is None:
        return f", σ = {problem.sigma * 255:.3g}"
    levels = [v * 255 for v in problem.camera.curve.sigma_range()]
    dark, bright = (f"{v:.1f}" if v < 3 else f"{v:.0f}" for v in levels)  # as the readout rounds
    return f", camera noise σ {dark}–{bright} (dark to bright)"


def denoise_fits(spec: TaskSpec, level: tuple[float, bool]) -> tuple[Fit, ...]:
    """The fits of a denoising preset for noise of ``level`` (the noise model's ``budget_level``):
    its recipes, and for one that fills its time with more seeds where the noise caps each fit,
    those (:func:`presets.members`)."""
    o = spec.options
    if spec.preset is None or o.iters is not None or o.fits is not None:
        return spec.fits
    last = spec.fits[-1]
    more = members(PRESETS[spec.preset], *level)[len(spec.fits):]
    return spec.fits + tuple(replace(last, recipe=r) for r in more)


def plan_denoise(spec: TaskSpec, src: TaskInput) -> Plan:
    notes: list[str] = []
    image, reference, problem = denoise_inputs(spec, src, notes)
    sigma255 = problem.sigma * 255
    plans, fits = [], denoise_fits(spec, problem.noise.budget_level)
    for k, fit in enumerate(fits):
        net, auto = auto_width(spec, fit.net, image, problem.sigma, notes if k == 0 else [])
        if fit.recipe is not None and fit.recipe.input == "observation":  # the net reads the noisy image
            net = replace(net, input_depth=image.pixels.shape[2])
        config = fit_config(spec, fit, net, problem, jitter=reg_noise(problem.sigma))
        header, extra = noise_header(problem), {"sigma": sigma255, **problem.noise.readout(), **auto,
                                                "wiener": problem.wiener}
        plans.append(plan_tiles(spec, Plan(spec, image, problem, config, net, reference, header, extra,
                                           notes=notes)))
    for p, fit in zip(plans, fits, strict=True):
        warm_tiles(p, fit.recipe)
    return as_ensemble(spec, plans)


def warm_tiles(p: Plan, recipe: Recipe | None) -> None:
    """A preset's tiles after the first start from the first one's fitted weights, for the
    recipe's shorter ``tile_iters`` (:attr:`Recipe.tile_iters`): they have learnt this image's
    noise and much of its content, so a tile needs far fewer iterations than a fresh start."""
    if not (p.tile and recipe is not None and recipe.tile_iters and p.spec.options.iters is None):
        return
    iters = min(recipe.tile_iters, p.config.iters)
    p.warm = replace(p.config, iters=iters)
    if not p.notes or "start from the first one's" not in p.notes[-1]:
        p.notes.append(f"tiles after the first start from the first one's weights: {iters} iterations "
                       f"each instead of its {p.config.iters}")


def plan_two_stage(spec: TaskSpec, src: TaskInput) -> Plan:
    """Denoising with a TV first stage (λ·TV, or a TV-prefiltered target: ``stage1``) [3]_."""
    params: TwoStageParams = spec.params
    fit = spec.fits[0]
    notes: list[str] = []
    image, reference, problem = denoise_inputs(spec, src, notes)
    net, auto = auto_width(spec, fit.net, image, problem.sigma, notes)
    lam = schedule(params.schedule, params.tv_weight, fit.iters, params.stage1_frac)
    end = lam.stage1_end
    config = fit_config(spec, fit, net, problem, wmv_start=end, jitter=reg_noise(problem.sigma))
    regulariser = TV(params.tv)
    if params.stage1 == "prefilter":
        regulariser = PrefilterTarget(problem.sigma)
        lam = schedule("step", 1.0, fit.iters, params.stage1_frac)
        config.data_weight = lambda it: 0.0 if it <= end else 1.0
    config.regulariser, config.reg_weight = regulariser, lam
    sigma255 = problem.sigma * 255
    extra = {**auto, "sigma": sigma255, **problem.noise.readout(), "stage1": params.stage1,
             "tv_weight": params.tv_weight, "stage1_frac": params.stage1_frac, "schedule": params.schedule,
             "tv": params.tv, "stage1_end": end}
    what = f"TV λ = {params.tv_weight:g}" if params.stage1 == "tv" else "TV-prefiltered target"
    return plan_tiles(spec, Plan(spec, image, problem, config, net, reference,
                                 f", σ = {sigma255:.3g}, {what} until iteration {end}", extra, notes=notes))


# ---- inpainting and super-resolution ----------------------------------------------------------------

def plan_inpaint(spec: TaskSpec, src: TaskInput) -> Plan:
    """``src.mask`` holds the mask image (any polarity: ``mask_known``), or ``drop`` a fraction of
    pixels to remove at random (an experiment: the input is the clean reference)."""
    params: InpaintParams = spec.params
    image, notes = src.image, []
    reference = check_reference(src.clean, image, src.clean_name) if src.clean is not None else None
    if params.drop is not None:
        known, polarity = bernoulli_mask(image.shape, params.drop, spec.options.seed), "random"
        reference = image.pixels if reference is None else reference
    else:
        try:
            known, polarity = load_mask(src.mask, image.shape, params.mask_known)
        except ValueError as exc:
            raise Fail(f"{src.mask_name}: {exc}" if src.mask_name not in str(exc) else str(exc)) from None
    problem = Inpaint(known)
    masked = image.with_pixels(problem.observe(image.pixels))
    holes = ~known
    notes.append(f"mask: {holes.mean():.1%} of pixels missing ({polarity} = known)")

    def scores(pixels: np.ndarray) -> dict:
        return {"psnr_holes": float(psnr(pixels[holes][None], reference[holes][None]))}

    plans = []
    for k, fit in enumerate(spec.fits):
        net, auto = auto_width(spec, fit.net, image, None, notes if k == 0 else [])
        extra = {**auto, "mask": None if src.mask is None else src.mask_name, "mask_known": polarity,
                 "missing_fraction": float(holes.mean())}
        config = fit_config(spec, fit, net, problem)
        plans.append(plan_tiles(spec, Plan(spec, masked, problem, config, net, reference,
                                           f", {holes.mean():.1%} missing", extra, scores, notes)))
    return as_ensemble(spec, plans)


def superres_inputs(params: SuperResParams, problem: SuperRes,
                    src: TaskInput) -> tuple[Image, np.ndarray | None]:
    """The low-resolution input (made here with ``make_lr``) and the high-resolution reference."""
    image, factor = src.image, params.factor
    if params.make_lr:
        if min(image.shape) < factor * MIN_SIDE:
            raise Fail(f"INPUT is too small to shrink ×{factor}; it needs at least "
                       f"{factor * MIN_SIDE} pixels per side")
        reference = problem.crop_hr(image.pixels)
        alpha = image.alpha
        if alpha is not None:  # the alpha of the low-resolution input: every F-th pixel
            alpha = problem.crop_hr(alpha[:, :, None])[::factor, ::factor, 0]
        return replace(image.with_pixels(problem.observe(image.pixels)), alpha=alpha), reference
    if src.clean is None:
        return image, None
    want = (image.shape[0] * factor, image.shape[1] * factor)
    if src.clean.shape != want:
        raise Fail(f"--clean {src.clean_name} is {src.clean.shape[1]}×{src.clean.shape[0]}; a ×{factor} "
                   f"reference for this input must be {want[1]}×{want[0]}")
    return image, src.clean.pixels


def plan_superres(spec: TaskSpec, src: TaskInput) -> Plan:
    params: SuperResParams = spec.params
    factor = params.factor
    problem = SuperRes(factor, params.kernel)
    image, reference = superres_inputs(params, problem, src)

    def scores(pixels: np.ndarray) -> dict:
        bicubic = bicubic_upscale(image.pixels, factor)
        return {"psnr_y": float(psnr(pixels, reference, luma=True, border=factor)),
                "psnr_rgb": float(psnr(pixels, reference, border=factor)),
                "psnr_bicubic_y": float(psnr(bicubic, reference, luma=True, border=factor)),
                "psnr_bicubic_rgb": float(psnr(bicubic, reference, border=factor))}

    notes: list[str] = []
    fit = spec.fits[0]
    net, auto = auto_width(spec, fit.net, image, None, notes)
    h, w = image.shape
    extra = {**auto, "factor": factor, "kernel": params.kernel,
             "psnr_measure": f"live: Y channel, {factor}-pixel border; psnr: RGB, whole image"}
    return plan_tiles(spec, Plan(spec, image, problem, fit_config(spec, fit, net, problem), net, reference,
                                 f" → {w * factor}×{h * factor} (×{factor}, {params.kernel})", extra,
                                 scores=scores, notes=notes))
