"""Planning a task: one input and the user's options in, a :class:`Plan` out, and the plan run.

The task functions of :mod:`dipcli.api.tasks` (the Python API), the command line and the batch
runners all plan through here. A task is two steps, so that a batch can fit several prepared
inputs together (``--group``):

* ``plan_<task>(source, options, ...)`` turns one input into a :class:`Plan`: the problem
  (forward model and noise model), the generator's spec, the fit configuration with its stop
  rule, and the tile size; each task's defaults and presets come from :mod:`dipcli.api.presets`;
* :func:`run_plan` fits it (whole, in tiles, or with others) and gives the restored image in the
  input's format, scored against a reference when there is one.

σ is given on the 0–255 scale, as users know it, and converted to [0, 1] once, by
:func:`noise_model`; everything below works on [0, 1].

References
----------
.. [1] Ulyanov, Vedaldi & Lempitsky, "Deep Image Prior", CVPR 2018.
.. [2] Liu et al., "The Devil is in the Upsampling: Architectural Decisions Made Simpler for
       Denoising with Deep Image Prior", ICCV 2023.
.. [3] Peng, Hou & Tan, "It Takes Two to Better Denoise" (course report): a TV first stage.
.. [4] Wang et al., "Early Stopping for Deep Image Prior", TMLR 2023 (ES-WMV).
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dipcli.api.arguments import MAX_FITS, MAX_SEED
from dipcli.api.options import Group, Tile
from dipcli.api.presets import (
    CPU_PRESET,
    CPU_TILED_PRESET,
    INPAINT_PRESET,
    PRESETS,
    TASK_DEFAULTS,
    TASK_PRESETS,
    TWO_STAGE_DEFAULTS,
    Preset,
    Recipe,
    budget,
    members,
    seeds,
)
from dipcli.engine.memory import OutOfMemory
from dipcli.engine.run import (
    MIN_SIDE,
    Job,
    JobResult,
    check_size,
    choose_tile,
    run_ensemble,
    run_group,
    run_job,
)
from dipcli.engine.tiles import smallest_tile
from dipcli.errors import FAILURE, Fail
from dipcli.io import Image, ImageError, from_array, read_image, to_array
from dipcli.nets import NetSpec
from dipcli.optim.loop import PRECISIONS, FitConfig, resolve_device
from dipcli.optim.regularisers import TV, PrefilterTarget, schedule
from dipcli.optim.stopping import STOP_NAMES, make_stop
from dipcli.physics.masks import POLARITIES, load_mask
from dipcli.physics.problems import (
    SR_FACTORS,
    SR_KERNELS,
    Denoise,
    Inpaint,
    Problem,
    SuperRes,
    bernoulli_mask,
    bicubic_upscale,
    psnr_rgb,
    psnr_y,
)


@dataclass
class FitOptions:
    """The options every task shares, with the command line's names and defaults.

    ``width`` is a number of channels or ``"auto"`` (chosen from the image's texture); ``None``
    fields take the task's default. ``pictures``: the caller draws one fit (``--plot``, ``--gif``,
    ``--snapshots``), so the image is tiled only when memory leaves no choice.
    """

    iters: int | None = None
    arch: str | None = None
    width: int | str | None = None
    scales: int | None = None
    upsample: str | None = None
    stop: str | None = None  # None: auto, unless a preset's recipe names its own (given: see with_preset)
    precision: str = "auto"
    lr: float = 0.01
    seed: int = 0
    device: str = "auto"
    tile: Tile = field(default_factory=Tile)
    group: Group = field(default_factory=Group)
    raw: bool = False
    save_every: int = 0
    pictures: bool = False
    preset: str | None = None  # denoise, inpaint: a named preset (TASK_PRESETS); None: the default
    fits: int | None = None  # denoise, inpaint: how many of the preset's fits to average (None: its own)


@dataclass(frozen=True)
class Setup:
    """What :func:`resolve` decided for a task: the net, the budget, and tiling for quality."""

    task: str
    spec: NetSpec
    iters: int
    width_auto: bool
    tile_target: int | None  # --tile auto: tiles of about this size for quality (None: memory only)
    preset: str | None = None  # denoise, inpaint: the preset in use
    recipes: tuple[tuple[Recipe, NetSpec, int], ...] = ()  # its fits: recipe, net, budget

    @property
    def fits(self) -> tuple[tuple[Recipe | None, NetSpec, int], ...]:
        """Each fit to run: the preset's recipes, or the one net with no recipe."""
        return self.recipes or ((None, self.spec, self.iters),)


