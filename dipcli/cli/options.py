"""The options the `dip` subcommands share, each once: its flag, type, bounds and help text.

Kept apart from :mod:`dipcli.cli.app` so that the commands there read as what they do; the help
texts name the values they allow from the tables that define them (nets, presets, bounds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dipcli.api.arguments import MAX_FITS, MAX_SEED
from dipcli.api.presets import CPU_PRESET, INPAINT_PRESET, INPAINT_PRESETS, PRESETS
from dipcli.nets import ARCHS, UPSAMPLERS

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

SigmaOpt = Annotated[float | None, typer.Option("--sigma", "-s", help="Noise standard deviation "
                     "on the 0–255 scale; estimated from each image when omitted. With --noise camera: "
                     "the RMS level of the noise read from the image (lower keeps more texture).")]
NoiseOpt = Annotated[str, typer.Option("--noise", help="The noise model: gaussian (white, one σ: --sigma "
                     "or estimated), camera (a photo's: its level by brightness and its spatial "
                     "correlation, read from each image; --sigma then sets its RMS level), or auto: "
                     "gaussian with --sigma, else camera where the image's noise reads as correlated or "
                     "signal-dependent.", metavar="auto|gaussian|camera")]
WienerOpt = Annotated[bool, typer.Option("--wiener/--no-wiener", help="Filter the noisy image again "
                      "with the fit as the pilot of a Wiener filter (8×8 DCT patches, BM3D's second "
                      "step): the detail the fit missed comes back, the noise it kept goes. Off: the "
                      "fit's image alone.")]
AddNoiseOpt = Annotated[bool, typer.Option("--add-noise", help="Experiment mode: INPUT is clean; add "
                        "N(0, σ²) noise (seeded), restore, and score against INPUT.")]


PresetOpt = Annotated[str | None, typer.Option(
    "--preset", help=f"How to denoise: {', '.join(PRESETS)} (README, \"Presets\"). Default on a CPU: "
    f"{CPU_PRESET}; --arch picks one net instead.", show_default=False, metavar="NAME")]
FitsOpt = Annotated[int | None, typer.Option(
    "--fits", help=f"Average N fits (1 to {MAX_FITS}) of the preset, from seeds --seed, --seed + 1, … "
    "(default: the preset's own; best: two, more where the noise caps each fit's budget).",
    show_default=False, metavar="N")]
InpaintPresetOpt = Annotated[str | None, typer.Option("--preset", help="How to inpaint: "
                             f"{', '.join(INPAINT_PRESETS)} (README, \"Presets\"). Default: "
                             f"{INPAINT_PRESET}; --arch picks one net instead.", show_default=False,
                             metavar="NAME")]
