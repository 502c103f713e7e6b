"""The `dip` command line: parsing, wiring and exit codes, nothing else.

Each fitting subcommand checks its options, then hands :func:`dipcli.batch.run_batch` a
:class:`~dipcli.batch.Task`: a module-level ``prepare_*`` function that turns one input into a
problem and a fit configuration. One input or many, in turn or with --jobs, go through it.

Exit codes: 0 success, 1 a failure while working (unreadable image, write error; in a batch: any
input failed), 2 a usage error (bad option, missing file, existing output without --force), 130
interrupted (the best result so far is still written).
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from dipcli import __version__
from dipcli.batch import (
    FAILURE,
    INTERRUPTED,
    USAGE,
    Fail,
    Item,
    Prepared,
    Settings,
    Task,
    emit_json,
    expand_inputs,
    run_batch,
)
from dipcli.fit import PRECISIONS, FitConfig, resolve_device
from dipcli.io import ImageError, read_image
from dipcli.job import MIN_SIDE
from dipcli.masks import POLARITIES, load_mask
from dipcli.nets import ARCHS, UPSAMPLERS, NetSpec
from dipcli.problems import (
    SR_FACTORS,
    SR_KERNELS,
    Denoise,
    Inpaint,
    SuperRes,
    bernoulli_mask,
    bicubic_upscale,
    psnr_rgb,
    psnr_y,
)
from dipcli.regularisers import TV, PrefilterTarget, schedule
from dipcli.report import print_error
from dipcli.stopping import STOP_NAMES, make_stop
from dipcli.tiling import smallest_tile

__all__ = ["FAILURE", "INTERRUPTED", "USAGE", "Fail", "app", "run"]

app = typer.Typer(
    name="dip",
    help="Image restoration with a Deep Image Prior: no training data, just the image itself.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _die(exc: Fail) -> None:
    print_error(str(exc))
    raise typer.Exit(exc.code)


def _version(value: bool) -> None:
    if value:
        print(f"dip {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Image restoration with a Deep Image Prior."""


def load(path: Path, what: str = "input"):
    if not path.exists():
        raise Fail(f"{path}: no such file; check the {what} path", USAGE)
    try:
        return read_image(path)
    except ImageError as exc:
        raise Fail(str(exc), FAILURE) from None


def load_reference(path: Path, like) -> object:
    ref = load(path, "--clean")
    if ref.shape != like.shape:
        raise Fail(f"--clean {path} is {ref.shape[1]}×{ref.shape[0]} but the input is "
                   f"{like.shape[1]}×{like.shape[0]}; give the clean version of the same image")
    if ref.pixels.shape[2] != like.pixels.shape[2]:
        raise Fail(f"--clean {path} has {ref.pixels.shape[2]} colour channel(s), the input "
                   f"{like.pixels.shape[2]}; give a reference of the same kind")
    return ref.pixels


InputsArg = Annotated[list[str], typer.Argument(
    help="Images to restore (PNG, JPEG, TIFF, BMP), folders of them, or quoted globs "
         "(\"imgs/*.png\").", show_default=False, metavar="INPUT")]
OutputOpt = Annotated[Path | None, typer.Option("-o", "--output",
                      help="Where to write (one input only); default <stem>_<task>.<ext> beside it.")]
OutputDirOpt = Annotated[Path | None, typer.Option("--output-dir", help="Write the outputs here "
                         "(created if needed; subfolders mirror --recursive inputs).")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Output name template with the fields "
                    "{stem}, {task}, {ext}.", show_default="{stem}_{task}.{ext}")]
RecursiveOpt = Annotated[bool, typer.Option("--recursive", "-r", help="Find images in subfolders "
                         "of folder inputs too.")]
SkipOpt = Annotated[bool, typer.Option("--skip-existing", help="Skip inputs whose output exists "
                    "(resume an interrupted batch).")]
IterOpt = Annotated[int | None, typer.Option("--iters", help="Iteration budget, the upper bound "
                    "for every stop rule.", min=1, show_default="the task's")]
ArchOpt = Annotated[str | None, typer.Option("--arch", help=f"Generator: {', '.join(ARCHS)}.",
                    show_default="the task's")]
