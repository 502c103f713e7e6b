"""The `dip` command line: parsing, messages and exit codes, nothing else.

Each fitting subcommand parses its options into typed values (:class:`dipcli.api.plan.FitOptions`
for the fit, :class:`dipcli.batch.Settings` for inputs and outputs), has the task check them
once, before any image is read, and hands the inputs to :func:`dipcli.batch.run_batch`, which
runs the same task functions as the Python API (:mod:`dipcli.api.tasks`).

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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dipcli import __version__, signals
from dipcli.api.arguments import MAX_FITS, MAX_SEED
from dipcli.api.options import Group, Tile
from dipcli.api.plan import CHECKS, FitOptions, check_sigma, resolve
from dipcli.api.presets import (
    CPU_PRESET,
    CPU_TILED_PRESET,
    INPAINT_PRESET,
    INPAINT_PRESETS,
    PRESETS,
    TWO_STAGE_DEFAULTS,
)
from dipcli.batch import Settings, Task, emit_json, expand_inputs, run_batch
from dipcli.errors import FAILURE, INTERRUPTED, USAGE, Fail
from dipcli.io import ImageError
from dipcli.nets import ARCHS, UPSAMPLERS
from dipcli.report.progress import print_error

__all__ = ["FAILURE", "INTERRUPTED", "USAGE", "Fail", "app", "run"]

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


InputsArg = Annotated[list[str], typer.Argument(
    help="Images to restore (PNG, JPEG, TIFF, BMP), folders of them, or quoted globs "
         "(\"imgs/*.png\"); - reads one image from stdin.", show_default=False, metavar="INPUT")]
OutputOpt = Annotated[Path | None, typer.Option("-o", "--output",
                      help="Where to write (one input only); default <stem>_<task>.<ext> beside it. "
                      "- : stdout (the default for the input -, stdin).")]
FormatOpt = Annotated[str | None, typer.Option("--format", help="The type of the image written to "
                      "stdout (-o -): png, tif, jpg or bmp. Default: the input's.", metavar="TYPE",
                      show_default=False)]
OutputDirOpt = Annotated[Path | None, typer.Option("--output-dir", help="Write the outputs here "
                         "(created if needed; subfolders mirror --recursive inputs).")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Output name template with the fields "
                    "{stem}, {task}, {ext} and {parent} (the input's folder).",
                    show_default="{stem}_{task}.{ext}")]
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
StopOpt = Annotated[str | None, typer.Option("--stop", help="When to stop: auto, wmv, discrepancy or "
                    "fixed (--iters only). The denoising presets run a fixed budget: --stop goes "
                    "with --arch.", show_default="auto")]
LrOpt = Annotated[float, typer.Option("--lr", help="Adam learning rate (positive).")]
SeedOpt = Annotated[int, typer.Option("--seed", help=f"Random seed, 0 to {MAX_SEED}; CPU runs repeat "
                    "bit for bit.")]
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
MaxPixelsOpt = Annotated[int | None, typer.Option("--max-pixels", help="Refuse images of more "
                         "pixels than this, checked from the file's header before decoding (a "
                         "decompression bomb). Default 134,217,728 (2**27) or $DIP_MAX_PIXELS.",
                         min=1, show_default=False, metavar="N")]
HtmlOpt = Annotated[Path | None, typer.Option("--html", help="Write a report to look at: one "
                    "offline page with every input beside its output (a slider, zoom, what the fit "
                    "removed), the curves and the settings, rewritten as each input finishes. Its "
                    "images go beside it in FILE_files/.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print results on stdout: one JSON object "
                    "per input per line.")]
NetsJsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object per generator per "
                        "line on stdout.")]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", help="Restore N images at once, each in its "
                    "own process with 1/N of the cores (or its own GPU).", min=1)]
GroupOpt = Annotated[str, typer.Option("--group", "-g", help="Fit up to N images of the same size "
                     "together as one batched net, each with its own weights and stop rule (for a "
                     "GPU, which one small fit leaves mostly idle). auto: on a GPU, the tiles of an "
                     "image go together; 1: one fit at a time.", metavar="N|auto")]
ClusterOpt = Annotated[str | None, typer.Option("--cluster", envvar="DIP_CLUSTER", help="Fit the "
                       "inputs on a Dask cluster: the scheduler's address (tcp://HOST:8786), its "
                       "scheduler file (.json), or local[:N] for N worker processes here (default: "
                       "one per core). Needs pip install 'dipcli[cluster]'.", metavar="ADDRESS",
                       show_default=False)]
SharedFsOpt = Annotated[bool, typer.Option("--shared-fs", help="With --cluster: the workers see "
                        "these paths, and read inputs and write outputs themselves (no pixels sent).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress; errors only.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]
TileOpt = Annotated[str, typer.Option("--tile", help="Fit overlapping tiles of at most T×T pixels "
                    "one at a time and blend them without seams (denoise, two-stage, inpaint). "
                    "auto: ~256 px tiles for the default net on images of 384 px and more, and "
                    "tiles for any net that would not fit in memory; 0: never.",
                    metavar="T|auto")]
StripOpt = Annotated[bool, typer.Option("--strip-metadata", help="Write outputs without the "
                     "input's metadata (EXIF, ICC colour profile, DPI, PNG text), which they keep by "
                     "default (less the EXIF orientation, already applied, and thumbnail).")]
RawOpt = Annotated[bool, typer.Option("--raw", help="Write the last raw output instead of the "
                   "running average (the average is ~2 dB better).")]

@dataclass
class Common:
    """The options every fitting subcommand shares, parsed: the batch's and the fit's."""

    settings: Settings
    fit: FitOptions

    @classmethod
    def of(cls, options: dict) -> Common:
        """The shared options out of a command's parameters, each parsed into its typed value."""
        settings = Settings(**{f.name: options[f.name] for f in fields(Settings) if f.name in options},
                            command=shlex.join(["dip", *sys.argv[1:]]))
        plain = {f.name for f in fields(FitOptions)} - {"tile", "group", "pictures"}
        fit = FitOptions(**{k: options[k] for k in plain if k in options}, tile=Tile.parse(options["tile"]),
                         group=Group.parse(options["group"]),
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
        setup = resolve(name, c.fit)
        s = c.settings
        CHECKS[name](setup, s.clean is not None or s.clean_dir is not None,
                     s.mask is not None or s.mask_pattern is not None, **options)
        code = run_batch(Task(name, suffix, s, c.fit, setup, options), inputs)
    if code:
        raise typer.Exit(code)


SigmaOpt = Annotated[float | None, typer.Option("--sigma", "-s", help="Noise standard deviation "
                     "on the 0–255 scale; estimated from each image when omitted.")]
AddNoiseOpt = Annotated[bool, typer.Option("--add-noise", help="Experiment mode: INPUT is clean; add "
                        "N(0, σ²) noise (seeded), restore, and score against INPUT.")]


PresetOpt = Annotated[str | None, typer.Option(
    "--preset", help=f"How to denoise: {', '.join(PRESETS)} (README, \"Presets\"). Default on a CPU: "
    f"{CPU_PRESET}, {CPU_TILED_PRESET} for each tile of an image fitted in tiles; --arch picks one net "
    "instead.", show_default=False, metavar="NAME")]
FitsOpt = Annotated[int | None, typer.Option(
    "--fits", help=f"Average N fits (1 to {MAX_FITS}) of the preset, from seeds --seed, --seed + 1, … "
    "(default: the preset's own; best: two, more where the noise caps each fit's budget).",
    show_default=False, metavar="N")]
InpaintPresetOpt = Annotated[str | None, typer.Option("--preset", help="How to inpaint: "
                             f"{', '.join(INPAINT_PRESETS)} (README, \"Presets\"). Default: "
                             f"{INPAINT_PRESET}; --arch picks one net instead.", show_default=False,
                             metavar="NAME")]


@fitting_command
def denoise(
    c: Common, inputs: InputsArg, sigma: SigmaOpt = None, add_noise: AddNoiseOpt = False,
    preset: PresetOpt = None, fits: FitsOpt = None,
) -> None:
    """Remove Gaussian-like noise: `dip denoise noisy.png --sigma 25`."""
    c.fit.preset, c.fit.fits = preset, fits
    run_task("denoise", "denoised", c, inputs, sigma=sigma, add_noise=add_noise)


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
    run_task("two-stage", "denoised", c, inputs, sigma=sigma, add_noise=add_noise, tv_weight=tv_weight,
             stage1_frac=stage1_frac, schedule_kind=schedule_kind, tv=tv, stage1=stage1)


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
    c.fit.preset, c.fit.fits = preset, fits
    run_task("inpaint", "inpainted", c, inputs, mask_known=mask_known, drop=drop, no_composite=no_composite)


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
            from dipcli.api.plan import as_image

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
            emit_json({"input": str(path), "width": score.width, "score": score.score,
                       "textured": score.features["textured_l1"],
                       "sigma": score.sigma, "margin": score.margin, "size": [w, h],
                       "probabilities": {str(k): v for k, v in score.probabilities.items()}})
        else:
            table.add_row(Text(str(path)), f"{w}×{h}", f"{score.sigma:.1f}" + ("" if sigma else " (est.)"),
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
    json_out: NetsJsonOpt = False,
) -> None:
    """List the generators: parameters and measured seconds per iteration on this device."""
    from rich.table import Table

    from dipcli.nets import describe_archs
    from dipcli.optim.loop import resolve_device

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


def run() -> None:
    """Console-script entry point (see :mod:`dipcli.cli.entry`, which sets up signals first)."""
    from dipcli.cli.entry import run as entry

    entry()
