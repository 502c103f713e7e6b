"""A task, specified once: what the user asked for, typed, checked and resolved before any image is read.

The command line and the Python API both build a :class:`TaskSpec` with :func:`make_spec`, and
everything below them (the batch runners, a cluster's workers, the planners) reads it and never
re-checks it. It is frozen and pickles, so a worker process gets the same object.

It holds three things:

* :class:`Options`, the options every task shares (the net, the budget, the stop rule, tiles...),
  as given;
* the task's own parameters, one frozen type per task (:class:`DenoiseParams`,
  :class:`TwoStageParams`, :class:`InpaintParams`, :class:`SuperResParams`), with σ on the [0, 1]
  scale every part below uses: :func:`sigma_from_255` is the one place it crosses from the users'
  0–255 scale;
* what the task's defaults and presets make of them (:mod:`dipcli.api.presets`): the fits to run,
  each a net, a recipe and a budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from dipcli.api.arguments import MAX_FITS, MAX_SEED
from dipcli.api.presets import (
    CPU_PRESET,
    INPAINT_PRESET,
    TASK_DEFAULTS,
    TASK_PRESETS,
    TWO_STAGE_DEFAULTS,
    Preset,
    Recipe,
    seeds,
)
from dipcli.engine.tiles import smallest_tile
from dipcli.errors import Fail
from dipcli.nets import NetSpec
from dipcli.optim.device import PRECISIONS, resolve_device
from dipcli.optim.regularisers import TV, schedule
from dipcli.optim.stopping import STOP_NAMES
from dipcli.physics import POLARITIES, SR_FACTORS, SR_KERNELS

TASKS = ("denoise", "two-stage", "inpaint", "superres")
NOISE_MODELS = ("auto", "gaussian", "camera")  # denoise --noise (dipcli.api.plan.noise_model)


@dataclass(frozen=True)
class Count:
    """``--tile`` or ``--group``: ``size`` None is auto (decided per image or device), else a number."""

    size: int | None = None

    @classmethod
    def parse(cls, value: str | int | Count | None, option: str, least: int, meaning: str) -> Count:
        """``auto`` (or None), or a whole number of at least ``least``; else a usage error naming
        ``option`` and saying what it takes (``meaning``)."""
        if isinstance(value, Count):
            return value
        if value is None or str(value) == "auto":
            return cls(None)
        text = str(value)
        if not text.isdigit() or int(text) < least:
            raise Fail(f"{option} {value!r}: give {meaning} or auto")
        return cls(int(text))

    @property
    def auto(self) -> bool:
        return self.size is None

    def __str__(self) -> str:
        return "auto" if self.size is None else str(self.size)


def tile_count(value: str | int | Count | None) -> Count:
    return Count.parse(value, "--tile", 0, "a tile side in pixels, 0 (never tile)")


def group_count(value: str | int | Count | None) -> Count:
    return Count.parse(value, "--group", 1, "how many images to fit together (1 or more)")


@dataclass(frozen=True)
class Options:
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
    stop: str | None = None  # None: auto, or the preset's own rule
    precision: str = "auto"
    lr: float = 0.01
    seed: int = 0
    device: str = "auto"
    tile: Count = field(default_factory=Count)
    group: Count = field(default_factory=Count)
    raw: bool = False
    save_every: int = 0
    pictures: bool = False
    preset: str | None = None  # denoise, inpaint: a named preset (TASK_PRESETS); None: the default
    fits: int | None = None  # denoise, inpaint: how many of the preset's fits to average (None: its own)


@dataclass(frozen=True)
class DenoiseParams:
    """``sigma``: the noise σ on the [0, 1] scale, or None to estimate it from each image.

    ``noise``: the noise model (:data:`NOISE_MODELS`): ``gaussian``, white Gaussian noise of
    ``sigma`` or of σ estimated; ``camera``, a photo's noise read from each image (a level by
    brightness, and its correlation), with ``sigma`` its RMS level; ``auto``, ``gaussian`` with ``sigma``,
    else whichever the image's noise reads as (:func:`dipcli.physics.noise_models.camera_like`).
    """

    sigma: float | None = None
    add_noise: bool = False
    noise: str = "auto"
    wiener: bool = True  # write a second, Wiener stage with the fit as pilot (physics.wiener)


@dataclass(frozen=True)
class TwoStageParams(DenoiseParams):
    noise: str = "gaussian"  # its TV stage and prefilter take one white σ
    wiener: bool = False  # the report's method as it is
    tv_weight: float = TWO_STAGE_DEFAULTS["tv_weight"]
    stage1_frac: float = TWO_STAGE_DEFAULTS["stage1_frac"]
    schedule: str = TWO_STAGE_DEFAULTS["schedule"]
    tv: str = TWO_STAGE_DEFAULTS["tv"]
    stage1: str = TWO_STAGE_DEFAULTS["stage1"]


@dataclass(frozen=True)
class InpaintParams:
    mask_known: str = "auto"
    drop: float | None = None
    composite: bool = True


@dataclass(frozen=True)
class SuperResParams:
    factor: int = 4
    kernel: str = "lanczos2"
    make_lr: bool = False


Params = DenoiseParams | TwoStageParams | InpaintParams | SuperResParams


@dataclass(frozen=True)
class Fit:
    """One fit of a task: the net, the preset's recipe for fitting it (None: the net's own way),
    and its budget (a recorrupted recipe's is capped for the image's σ when it is planned)."""

    net: NetSpec
    recipe: Recipe | None
    iters: int


@dataclass(frozen=True)
class TaskSpec:
    """One task, as :func:`make_spec` checked and resolved it (see the module's docstring)."""

    name: str
    options: Options
    params: Params
    fits: tuple[Fit, ...]
    width_auto: bool
    tile_target: int | None  # --tile auto: tiles of about this size for quality (None: memory only)
    preset: str | None = None

    @property
    def net(self) -> NetSpec:
        return self.fits[0].net


def sigma_from_255(sigma: float | None) -> float | None:
    """σ on the [0, 1] scale for the users' 0–255 scale: the one place the two meet."""
    if sigma is None:
        return None
    if not 0 < sigma < 255:
        raise Fail(f"--sigma {sigma:g} is impossible; give the noise level on the 0–255 scale, "
                   "between 0 and 255 (e.g. 25)")
    return sigma / 255


def make_spec(name: str, options: Options, *, has_clean: bool = False, has_mask: bool = False,
              **given) -> TaskSpec:
    """Check a task's options and parameters and resolve its defaults, before any image is read.

    ``given`` are the task's own parameters by name (``sigma`` on the 0–255 scale);
    ``has_clean``/``has_mask``: whether references or masks come with the inputs.
    """
    if name not in TASKS:
        raise Fail(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}")
    return resolve(name, options, make_params(name, given, has_clean, has_mask))


def resolve(name: str, options: Options, params: Params) -> TaskSpec:
    """The spec of checked parameters: the options checked, and the task's defaults and presets
    resolved for the device (a cluster's worker resolves again on its own, whose device may differ)."""
    check_options(name, options)
    on_gpu = _on_gpu(options.device)
    defaults = TASK_DEFAULTS[name]
    net, width_auto = default_net(name, options, on_gpu)
    preset = preset_name(name, options, on_gpu)
    if preset is None:
        fits = (Fit(net, None, options.iters or defaults["iters"]),)
        tuned = options.tile.auto and net.arch in defaults.get("tiled", ()) and not options.scales
        return TaskSpec(name, options, params, fits, width_auto, defaults.get("tile") if tuned else None)
    fits = preset_fits(TASK_PRESETS[name][preset], preset, options)
    target = defaults.get("tile") if options.tile.auto and not options.scales else None
    return TaskSpec(name, options, params, fits, width_auto, target, preset)


def check_options(name: str, o: Options) -> None:
    """The shared options' values, whichever net the task ends up with."""
    if name == "superres" and not (o.tile.auto or o.tile.size == 0):
        raise Fail("--tile is not offered for superres: each low-resolution tile would need "
                   "its exactly matching high-resolution window, and the blur reaches across "
                   "tile borders; upscale the whole image")
    if o.width not in (None, "auto") and not (str(o.width).isdigit() and int(o.width) > 0):
        raise Fail(f"--width {o.width!r}: give a positive number of channels or auto")
    if o.stop is not None and o.stop not in STOP_NAMES:
        raise Fail(f"unknown stop rule {o.stop!r}; choose one of: {', '.join(STOP_NAMES)}")
    if not 0 <= o.seed <= MAX_SEED:  # torch's and numpy's seeders would fail with their own words
        raise Fail(f"--seed {o.seed}: give a whole number from 0 to {MAX_SEED} (2**32 - 1)")
    if not (math.isfinite(o.lr) and o.lr > 0):
        raise Fail(f"--lr {o.lr:g}: give a positive, finite learning rate (the default is 0.01)")
    if o.precision not in ("auto", *PRECISIONS):
        raise Fail(f"unknown --precision {o.precision!r}; choose auto, {', '.join(PRECISIONS)}")
    if o.iters is not None and o.iters < 1:
        raise Fail(f"iters={o.iters}: give at least 1 iteration")


def _on_gpu(device: str) -> bool:
    try:
        return resolve_device(device).type == "cuda"
    except ValueError as exc:
        raise Fail(str(exc)) from None


def default_net(name: str, o: Options, on_gpu: bool) -> tuple[NetSpec, bool]:
    """The task's net for these options (--arch, --width, ...) and whether its width is chosen
    from the texture (--width auto, or the task's GPU default)."""
    defaults = TASK_DEFAULTS[name]
    width_auto = o.width == "auto"
    width = None if o.width in (None, "auto") else int(o.width)
    arch = o.arch or (defaults.get("gpu_arch", defaults["arch"]) if on_gpu else defaults["arch"])
    if o.width is None and o.arch is None:
        width = defaults.get("width")  # the task's own width goes with its own net
        width_auto = bool(defaults.get("gpu_width") and on_gpu)
    return resolved_net(NetSpec(arch=arch, width=width, scales=o.scales,
                                upsample=o.upsample or defaults["upsample"]), o), width_auto


def resolved_net(net: NetSpec, o: Options) -> NetSpec:
    """``net`` with its defaults filled in, refused in one line if it cannot be built or tiled."""
    try:
        net = net.resolved()
    except ValueError as exc:
        raise Fail(str(exc)) from None
    if o.tile.auto or o.tile.size == 0:
        return net
    smallest = smallest_tile(net.multiple)
    if o.tile.size < smallest:  # a tile must hold the deepest scale twice over, and 32 px
        raise Fail(f"--tile {o.tile.size} is too small for this net ({net.scales} scales, "
                   f"multiple {net.multiple}); give at least {smallest}, or 0 for no tiling")
    if o.pictures:
        raise Fail("--tile fits every tile separately, so there is no one fit to plot or film; "
                   "drop --plot/--gif/--snapshots or --tile")
    return net


def preset_name(name: str, o: Options, on_gpu: bool) -> str | None:
    """The preset to run: the one named, else the task's default (none with --arch, or on a GPU
    for denoising); ``--preset``/``--fits`` refused where they mean nothing."""
    presets = TASK_PRESETS.get(name)
    offered = " and ".join(TASK_PRESETS)
    if o.preset is not None and presets is None:
        raise Fail(f"--preset is for {offered}; {name} has its own defaults (drop --preset)")
    if o.fits is not None:
        if presets is None:
            raise Fail(f"--fits is for {offered}; {name} fits one net (drop --fits)")
        if isinstance(o.fits, bool) or not isinstance(o.fits, int) or not 1 <= o.fits <= MAX_FITS:
            raise Fail(f"--fits {o.fits!r}: give a whole number of fits from 1 to {MAX_FITS} (each more fit "
                       "costs a whole fit's time for less: four to five gained 0.01 dB at σ = 50)")
    chosen = o.preset
    if chosen is None and o.arch is None:
        chosen = {"denoise": None if on_gpu else CPU_PRESET, "inpaint": INPAINT_PRESET}.get(name)
    if chosen is None:
        if o.fits is not None:
            raise Fail("--fits averages a preset's fits, but --arch names one net: drop one of them"
                       if o.arch else "--fits averages a preset's fits: name one, e.g. --preset best")
        return None
    if chosen not in presets:
        raise Fail(f"unknown --preset {chosen!r}; choose one of: {', '.join(presets)}")
    check_stop(presets[chosen], chosen, o)
    return chosen


def check_stop(preset: Preset, name: str, o: Options) -> None:
    """An explicit --stop against a preset whose recipes fix their own rule: refused in one line,
    neither silently overridden by the recipe nor obeyed against what the recipe was measured with."""
    own = {r.stop for r in preset.recipes} - {None, o.stop}
    if o.stop is None or not own:
        return
    rule = "a fixed budget" if own == {"fixed"} else f"its own stop rule ({', '.join(sorted(own))})"
    default = " (the default without --arch)" if o.preset is None else ""
    raise Fail(f"--stop {o.stop}: preset {name}{default} runs {rule}; drop --stop, or give --arch NAME "
               "to fit one net with the rule you name")


def preset_fits(preset: Preset, name: str, o: Options) -> tuple[Fit, ...]:
    """A preset's fits (or ``--fits`` of them: :func:`presets.seeds`), each net resolved, with
    --arch/--width/--scales/--upsample/--iters applied to all."""
    width = None if o.width in (None, "auto") else int(o.width)
    fits = []
    for r in preset.recipes if o.fits is None else seeds(preset, o.fits):
        net = NetSpec(arch=o.arch or r.arch, width=width if width is not None else r.width, scales=o.scales,
                      upsample=o.upsample or r.upsample)
        fits.append(Fit(resolved_net(net, o), r, o.iters or r.iters))
    return tuple(fits)


def make_params(name: str, given: dict, has_clean: bool, has_mask: bool) -> Params:
    """The task's own parameters, checked; σ converted to [0, 1] (:func:`sigma_from_255`)."""
    try:
        if name in ("denoise", "two-stage"):
            given = {**given, "sigma": sigma_from_255(given.get("sigma"))}
            params = (DenoiseParams if name == "denoise" else TwoStageParams)(**given)
            check_noise(params)
            if params.add_noise and params.sigma is None:
                raise Fail("--add-noise needs --sigma to know how much noise to add")
            if params.add_noise and has_clean:
                raise Fail("--add-noise already scores against INPUT; drop --clean/--clean-dir")
            if isinstance(params, TwoStageParams):
                check_two_stage(params)
            return params
        if name == "inpaint":
            params = InpaintParams(**given)
            check_inpaint(params, has_mask)
            return params
        params = SuperResParams(**given)
    except TypeError as exc:  # an option another task takes
        raise Fail(f"{name}: {exc}") from None
    check_superres(params, has_clean)
    return params


def check_noise(p: DenoiseParams) -> None:
    """``--noise``: a model offered; with ``camera``, ``--sigma`` sets the model's level, not noise
    to add."""
    if p.noise not in NOISE_MODELS:
        raise Fail(f"unknown --noise {p.noise!r}; choose one of: {', '.join(NOISE_MODELS)}")
    if p.noise == "camera" and p.add_noise:
        raise Fail("--add-noise adds white Gaussian noise of --sigma: use it with --noise gaussian or auto")
    if isinstance(p, TwoStageParams) and p.noise != "gaussian":
        raise Fail("two-stage takes white Gaussian noise (its TV stage weighs one σ); use denoise --noise "
                   f"{p.noise}")


def check_two_stage(p: TwoStageParams) -> None:
    """The two-stage options, as the regulariser and its schedule will take them."""
    if p.stage1 not in ("tv", "prefilter"):
        raise Fail(f"unknown --stage1 {p.stage1!r}; choose tv or prefilter")
    try:
        TV(p.tv)
        schedule(p.schedule, p.tv_weight, 1000, p.stage1_frac)
    except ValueError as exc:
        raise Fail(str(exc)) from None


def check_inpaint(p: InpaintParams, has_mask: bool) -> None:
    if has_mask == (p.drop is not None):
        raise Fail("give either --mask MASK (or --mask-pattern TEMPLATE for several images) or "
                   "--drop P (an experiment with random holes)")
    if p.drop is not None and not 0 < p.drop < 1:
        raise Fail(f"--drop {p.drop:g} must lie strictly between 0 and 1 (the missing fraction)")
    if p.mask_known not in POLARITIES:
        raise Fail(f"--mask-known {p.mask_known!r}: choose {', '.join(POLARITIES)}")


def check_superres(p: SuperResParams, has_clean: bool) -> None:
    if p.factor not in SR_FACTORS:
        raise Fail(f"--factor {p.factor} is not offered; choose one of {', '.join(map(str, SR_FACTORS))}")
    if p.kernel not in SR_KERNELS:
        raise Fail(f"unknown --kernel {p.kernel!r}; choose one of: {', '.join(SR_KERNELS)}")
    if p.make_lr and has_clean:
        raise Fail("--make-lr already scores against INPUT; drop --clean/--clean-dir")


def with_fits(spec: TaskSpec, fits: tuple[Fit, ...], preset: str) -> TaskSpec:
    """The spec running another preset's fits (the CPU default of an image fitted in tiles)."""
    return replace(spec, fits=fits, preset=preset)