WidthOpt = Annotated[str | None, typer.Option("--width", help="Channels per scale, or auto: "
                     "chosen from the image's texture (see select-width).",
                     show_default="the architecture's")]
ScalesOpt = Annotated[int | None, typer.Option("--scales", help="Number of scales.", min=1,
                      show_default="the architecture's")]
UpsampleOpt = Annotated[str | None, typer.Option("--upsample", help=f"Upsampler: {', '.join(UPSAMPLERS)}.",
                        show_default="the task's")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="auto (bfloat16 where the hardware "
                        "has it natively, else float32), fp32 or bf16.")]
StopOpt = Annotated[str, typer.Option("--stop", help="When to stop: auto, wmv, discrepancy or fixed "
                    "(--iters only).")]
LrOpt = Annotated[float, typer.Option("--lr", help="Adam learning rate.", min=0.0)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; CPU runs repeat bit for bit.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")]
CleanOpt = Annotated[Path | None, typer.Option("--clean", help="Clean reference for live "
                     "PSNR/SSIM (one input).")]
CleanDirOpt = Annotated[Path | None, typer.Option("--clean-dir", help="Folder of clean references, "
                        "paired with the inputs by file name.")]
SaveEveryOpt = Annotated[int, typer.Option("--save-every", help="With --snapshots or --gif: take "
                         "the averaged output every N iterations.", min=0)]
SnapOpt = Annotated[Path | None, typer.Option("--snapshots", help="Folder for snapshots (a "
                    "subfolder per input in a batch).")]
GifOpt = Annotated[str | None, typer.Option("--gif", help="Animated GIF of the snapshots (needs "
                   "--save-every); a template such as {stem}_progress.gif in a batch.")]
PlotOpt = Annotated[str | None, typer.Option("--plot", help="Loss/PSNR curves (.png, .svg, .pdf: "
                    "needs matplotlib; .csv: the numbers); a template such as {stem}_curves.png in a batch.")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="Write every input's results, "
                      "failures included, to a .csv or .json file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print results on stdout: one JSON object "
                    "per input per line.")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", help="Restore N images at once, each in its "
                    "own process with 1/N of the cores (or its own GPU).", min=1)]
GroupOpt = Annotated[str, typer.Option("--group", "-g", help="Fit up to N images of the same size "
                     "together as one batched net, each with its own weights and stop rule (for a "
                     "GPU, which one small fit leaves mostly idle). auto: on a GPU, the tiles of an "
                     "image go together; 1: one fit at a time.", metavar="N|auto")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress; errors only.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]
TileOpt = Annotated[str, typer.Option("--tile", help="Fit overlapping tiles of at most T×T pixels "
                    "one at a time and blend them without seams (denoise, two-stage, inpaint). "
                    "auto: ~256 px tiles for the default net on images of 384 px and more, and "
                    "tiles for any net that would not fit in memory; 0: never.",
                    metavar="T|auto")]
RawOpt = Annotated[bool, typer.Option("--raw", help="Write the last raw output instead of the "
                   "running average (the average is ~2 dB better).")]

# Per-task defaults, each chosen by a benchmark (see README, "Why these defaults").
# ``tile``: with --tile auto, images larger than about 1.5 × this per side are fitted in tiles of
# about this size when the net is the task's default (it was tuned on 256² images and converges
# far more slowly on a whole 512² one: README, "Denoising"). ``gpu_arch``/``gpu_width``: the net
# on a CUDA GPU. There time is cheap, so denoising keeps the quality-first compact net, at the
# width --width auto picks (128 for most images, +0.3 dB on average, for about the time of 64 at
# 256²). On a CPU, 128 costs 4× the time, and denoising uses the lean net, which reaches its stop
# about five times sooner for a few tenths of a dB (README, "A 512² image in under five minutes").
TASK_DEFAULTS = {
    "denoise": dict(arch="lean", upsample=None, iters=1200, tile=256, gpu_arch="compact",
                    gpu_width="auto"),
    "two-stage": dict(arch="compact", upsample=None, iters=1200, tile=256, gpu_width="auto"),
    "inpaint": dict(arch="original", width=32, upsample="nearest", iters=1500),
    "superres": dict(arch="compact", upsample=None, iters=2000),
}