def resolve(task: str, o: FitOptions) -> Setup:
    """The task's defaults filled in, and what the user gave checked, before any image is read."""
    defaults = TASK_DEFAULTS[task]
    if task == "superres" and not (o.tile.auto or o.tile.size == 0):
        raise Fail("--tile is not offered for superres: each low-resolution tile would need "
                   "its exactly matching high-resolution window, and the blur reaches across "
                   "tile borders; upscale the whole image")
    iters = o.iters or defaults["iters"]
    width_auto = o.width == "auto"
    width = None if o.width in (None, "auto") else str(o.width)
    if width is not None and not (width.isdigit() and int(width) > 0):
        raise Fail(f"--width {o.width!r}: give a positive number of channels or auto")
    try:
        on_gpu = resolve_device(o.device).type == "cuda"
        arch = o.arch or (defaults.get("gpu_arch", defaults["arch"]) if on_gpu else defaults["arch"])
        if width is None and o.width is None and o.arch is None:
            width = defaults.get("width")  # the task's own width goes with its own net
            if defaults.get("gpu_width") and on_gpu:
                width_auto = True
        spec = NetSpec(arch=arch, width=width and int(width), scales=o.scales,
                       upsample=o.upsample or defaults["upsample"]).resolved()
    except ValueError as exc:
        raise Fail(str(exc)) from None
    if o.stop is not None and o.stop not in STOP_NAMES:  # now, not at the first input
        raise Fail(f"unknown stop rule {o.stop!r}; choose one of: {', '.join(STOP_NAMES)}")
    if not 0 <= o.seed <= MAX_SEED:  # torch's and numpy's seeders would fail with their own words
        raise Fail(f"--seed {o.seed}: give a whole number from 0 to {MAX_SEED} (2**32 - 1)")
    if not (math.isfinite(o.lr) and o.lr > 0):
        raise Fail(f"--lr {o.lr:g}: give a positive, finite learning rate (the default is 0.01)")
    if o.precision not in ("auto", *PRECISIONS):
        raise Fail(f"unknown --precision {o.precision!r}; choose auto, {', '.join(PRECISIONS)}")
    check_tile(o, spec)
    tuned = {defaults["arch"], defaults.get("gpu_arch")}  # the nets the tile size was chosen for
    target = defaults.get("tile") if o.tile.auto and spec.arch in tuned and not o.scales else None
    setup = Setup(task, spec, iters, width_auto, target)
    return with_preset(setup, o, on_gpu)


def default_preset(task: str, o: FitOptions, on_gpu: bool) -> str | None:
    """The preset a task runs when none is named: none when the user chose a net (``--arch``)."""
    if o.arch is not None:
        return None
    if task == "denoise":
        return None if on_gpu else CPU_PRESET
    return INPAINT_PRESET if task == "inpaint" else None


def with_preset(setup: Setup, o: FitOptions, on_gpu: bool) -> Setup:
    """``denoise``, ``inpaint``: the preset's fits (or ``--fits`` of them: :func:`presets.seeds`),
    each net resolved, --arch/--width/--iters applied to all. The preset is the one named
    (``--preset``), else :func:`default_preset`'s."""
    presets = TASK_PRESETS.get(setup.task)
    if o.preset is not None and presets is None:
        raise Fail(f"--preset is for {' and '.join(TASK_PRESETS)}; {setup.task} has its own defaults "
                   "(drop --preset)")
    if o.fits is not None:
        if presets is None:
            raise Fail(f"--fits is for {' and '.join(TASK_PRESETS)}; {setup.task} fits one net (drop --fits)")
        if isinstance(o.fits, bool) or not isinstance(o.fits, int) or not 1 <= o.fits <= MAX_FITS:
            raise Fail(f"--fits {o.fits!r}: give a whole number of fits from 1 to {MAX_FITS} (each more fit "
                       "costs a whole fit's time for less: four to five gained 0.01 dB at σ = 50)")
    name = o.preset or default_preset(setup.task, o, on_gpu)
    if name is None:
        if o.fits is not None:
            raise Fail("--fits averages a preset's fits, but --arch names one net: drop one of them"
                       if o.arch else "--fits averages a preset's fits: name one, e.g. --preset best")
        return setup
    if name not in presets:
        raise Fail(f"unknown --preset {name!r}; choose one of: {', '.join(presets)}")
    check_stop(presets[name], name, o)
    width = None if o.width in (None, "auto") else int(o.width)
    recipes = []
    try:
        for r in presets[name].recipes if o.fits is None else seeds(presets[name], o.fits):
            spec = NetSpec(arch=o.arch or r.arch, width=width if width is not None else r.width,
                           scales=o.scales, upsample=o.upsample or r.upsample).resolved()
            check_tile(o, spec)
            recipes.append((r, spec, o.iters or r.iters))
    except ValueError as exc:
        raise Fail(str(exc)) from None
    spec, iters = recipes[0][1], recipes[0][2]
    tile = TASK_DEFAULTS[setup.task].get("tile")
    target = tile if tile and o.tile.auto and not o.scales else None
    return replace(setup, spec=spec, iters=iters, tile_target=target, preset=name, recipes=tuple(recipes))


