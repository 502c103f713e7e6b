"""The `dip` command line: parsing, wiring and exit codes, nothing else.

Exit codes: 0 success, 1 a failure while working (unreadable image, write error), 2 a usage
error (bad option, missing file, existing output without --force), 130 interrupted (the best
result so far is still written).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from dipcli import __version__
from dipcli.fit import PRECISIONS, FitConfig
from dipcli.io import WRITABLE, ImageError, read_image
from dipcli.job import MIN_SIDE, Job, run_job
from dipcli.masks import load_mask
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
from dipcli.report import Snapshots, progress_for
from dipcli.stopping import make_stop

app = typer.Typer(
    name="dip",
    help="Image restoration with a Deep Image Prior: no training data, just the image itself.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
err = Console(stderr=True, highlight=False)

USAGE, FAILURE, INTERRUPTED = 2, 1, 130


class Fail(Exception):
    """A one-line error for the user, with the exit code it maps to."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


def _die(exc: Fail) -> None:
    err.print(f"[bold red]dip: error:[/] {exc}", markup=True, soft_wrap=True)
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


def default_output(path: Path, suffix: str) -> Path:
    return path.with_name(f"{path.stem}_{suffix}{path.suffix}")


def check_output(output: Path, inputs: list[Path], force: bool) -> None:
    for p in inputs:
        if p is not None and output.resolve() == p.resolve():
            raise Fail(f"{output}: the output would overwrite an input; choose another -o")
    if output.suffix.lower() not in WRITABLE:
        raise Fail(f"{output}: unknown image type {output.suffix or '(none)'}; "
                   f"name the output with one of {', '.join(WRITABLE)}")
    if output.exists() and not force:
        raise Fail(f"{output} exists; pass --force to overwrite it or -o to choose another name")
    if not output.parent.exists():
        raise Fail(f"{output.parent}: output folder does not exist; create it first")


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


def emit_json(record: dict) -> None:
    print(json.dumps(record), flush=True)


InputArg = Annotated[Path, typer.Argument(help="Image to restore (PNG, JPEG, TIFF, BMP).",
                                          show_default=False)]
OutputOpt = Annotated[Path | None, typer.Option("-o", "--output",
                      help="Where to write; default <stem>_<task>.<ext> beside the input.")]
IterOpt = Annotated[int | None, typer.Option("--iters", help="Iteration budget, the upper bound "
                    "for every stop rule [default: the task's].", min=1, show_default=False)]
ArchOpt = Annotated[str | None, typer.Option("--arch", help=f"Generator: {', '.join(ARCHS)} "
                    "[default: the task's].", show_default=False)]
WidthOpt = Annotated[str | None, typer.Option("--width", help="Channels per scale, or auto: "
                     "chosen from the image's texture (see select-width) [default: the "
                     "architecture's].", show_default=False)]
ScalesOpt = Annotated[int | None, typer.Option("--scales", help="Number of scales "
                      "[default: the architecture's].", min=1, show_default=False)]
UpsampleOpt = Annotated[str | None, typer.Option("--upsample", help=f"Upsampler: {', '.join(UPSAMPLERS)} "
                        "[default: the task's].", show_default=False)]
StopOpt = Annotated[str, typer.Option("--stop", help="When to stop: auto, wmv, discrepancy or fixed "
                    "(--iters only).")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="auto (bfloat16 where the hardware "
                        "has it natively, else float32), fp32 or bf16.")]