@dataclass
class Common(Settings):
    """The options every fitting subcommand shares: the batch's (inherited) and the fit's."""

    iters: int | None = None
    arch: str | None = None
    width: str | None = None
    scales: int | None = None
    upsample: str | None = None
    stop: str = "auto"
    precision: str = "auto"
    lr: float = 0.01

    @classmethod
    def of(cls, options: dict) -> Common:
        """The shared options out of a command's parameters (the fields of Common among them)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in names})

    def resolve(self, task: str) -> NetSpec:
        """Fill the task's defaults in and check what the user gave."""
        defaults = TASK_DEFAULTS[task]
        self.iters = self.iters or defaults["iters"]
        width = None if self.width in (None, "auto") else self.width
        if width is not None and not (width.isdigit() and int(width) > 0):
            raise Fail(f"--width {self.width!r}: give a positive number of channels or auto")
        try:
            on_gpu = resolve_device(self.device).type == "cuda"
            arch = self.arch or (defaults.get("gpu_arch", defaults["arch"]) if on_gpu else defaults["arch"])
            if width is None and self.width is None and self.arch is None:
                width = defaults.get("width")  # the task's own width goes with its own net
                if defaults.get("gpu_width") and on_gpu:
                    self.width = defaults["gpu_width"]
            spec = NetSpec(arch=arch, width=width and int(width), scales=self.scales,
                           upsample=self.upsample or defaults["upsample"]).resolved()
        except ValueError as exc:
            raise Fail(str(exc)) from None
        if self.stop not in STOP_NAMES:  # now, not at the first input
            raise Fail(f"unknown stop rule {self.stop!r}; choose one of: {', '.join(STOP_NAMES)}")
        self.check_tile(spec)
        tuned = {defaults["arch"], defaults.get("gpu_arch")}  # the nets the tile size was chosen for
        if self.tile == "auto" and spec.arch in tuned and not self.scales:
            self.tile_target = defaults.get("tile")
        return spec

    def check_tile(self, spec: NetSpec) -> None:
        """A tile must hold the net's deepest scale twice over (else it is all padding) and 32 px."""
        if self.tile != "auto":
            if not str(self.tile).isdigit():
                raise Fail(f"--tile {self.tile!r}: give a tile side in pixels, 0 (never tile) or auto")
            self.tile = int(self.tile)
        if self.tile in (0, "auto"):
            return
        smallest = smallest_tile(spec.multiple)
        if self.tile < smallest:
            raise Fail(f"--tile {self.tile} is too small for this net ({spec.scales} scales, "
                       f"multiple {spec.multiple}); give at least {smallest}, or 0 for no tiling")
        if self.plot or self.gif or self.snapshots:
            raise Fail("--tile fits every tile separately, so there is no one fit to plot or film; "
                       "drop --plot/--gif/--snapshots or --tile")

    def auto_width(self, spec: NetSpec, image, sigma255: float | None,
                   notes: list[str]) -> tuple[NetSpec, dict]:
        """With --width auto, the width the texture estimator picks for this (noisy) image."""
        if self.width != "auto":
            return spec, {}
        from dipcli.texture import WIDTH_THRESHOLD, complexity

        score = complexity(image.pixels, None if sigma255 is None else sigma255 / 255)
        notes.append(f"width auto: {score.features['textured_l1']:.0%} of the image is textured → width "
                     f"{score.width} (128 from {WIDTH_THRESHOLD:.0%}); texture score {score.score:.2f}")
        return replace(spec, width=score.width), {"width_auto": True, "texture_score": score.score}

    def config(self, task: str, spec: NetSpec, sigma: float | None = None, wmv_start: int = 0,
               sigma_estimated: bool = False, reg_noise: float = 1 / 30, **kw) -> FitConfig:
        """The fit configuration: the stop rule for the task, σ on the 0–255 scale if known, and
        the jitter and average that go with the net (``spec``'s preset)."""
        try:
            stop = make_stop(self.stop, task, self.iters, None if sigma is None else sigma / 255,
                             start=wmv_start, sigma_estimated=sigma_estimated)
        except ValueError as exc:
            raise Fail(str(exc)) from None
        if self.precision not in ("auto", *PRECISIONS):
            raise Fail(f"unknown --precision {self.precision!r}; choose auto, {', '.join(PRECISIONS)}")
        check_every = math.gcd(10, self.save_every) if self.save_every else 10
        preset = spec.preset
        return FitConfig(iters=self.iters, lr=self.lr, seed=self.seed, check_every=check_every,
                         stop=stop, precision=self.precision, reg_noise=reg_noise * preset.jitter,
                         ema_warmup=preset.ema_warmup, **kw)