def check_stop(preset: Preset, name: str, o: FitOptions) -> None:
    """An explicit --stop against a preset whose recipes fix their own rule: refused in one line,
    neither silently overridden by the recipe nor obeyed against what the recipe was measured with."""
    own = {r.stop for r in preset.recipes} - {None, o.stop}
    if o.stop is None or not own:
        return
    rule = "a fixed budget" if own == {"fixed"} else f"its own stop rule ({', '.join(sorted(own))})"
    default = " (the default without --arch)" if o.preset is None else ""
    raise Fail(f"--stop {o.stop}: preset {name}{default} runs {rule}; drop --stop, or give --arch NAME "
               "to fit one net with the rule you name")


def check_tile(o: FitOptions, spec: NetSpec) -> None:
    """A tile must hold the net's deepest scale twice over (else it is all padding) and 32 px."""
    if o.tile.auto or o.tile.size == 0:
        return
    smallest = smallest_tile(spec.multiple)
    if o.tile.size < smallest:
        raise Fail(f"--tile {o.tile.size} is too small for this net ({spec.scales} scales, "
                   f"multiple {spec.multiple}); give at least {smallest}, or 0 for no tiling")
    if o.pictures:
        raise Fail("--tile fits every tile separately, so there is no one fit to plot or film; "
                   "drop --plot/--gif/--snapshots or --tile")


# ---- inputs ---------------------------------------------------------------------------------------

ImageLike = np.ndarray | str | os.PathLike | Image


@dataclass
class TaskInput:
    """One input of a task: the image and what goes with it, each named for messages."""

    image: Image
    name: str = "the image"
    clean: Image | None = None  # a clean reference (for superres: the high-resolution one)
    clean_name: str = "the reference"
    mask: Image | None = None  # inpainting: the mask image, polarity still to decide
    mask_name: str = "the mask"


@dataclass
class Layout:
    """How an array came in, so the result goes back the same way: dtype and dimensions."""

    dtype: np.dtype
    ndim: int


def as_image(data: ImageLike, what: str = "image") -> tuple[Image, Layout | None]:
    """An :class:`Image` from an array (``(H, W)`` or ``(H, W, C)``, C in 1–4; uint8, uint16, or
    float in [0, 1]), a path, or an Image; and the array's layout (None for a file)."""
    if isinstance(data, Image):
        return data, None
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise Fail(f"{path}: no such file; check the {what} path")
        try:
            return read_image(path), None
        except ImageError as exc:
            raise Fail(str(exc), FAILURE) from None
    array = np.asarray(data)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise Fail(f"the {what} has shape {array.shape}; give (H, W) or (H, W, C) with 1 to 4 channels")
    layout = Layout(array.dtype, array.ndim)
    planes = array if array.ndim == 3 else array[:, :, None]
    if array.dtype == bool:
        planes = planes.astype(np.uint8) * 255
    if np.issubdtype(planes.dtype, np.floating):
        if not np.isfinite(planes).all():
            raise Fail(f"the {what} has NaN or infinite pixels; replace them (numpy.nan_to_num), or "
                       "for inpainting mark them as holes in the mask")
        if planes.size and not (planes.min() >= 0 and planes.max() <= 1):
            raise Fail(f"the {what} is float but not within [0, 1]; scale it to [0, 1] or give integers")
        colour = planes[:, :, :-1] if planes.shape[2] in (2, 4) else planes
        alpha = planes[:, :, -1].copy() if planes.shape[2] in (2, 4) else None
        return Image(colour.astype(np.float32), np.dtype(np.float32), colour.shape[2] == 1, alpha), layout
    if planes.dtype not in (np.uint8, np.uint16):
        raise Fail(f"the {what} is {planes.dtype}; give uint8, uint16, or float in [0, 1]")
    return from_array(planes), layout


def as_array(image: Image, layout: Layout | None) -> np.ndarray:
    """The restored image as the caller gave the input: dtype, dimensions, alpha."""
    if layout is None or layout.dtype in (np.uint8, np.uint16, bool):
        data = to_array(image)
        if layout is not None and layout.dtype == bool:
            data = data > np.iinfo(data.dtype).max // 2
    else:
        data = np.clip(image.pixels, 0, 1).astype(layout.dtype)
        if image.alpha is not None:
            data = np.concatenate([data, image.alpha[:, :, None].astype(layout.dtype)], axis=2)
        if data.shape[2] == 1:
            data = data[:, :, 0]
    if layout is not None and layout.ndim == 3 and data.ndim == 2:
        data = data[:, :, None]
    return data


def check_reference(clean: Image, image: Image, name: str) -> np.ndarray:
    """A clean reference of the input's size and channels (denoising, inpainting)."""
    if clean.shape != image.shape:
        raise Fail(f"--clean {name} is {clean.shape[1]}×{clean.shape[0]} but the input is "
                   f"{image.shape[1]}×{image.shape[0]}; give the clean version of the same image")
    if clean.pixels.shape[2] != image.pixels.shape[2]:
        raise Fail(f"--clean {name} has {clean.pixels.shape[2]} colour channel(s), the input "
                   f"{image.pixels.shape[2]}; give a reference of the same kind")
    return clean.pixels


MIN_SIGMA = 0.5 / 255  # an estimate of no noise at all still needs a level for the stop rule

# ---- σ --------------------------------------------------------------------------------------------

