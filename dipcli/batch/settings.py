"""What a batch is made of: its settings, the task it runs, each input's paths, each outcome."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dipcli.api.spec import Options, TaskSpec
from dipcli.errors import OK

STDIO = Path("-")  # as an input: the image on stdin; as the output: write the image to stdout


@dataclass
class Settings:
    """Options about inputs, outputs and running that every fitting subcommand shares."""

    output: Path | None = None
    output_dir: Path | None = None
    name: str | None = None
    recursive: bool = False
    skip_existing: bool = False
    force: bool = False
    clean: Path | None = None
    clean_dir: Path | None = None
    mask: Path | None = None
    mask_pattern: str | None = None
    report: Path | None = None
    html: Path | None = None
    command: str = "dip"  # the command line, shown in the HTML report so a result can be repeated
    json_out: bool = False
    quiet: bool = False
    jobs: int = 1
    cluster: str | None = None  # --cluster: a Dask scheduler's address, a scheduler file, or local[:N]
    shared_fs: bool = False  # --shared-fs: the cluster's workers read and write the paths themselves
    max_pixels: int | None = None  # refuse larger images before decoding (None: io's default)
    format: str | None = None  # --format: the type of an image written to stdout (-o -), e.g. ".png"
    strip_metadata: bool = False  # --strip-metadata: outputs without the inputs' EXIF, ICC, DPI, text
    snapshots: Path | None = None
    plot: str | None = None
    gif: str | None = None


@dataclass(frozen=True)
class Task:
    """A subcommand's job, described once for all its inputs: the task's :class:`TaskSpec` (what
    to do to each input, checked once), the ``{task}`` of output names and the batch's settings.
    Everything here pickles, which lets ``--jobs`` and ``--cluster`` hand inputs to workers."""

    spec: TaskSpec
    suffix: str  # the {task} of output names: "denoised", "x4"
    settings: Settings

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def fit(self) -> Options:
        return self.spec.options


@dataclass(frozen=True)
class Item:
    """One input and every path that belongs to it."""

    index: int
    input: Path
    output: Path
    mask: Path | None = None
    clean: Path | None = None
    snapshots: Path | None = None
    plot: Path | None = None
    gif: Path | None = None
    skip: bool = False  # --skip-existing and the output is there
    kind: str | None = None  # written to stdout: the type --format named (None: the input's)

    @property
    def to_stdout(self) -> bool:
        return self.output == STDIO

    def output_type(self, image) -> str:
        """The type (".png") the output is written as: its suffix, or on stdout the type --format
        named, else the type of the input (an :class:`~dipcli.io.Image` read from a file)."""
        if not self.to_stdout:
            return self.output.suffix.lower()
        return self.kind or getattr(image, "source_type", None) or ".png"

    @property
    def pictures(self) -> bool:
        """Whether this input draws its fit (--plot, --gif, --snapshots)."""
        return bool(self.plot or self.gif or self.snapshots)


@dataclass
class Outcome:
    """What became of one input: its record (one JSON line, one report row) and its exit code."""

    index: int
    record: dict
    code: int = OK
    view: object | None = None  # --html: the input's pictures and curves (htmlreport.Entry)

    @property
    def status(self) -> str:
        return self.record["status"]