# Every fitting subcommand takes these (and --help lists them after the subcommand's own).
SHARED_OPTIONS: dict[str, tuple[object, object]] = {
    "output": (OutputOpt, None), "output_dir": (OutputDirOpt, None), "name": (NameOpt, None),
    "recursive": (RecursiveOpt, False), "skip_existing": (SkipOpt, False), "iters": (IterOpt, None),
    "arch": (ArchOpt, None), "width": (WidthOpt, None), "scales": (ScalesOpt, None),
    "upsample": (UpsampleOpt, None), "stop": (StopOpt, "auto"),
    "precision": (PrecisionOpt, "auto"), "lr": (LrOpt, 0.01),
    "seed": (SeedOpt, 0), "device": (DeviceOpt, "auto"), "tile": (TileOpt, "auto"), "clean": (CleanOpt, None),
    "clean_dir": (CleanDirOpt, None), "save_every": (SaveEveryOpt, 0), "snapshots": (SnapOpt, None),
    "gif": (GifOpt, None), "plot": (PlotOpt, None), "report": (ReportOpt, None),
    "json_out": (JsonOpt, False), "jobs": (JobsOpt, 1), "group": (GroupOpt, "auto"),
    "quiet": (QuietOpt, False), "force": (ForceOpt, False), "raw": (RawOpt, False),
}


def fitting_command(func: Callable[..., None]) -> Callable[..., None]:
    """Register a fitting subcommand that declares only its own options after ``c: Common``.

    Typer reads the command's signature, so the wrapper shows it the function's own parameters
    followed by :data:`SHARED_OPTIONS`, and hands the function all the shared ones as one
    :class:`Common`: a shared option is declared once, not in every subcommand.
    """
    own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.name != "c"]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
              for name, (kind, default) in SHARED_OPTIONS.items()]

    @functools.wraps(func)
    def command(**options) -> None:
        func(Common.of(options), **{k: v for k, v in options.items() if k not in SHARED_OPTIONS})

    command.__signature__ = inspect.Signature(own + shared, return_annotation=None)
    return app.command(func.__name__.replace("_", "-"))(command)


@contextmanager
def user_errors():
    """Turn every expected failure into a one-line message and its exit code."""
    try:
        yield
    except Fail as exc:
        _die(exc)
    except ImageError as exc:
        _die(Fail(str(exc), FAILURE))


def run_task(name: str, suffix: str, prepare, c: Common, inputs: list[str], **options) -> None:
    """Run the task on every input; exit with the batch's code."""
    code = run_batch(Task(name, suffix, prepare, c, options), inputs)
    if code:
        raise typer.Exit(code)


def check_sigma(sigma: float | None) -> None:
    if sigma is not None and not 0 < sigma < 255:
        raise Fail(f"--sigma {sigma:g} is impossible; give the noise level on the 0–255 scale, "
                   "between 0 and 255 (e.g. 25)")


def noise_level(image, sigma: float | None, notes: list[str]) -> float:
    """σ on the 0–255 scale: the user's, checked, or estimated from the image."""
    if sigma is not None:
        check_sigma(sigma)
        return sigma
    from skimage.restoration import estimate_sigma

    estimate = float(estimate_sigma(image.pixels, channel_axis=2, average_sigmas=True)) * 255
    notes.append(f"estimated noise σ ≈ {estimate:.1f} (pass --sigma to set it)")
    return max(estimate, 0.5)