def check_sigma(sigma: float | None) -> None:
    if sigma is not None and not 0 < sigma < 255:
        raise Fail(f"--sigma {sigma:g} is impossible; give the noise level on the 0–255 scale, "
                   "between 0 and 255 (e.g. 25)")


def noise_model(image: Image, sigma255: float | None, notes: list[str]) -> Denoise:
    """The denoising problem for the user's σ (0–255 scale) or, if None, σ estimated from the image.

    This is where σ crosses from the user's 0–255 scale to the [0, 1] used everywhere below.
    The estimate is :func:`dipcli.physics.noise.estimate_noise`, the one estimator every part uses
    (the texture measure too): wavelet-based, with rounding taken out and clipping allowed for.
    """
    if sigma255 is not None:
        check_sigma(sigma255)
        return Denoise(sigma255 / 255)
    from dipcli.physics.noise import estimate_noise

    estimate = max(estimate_noise(image.pixels), MIN_SIGMA)
    notes.append(f"estimated noise σ ≈ {estimate * 255:.1f} (pass --sigma to set it)")
    return Denoise(estimate, sigma_estimated=True)


def reg_noise(sigma: float) -> float:
    """The DIP paper's input jitter: 1/30 of the code, 1/20 for noise heavier than σ = 25/255."""
    return 1 / 20 if sigma * 255 > 25 else 1 / 30


# ---- plans ----------------------------------------------------------------------------------------

@dataclass
class Plan:
    """One input made ready to fit: what ``plan_<task>`` returns."""

    task: str
    image: Image  # what the net must explain (noisy, masked, low-resolution image)
    problem: Problem
    config: FitConfig
    spec: NetSpec
    options: FitOptions
    reference: np.ndarray | None = None
    header: str = ""  # the task's part of the one-line description
    extra: dict = field(default_factory=dict)  # task fields for the record
    composite: bool = True
    scores: Callable[[np.ndarray], dict] | None = None  # task measures of the written pixels
    notes: list[str] = field(default_factory=list)  # told to the user before the fit
    tile: int = 0  # tiles of at most this many px (0: the whole image), decided by plan_tiles
    ensemble: list[Plan] = field(default_factory=list)  # more fits of the same image, averaged with this one
    warm: FitConfig | None = None  # tiles after the first start from its weights with this (Job.warm)


def fit_config(setup: Setup, o: FitOptions, spec: NetSpec, problem: Problem, wmv_start: int = 0,
               jitter: float = 1 / 30, recipe: Recipe | None = None, iters: int | None = None) -> FitConfig:
    """The fit configuration: the stop rule for the problem's noise model, and the jitter and
    average that go with the net (``spec``'s preset), or with a denoising preset's ``recipe``,
    whose budget unless --iters names one is the recipe's for this σ (:func:`presets.budget`)."""
    r = recipe or Recipe(spec.arch)
    if recipe is not None and o.iters is None and problem.noise is not None:  # the preset's, for this σ
        iters = budget(recipe, problem.noise.sigma * 255)
    iters = iters or setup.iters
    try:
        stop = make_stop(r.stop or o.stop or "auto", problem.noise, iters, start=wmv_start)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    check_every = math.gcd(10, o.save_every) if o.save_every else 10
    net = spec.preset
    return FitConfig(iters=iters, lr=o.lr, seed=o.seed + r.seed_offset, check_every=check_every, stop=stop,
                     precision=r.precision or o.precision,
                     reg_noise=(r.jitter_sigma * problem.noise.sigma if r.jitter_sigma is not None
                                else jitter * (net.jitter if r.jitter is None else r.jitter)),
                     ema_warmup=net.ema_warmup if r.ema_warmup is None else r.ema_warmup,
                     input=r.input, sure_eps=r.sure_eps, recorrupt=r.recorrupt)


def auto_width(setup: Setup, spec: NetSpec, image: Image, sigma: float | None,
               notes: list[str]) -> tuple[NetSpec, dict]:
    """With --width auto, the width the texture estimator picks for this (noisy) image."""
    if not setup.width_auto:
        return spec, {}
    from dipcli.texture import WIDTH_THRESHOLD, complexity

    try:
        score = complexity(image.pixels, sigma)
    except ValueError as exc:  # too small to measure texture: keep the net's own width
        notes.append(f"width auto: {exc}; using width {spec.width}")
        return spec, {"width_auto": False}
    notes.append(f"width auto: {score.features['textured_l1']:.0%} of the image is textured → width "
                 f"{score.width} (128 from {WIDTH_THRESHOLD:.0%}); texture score {score.score:.2f}")
    return replace(spec, width=score.width), {"width_auto": True, "texture_score": score.score}


# ---- option checks: each task's, run by its planner and, once for a whole batch, by the CLI --------

def check_denoise(setup: Setup, has_clean: bool, has_mask: bool, *, sigma: float | None = None,
                  add_noise: bool = False) -> None:
    check_sigma(sigma)
    if add_noise and sigma is None:
        raise Fail("--add-noise needs --sigma to know how much noise to add")
    if add_noise and has_clean:
        raise Fail("--add-noise already scores against INPUT; drop --clean/--clean-dir")