LrOpt = Annotated[float, typer.Option("--lr", help="Adam learning rate.", min=0.0)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; CPU runs repeat bit for bit.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")]
CleanOpt = Annotated[Path | None, typer.Option("--clean", help="Clean reference for live "
                     "PSNR/SSIM.")]
SaveEveryOpt = Annotated[int, typer.Option("--save-every", help="With --snapshots: write the "
                         "averaged output every N iterations.", min=0)]
SnapOpt = Annotated[Path | None, typer.Option("--snapshots", help="Folder for snapshots.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object of results on "
                    "stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress; errors only.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output.")]
RawOpt = Annotated[bool, typer.Option("--raw", help="Write the last raw output instead of the "
                   "running average (the average is ~2 dB better).")]

# Per-task defaults, each chosen by a benchmark (see README, "Why these defaults").
TASK_DEFAULTS = {
    "denoise": dict(arch="compact", upsample=None, iters=1200),
    "two-stage": dict(arch="compact", upsample=None, iters=1200),
    "inpaint": dict(arch="original", upsample="nearest", iters=3000),
    "superres": dict(arch="compact", upsample=None, iters=2000),
}


@dataclass
class Common:
    """The options every fitting subcommand shares."""

    output: Path | None
    iters: int | None
    arch: str | None
    width: str | None
    scales: int | None
    upsample: str | None
    stop: str
    precision: str
    lr: float
    seed: int
    device: str
    clean: Path | None
    save_every: int
    snapshots: Path | None
    json_out: bool
    quiet: bool
    force: bool
    raw: bool

    def resolve(self, task: str) -> NetSpec:
        """Fill the task's defaults in and check what the user gave."""
        if (self.save_every > 0) != (self.snapshots is not None):
            raise Fail("--save-every N and --snapshots DIR go together")
        defaults = TASK_DEFAULTS[task]
        self.iters = self.iters or defaults["iters"]
        width = None if self.width in (None, "auto") else self.width
        if width is not None and not (width.isdigit() and int(width) > 0):
            raise Fail(f"--width {self.width!r}: give a positive number of channels or auto")
        try:
            return NetSpec(arch=self.arch or defaults["arch"], width=width and int(width),
                           scales=self.scales, upsample=self.upsample or defaults["upsample"]).resolved()
        except ValueError as exc:
            raise Fail(str(exc)) from None

    def auto_width(self, spec: NetSpec, image, sigma255: float | None) -> tuple[NetSpec, dict]:
        """With --width auto, the width the texture estimator picks for this (noisy) image."""
        if self.width != "auto":
            return spec, {}
        from dipcli.texture import complexity

        score = complexity(image.pixels, None if sigma255 is None else sigma255 / 255)
        if not (self.quiet or self.json_out):
            err.print(f"width auto: texture score {score.score:.2f} → width {score.width} "
                      f"(margin {score.margin:.2f} to the nearest class boundary)")
        return replace(spec, width=score.width), {"width_auto": True, "texture_score": score.score}

    def config(self, task: str, sigma: float | None = None, **kw) -> FitConfig:
        """The fit configuration: the stop rule for the task, σ on the 0–255 scale if known."""
        try:
            stop = make_stop(self.stop, task, self.iters, None if sigma is None else sigma / 255)
        except ValueError as exc:
            raise Fail(str(exc)) from None
        if self.precision not in ("auto", *PRECISIONS):
            raise Fail(f"unknown --precision {self.precision!r}; choose auto, {', '.join(PRECISIONS)}")
        check_every = math.gcd(10, self.save_every) if self.save_every else 10
        return FitConfig(iters=self.iters, lr=self.lr, seed=self.seed, check_every=check_every,
                         stop=stop, precision=self.precision, **kw)


def common(output, iters, arch, width, scales, upsample, stop, precision, lr, seed, device, clean,
           save_every, snapshots, json_out, quiet, force, raw) -> Common:
    return Common(output, iters, arch, width, scales, upsample, stop, precision, lr, seed, device,
                  clean, save_every, snapshots, json_out, quiet, force, raw)


@contextmanager
def user_errors():
    """Turn every expected failure into a one-line message and its exit code."""
    try:
        yield
    except Fail as exc:
        _die(exc)
    except ImageError as exc:
        _die(Fail(str(exc), FAILURE))


def fit_and_report(task: str, suffix: str, input: Path, image, problem, config: FitConfig,
                   spec: NetSpec, c: Common, reference=None, header: str = "",
                   extra: dict | None = None, composite: bool = True,
                   scores: Callable[[np.ndarray], dict] | None = None) -> None:
    """Run one job with progress, then report on stdout (--json) or stderr; exit 130 if interrupted.

    ``suffix`` names the default output, ``<stem>_<suffix>.<ext>`` beside the input; ``scores``
    adds task-specific measures of the written pixels (when a reference is known).
    """
    output = c.output or default_output(input, suffix)
    check_output(output, [input, c.clean], c.force)
    title = (f"dip {task} {input.name}: {image.shape[1]}×{image.shape[0]}{header}, "
             f"{spec.arch} net (width {spec.width}, {spec.scales} scales, {spec.upsample}), "
             f"stop: {config.stop.name}")
    reporter = progress_for(title, config.iters, c.quiet)
    subs = [reporter]
    if c.snapshots is not None:
        subs.append(Snapshots(c.snapshots, c.save_every, image))
    job = Job(problem, image, spec, config, output, c.device, reference, c.raw, composite, subs)
    try:
        with reporter:
            result = run_job(job)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    except (RuntimeError, MemoryError) as exc:
        raise Fail(f"fit failed: {str(exc).splitlines()[0]}", FAILURE) from None
    f = result.fit
    record = {
        "input": str(input), "output": str(output), "task": task, **(extra or {}),
        "arch": spec.arch, "width": spec.width, "scales": spec.scales, "upsample": spec.upsample,
        "params": result.params, "iterations": f.iterations, "best_iteration": f.best_iteration,
        "stop_rule": config.stop.name if f.stop_reason == "budget" else f.stop_reason,
        "stop_reason": f.stop_reason, "seconds": round(f.seconds, 3), "final_loss": f.final_loss,
        "device": result.device, "precision": f.precision, "seed": c.seed, "psnr": result.psnr,
        "ssim": result.ssim,
        "backtracks": f.backtracks,
    }
    measured = [h for h in f.history if h.get("psnr_ema") is not None]
    if measured:  # the best averaged-output PSNR seen along the run (needs a reference)
        peak = max(measured, key=lambda h: h["psnr_ema"])
        record.update(peak_psnr=peak["psnr_ema"], peak_iteration=peak["iteration"])
    if scores is not None and reference is not None:
        record.update(scores(result.image.pixels))
    if c.json_out:
        emit_json(record)
    elif not c.quiet:
        msg = (f"wrote {output} ({f.iterations} iterations, kept {f.best_iteration}, "
               f"stopped by {f.stop_reason}, {f.seconds:.1f} s")
        if result.psnr is not None:
            msg += f", PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.4f}"
        err.print(msg + ")")
        for key, value in record.items():
            if scores is not None and key.startswith("psnr_") and value is not None:
                err.print(f"  {key.replace('_', ' ')}: {value:.2f} dB")
    if f.interrupted:
        err.print(f"interrupted: wrote the result so far to {output}")
        raise typer.Exit(INTERRUPTED)


def noise_level(image, sigma: float | None, quiet: bool) -> float:
    """σ on the 0–255 scale: the user's, checked, or estimated from the image."""
    if sigma is not None:
        if not 0 < sigma < 255:
            raise Fail(f"--sigma {sigma:g} is impossible; give the noise level on the 0–255 scale, "
                       "between 0 and 255 (e.g. 25)")
        return sigma
    from skimage.restoration import estimate_sigma

    estimate = float(estimate_sigma(image.pixels, channel_axis=2, average_sigmas=True)) * 255
    if not quiet:
        err.print(f"estimated noise σ ≈ {estimate:.1f} (pass --sigma to set it)")
    return max(estimate, 0.5)


def denoise_inputs(input: Path, sigma: float | None, add_noise: bool, c: Common):
    """Read the noisy image (or make it, with --add-noise) and its reference."""
    if add_noise and sigma is None:
        raise Fail("--add-noise needs --sigma to know how much noise to add")
    if add_noise and c.clean is not None:
        raise Fail("--add-noise already scores against INPUT; drop --clean")
    image = load(input)
    reference = load_reference(c.clean, image) if c.clean is not None else None
    sigma = noise_level(image, sigma, c.quiet or c.json_out)
    problem = Denoise(sigma / 255)
    if add_noise:
        reference = image.pixels
        image = image.with_pixels(problem.observe(image.pixels, c.seed))
    return image, reference, sigma, problem


def reg_noise(sigma255: float) -> float:
    """The DIP paper's input jitter: 1/30 of the code, 1/20 for noise heavier than σ = 25."""
    return 1 / 20 if sigma255 > 25 else 1 / 30


SigmaOpt = Annotated[float | None, typer.Option("--sigma", "-s", help="Noise standard deviation "
                     "on the 0–255 scale; estimated from the image when omitted.")]
AddNoiseOpt = Annotated[bool, typer.Option("--add-noise", help="Experiment mode: INPUT is clean; add "
                        "N(0, σ²) noise (seeded), restore, and score against INPUT.")]


@app.command()
def denoise(
    input: InputArg, sigma: SigmaOpt = None, add_noise: AddNoiseOpt = False,
    output: OutputOpt = None, iters: IterOpt = None, arch: ArchOpt = None, width: WidthOpt = None,
    scales: ScalesOpt = None, upsample: UpsampleOpt = None, stop: StopOpt = "auto",
    precision: PrecisionOpt = "auto", lr: LrOpt = 0.01, seed: SeedOpt = 0,
    device: DeviceOpt = "auto", clean: CleanOpt = None,
    save_every: SaveEveryOpt = 0, snapshots: SnapOpt = None, json_out: JsonOpt = False,
    quiet: QuietOpt = False, force: ForceOpt = False, raw: RawOpt = False,
) -> None:
    """Remove Gaussian-like noise: `dip denoise noisy.png --sigma 25`."""
    c = common(output, iters, arch, width, scales, upsample, stop, precision, lr, seed, device, clean,
               save_every, snapshots, json_out, quiet, force, raw)
    with user_errors():
        spec = c.resolve("denoise")
        image, reference, sigma, problem = denoise_inputs(input, sigma, add_noise, c)
        spec, auto = c.auto_width(spec, image, sigma)
        config = c.config("denoise", sigma, reg_noise=reg_noise(sigma))
        fit_and_report("denoise", "denoised", input, image, problem, config, spec, c, reference,
                       f", σ = {sigma:.3g}", {"sigma": sigma, **auto})


@app.command("two-stage")
def two_stage(
    input: InputArg, sigma: SigmaOpt = None, add_noise: AddNoiseOpt = False,
    tv_weight: Annotated[float, typer.Option("--tv-weight", help="λ of the per-pixel TV term in "
                         "stage 1 (0.79 = the report's 1e-6 on a summed 512×512×3 TV).")] = 0.79,
    stage1_frac: Annotated[float, typer.Option("--stage1-frac", help="Fraction of the iterations "
                           "in stage 1.")] = 1 / 3,
    schedule_kind: Annotated[str, typer.Option("--schedule", help="λ over stage 1: step, linear "
                             "or cosine.")] = "step",
    tv: Annotated[str, typer.Option("--tv", help="anisotropic or isotropic TV.")] = "anisotropic",
    stage1: Annotated[str, typer.Option("--stage1", help="tv: data + λ·TV; prefilter: fit a "
                      "TV-denoised copy (Chambolle, weight σ) instead of the noisy image.")] = "tv",
    output: OutputOpt = None, iters: IterOpt = None, arch: ArchOpt = None, width: WidthOpt = None,
    scales: ScalesOpt = None, upsample: UpsampleOpt = None, stop: StopOpt = "auto",
    precision: PrecisionOpt = "auto", lr: LrOpt = 0.01, seed: SeedOpt = 0,
    device: DeviceOpt = "auto", clean: CleanOpt = None,
    save_every: SaveEveryOpt = 0, snapshots: SnapOpt = None, json_out: JsonOpt = False,
    quiet: QuietOpt = False, force: ForceOpt = False, raw: RawOpt = False,
) -> None:
    """Denoise in two stages: DIP + λ·TV first, then plain DIP from the same weights."""
    c = common(output, iters, arch, width, scales, upsample, stop, precision, lr, seed, device, clean,
               save_every, snapshots, json_out, quiet, force, raw)
    with user_errors():
        spec = c.resolve("two-stage")
        if stage1 not in ("tv", "prefilter"):
            raise Fail(f"unknown --stage1 {stage1!r}; choose tv or prefilter")
        try:
            regulariser = TV(tv)
            lam = schedule(schedule_kind, tv_weight, c.iters, stage1_frac)
        except ValueError as exc:
            raise Fail(str(exc)) from None
        image, reference, sigma, problem = denoise_inputs(input, sigma, add_noise, c)
        spec, auto = c.auto_width(spec, image, sigma)
        config = c.config("two-stage", sigma, reg_noise=reg_noise(sigma))
        end = lam.stage1_end
        if stage1 == "prefilter":
            regulariser = PrefilterTarget(sigma / 255)
            lam = schedule("step", 1.0, c.iters, stage1_frac)
            config.data_weight = lambda it: 0.0 if it <= end else 1.0
        config.regulariser, config.reg_weight = regulariser, lam
        extra = {**auto, "sigma": sigma, "stage1": stage1, "tv_weight": tv_weight, "stage1_frac": stage1_frac,
                 "schedule": schedule_kind, "tv": tv, "stage1_end": end}
        what = f"TV λ = {tv_weight:g}" if stage1 == "tv" else "TV-prefiltered target"
        fit_and_report("two-stage", "denoised", input, image, problem, config, spec, c, reference,
                       f", σ = {sigma:.3g}, {what} until iteration {end}", extra)


@app.command()
def inpaint(
    input: InputArg,
    mask: Annotated[Path | None, typer.Option("--mask", "-m", help="Mask image of the same size "
                    "(white = known by default; see --mask-known).", show_default=False)] = None,
    mask_known: Annotated[str, typer.Option("--mask-known", help="Which mask colour marks known "
                          "pixels: white, black, or auto (the larger region).")] = "auto",
    drop: Annotated[float | None, typer.Option("--drop", help="Experiment mode: no mask file; drop "
                    "this fraction of pixels at random (seeded).", show_default=False)] = None,
    no_composite: Annotated[bool, typer.Option("--no-composite", help="Write the raw network output "
                            "instead of keeping the known pixels.")] = False,
    output: OutputOpt = None, iters: IterOpt = None, arch: ArchOpt = None, width: WidthOpt = None,
    scales: ScalesOpt = None, upsample: UpsampleOpt = None, stop: StopOpt = "auto",
    precision: PrecisionOpt = "auto", lr: LrOpt = 0.01, seed: SeedOpt = 0,
    device: DeviceOpt = "auto", clean: CleanOpt = None,
    save_every: SaveEveryOpt = 0, snapshots: SnapOpt = None, json_out: JsonOpt = False,
    quiet: QuietOpt = False, force: ForceOpt = False, raw: RawOpt = False,
) -> None:
    """Fill missing pixels: `dip inpaint photo.png --mask holes.png`."""
    c = common(output, iters, arch, width, scales, upsample, stop, precision, lr, seed, device, clean,
               save_every, snapshots, json_out, quiet, force, raw)
    with user_errors():
        spec = c.resolve("inpaint")
        if (mask is None) == (drop is None):
            raise Fail("give either --mask MASK or --drop P (an experiment with random holes)")
        if drop is not None and not 0 < drop < 1:
            raise Fail(f"--drop {drop:g} must lie strictly between 0 and 1 (the missing fraction)")
        image = load(input)
        reference = load_reference(c.clean, image) if c.clean is not None else None
        if drop is not None:
            known, polarity = bernoulli_mask(image.shape, drop, seed), "random"
            reference = image.pixels if reference is None else reference
        else:
            if not mask.exists():
                raise Fail(f"{mask}: no such file; check the --mask path")
            try:
                known, polarity = load_mask(mask, image.shape, mask_known)
            except ValueError as exc:
                raise Fail(str(exc)) from None
        problem = Inpaint(known)
        spec, auto = c.auto_width(spec, image, None)
        image = image.with_pixels(problem.observe(image.pixels))
        holes = ~known
        if not (c.quiet or c.json_out):
            err.print(f"mask: {holes.mean():.1%} of pixels missing ({polarity} = known)")

        def scores(pixels: np.ndarray) -> dict:
            from skimage.metrics import peak_signal_noise_ratio

            return {"psnr_holes": float(peak_signal_noise_ratio(
                reference[holes], pixels[holes], data_range=1.0))}

        config = c.config("inpaint")
        fit_and_report("inpaint", "inpainted", input, image, problem, config, spec, c, reference,
                       f", {holes.mean():.1%} missing", {**auto, "mask_known": polarity,
                       "missing_fraction": float(holes.mean())}, not no_composite, scores)


@app.command()
def superres(
    input: InputArg,
    factor: Annotated[int, typer.Option("--factor", "-f", help="Upscaling factor: 2, 3, 4 or 8.")] = 4,
    kernel: Annotated[str, typer.Option("--kernel", help="The downsampler the low-resolution image "
                      "came from: lanczos2 (the DIP paper's), bicubic, box or gauss.")] = "lanczos2",
    make_lr: Annotated[bool, typer.Option("--make-lr", help="Experiment mode: INPUT is high-"
                       "resolution; make the low-resolution input and score against INPUT.")] = False,
    output: OutputOpt = None, iters: IterOpt = None, arch: ArchOpt = None, width: WidthOpt = None,
    scales: ScalesOpt = None, upsample: UpsampleOpt = None, stop: StopOpt = "auto",
    precision: PrecisionOpt = "auto", lr: LrOpt = 0.01, seed: SeedOpt = 0,
    device: DeviceOpt = "auto", clean: CleanOpt = None,
    save_every: SaveEveryOpt = 0, snapshots: SnapOpt = None, json_out: JsonOpt = False,
    quiet: QuietOpt = False, force: ForceOpt = False, raw: RawOpt = False,
) -> None:
    """Upscale F×: `dip superres small.png --factor 4`."""
    c = common(output, iters, arch, width, scales, upsample, stop, precision, lr, seed, device, clean,
               save_every, snapshots, json_out, quiet, force, raw)
    with user_errors():
        spec = c.resolve("superres")
        if factor not in SR_FACTORS:
            raise Fail(f"--factor {factor} is not offered; choose one of {', '.join(map(str, SR_FACTORS))}")
        if kernel not in SR_KERNELS:
            raise Fail(f"unknown --kernel {kernel!r}; choose one of: {', '.join(SR_KERNELS)}")
        if make_lr and c.clean is not None:
            raise Fail("--make-lr already scores against INPUT; drop --clean")
        problem = SuperRes(factor, kernel)
        image = load(input)
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
        elif c.clean is not None:
            hr = load(c.clean, "--clean")
            want = (image.shape[0] * factor, image.shape[1] * factor)
            if hr.shape != want:
                raise Fail(f"--clean {c.clean} is {hr.shape[1]}×{hr.shape[0]}; a ×{factor} reference "
                           f"for this input must be {want[1]}×{want[0]}")
            reference = hr.pixels

        def scores(pixels: np.ndarray) -> dict:
            lr_in = image.pixels
            bicubic = bicubic_upscale(lr_in, factor)
            return {
                "psnr_y": float(psnr_y(pixels, reference, border=factor)),
                "psnr_rgb": float(psnr_rgb(pixels, reference, border=factor)),
                "psnr_bicubic_y": float(psnr_y(bicubic, reference, border=factor)),
                "psnr_bicubic_rgb": float(psnr_rgb(bicubic, reference, border=factor)),
            }

        spec, auto = c.auto_width(spec, image, None)
        config = c.config("superres")
        h, w = image.shape
        fit_and_report("superres", f"x{factor}", input, image, problem, config, spec, c, reference,
                       f" → {w * factor}×{h * factor} (×{factor}, {kernel})",
                       {**auto, "factor": factor, "kernel": kernel, "psnr_measure": "live: Y channel, "
                        f"{factor}-pixel border; psnr: RGB, whole image"}, scores=scores)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders become the images directly inside them, sorted."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(p)
    return out


@app.command("select-width")
def select_width(
    inputs: Annotated[list[Path], typer.Argument(help="Images or folders of images.",
                                                 show_default=False)],
    sigma: SigmaOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per image per line on "
                        "stdout.")] = False,
) -> None:
    """Measure texture and pick the decoder width: `dip select-width noisy.png --sigma 25`."""
    from rich.table import Table

    from dipcli.texture import complexity

    if sigma is not None and not 0 < sigma < 255:
        _die(Fail(f"--sigma {sigma:g} is impossible; give the noise level on the 0–255 scale"))
    files = expand_inputs(inputs)
    if not files:
        _die(Fail("no images found in the given folders; give image files or folders holding them"))
    table = Table(title="Texture complexity → decoder width")
    for col in ("image", "size", "σ", "score", "width", "margin"):
        table.add_column(col, justify="left" if col == "image" else "right")
    failed = 0
    for path in files:
        try:
            image = load(path)
            score = complexity(image.pixels, None if sigma is None else sigma / 255)
        except Fail as exc:
            failed += 1
            err.print(f"[bold red]dip: error:[/] {exc}", markup=True, soft_wrap=True)
            continue
        h, w = image.shape
        if json_out:
            emit_json({"input": str(path), "width": score.width, "score": score.score,
                       "sigma": score.sigma, "margin": score.margin, "size": [w, h],
                       "probabilities": {str(k): v for k, v in score.probabilities.items()}})
        else:
            table.add_row(str(path), f"{w}×{h}", f"{score.sigma:.1f}" + ("" if sigma else " (est.)"),
                          f"{score.score:.2f}", str(score.width), f"{score.margin:.2f}")
    if not json_out and table.row_count:
        Console().print(table)
    if failed:
        raise typer.Exit(FAILURE)


@app.command()
def nets(
    size: Annotated[int, typer.Option("--size", help="Image side to time an iteration at.", min=8)] = 256,
    width: Annotated[int | None, typer.Option("--width", help="Width for every architecture "
                     "[default: each one's own].", min=1, show_default=False)] = None,
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
