"""The `dip` command line: parsing, messages and exit codes, nothing else.

Each fitting subcommand parses its options into typed values (:class:`dipcli.api.spec.Options`
for the fit, :class:`dipcli.batch.Settings` for inputs and outputs), has the task specified and
checked once, before any image is read (:func:`dipcli.api.spec.make_spec`, as the Python API does),
and hands the spec and the inputs to :func:`dipcli.batch.run_batch`.

Exit codes: 0 success, 1 a failure while working (unreadable image, write error; in a batch: any
input failed), 2 a usage error (bad option, missing file, existing output without --force), 130
interrupted (the best result so far is still written), 143 and 129 the same after SIGTERM and
SIGHUP (:mod:`dipcli.signals`).
"""

from __future__ import annotations

import functools
import inspect
import shlex
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dipcli import __version__, signals
from dipcli.api.presets import (
    TWO_STAGE_DEFAULTS,
)
from dipcli.api.spec import Options, group_count, make_spec, sigma_from_255, tile_count
from dipcli.batch import Settings, Task, emit_json, expand_inputs, run_batch
from dipcli.cli.options import (
    AddNoiseOpt,
    ArchOpt,
    CleanDirOpt,
    CleanOpt,
    ClusterOpt,
    DeviceOpt,
    FitsOpt,
    ForceOpt,
    FormatOpt,
    GifOpt,
    GroupOpt,
    HtmlOpt,
    InpaintPresetOpt,
    InputsArg,
    IterOpt,
    JobsOpt,
    JsonOpt,
    LrOpt,
    MaxPixelsOpt,
    NameOpt,
    NetsJsonOpt,
    NoiseOpt,
    OutputDirOpt,
    OutputOpt,
    PlotOpt,
    PrecisionOpt,
    PresetOpt,
    QuietOpt,
    RawOpt,
    RecursiveOpt,
    ReportOpt,
    SaveEveryOpt,
    ScalesOpt,
    SeedOpt,
    SharedFsOpt,
    SigmaOpt,
    SkipOpt,
    SnapOpt,
    StopOpt,
    StripOpt,
    TileOpt,
    UpsampleOpt,
    WidthOpt,
    WienerOpt,
)
from dipcli.errors import FAILURE, INTERRUPTED, USAGE, Fail
from dipcli.io import ImageError
from dipcli.report.progress import print_error

__all__ = ["FAILURE", "INTERRUPTED", "USAGE", "Fail", "app", "main"]

app = typer.Typer(
    name="dip",
    help="Image restoration with a Deep Image Prior: no training data, just the image itself.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,  # click's plain help: flags shown as flags, legible at 80 columns
)


def _die(exc: Fail) -> None:
    print_error(str(exc))
    raise typer.Exit(exc.code)