def check_two_stage(setup: Setup, has_clean: bool, has_mask: bool, *, sigma: float | None = None,
                    add_noise: bool = False, tv_weight: float = TWO_STAGE_DEFAULTS["tv_weight"],
                    stage1_frac: float = TWO_STAGE_DEFAULTS["stage1_frac"],
                    schedule_kind: str = TWO_STAGE_DEFAULTS["schedule_kind"],
                    tv: str = TWO_STAGE_DEFAULTS["tv"], stage1: str = TWO_STAGE_DEFAULTS["stage1"]) -> None:
    if stage1 not in ("tv", "prefilter"):
        raise Fail(f"unknown --stage1 {stage1!r}; choose tv or prefilter")
    two_stage_parts(setup, tv_weight, stage1_frac, schedule_kind, tv)
    check_denoise(setup, has_clean, has_mask, sigma=sigma, add_noise=add_noise)


def check_inpaint(setup: Setup, has_clean: bool, has_mask: bool, *, mask_known: str = "auto",
                  drop: float | None = None, no_composite: bool = False) -> None:
    if has_mask == (drop is not None):
        raise Fail("give either --mask MASK (or --mask-pattern TEMPLATE for several images) or "
                   "--drop P (an experiment with random holes)")
    if drop is not None and not 0 < drop < 1:
        raise Fail(f"--drop {drop:g} must lie strictly between 0 and 1 (the missing fraction)")
    if mask_known not in POLARITIES:
        raise Fail(f"--mask-known {mask_known!r}: choose {', '.join(POLARITIES)}")


def check_superres(setup: Setup, has_clean: bool, has_mask: bool, *, factor: int = 4,
                   kernel: str = "lanczos2", make_lr: bool = False) -> None:
    if factor not in SR_FACTORS:
        raise Fail(f"--factor {factor} is not offered; choose one of {', '.join(map(str, SR_FACTORS))}")
    if kernel not in SR_KERNELS:
        raise Fail(f"unknown --kernel {kernel!r}; choose one of: {', '.join(SR_KERNELS)}")
    if make_lr and has_clean:
        raise Fail("--make-lr already scores against INPUT; drop --clean/--clean-dir")


# ---- plans, one per task ---------------------------------------------------------------------------

def denoise_inputs(src: TaskInput, sigma: float | None, add_noise: bool, seed: int, notes: list[str]):
    """The noisy image (made here with ``add_noise``), its reference, and the problem with σ."""
    image = src.image
    reference = check_reference(src.clean, image, src.clean_name) if src.clean is not None else None
    problem = noise_model(image, sigma, notes)
    if add_noise:
        reference = image.pixels
        image = image.with_pixels(problem.observe(image.pixels, seed))
    return image, reference, problem


def plan_denoise(src: TaskInput, o: FitOptions, *, sigma: float | None = None, add_noise: bool = False,
                 setup: Setup | None = None) -> Plan:
    setup = setup or resolve("denoise", o)
    check_denoise(setup, src.clean is not None, src.mask is not None, sigma=sigma, add_noise=add_noise)
    notes: list[str] = []
    image, reference, problem = denoise_inputs(src, sigma, add_noise, o.seed, notes)
    sigma255 = problem.sigma * 255
    recipes = denoise_fits(setup, o, sigma255)
    plans = []
    for k, (recipe, spec, iters) in enumerate(recipes):
        spec, auto = auto_width(setup, spec, image, problem.sigma, notes if k == 0 else [])
        if recipe is not None and recipe.input == "observation":  # the net reads the noisy image
            spec = replace(spec, input_depth=image.pixels.shape[2])
        config = fit_config(setup, o, spec, problem, jitter=reg_noise(problem.sigma), recipe=recipe,
                            iters=iters)
        plans.append(plan_tiles(setup, Plan("denoise", image, problem, config, spec, o, reference,
                                            f", σ = {sigma255:.3g}", {"sigma": sigma255, **auto},
                                            notes=notes)))
    if plans[0].tile and setup.preset == CPU_PRESET and o.preset is None and o.iters is None:
        setup = tiled_default(setup, plans, o)
    for plan, (recipe, _, _) in zip(plans, setup.fits, strict=False):
        warm_tiles(plan, recipe, o)
    return as_ensemble(setup, plans)


def warm_tiles(plan: Plan, recipe: Recipe | None, o: FitOptions) -> None:
    """A preset's tiles after the first start from the first one's fitted weights, for the
    recipe's shorter ``tile_iters`` (:attr:`Recipe.tile_iters`): they have learnt this image's
    noise and much of its content, so a tile needs far fewer iterations than a fresh start."""
    if not (plan.tile and recipe is not None and recipe.tile_iters and o.iters is None):
        return
    iters = min(recipe.tile_iters, plan.config.iters)
    plan.warm = replace(plan.config, iters=iters)
    if not plan.notes or "start from the first one's" not in plan.notes[-1]:
        plan.notes.append(f"tiles after the first start from the first one's weights: {iters} iterations "
                          "each instead of its " + str(plan.config.iters))