def check_noise_options(sigma: float | None, add_noise: bool, c: Common) -> None:
    check_sigma(sigma)
    if add_noise and sigma is None:
        raise Fail("--add-noise needs --sigma to know how much noise to add")
    if add_noise and (c.clean is not None or c.clean_dir is not None):
        raise Fail("--add-noise already scores against INPUT; drop --clean/--clean-dir")


def denoise_inputs(item: Item, sigma: float | None, add_noise: bool, c: Common, notes: list[str]):
    """Read the noisy image (or make it, with --add-noise) and its reference."""
    image = load(item.input)
    reference = load_reference(item.clean, image) if item.clean is not None else None
    sigma = noise_level(image, sigma, notes)
    problem = Denoise(sigma / 255)
    if add_noise:
        reference = image.pixels
        image = image.with_pixels(problem.observe(image.pixels, c.seed))
    return image, reference, sigma, problem


def reg_noise(sigma255: float) -> float:
    """The DIP paper's input jitter: 1/30 of the code, 1/20 for noise heavier than σ = 25."""
    return 1 / 20 if sigma255 > 25 else 1 / 30


SigmaOpt = Annotated[float | None, typer.Option("--sigma", "-s", help="Noise standard deviation "
                     "on the 0–255 scale; estimated from each image when omitted.")]
AddNoiseOpt = Annotated[bool, typer.Option("--add-noise", help="Experiment mode: INPUT is clean; add "
                        "N(0, σ²) noise (seeded), restore, and score against INPUT.")]


def prepare_denoise(item: Item, c: Common, *, spec: NetSpec, sigma: float | None,
                    add_noise: bool) -> Prepared:
    notes: list[str] = []
    estimated = sigma is None
    image, reference, sigma, problem = denoise_inputs(item, sigma, add_noise, c, notes)
    spec, auto = c.auto_width(spec, image, sigma, notes)
    config = c.config("denoise", spec, sigma, sigma_estimated=estimated, reg_noise=reg_noise(sigma))
    return Prepared(image, problem, config, spec, reference, f", σ = {sigma:.3g}",
                    {"sigma": sigma, **auto}, notes=notes)


@fitting_command
def denoise(
    c: Common, inputs: InputsArg, sigma: SigmaOpt = None, add_noise: AddNoiseOpt = False,
) -> None:
    """Remove Gaussian-like noise: `dip denoise noisy.png --sigma 25`."""
    with user_errors():
        spec = c.resolve("denoise")
        check_noise_options(sigma, add_noise, c)
        run_task("denoise", "denoised", prepare_denoise, c, inputs, spec=spec, sigma=sigma,
                 add_noise=add_noise)


# The two-stage options' defaults: the report's method (λ·TV with λ constant for the first third).
# Named once so that benchmarks/two_stage.py measures the same method the command runs.
TWO_STAGE_DEFAULTS = dict(tv_weight=0.79, stage1_frac=1 / 3, schedule_kind="step", tv="anisotropic",
                          stage1="tv")


def two_stage_parts(c: Common, tv_weight: float, stage1_frac: float, schedule_kind: str, tv: str):
    """The stage-1 regulariser and its weight schedule; a usage error if the options are wrong."""
    try:
        return TV(tv), schedule(schedule_kind, tv_weight, c.iters, stage1_frac)
    except ValueError as exc:
        raise Fail(str(exc)) from None


def prepare_two_stage(item: Item, c: Common, *, spec: NetSpec, sigma: float | None, add_noise: bool,
                      tv_weight: float, stage1_frac: float, schedule_kind: str, tv: str,
                      stage1: str) -> Prepared:
    notes: list[str] = []
    regulariser, lam = two_stage_parts(c, tv_weight, stage1_frac, schedule_kind, tv)
    estimated = sigma is None
    image, reference, sigma, problem = denoise_inputs(item, sigma, add_noise, c, notes)
    spec, auto = c.auto_width(spec, image, sigma, notes)
    end = lam.stage1_end
    config = c.config("two-stage", spec, sigma, wmv_start=end, sigma_estimated=estimated,
                      reg_noise=reg_noise(sigma))
    if stage1 == "prefilter":
        regulariser = PrefilterTarget(sigma / 255)
        lam = schedule("step", 1.0, c.iters, stage1_frac)
        config.data_weight = lambda it: 0.0 if it <= end else 1.0
    config.regulariser, config.reg_weight = regulariser, lam
    extra = {**auto, "sigma": sigma, "stage1": stage1, "tv_weight": tv_weight, "stage1_frac": stage1_frac,
             "schedule": schedule_kind, "tv": tv, "stage1_end": end}
    what = f"TV λ = {tv_weight:g}" if stage1 == "tv" else "TV-prefiltered target"
    return Prepared(image, problem, config, spec, reference,
                    f", σ = {sigma:.3g}, {what} until iteration {end}", extra, notes=notes)