def _version(value: bool) -> None:
    if value:
        print(f"dip {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Image restoration with a Deep Image Prior."""


@dataclass
class Common:
    """The options every fitting subcommand shares, parsed: the batch's and the fit's."""

    settings: Settings
    fit: Options

    @classmethod
    def of(cls, options: dict) -> Common:
        """The shared options out of a command's parameters, each parsed into its typed value."""
        settings = Settings(**{f.name: options[f.name] for f in fields(Settings) if f.name in options},
                            command=shlex.join(["dip", *sys.argv[1:]]))
        plain = {f.name for f in fields(Options)} - {"tile", "group", "pictures"}
        fit = Options(**{k: options[k] for k in plain if k in options}, tile=tile_count(options["tile"]),
                      group=group_count(options["group"]),
                      pictures=bool(settings.plot or settings.gif or settings.snapshots))
        return cls(settings, fit)


# Every fitting subcommand takes these (and --help lists them after the subcommand's own).
SHARED_OPTIONS: dict[str, tuple[object, object]] = {
    "output": (OutputOpt, None), "format": (FormatOpt, None), "output_dir": (OutputDirOpt, None),
    "name": (NameOpt, None),
    "recursive": (RecursiveOpt, False), "skip_existing": (SkipOpt, False), "iters": (IterOpt, None),
    "arch": (ArchOpt, None), "width": (WidthOpt, None), "scales": (ScalesOpt, None),
    "upsample": (UpsampleOpt, None), "stop": (StopOpt, None),
    "precision": (PrecisionOpt, "auto"), "lr": (LrOpt, 0.01),
    "seed": (SeedOpt, 0), "device": (DeviceOpt, "auto"), "tile": (TileOpt, "auto"), "clean": (CleanOpt, None),
    "clean_dir": (CleanDirOpt, None), "save_every": (SaveEveryOpt, 0), "snapshots": (SnapOpt, None),
    "gif": (GifOpt, None), "plot": (PlotOpt, None), "report": (ReportOpt, None), "html": (HtmlOpt, None),
    "json_out": (JsonOpt, False), "jobs": (JobsOpt, 1), "group": (GroupOpt, "auto"),
    "quiet": (QuietOpt, False), "max_pixels": (MaxPixelsOpt, None), "force": (ForceOpt, False),
    "raw": (RawOpt, False), "strip_metadata": (StripOpt, False), "cluster": (ClusterOpt, None),
    "shared_fs": (SharedFsOpt, False),
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
        with user_errors():
            common = Common.of(options)
        func(common, **{k: v for k, v in options.items() if k not in SHARED_OPTIONS})

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


def run_task(name: str, suffix: str, c: Common, inputs: list[str], **options) -> None:
    """Check the task's options once, run it on every input, and exit with the batch's code."""
    with user_errors():
        s = c.settings
        spec = make_spec(name, c.fit, has_clean=s.clean is not None or s.clean_dir is not None,
                         has_mask=s.mask is not None or s.mask_pattern is not None, **options)
        code = run_batch(Task(spec, suffix, s), inputs)
    if code:
        raise typer.Exit(code)


@fitting_command
def denoise(
    c: Common, inputs: InputsArg, sigma: SigmaOpt = None, noise: NoiseOpt = "auto",
    add_noise: AddNoiseOpt = False, preset: PresetOpt = None, fits: FitsOpt = None,
    wiener: WienerOpt = True,
) -> None:
    """Remove noise: `dip denoise photo.jpg`, or white noise of a known level: `--sigma 25`."""
    c = replace(c, fit=replace(c.fit, preset=preset, fits=fits))
    run_task("denoise", "denoised", c, inputs, sigma=sigma, noise=noise, add_noise=add_noise,
             wiener=wiener)


@fitting_command
def two_stage(
    c: Common, inputs: InputsArg, sigma: SigmaOpt = None, add_noise: AddNoiseOpt = False,
    tv_weight: Annotated[float, typer.Option("--tv-weight", help="λ of the per-pixel TV term in "
                         "stage 1 (0.79 = the report's 1e-6 on a summed 512×512×3 TV).")
                         ] = TWO_STAGE_DEFAULTS["tv_weight"],
    stage1_frac: Annotated[float, typer.Option("--stage1-frac", help="Fraction of the iterations "
                           "in stage 1.")] = TWO_STAGE_DEFAULTS["stage1_frac"],
    schedule_kind: Annotated[str, typer.Option("--schedule", help="λ over stage 1: step, linear "
                             "or cosine.")] = TWO_STAGE_DEFAULTS["schedule"],
    tv: Annotated[str, typer.Option("--tv", help="anisotropic or isotropic TV.")] = TWO_STAGE_DEFAULTS["tv"],
    stage1: Annotated[str, typer.Option("--stage1", help="tv: data + λ·TV; prefilter: fit a "
                      "TV-denoised copy (Chambolle, weight σ) instead of the noisy image.")
                      ] = TWO_STAGE_DEFAULTS["stage1"],
) -> None:
    """Denoise in two stages: DIP + λ·TV first, then plain DIP from the same weights."""
    run_task("two-stage", "denoised", c, inputs, sigma=sigma, add_noise=add_noise, tv_weight=tv_weight,
             stage1_frac=stage1_frac, schedule=schedule_kind, tv=tv, stage1=stage1)


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
    preset: InpaintPresetOpt = None, fits: FitsOpt = None,
) -> None:
    """Fill missing pixels: `dip inpaint photo.png --mask holes.png`."""
    c = replace(c, fit=replace(c.fit, preset=preset, fits=fits))
    run_task("inpaint", "inpainted", c, inputs, mask_known=mask_known, drop=drop, composite=not no_composite)


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
    run_task("superres", f"x{factor}", c, inputs, factor=factor, kernel=kernel, make_lr=make_lr)


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
    from rich.text import Text

    from dipcli.api.tasks import select_width as measure

    with user_errors():
        sigma_from_255(sigma)
        files = [source.path for source in expand_inputs(inputs)[0]]
        if not files:
            raise Fail("no images found in the given folders; give image files or folders holding them")
    table = Table(title="Texture → decoder width")
    for col in ("image", "size", "σ", "textured", "width", "margin"):
        table.add_column(col, justify="left" if col == "image" else "right")
    failed = 0
    for path in files:
        try:
            from dipcli.api.inputs import as_image

            image, _ = as_image(path, "input")
            score = measure(image, sigma)
        except Fail as exc:
            failed += 1
            print_error(str(exc))
            if json_out:  # one record per input, as the fitting commands write: a script sees every file
                emit_json({"input": str(path), "status": "failed", "error": str(exc)})
            continue
        h, w = image.shape
        if json_out:
            emit_json({"input": str(path), "width": score.width, "textured": score.textured,
                       "sigma": score.sigma, "margin": score.margin, "size": [w, h]})
        else:
            table.add_row(Text(str(path)), f"{w}×{h}", f"{score.sigma:.1f}" + ("" if sigma else " (est.)"),
                          f"{score.textured:.1%}", str(score.width), f"{score.margin:.1%}")
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
    json_out: NetsJsonOpt = False,
) -> None:
    """List the generators: parameters and measured seconds per iteration on this device."""
    from rich.table import Table

    from dipcli.nets import describe_archs
    from dipcli.optim import resolve_device

    with user_errors():
        try:
            dev = resolve_device(device)
            rows = describe_archs(size, dev, width)  # a width past nets.MAX_WIDTH: one line
        except ValueError as exc:
            raise Fail(str(exc)) from None
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


def one_line(message: str) -> str:
    """A parser's message on one line: its lines joined, quotes and spaces as they were."""
    return " ".join(part.strip() for part in message.strip().splitlines() if part.strip())


def main(args: list[str] | None = None) -> int:
    """Run the command line; the exit code. Parser errors are one ``dip: error:`` line, exit 2."""
    # Typer carries its own copy of click; its exceptions are the ones raised here.
    from typer._click import exceptions as click

    try:
        code = app(args=args, prog_name="dip", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:  # plain `dip`: the help, as a usage error
        print(exc.ctx.get_help() if exc.ctx else str(exc), file=sys.stderr)
        return USAGE
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "dip"
        print_error(f"{one_line(exc.format_message())} (see {where} --help)")
        return USAGE
    except click.ClickException as exc:
        print_error(one_line(exc.format_message()))
        return exc.exit_code
    except typer.Abort as exc:  # Ctrl-C or SIGTERM outside a fit: nothing to save
        raise KeyboardInterrupt from exc
    if isinstance(code, int):
        code = signals.exit_code() if code == INTERRUPTED else code
        return code
    return 0