def denoise_fits(setup: Setup, o: FitOptions, sigma: float) -> tuple[tuple[Recipe | None, NetSpec, int], ...]:
    """The fits of a denoising preset for noise of ``sigma`` (0-255 scale): its recipes, and for
    one that fills its time with more seeds where the noise caps each fit, those
    (:func:`presets.members`). With --iters naming the budget or --fits the number of fits, the
    fits :func:`with_preset` chose."""
    if setup.preset is None or o.iters is not None or o.fits is not None:
        return setup.fits
    _, spec, iters = setup.recipes[-1]
    more = members(PRESETS[setup.preset], sigma)[len(setup.recipes):]
    return setup.fits + tuple((recipe, spec, iters) for recipe in more)


def tiled_default(setup: Setup, plans: list[Plan], o: FitOptions) -> Setup:
    """The CPU default on an image fitted in tiles: each tile gets the budget of
    :data:`CPU_TILED_PRESET` instead of :data:`CPU_PRESET`'s, so that a 512² image (four tiles)
    takes under five minutes (:mod:`dipcli.api.presets`). The plans are changed in place, and those
    beyond the tiled preset's fits (the whole image's added seeds: :func:`denoise_fits`) dropped."""
    tiled = with_preset(setup, replace(o, preset=CPU_TILED_PRESET), on_gpu=False)
    del plans[len(tiled.recipes):]
    for plan, (recipe, _, iters) in zip(plans, tiled.recipes, strict=True):
        plan.config = fit_config(tiled, o, plan.spec, plan.problem, jitter=reg_noise(plan.problem.sigma),
                                 recipe=recipe, iters=iters)
    plans[0].notes.append(f"preset {CPU_TILED_PRESET}: the CPU default for an image fitted in tiles "
                          f"({CPU_PRESET} for one fitted whole; --preset names another)")
    return tiled


def as_ensemble(setup: Setup, plans: list[Plan]) -> Plan:
    """The first plan, the others as its :attr:`Plan.ensemble` (fitted after it and averaged)."""
    main = plans[0]
    if setup.preset:
        for plan in plans:
            plan.extra.update(preset=setup.preset, fits=len(plans))
    if len(plans) > 1:
        main.ensemble = plans[1:]
        main.header += f", an ensemble of {len(plans)} fits ({setup.preset})"
    return main


def two_stage_parts(setup: Setup, tv_weight: float, stage1_frac: float, schedule_kind: str, tv: str):
    """The stage-1 regulariser and its weight schedule; a usage error if the options are wrong."""
    try:
        return TV(tv), schedule(schedule_kind, tv_weight, setup.iters, stage1_frac)
    except ValueError as exc:
        raise Fail(str(exc)) from None


def plan_two_stage(src: TaskInput, o: FitOptions, *, sigma: float | None = None, add_noise: bool = False,
                   tv_weight: float = TWO_STAGE_DEFAULTS["tv_weight"],
                   stage1_frac: float = TWO_STAGE_DEFAULTS["stage1_frac"],
                   schedule_kind: str = TWO_STAGE_DEFAULTS["schedule_kind"],
                   tv: str = TWO_STAGE_DEFAULTS["tv"], stage1: str = TWO_STAGE_DEFAULTS["stage1"],
                   setup: Setup | None = None) -> Plan:
    setup = setup or resolve("two-stage", o)
    check_two_stage(setup, src.clean is not None, src.mask is not None, sigma=sigma, add_noise=add_noise,
                    tv_weight=tv_weight, stage1_frac=stage1_frac, schedule_kind=schedule_kind, tv=tv,
                    stage1=stage1)
    notes: list[str] = []
    regulariser, lam = two_stage_parts(setup, tv_weight, stage1_frac, schedule_kind, tv)
    image, reference, problem = denoise_inputs(src, sigma, add_noise, o.seed, notes)
    spec, auto = auto_width(setup, setup.spec, image, problem.sigma, notes)
    end = lam.stage1_end
    config = fit_config(setup, o, spec, problem, wmv_start=end, jitter=reg_noise(problem.sigma))
    if stage1 == "prefilter":
        regulariser = PrefilterTarget(problem.sigma)
        lam = schedule("step", 1.0, setup.iters, stage1_frac)
        config.data_weight = lambda it: 0.0 if it <= end else 1.0
    config.regulariser, config.reg_weight = regulariser, lam
    sigma255 = problem.sigma * 255
    extra = {**auto, "sigma": sigma255, "stage1": stage1, "tv_weight": tv_weight, "stage1_frac": stage1_frac,
             "schedule": schedule_kind, "tv": tv, "stage1_end": end}
    what = f"TV λ = {tv_weight:g}" if stage1 == "tv" else "TV-prefiltered target"
    return plan_tiles(setup, Plan("two-stage", image, problem, config, spec, o, reference,
                                  f", σ = {sigma255:.3g}, {what} until iteration {end}", extra, notes=notes))