@fitting_command
def two_stage(
    c: Common, inputs: InputsArg, sigma: SigmaOpt = None, add_noise: AddNoiseOpt = False,
    tv_weight: Annotated[float, typer.Option("--tv-weight", help="λ of the per-pixel TV term in "
                         "stage 1 (0.79 = the report's 1e-6 on a summed 512×512×3 TV).")
                         ] = TWO_STAGE_DEFAULTS["tv_weight"],
    stage1_frac: Annotated[float, typer.Option("--stage1-frac", help="Fraction of the iterations "
                           "in stage 1.")] = TWO_STAGE_DEFAULTS["stage1_frac"],
    schedule_kind: Annotated[str, typer.Option("--schedule", help="λ over stage 1: step, linear "
                             "or cosine.")] = TWO_STAGE_DEFAULTS["schedule_kind"],
    tv: Annotated[str, typer.Option("--tv", help="anisotropic or isotropic TV.")] = TWO_STAGE_DEFAULTS["tv"],
    stage1: Annotated[str, typer.Option("--stage1", help="tv: data + λ·TV; prefilter: fit a "
                      "TV-denoised copy (Chambolle, weight σ) instead of the noisy image.")
                      ] = TWO_STAGE_DEFAULTS["stage1"],
) -> None:
    """Denoise in two stages: DIP + λ·TV first, then plain DIP from the same weights."""
    with user_errors():
        spec = c.resolve("two-stage")
        if stage1 not in ("tv", "prefilter"):
            raise Fail(f"unknown --stage1 {stage1!r}; choose tv or prefilter")
        two_stage_parts(c, tv_weight, stage1_frac, schedule_kind, tv)
        check_noise_options(sigma, add_noise, c)
        run_task("two-stage", "denoised", prepare_two_stage, c, inputs, spec=spec, sigma=sigma,
                 add_noise=add_noise, tv_weight=tv_weight, stage1_frac=stage1_frac,
                 schedule_kind=schedule_kind, tv=tv, stage1=stage1)


def prepare_inpaint(item: Item, c: Common, *, spec: NetSpec, mask_known: str, drop: float | None,
                    no_composite: bool) -> Prepared:
    notes: list[str] = []
    image = load(item.input)
    reference = load_reference(item.clean, image) if item.clean is not None else None
    if drop is not None:
        known, polarity = bernoulli_mask(image.shape, drop, c.seed), "random"
        reference = image.pixels if reference is None else reference
    else:
        if not item.mask.exists():
            how = "check the --mask path" if c.mask is not None else \
                f"no mask for {item.input.name} by --mask-pattern {c.mask_pattern!r}"
            raise Fail(f"{item.mask}: no such file; {how}")
        try:
            known, polarity = load_mask(item.mask, image.shape, mask_known)
        except ValueError as exc:
            raise Fail(str(exc)) from None
    problem = Inpaint(known)
    spec, auto = c.auto_width(spec, image, None, notes)
    image = image.with_pixels(problem.observe(image.pixels))
    holes = ~known
    notes.append(f"mask: {holes.mean():.1%} of pixels missing ({polarity} = known)")

    def scores(pixels: np.ndarray) -> dict:
        from skimage.metrics import peak_signal_noise_ratio

        return {"psnr_holes": float(peak_signal_noise_ratio(
            reference[holes], pixels[holes], data_range=1.0))}

    return Prepared(image, problem, c.config("inpaint", spec), spec, reference,
                    f", {holes.mean():.1%} missing",
                    {**auto, "mask": None if item.mask is None else str(item.mask), "mask_known": polarity,
                     "missing_fraction": float(holes.mean())}, not no_composite, scores, notes)


