"""The `dip` command line: parsing, wiring and exit codes, nothing else.

Exit codes: 0 success, 1 a failure while working (unreadable image, write error), 2 a usage
error (bad option, missing file, existing output without --force), 130 interrupted (the best
result so far is still written).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dipcli import __version__
from dipcli.fit import FitConfig
from dipcli.io import WRITABLE, ImageError, read_image
from dipcli.job import Job, run_job
from dipcli.nets import ARCHS, NetSpec
from dipcli.problems import Denoise
from dipcli.report import Snapshots, progress_for

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


def default_output(path: Path, task: str) -> Path:
    return path.with_name(f"{path.stem}_{task}{path.suffix}")


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


def denoise_config(sigma255: float, iters: int, lr: float, seed: int, check_every: int) -> FitConfig:
    """The DIP paper's jitter: 1/30 of the input code, 1/20 for heavier noise than σ = 25."""
    return FitConfig(
        iters=iters, lr=lr, seed=seed, check_every=check_every,
        reg_noise=1 / 20 if sigma255 > 25 else 1 / 30,
    )


def validate_net(arch: str, width: int | None) -> NetSpec:
    try:
        return NetSpec(arch=arch, width=width).resolved()
    except ValueError as exc:
        raise Fail(str(exc)) from None


def emit_json(record: dict) -> None:
    print(json.dumps(record), flush=True)


InputArg = Annotated[Path, typer.Argument(help="Image to restore (PNG, JPEG, TIFF, BMP).",
                                          show_default=False)]
OutputOpt = Annotated[Path | None, typer.Option("-o", "--output",
                      help="Where to write; default <stem>_<task>.<ext> beside the input.")]
IterOpt = Annotated[int, typer.Option("--iters", help="Iteration budget.", min=1)]
ArchOpt = Annotated[str, typer.Option("--arch", help=f"Generator: {', '.join(ARCHS)}.")]
WidthOpt = Annotated[int | None, typer.Option("--width", help="Channels per scale "
                     "(default: the architecture's own).", min=1)]
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


@app.command()
def denoise(
    input: InputArg,
    sigma: Annotated[float | None, typer.Option("--sigma", "-s", help="Noise standard "
                     "deviation on the 0–255 scale; estimated from the image when omitted.")] = None,
    output: OutputOpt = None,
    iters: IterOpt = 1000,
    arch: ArchOpt = "compact",
    width: WidthOpt = None,
    lr: LrOpt = 0.01,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    clean: CleanOpt = None,
    add_noise: Annotated[bool, typer.Option("--add-noise", help="Experiment mode: INPUT is "
                         "clean; add N(0, σ²) noise (seeded), denoise, score against INPUT.")] = False,
    save_every: SaveEveryOpt = 0,
    snapshots: SnapOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    force: ForceOpt = False,
    raw: RawOpt = False,
) -> None:
    """Remove Gaussian-like noise: `dip denoise noisy.png --sigma 25`."""
    try:
        _denoise(input, sigma, output, iters, arch, width, lr, seed, device, clean, add_noise,
                 save_every, snapshots, json_out, quiet, force, raw)
    except Fail as exc:
        _die(exc)


def _denoise(input, sigma, output, iters, arch, width, lr, seed, device, clean, add_noise,
             save_every, snapshots, json_out, quiet, force, raw) -> None:
    if sigma is not None and not 0 < sigma < 255:
        raise Fail(f"--sigma {sigma:g} is impossible; give the noise level on the 0–255 scale, "
                   "between 0 and 255 (e.g. 25)")
    if add_noise and sigma is None:
        raise Fail("--add-noise needs --sigma to know how much noise to add")
    if add_noise and clean is not None:
        raise Fail("--add-noise already scores against INPUT; drop --clean")
    if (save_every > 0) != (snapshots is not None):
        raise Fail("--save-every N and --snapshots DIR go together")
    spec = validate_net(arch, width)
    output = output or default_output(input, "denoised")
    image = load(input)
    check_output(output, [input, clean], force)

    reference = load_reference(clean, image) if clean is not None else None
    if sigma is None:
        from skimage.restoration import estimate_sigma

        sigma = float(estimate_sigma(image.pixels, channel_axis=2, average_sigmas=True)) * 255
        if not quiet:
            err.print(f"estimated noise σ ≈ {sigma:.1f} (pass --sigma to set it)")
        sigma = max(sigma, 0.5)
    problem = Denoise(sigma / 255)
    if add_noise:
        reference = image.pixels
        image = image.with_pixels(problem.observe(image.pixels, seed))

    check_every = math.gcd(10, save_every) if save_every else 10
    config = denoise_config(sigma, iters, lr, seed, check_every)
    header = (f"dip denoise {input.name}: {image.shape[1]}×{image.shape[0]}, σ = {sigma:g}, "
              f"{spec.arch} net (width {spec.width}, {spec.scales} scales)")
    reporter = progress_for(header, iters, quiet)
    subs = [reporter]
    if snapshots is not None:
        subs.append(Snapshots(snapshots, save_every, image))
    job = Job(problem, image, spec, config, output, device, reference, raw, subs)
    try:
        with reporter:
            result = run_job(job)
    except ValueError as exc:
        raise Fail(str(exc)) from None
    except ImageError as exc:
        raise Fail(str(exc), FAILURE) from None
    except (RuntimeError, MemoryError) as exc:
        raise Fail(f"fit failed: {str(exc).splitlines()[0]}", FAILURE) from None

    f = result.fit
    record = {
        "input": str(input), "output": str(output), "task": "denoise", "sigma": sigma,
        "arch": spec.arch, "width": spec.width, "scales": spec.scales, "params": result.params,
        "iterations": f.iterations, "seconds": round(f.seconds, 3), "final_loss": f.final_loss,
        "stop_reason": f.stop_reason, "device": result.device, "seed": seed,
        "psnr": result.psnr, "ssim": result.ssim, "backtracks": f.backtracks,
    }
    if json_out:
        emit_json(record)
    elif not quiet:
        msg = f"wrote {output} ({f.iterations} iterations, {f.seconds:.1f} s"
        if result.psnr is not None:
            msg += f", PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.4f}"
        err.print(msg + ")")
    if f.interrupted:
        err.print(f"interrupted: wrote the result so far to {output}")
        raise typer.Exit(INTERRUPTED)


def run() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # outside a fit (e.g. while reading): nothing to save
        sys.exit(INTERRUPTED)