def plan_inpaint(src: TaskInput, o: FitOptions, *, mask_known: str = "auto", drop: float | None = None,
                 no_composite: bool = False, setup: Setup | None = None) -> Plan:
    """``src.mask`` holds the mask image (any polarity: ``mask_known``), or ``drop`` a fraction of
    pixels to remove at random (an experiment: the input is the clean reference)."""
    setup = setup or resolve("inpaint", o)
    check_inpaint(setup, src.clean is not None, src.mask is not None, mask_known=mask_known, drop=drop)
    notes: list[str] = []
    image = src.image
    reference = check_reference(src.clean, image, src.clean_name) if src.clean is not None else None
    if drop is not None:
        known, polarity = bernoulli_mask(image.shape, drop, o.seed), "random"
        reference = image.pixels if reference is None else reference
    else:
        try:
            known, polarity = load_mask(src.mask, image.shape, mask_known)
        except ValueError as exc:
            raise Fail(f"{src.mask_name}: {exc}" if src.mask_name not in str(exc) else str(exc)) from None
    problem = Inpaint(known)
    masked = image.with_pixels(problem.observe(image.pixels))
    holes = ~known
    notes.append(f"mask: {holes.mean():.1%} of pixels missing ({polarity} = known)")

    def scores(pixels: np.ndarray) -> dict:
        from skimage.metrics import peak_signal_noise_ratio

        return {"psnr_holes": float(peak_signal_noise_ratio(reference[holes], pixels[holes], data_range=1.0))}

    plans = []
    for k, (recipe, spec, iters) in enumerate(setup.fits):
        spec, auto = auto_width(setup, spec, image, None, notes if k == 0 else [])
        extra = {**auto, "mask": None if src.mask is None else src.mask_name, "mask_known": polarity,
                 "missing_fraction": float(holes.mean())}
        config = fit_config(setup, o, spec, problem, recipe=recipe, iters=iters)
        plans.append(plan_tiles(setup, Plan("inpaint", masked, problem, config, spec, o, reference,
                                            f", {holes.mean():.1%} missing", extra, not no_composite,
                                            scores, notes)))
    return as_ensemble(setup, plans)


def plan_superres(src: TaskInput, o: FitOptions, *, factor: int = 4, kernel: str = "lanczos2",
                  make_lr: bool = False, setup: Setup | None = None) -> Plan:
    setup = setup or resolve("superres", o)
    check_superres(setup, src.clean is not None, src.mask is not None, factor=factor, kernel=kernel,
                   make_lr=make_lr)
    notes: list[str] = []
    problem = SuperRes(factor, kernel)
    image = src.image
    reference = None
    if make_lr:
        if min(image.shape) < factor * MIN_SIDE:
            raise Fail(f"INPUT is too small to shrink ×{factor}; it needs at least "
                       f"{factor * MIN_SIDE} pixels per side")
        reference = problem.crop_hr(image.pixels)
        alpha = image.alpha
        if alpha is not None:  # the alpha of the low-resolution input: every F-th pixel
            alpha = problem.crop_hr(alpha[:, :, None])[::factor, ::factor, 0]
        image = replace(image.with_pixels(problem.observe(image.pixels)), alpha=alpha)
    elif src.clean is not None:
        want = (image.shape[0] * factor, image.shape[1] * factor)
        if src.clean.shape != want:
            raise Fail(f"--clean {src.clean_name} is {src.clean.shape[1]}×{src.clean.shape[0]}; a ×{factor} "
                       f"reference for this input must be {want[1]}×{want[0]}")
        reference = src.clean.pixels

    def scores(pixels: np.ndarray) -> dict:
        bicubic = bicubic_upscale(image.pixels, factor)
        return {
            "psnr_y": float(psnr_y(pixels, reference, border=factor)),
            "psnr_rgb": float(psnr_rgb(pixels, reference, border=factor)),
            "psnr_bicubic_y": float(psnr_y(bicubic, reference, border=factor)),
            "psnr_bicubic_rgb": float(psnr_rgb(bicubic, reference, border=factor)),
        }

    spec, auto = auto_width(setup, setup.spec, image, None, notes)
    h, w = image.shape
    extra = {**auto, "factor": factor, "kernel": kernel,
             "psnr_measure": f"live: Y channel, {factor}-pixel border; psnr: RGB, whole image"}
    return plan_tiles(setup, Plan("superres", image, problem, fit_config(setup, o, spec, problem), spec, o,
                                  reference, f" → {w * factor}×{h * factor} (×{factor}, {kernel})", extra,
                                  scores=scores, notes=notes))