@fitting_command
def inpaint(
    c: Common, inputs: InputsArg,
    mask: Annotated[Path | None, typer.Option("--mask", "-m", help="Mask image of the same size "
                    "(white = known by default; see --mask-known); one input.", show_default=False)] = None,
    mask_pattern: Annotated[str | None, typer.Option("--mask-pattern", help="Pair each image with "
                            "the mask this template names beside it, e.g. {stem}_mask.png.",
                            show_default=False)] = None,
    mask_known: Annotated[str, typer.Option("--mask-known", help="Which mask colour marks known "
                          "pixels: white, black, or auto (the larger region).")] = "auto",
    drop: Annotated[float | None, typer.Option("--drop", help="Experiment mode: no mask file; drop "
                    "this fraction of pixels at random (seeded).", show_default=False)] = None,
    no_composite: Annotated[bool, typer.Option("--no-composite", help="Write the raw network output "
                            "instead of keeping the known pixels.")] = False,
) -> None:
    """Fill missing pixels: `dip inpaint photo.png --mask holes.png`."""
    with user_errors():
        spec = c.resolve("inpaint")
        if (mask is None and mask_pattern is None) == (drop is None):
            raise Fail("give either --mask MASK (or --mask-pattern TEMPLATE for several images) or "
                       "--drop P (an experiment with random holes)")
        if drop is not None and not 0 < drop < 1:
            raise Fail(f"--drop {drop:g} must lie strictly between 0 and 1 (the missing fraction)")
        if mask_known not in POLARITIES:
            raise Fail(f"--mask-known {mask_known!r}: choose {', '.join(POLARITIES)}")
        run_task("inpaint", "inpainted", prepare_inpaint, c, inputs, spec=spec, mask_known=mask_known,
                 drop=drop, no_composite=no_composite)


def prepare_superres(item: Item, c: Common, *, spec: NetSpec, factor: int, kernel: str,
                     make_lr: bool) -> Prepared:
    notes: list[str] = []
    problem = SuperRes(factor, kernel)
    image = load(item.input)
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
    elif item.clean is not None:
        hr = load(item.clean, "--clean")
        want = (image.shape[0] * factor, image.shape[1] * factor)
        if hr.shape != want:
            raise Fail(f"--clean {item.clean} is {hr.shape[1]}×{hr.shape[0]}; a ×{factor} reference "
                       f"for this input must be {want[1]}×{want[0]}")
        reference = hr.pixels

    def scores(pixels: np.ndarray) -> dict:
        bicubic = bicubic_upscale(image.pixels, factor)
        return {
            "psnr_y": float(psnr_y(pixels, reference, border=factor)),
            "psnr_rgb": float(psnr_rgb(pixels, reference, border=factor)),
            "psnr_bicubic_y": float(psnr_y(bicubic, reference, border=factor)),
            "psnr_bicubic_rgb": float(psnr_rgb(bicubic, reference, border=factor)),
        }

    spec, auto = c.auto_width(spec, image, None, notes)
    h, w = image.shape
    return Prepared(image, problem, c.config("superres", spec), spec, reference,
                    f" → {w * factor}×{h * factor} (×{factor}, {kernel})",
                    {**auto, "factor": factor, "kernel": kernel, "psnr_measure": "live: Y channel, "
                     f"{factor}-pixel border; psnr: RGB, whole image"}, scores=scores, notes=notes)