def plan_tiles(setup: Setup, plan: Plan) -> Plan:
    """``--tile``: the plan's tile size; with ``auto``, chosen for quality and memory, with a note
    why; a given size (or 0) checked against the memory free."""
    o = plan.options
    try:
        check_size(plan.image)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    try:
        tile, why = choose_tile(plan.problem, plan.image, plan.spec, plan.config, o.device,
                                None if o.pictures else setup.tile_target,
                                None if o.tile.auto else o.tile.size)
    except ValueError as exc:  # e.g. --device cuda without a GPU
        raise Fail(str(exc)) from None
    except OutOfMemory as exc:
        raise Fail(str(exc), FAILURE) from None
    if why and o.pictures:
        raise Fail(f"{why}, so there is no one fit to plot or film; drop --plot/--gif/--snapshots")
    if why:
        plan.notes.append(why)
    plan.tile = tile
    return plan


PLANNERS: dict[str, Callable[..., Plan]] = {
    "denoise": plan_denoise, "two-stage": plan_two_stage, "inpaint": plan_inpaint, "superres": plan_superres,
}
CHECKS: dict[str, Callable[..., None]] = {
    "denoise": check_denoise, "two-stage": check_two_stage, "inpaint": check_inpaint,
    "superres": check_superres,
}


# ---- running --------------------------------------------------------------------------------------

# --group auto on a GPU: up to this many tiles of an image at once (fewer if memory says so).
# A 512² image's four tiles: 31 s instead of 45 s on an H100, the same PSNR (benchmarks/README.md,
# "On a GPU").
GPU_TILE_GROUP = 16


def tile_group(o: FitOptions) -> int:
    """How many tiles of one image to fit together: --group N, or for auto, a GPU's share."""
    if not o.group.auto:
        return o.group.size
    try:
        return GPU_TILE_GROUP if resolve_device(o.device).type == "cuda" else 1
    except ValueError:  # an unusable --device fails where the fit starts, with its own message
        return 1


def make_job(plan: Plan, subscribers: Sequence = (), begin: Callable[[str], None] | None = None) -> Job:
    """The job of one plan; ``begin`` is called before each of its fits (the image, or each tile)."""
    o = plan.options
    job = Job(plan.problem, plan.image, plan.spec, plan.config, o.device, plan.reference, o.raw,
              plan.composite, list(subscribers), plan.tile, tile_group(o), plan.warm)
    if begin is not None:
        job.begin = begin
    return job


@contextmanager
def fit_errors() -> Iterator[None]:
    """A fit's failures as :class:`Fail` s: bad settings exit 2, a failed computation 1."""
    try:
        yield
    except ValueError as exc:
        raise Fail(str(exc)) from None
    except (RuntimeError, MemoryError) as exc:
        raise Fail(f"fit failed: {str(exc).splitlines()[0]}", FAILURE) from None


def run_plan(plan: Plan, subscribers: Sequence = (), begin: Callable[[str], None] | None = None) -> JobResult:
    """Fit one plan (whole or in tiles; an ensemble fit by fit, averaged): the image to write, in
    the input's format, and its scores."""
    with fit_errors():
        if not plan.ensemble:
            return run_job(make_job(plan, subscribers, begin))
        members = [plan, *plan.ensemble]
        jobs = []
        for k, member in enumerate(members):
            say = None if begin is None else (lambda part, k=k: begin(f", fit {k + 1}/{len(members)}{part}"))
            jobs.append(make_job(member, subscribers, say))
        return run_ensemble(jobs)


def run_plans(plans: Sequence[Plan], subscribers: Sequence[Sequence] = (),
              begins: Sequence[Callable[[str], None] | None] = ()) -> list[JobResult]:
    """Fit whole images of one size together as one batched net (``--group``)."""
    subscribers = subscribers or [()] * len(plans)
    begins = begins or [None] * len(plans)
    with fit_errors():
        return run_group([make_job(p, subs, begin)
                          for p, subs, begin in zip(plans, subscribers, begins, strict=True)])


def settings_of(plan: Plan, result: JobResult) -> dict:
    """What a fit used and gave, as the fields of its record (JSON line, report row, :class:`Result`)."""
    f, spec = result.fit, plan.spec
    record = {
        **plan.extra, "arch": spec.arch, "width": spec.width, "scales": spec.scales,
        "upsample": spec.upsample,
        "params": result.params, "iterations": f.iterations, "best_iteration": f.best_iteration,
        "stop_rule": plan.config.stop.name if f.stop_reason == "budget" else f.stop_reason,
        "stop_reason": f.stop_reason, "seconds": round(f.seconds, 3), "final_loss": f.final_loss,
        "device": result.device, "precision": f.precision, "seed": plan.options.seed, "psnr": result.psnr,
        "ssim": result.ssim, "backtracks": f.backtracks,
    }
    measured = [h for h in f.history if h.get("psnr_ema") is not None]
    if measured:  # the best averaged-output PSNR seen along the run (needs a reference)
        peak = max(measured, key=lambda h: h["psnr_ema"])
        record.update(peak_psnr=peak["psnr_ema"], peak_iteration=peak["iteration"])
    if plan.scores is not None and plan.reference is not None:
        record.update(plan.scores(result.image.pixels))
    if result.tiles is not None:
        record.update(tile=plan.tile, tiles=result.tiles)
    return record