@fitting_command
def superres(
    c: Common, inputs: InputsArg,
    factor: Annotated[int, typer.Option("--factor", "-f", help="Upscaling factor: 2, 3, 4 or 8.")] = 4,
    kernel: Annotated[str, typer.Option("--kernel", help="The downsampler the low-resolution image "
                      "came from: lanczos2 (the DIP paper's), bicubic, box or gauss.")] = "lanczos2",
    make_lr: Annotated[bool, typer.Option("--make-lr", help="Experiment mode: INPUT is high-"
                       "resolution; make the low-resolution input and score against INPUT.")] = False,
) -> None:
    """Upscale F×: `dip superres small.png --factor 4`."""
    with user_errors():
        if c.tile not in ("auto", "0"):
            raise Fail("--tile is not offered for superres: each low-resolution tile would need "
                       "its exactly matching high-resolution window, and the blur reaches across "
                       "tile borders; upscale the whole image")
        spec = c.resolve("superres")
        if factor not in SR_FACTORS:
            raise Fail(f"--factor {factor} is not offered; choose one of {', '.join(map(str, SR_FACTORS))}")
        if kernel not in SR_KERNELS:
            raise Fail(f"unknown --kernel {kernel!r}; choose one of: {', '.join(SR_KERNELS)}")
        if make_lr and (c.clean is not None or c.clean_dir is not None):
            raise Fail("--make-lr already scores against INPUT; drop --clean/--clean-dir")
        run_task("superres", f"x{factor}", prepare_superres, c, inputs, spec=spec, factor=factor,
                 kernel=kernel, make_lr=make_lr)


@app.command("select-width")
def select_width(
    inputs: Annotated[list[str], typer.Argument(help="Images, folders of images, or quoted globs.",
                                                show_default=False)],
    sigma: SigmaOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per image per line on "
                        "stdout.")] = False,
) -> None:
    """Measure texture and pick the decoder width: `dip select-width noisy.png --sigma 25`."""
    from rich.table import Table

    from dipcli.texture import complexity

    with user_errors():
        check_sigma(sigma)
        files = [source.path for source in expand_inputs(inputs)[0]]
        if not files:
            raise Fail("no images found in the given folders; give image files or folders holding them")
    table = Table(title="Texture complexity → decoder width")
    for col in ("image", "size", "σ", "score", "textured", "width", "margin"):
        table.add_column(col, justify="left" if col == "image" else "right")
    failed = 0
    for path in files:
        try:
            image = load(path)
            score = complexity(image.pixels, None if sigma is None else sigma / 255)
        except Fail as exc:
            failed += 1
            print_error(str(exc))
            continue
        h, w = image.shape
        if json_out:
            emit_json({"input": str(path), "width": score.width, "score": score.score,
                       "textured": score.features["textured_l1"],
                       "sigma": score.sigma, "margin": score.margin, "size": [w, h],
                       "probabilities": {str(k): v for k, v in score.probabilities.items()}})
        else:
            table.add_row(str(path), f"{w}×{h}", f"{score.sigma:.1f}" + ("" if sigma else " (est.)"),
                          f"{score.score:.2f}", f"{score.features['textured_l1']:.1%}", str(score.width),
                          f"{score.margin:.1%}")
    if not json_out and table.row_count:
        Console().print(table)
    if failed:
        raise typer.Exit(FAILURE)


@app.command()
def nets(
    size: Annotated[int, typer.Option("--size", help="Image side to time an iteration at.", min=8)] = 256,
    width: Annotated[int | None, typer.Option("--width", help="Width for every architecture.", min=1,
                     show_default="each one's own")] = None,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """List the generators: parameters and measured seconds per iteration on this device."""
    from rich.table import Table

    from dipcli.fit import resolve_device
    from dipcli.nets import describe_archs

    with user_errors():
        try:
            dev = resolve_device(device)
        except ValueError as exc:
            raise Fail(str(exc)) from None
        rows = describe_archs(size, dev, width)
    if json_out:
        for row in rows:
            emit_json({**row, "device": str(dev), "size": size})
        return
    table = Table(title=f"Generators at {size}×{size} on {dev} (median of 5 timed steps)")
    for col in ("arch", "about", "width", "scales", "upsample", "params", "s/iter"):
        table.add_column(col, justify="right" if col in ("width", "scales", "params", "s/iter") else "left")
    for r in rows:
        table.add_row(r["arch"], r["about"], str(r["width"]), str(r["scales"]), r["upsample"],
                      f"{r['params']:,}", f"{r['sec_per_iter']:.3f}")
    Console().print(table)


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # outside a fit (e.g. while reading): nothing to save
        sys.exit(INTERRUPTED)
