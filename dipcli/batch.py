"""Many inputs in one call: expand them, name and pair their files, run each, report on all.

The CLI describes a task once, as a :class:`Task` (how to prepare one input for the fit); this
module does everything else, and a single input takes the same path (:func:`run_one`) as each
input of a batch, so the two cannot drift apart. A :class:`Task` pickles (its ``prepare`` is a
module-level function), which is what lets ``--jobs`` hand inputs to worker processes.

Decisions (README, "Batch and scripting", says the same to users):

* A call is a *batch* when it names several inputs, a folder, or a glob; a batch keeps going
  past a bad input and exits 1 if any failed. A single input keeps its own exit code (2 for a
  usage problem such as a missing file, 1 for an unreadable one).
* Existing outputs are checked before any work starts: without ``--force`` or
  ``--skip-existing`` the call is refused (exit 2) rather than discovering them one by one
  hours into a batch.
* Files a batch would use as outputs, masks or references of its other inputs are not inputs
  themselves, so re-running on a folder does not restore its own results or masks.
* ``--plot``/``--gif`` take a name template in a batch (``{stem}_curves.png``), relative to
  the current folder like any path; ``--snapshots DIR`` gets one subfolder per input.
"""

from __future__ import annotations

import csv
import functools
import glob
import io
import json
import multiprocessing
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from string import Formatter

import numpy as np

from dipcli.fit import SHARED, FitConfig, resolve_device
from dipcli.io import WRITABLE, Image, ImageError
from dipcli.job import Job, choose_tile, group_capacity, run_group, run_job
from dipcli.memory import OutOfMemory
from dipcli.nets import NetSpec
from dipcli.plots import (
    MISSING_MATPLOTLIB,
    PLOT_TYPES,
    have_matplotlib,
    needs_matplotlib,
    plot_curves,
    write_curves_csv,
    write_gif,
)
from dipcli.report import Display, Sink, Snapshots, err, make_display

OK, FAILURE, USAGE, INTERRUPTED = 0, 1, 2, 130
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
GLOB_CHARS = frozenset("*?[")
FIELDS = ("stem", "task", "ext")
DEFAULT_NAME = "{stem}_{task}.{ext}"
REPORT_TYPES = (".csv", ".json")


class Fail(Exception):
    """A one-line error for the user, with the exit code it maps to."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


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
    json_out: bool = False
    quiet: bool = False
    jobs: int = 1
    group: int | str = "auto"  # inputs of one size fitted together as one batched net; auto: tile_group
    device: str = "auto"
    tile: int | str = "auto"  # tiles of at most this many px per side; 0: whole; auto: see below
    tile_target: int | None = None  # auto: tiles of about this size for quality (None: memory only)
    seed: int = 0
    raw: bool = False
    save_every: int = 0
    snapshots: Path | None = None
    plot: str | None = None
    gif: str | None = None


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


@dataclass
class Prepared:
    """One input made ready to fit: what a task's ``prepare`` returns."""

    image: Image  # what the net must explain (noisy, masked, low-resolution image)
    problem: object
    config: FitConfig
    spec: NetSpec
    reference: np.ndarray | None = None
    header: str = ""  # the task's part of the one-line description
    extra: dict = field(default_factory=dict)  # task fields for the record
    composite: bool = True
    scores: Callable[[np.ndarray], dict] | None = None  # task measures of the written pixels
    notes: list[str] = field(default_factory=list)  # told to the user before the fit


@dataclass
class Task:
    """A subcommand's job, described once for all its inputs.

    ``prepare(item, settings, **options)`` reads one input and builds its problem and fit
    configuration; it must be a module-level function so that the task pickles for --jobs.
    """

    name: str  # "denoise"
    suffix: str  # the {task} of output names: "denoised", "x4"
    prepare: Callable[..., Prepared]
    settings: Settings
    options: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """What became of one input: its record (one JSON line, one report row) and its exit code."""

    index: int
    record: dict
    code: int = OK

    @property
    def status(self) -> str:
        return self.record["status"]


# ---- inputs --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    path: Path
    base: Path | None = None  # the folder or glob prefix it was found under; None: named directly


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def glob_base(pattern: str) -> Path:
    """The fixed folder a glob starts from: its leading parts without wildcards."""
    fixed = []
    for part in Path(pattern).parts:
        if GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def images_in(folder: Path, recursive: bool) -> list[Path]:
    """The images in a folder, sorted; hidden files (and, recursing, hidden folders) left out."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if is_image(p)
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def expand_inputs(args: Sequence[str | os.PathLike], recursive: bool = False) -> tuple[list[Source], bool]:
    """Files as given; folders become the images in them; globs the shell left alone, their matches.

    Returns the sources (each file once, in order) and whether the call is a batch: several
    arguments, a folder or a glob. A named file that does not exist stays in the list, to be
    reported like any other bad input; a glob that matches no image is a usage error.
    """
    sources: list[Source] = []
    batch = len(args) > 1
    for arg in map(str, args):
        path = Path(arg)
        if path.is_dir():
            batch = True
            sources += [Source(p, path) for p in images_in(path, recursive)]
        elif not path.exists() and GLOB_CHARS & set(arg):
            batch = True
            found: list[Path] = []
            for match in sorted(Path(m) for m in glob.glob(arg, recursive=True)):
                if match.is_dir():
                    found += images_in(match, recursive)
                elif is_image(match):
                    found.append(match)
            if not found:
                raise Fail(f"{arg}: no image matches this pattern")
            base = glob_base(arg)
            sources += [Source(p, base) for p in found]
        else:
            sources.append(Source(path))
    first: dict[Path, Source] = {}
    for source in sources:
        first.setdefault(source.path.resolve(), source)
    return list(first.values()), batch


# ---- naming and pairing --------------------------------------------------------------------------

def template_fields(template: str, what: str) -> set[str]:
    """The fields a name template uses; unknown ones are a usage error."""
    try:
        names = {f for _, f, _, _ in Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise Fail(f"{what} {template!r}: {exc}; write fields as {{stem}}, {{task}}, {{ext}}") from None
    unknown = names - set(FIELDS)
    if unknown:
        raise Fail(f"{what} {template!r}: unknown field {{{sorted(unknown)[0]}}}; "
                   "the fields are {stem}, {task} and {ext}")
    return names


def fill(template: str, path: Path, task: str) -> str:
    """``{stem}_{task}.{ext}`` for ``photos/cat.png`` and task ``denoised``: ``cat_denoised.png``."""
    try:
        return template.format(stem=path.stem, task=task, ext=path.suffix.lstrip("."))
    except ValueError as exc:  # a format spec that does not suit a name, e.g. {stem:d}
        raise Fail(f"{template!r}: {exc}") from None


def relative_folder(source: Source) -> Path:
    """Where, under the folder or glob it came from, the input lies: mirrored by --output-dir."""
    if source.base is None:
        return Path()
    rel = Path(os.path.relpath(source.path.parent, source.base))
    return Path() if rel.parts[:1] == ("..",) else rel


def plan_item(index: int, source: Source, task: Task, batch: bool) -> Item:
    s, path = task.settings, source.path
    if s.output is not None:
        output = s.output
    else:
        name = fill(s.name or DEFAULT_NAME, path, task.suffix)
        folder = path.parent if s.output_dir is None else s.output_dir / relative_folder(source)
        output = folder / name
    mask = s.mask if s.mask is not None else (
        path.parent / fill(s.mask_pattern, path, task.suffix) if s.mask_pattern else None)
    clean = s.clean if s.clean is not None else (s.clean_dir / path.name if s.clean_dir else None)
    snapshots = s.snapshots
    if snapshots is not None and batch:  # a subfolder per input: frames are named by iteration
        snapshots = snapshots / relative_folder(source) / path.stem
    return Item(index, path, output, mask, clean, snapshots,
                Path(fill(s.plot, path, task.suffix)) if s.plot else None,
                Path(fill(s.gif, path, task.suffix)) if s.gif else None)


def check_settings(s: Settings, batch: bool) -> None:
    """Usage errors that need no image: refuse them before any work starts."""
    if s.output is not None and batch:
        raise Fail("-o/--output names the output of one input; for several use --output-dir DIR "
                   "(and --name TEMPLATE)")
    if s.output is not None and (s.output_dir is not None or s.name is not None):
        raise Fail("-o/--output names the file itself; drop --output-dir/--name, or drop -o")
    if s.group != "auto":
        if not str(s.group).isdigit() or int(s.group) < 1:
            raise Fail(f"--group {s.group!r}: give how many images to fit together (1 or more) or auto")
        s.group = int(s.group)
    if s.jobs > 1 and s.group != "auto" and s.group > 1:
        raise Fail("--jobs runs fits in separate processes, --group batches them in one; choose one")
    if s.force and s.skip_existing:
        raise Fail("--force overwrites existing outputs, --skip-existing keeps them; choose one")
    if s.clean is not None and s.clean_dir is not None:
        raise Fail("give either --clean FILE (one input) or --clean-dir DIR, not both")
    if s.clean is not None and batch:
        raise Fail("--clean names the reference of one input; for several use --clean-dir DIR "
                   "(references paired by file name)")
    if s.clean_dir is not None and not s.clean_dir.is_dir():
        raise Fail(f"--clean-dir {s.clean_dir}: no such folder")
    if s.mask is not None and s.mask_pattern is not None:
        raise Fail("give either --mask FILE (one image) or --mask-pattern TEMPLATE, not both")
    if s.mask is not None and batch:
        raise Fail("--mask names the mask of one image; for several pair them with "
                   "--mask-pattern '{stem}_mask.png' (looked up beside each image)")
    if s.output_dir is not None and s.output_dir.exists() and not s.output_dir.is_dir():
        raise Fail(f"--output-dir {s.output_dir} is a file; name a folder")
    template_fields(s.name or DEFAULT_NAME, "--name")
    if s.mask_pattern is not None:
        template_fields(s.mask_pattern, "--mask-pattern")
    if s.snapshots is not None and s.save_every <= 0:
        raise Fail("--save-every N and --snapshots DIR go together")
    if s.gif is not None and s.save_every <= 0:
        raise Fail("--gif needs --save-every N: how often to take a frame")
    if s.save_every > 0 and s.snapshots is None and s.gif is None:
        raise Fail("--save-every N and --snapshots DIR go together (or --gif FILE)")
    pictures = (("--plot", s.plot, PLOT_TYPES, "curves.png"), ("--gif", s.gif, (".gif",), "progress.gif"))
    for what, value, types, example in pictures:
        if value is None:
            continue
        if not template_fields(value, what) and batch:
            raise Fail(f"{what} {value!r}: every input of a batch needs its own file; put a field "
                       f"in the name, e.g. {what} '{{stem}}_{example}'")
        if Path(value).suffix.lower() not in types:
            raise Fail(f"{what} {value}: name it with one of {', '.join(types)}")
    if s.plot is not None and needs_matplotlib(s.plot) and not have_matplotlib():
        raise Fail(MISSING_MATPLOTLIB)
    if s.report is not None:
        if s.report.suffix.lower() not in REPORT_TYPES:
            raise Fail(f"--report {s.report}: name it .csv or .json")
        if not s.report.parent.is_dir():
            raise Fail(f"--report {s.report}: folder {s.report.parent} does not exist; create it first")


def check_type(output: Path, batch: bool) -> None:
    if output.suffix.lower() not in WRITABLE:
        raise Fail(f"{output}: unknown image type {output.suffix or '(none)'}; name the output with one "
                   f"of {', '.join(WRITABLE)}" + (" (--name)" if batch else " (-o or --name)"))


def check_outputs(items: list[Item], batch: bool, s: Settings) -> list[Item]:
    """Refuse outputs that would overwrite an input or each other; decide about existing ones."""
    inputs = {i.input.resolve() for i in items}
    written: dict[Path, Item] = {}
    typed_by_input = s.output is None and "{ext}" in (s.name or DEFAULT_NAME)  # checked per input
    for item in items:
        out = item.output
        if not typed_by_input:
            check_type(out, batch)
        if out.resolve() in inputs | {p.resolve() for p in (item.mask, item.clean) if p is not None}:
            raise Fail(f"{out}: the output would overwrite an input; choose another "
                       + ("--name" if batch else "-o"))
        if s.output is not None and not out.parent.is_dir():
            raise Fail(f"{out.parent}: output folder does not exist; create it first")
        for path in (out, item.plot, item.gif, item.snapshots):
            if path is None:
                continue
            other = written.setdefault(path.resolve(), item)
            if other is not item:
                raise Fail(f"{path}: both {other.input} and {item.input} would write here; "
                           "use a name template that tells them apart (e.g. with {ext})")
    existing = [i for i in items if i.output.exists()]
    if existing and not (s.force or s.skip_existing):
        if not batch:
            raise Fail(f"{existing[0].output} exists; pass --force to overwrite it or -o to choose "
                       "another name")
        raise Fail(f"{len(existing)} of {len(items)} outputs exist already (e.g. {existing[0].output}); "
                   "pass --skip-existing to resume the batch or --force to overwrite them")
    if s.skip_existing:
        items = [replace(i, skip=i.output.exists()) for i in items]
    return items


def plan(task: Task, sources: list[Source], batch: bool) -> list[Item]:
    """Every input's paths, checked; files the batch itself uses for other inputs are dropped."""
    check_settings(task.settings, batch)
    items = [plan_item(n, src, task, batch) for n, src in enumerate(sources)]
    users: dict[Path, set[int]] = {}  # file → the inputs that write or read it besides themselves
    for i in items:
        for path in (i.output, i.mask, i.clean):
            if path is not None:
                users.setdefault(path.resolve(), set()).add(i.index)
    kept = [src for src, item in zip(sources, items, strict=True)
            if src.base is None or not users.get(item.input.resolve(), set()) - {item.index}]
    if len(kept) < len(sources):
        items = [plan_item(n, src, task, batch) for n, src in enumerate(kept)]
    if not items:
        raise Fail("no images found; give image files, folders holding them, or a quoted glob")
    return check_outputs(items, batch, task.settings)


# ---- one input ----------------------------------------------------------------------------------

def make_record(task: Task, item: Item, p: Prepared, result, tile: int) -> dict:
    f, spec, s = result.fit, p.spec, task.settings
    record = {
        "input": str(item.input), "output": str(item.output),
        "status": "interrupted" if f.interrupted else "ok", "task": task.name, **p.extra,
        "arch": spec.arch, "width": spec.width, "scales": spec.scales, "upsample": spec.upsample,
        "params": result.params, "iterations": f.iterations, "best_iteration": f.best_iteration,
        "stop_rule": p.config.stop.name if f.stop_reason == "budget" else f.stop_reason,
        "stop_reason": f.stop_reason, "seconds": round(f.seconds, 3), "final_loss": f.final_loss,
        "device": result.device, "precision": f.precision, "seed": s.seed, "psnr": result.psnr,
        "ssim": result.ssim, "backtracks": f.backtracks,
    }
    measured = [h for h in f.history if h.get("psnr_ema") is not None]
    if measured:  # the best averaged-output PSNR seen along the run (needs a reference)
        peak = max(measured, key=lambda h: h["psnr_ema"])
        record.update(peak_psnr=peak["psnr_ema"], peak_iteration=peak["iteration"])
    if p.scores is not None and p.reference is not None:
        record.update(p.scores(result.image.pixels))
    if result.tiles is not None:
        record.update(tile=tile, tiles=result.tiles)
    for key, path in (("plot", item.plot), ("gif", item.gif)):
        if path is not None:
            record[key] = str(path)
    return record


def prepare_one(task: Task, item: Item, sink: Sink) -> tuple[Prepared, int]:
    """Read one input, build its problem and configuration, and decide its tiles (0: whole).

    Tells the user the task's notes and why it tiles; a :class:`Fail` says what went wrong.
    """
    s = task.settings
    p = task.prepare(item, s, **task.options)
    check_type(item.output, batch=False)  # an output named after a readable but unwritable input
    if not s.json_out:
        for note in p.notes:
            sink.note(note)
    tile = s.tile
    if tile == "auto":
        # Pictures show one fit: for them, tile only if memory leaves no choice.
        try:
            tile, why = choose_tile(p.problem, p.image, p.spec, p.config, s.device,
                                    None if pictures(item) else s.tile_target)
        except ValueError as exc:  # e.g. --device cuda without a GPU
            raise Fail(str(exc)) from None
        except OutOfMemory as exc:
            raise Fail(str(exc), FAILURE) from None
        if why and pictures(item):
            raise Fail(f"{why}, so there is no one fit to plot or film; drop --plot/--gif/--snapshots")
        if why and not s.json_out:
            sink.note(why)
    return p, tile


def pictures(item: Item) -> bool:
    return bool(item.plot or item.gif or item.snapshots)


def make_job(task: Task, item: Item, p: Prepared, tile: int, sink: Sink, subscribers: list) -> Job:
    """The job of one prepared input, with a fresh progress bar before each of its fits."""
    h, w = p.image.shape
    spec, config = p.spec, p.config
    title = (f"dip {task.name} {item.input.name}: {w}×{h}{p.header}, {spec.arch} net (width "
             f"{spec.width}, {spec.scales} scales, {spec.upsample}), stop: {config.stop.name}")
    item.output.parent.mkdir(parents=True, exist_ok=True)  # --output-dir and its mirrored folders

    def begin(part: str) -> None:
        """Before each fit (the image: "", or each tile: ", tile 2/6"): a fresh progress bar."""
        sink.end()  # the previous fit's; ending before any began is harmless
        sink.begin(item.input.name, title + part, config.iters)

    s = task.settings
    return Job(p.problem, p.image, spec, config, item.output, s.device, p.reference, s.raw,
               p.composite, [sink, *subscribers], tile, tile_group(s), begin)


# --group auto on a GPU: up to this many tiles of an image at once (fewer if memory says so).
# A 512² image's four tiles: 31 s instead of 45 s on an H100, the same PSNR (README, "On a GPU").
GPU_TILE_GROUP = 16


def tile_group(s: Settings) -> int:
    """How many tiles of one image to fit together: --group N, or for auto, a GPU's share."""
    if s.group != "auto":
        return int(s.group)
    try:
        return GPU_TILE_GROUP if resolve_device(s.device).type == "cuda" else 1
    except ValueError:  # an unusable --device fails where the fit starts, with its own message
        return 1


@contextmanager
def fit_errors() -> Iterator[None]:
    """A fit's failures as :class:`Fail` s: bad settings exit 2, a failed computation 1."""
    try:
        yield
    except ValueError as exc:
        raise Fail(str(exc)) from None
    except (RuntimeError, MemoryError) as exc:
        raise Fail(f"fit failed: {str(exc).splitlines()[0]}", FAILURE) from None


def run_one(task: Task, item: Item, sink: Sink) -> Outcome:
    """Read, fit and write one input, then draw its pictures; a :class:`Fail` says what went wrong.

    The same for a single input and for each input of a batch, in this process or a worker.
    """
    p, tile = prepare_one(task, item, sink)
    return run_prepared(task, item, p, tile, sink)


def run_prepared(task: Task, item: Item, p: Prepared, tile: int, sink: Sink) -> Outcome:
    """Fit and write one prepared input on its own (whole or in tiles), then draw its pictures."""
    s = task.settings
    with ExitStack() as stack:
        frames = item.snapshots
        if frames is None and item.gif is not None:
            frames = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dip-frames-")))
        snaps = Snapshots(frames, s.save_every, p.image) if frames is not None else None
        job = make_job(task, item, p, tile, sink, [snaps] if snaps else [])
        try:
            with fit_errors():
                result = run_job(job)
        finally:
            sink.end()
        record = make_record(task, item, p, result, tile)
        draw(task, item, record, result.fit.history, snaps, sink)
    return Outcome(item.index, record, INTERRUPTED if result.fit.interrupted else OK)


def run_together(task: Task, members: list[tuple[Item, Prepared, Sink]]) -> list[Outcome]:
    """Fit prepared inputs of one size as one group (``--group``) and write each."""
    jobs = [make_job(task, item, p, 0, sink, []) for item, p, sink in members]
    try:
        with fit_errors():
            results = run_group(jobs)
    finally:
        for _, _, sink in members:
            sink.end()
    outcomes = []
    for (item, p, _), result in zip(members, results, strict=True):
        record = make_record(task, item, p, result, 0)
        record["group"] = len(members)
        outcomes.append(Outcome(item.index, record, INTERRUPTED if result.fit.interrupted else OK))
    return outcomes


def draw(task: Task, item: Item, record: dict, history: list[dict], snaps, sink: Sink) -> None:
    """--plot and --gif for one input (after its image is safely written)."""
    try:
        if item.plot is not None and not needs_matplotlib(item.plot):
            write_curves_csv(item.plot, history)
        elif item.plot is not None:
            plot_curves(item.plot, history, title=f"dip {task.name} {item.input.name}",
                        kept=record["best_iteration"], last=record["iterations"],
                        stage1_end=record.get("stage1_end"))
        if item.gif is not None:
            if snaps.written:
                write_gif(item.gif, snaps.written)
            else:
                sink.note(f"no GIF for {item.input.name}: the fit stopped before the first frame")
                record.pop("gif")
    except OSError as exc:
        raise Fail(f"cannot write a picture ({exc.__class__.__name__}: {exc})", FAILURE) from None


def failed(task: Task, item: Item, message: str, code: int) -> Outcome:
    return Outcome(item.index, {"input": str(item.input), "output": str(item.output),
                                "status": "failed", "task": task.name, "error": message}, code)


def skipped(task: Task, item: Item) -> Outcome:
    return Outcome(item.index, {"input": str(item.input), "output": str(item.output),
                                "status": "skipped", "task": task.name})


def attempt(task: Task, item: Item, sink: Sink, batch: bool) -> Outcome:
    """:func:`run_one`, with every expected failure (and, in a batch, any failure) as an outcome."""
    return guarded(task, [item], batch, lambda: [run_one(task, item, sink)])[0]


def guarded(task: Task, items: list[Item], batch: bool, work: Callable[[], list[Outcome]]) -> list[Outcome]:
    """``work()``, or if it fails, the same failure as the outcome of each of ``items``."""
    try:
        return work()
    except Fail as exc:
        return [failed(task, item, str(exc), exc.code) for item in items]
    except ImageError as exc:
        return [failed(task, item, str(exc), FAILURE) for item in items]
    except Exception as exc:  # a batch outlives a bug that one image triggers; say what it was
        if not batch:
            raise
        return [failed(task, item, f"unexpected {exc.__class__.__name__}: {exc}", FAILURE) for item in items]


# ---- running many ---------------------------------------------------------------------------------

def run_sequential(task: Task, items: list[Item], display: Display, batch: bool) -> Iterator[Outcome]:
    """One input after the other in this process; an interrupted fit ends the batch."""
    for item in items:
        if item.skip:
            yield skipped(task, item)
            continue
        outcome = attempt(task, item, display.sink(item.index), batch)
        yield outcome
        if outcome.code == INTERRUPTED:
            return


def group_key(p: Prepared) -> tuple:
    """Inputs with equal keys can be fitted as one group: one size, net, problem kind and loop."""
    out_size = getattr(p.problem, "out_size", None)
    return (p.image.pixels.shape, p.spec.resolved(), type(p.problem).__name__,
            out_size(p.image.shape) if out_size else None,
            tuple(getattr(p.config, k) for k in SHARED))


def run_grouped(task: Task, items: list[Item], display: Display, batch: bool) -> Iterator[Outcome]:
    """``--group N``: inputs of one size fitted N at a time as one batched net, in this process.

    Inputs are read in order and held back until N of a kind are in (or memory allows no more,
    or the inputs run out). An input that is tiled or draws pictures is fitted on its own.
    """
    s = task.settings
    waiting: dict[tuple, list[tuple[Item, Prepared, Sink]]] = {}
    capacity: dict[tuple, int] = {}

    def flush(key: tuple) -> list[Outcome]:
        members = waiting.pop(key)
        return guarded(task, [m[0] for m in members], batch, lambda: run_together(task, members))

    for item in items:
        if item.skip:
            yield skipped(task, item)
            continue
        sink = display.sink(item.index)
        prepared = guarded(task, [item], batch, lambda item=item, sink=sink: [prepare_one(task, item, sink)])
        if isinstance(prepared[0], Outcome):
            yield prepared[0]
            continue
        p, tile = prepared[0]
        if tile or pictures(item):
            alone = functools.partial(run_prepared, task, item, p, tile, sink)
            outcomes = guarded(task, [item], batch, lambda alone=alone: [alone()])
        else:
            key = group_key(p)
            if key not in capacity:
                capacity[key] = group_capacity(p.problem, p.image.pixels.shape, p.spec, p.config, s.device,
                                                s.group)
            waiting.setdefault(key, []).append((item, p, sink))
            outcomes = flush(key) if len(waiting[key]) >= capacity[key] else []
        yield from outcomes
        if any(o.code == INTERRUPTED for o in outcomes):
            return
    for key in list(waiting):
        outcomes = flush(key)
        yield from outcomes
        if any(o.code == INTERRUPTED for o in outcomes):
            return


_worker: dict = {}  # the worker process's queue, stop event and whether it is fitting


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    """A fair share of the cores, or fewer if OMP_NUM_THREADS says so (as it does for one fit)."""
    share = max(1, usable_cpus() // jobs)
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return min(share, int(limit)) if limit.isdigit() and int(limit) > 0 else share


def _init_worker(threads: int, queue, stop, counter, gpus: int) -> None:
    """Each worker: its share of the cores, its own GPU when there are several, Ctrl-C in fits only."""
    _worker.update(queue=queue, stop=stop, busy=False)
    signal.signal(signal.SIGINT, _on_sigint)  # first: it was ignored until now (see run_parallel)
    import torch

    torch.set_num_threads(threads)
    if gpus > 1:
        with counter.get_lock():
            index, counter.value = counter.value, counter.value + 1
        torch.cuda.set_device(index % gpus)


def _on_sigint(signum, frame) -> None:
    """Ctrl-C reaches every process of the terminal: stop a fit (it keeps its best), ignore otherwise."""
    if _worker.get("busy"):
        raise KeyboardInterrupt


def _work(task: Task, item: Item) -> Outcome | None:
    """Run one input in a worker; None if the batch was stopped before it began."""
    if _worker["stop"].is_set():
        return None
    queue = _worker["queue"]
    sink = Sink(lambda method, *args: queue.put((method, item.index, args)), every=0.25,
                stop=_worker["stop"])
    _worker["busy"] = True
    try:
        return attempt(task, item, sink, batch=True)
    except KeyboardInterrupt:  # outside the fit (reading, writing): nothing was written
        outcome = failed(task, item, "interrupted before its fit began", INTERRUPTED)
        outcome.record["status"] = "interrupted"
        return outcome
    finally:
        _worker["busy"] = False


def run_parallel(task: Task, items: list[Item], display: Display, jobs: int) -> Iterator[Outcome]:
    """``jobs`` inputs at once in spawned processes, outcomes as they finish.

    Each fit is seeded by --seed alone (fit() seeds its own RNG, build_net forks it), so an
    input's result does not depend on which worker ran it or what ran there before. Ctrl-C
    (or a stop) lets running fits write their best so far, starts nothing new, and is raised
    again once they are in.
    """
    for item in items:
        if item.skip:
            yield skipped(task, item)
    todo = [i for i in items if not i.skip]
    ctx = multiprocessing.get_context("spawn")
    queue, stop, counter = ctx.SimpleQueue(), ctx.Event(), ctx.Value("i", 0)
    gpus = 0
    if task.settings.device in ("auto", "cuda"):
        import torch

        gpus = torch.cuda.device_count()
    threads = threads_per_job(jobs)
    pool = ProcessPoolExecutor(min(jobs, len(todo)), mp_context=ctx, initializer=_init_worker,
                               initargs=(threads, queue, stop, counter, gpus))
    interrupted = False
    try:
        with sigint_ignored():  # inherited by the workers: a Ctrl-C while one starts cannot kill it
            futures: dict[Future, Item] = {pool.submit(_work, task, item): item for item in todo}
        pending = set(futures)
        while pending:
            try:
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                # Nothing is cancelled: queued inputs see the stop and return at once (cancelling
                # futures of a pool whose worker died can hang Python 3.11's executor).
                interrupted = True
                stop.set()
                continue
            relay(queue, display)
            for f in sorted(done, key=lambda f: futures[f].index):
                try:
                    outcome = f.result()
                except Exception as exc:  # the worker died (out of memory, killed)
                    outcome = failed(task, futures[f], f"worker failed: {exc.__class__.__name__}: {exc}",
                                     FAILURE)
                if outcome is not None:
                    yield outcome
    finally:
        stop.set()
        pool.shutdown(wait=True)
        relay(queue, display)
    if interrupted:
        raise KeyboardInterrupt


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl-C for a moment (processes started now inherit that); main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def relay(queue, display: Display) -> None:
    """Show what the workers have posted: ``(method, key, args)`` calls on the display."""
    while not queue.empty():
        method, key, args = queue.get()
        getattr(display, method)(key, *args)


# ---- results --------------------------------------------------------------------------------------

def emit_json(record: dict) -> None:
    """One result on stdout as a line of JSON: stdout carries results and nothing else."""
    print(json.dumps(record), flush=True)


def describe(record: dict) -> str:
    """The line a user reads after a fit: what was written and how it went."""
    msg = (f"wrote {record['output']} ({record['iterations']} iterations, kept {record['best_iteration']}, "
           f"stopped by {record['stop_reason']}, {record['seconds']:.1f} s")
    if record.get("psnr") is not None:
        msg += f", PSNR {record['psnr']:.2f} dB, SSIM {record['ssim']:.4f}"
    lines = [msg + ")"]
    lines += [f"  {k.replace('_', ' ')}: {v:.2f} dB" for k, v in record.items()
              if k.startswith("psnr_") and isinstance(v, float)]
    return "\n".join(lines)


def announce(outcome: Outcome, display: Display, s: Settings, batch: bool) -> None:
    """Tell the user (stderr) and the script (stdout, --json) what became of one input."""
    rec = outcome.record
    if outcome.status == "failed":
        msg = rec["error"]
        display.error(msg if not batch or msg.startswith(rec["input"]) else f"{rec['input']}: {msg}")
    if s.json_out and (batch or outcome.status != "failed"):
        emit_json(rec)
    elif outcome.status in ("ok", "interrupted") and "iterations" in rec and not s.quiet:
        display.say(describe(rec))
    elif outcome.status == "skipped" and not s.quiet:
        display.say(f"skipped {rec['input']}: {rec['output']} exists")
    if outcome.status == "interrupted" and "iterations" in rec:
        err.print(f"interrupted: wrote the result so far to {rec['output']}", markup=False)
    display.advance(failed=outcome.status == "failed")


REPORT_FIRST = ("input", "output", "status", "error")


def report_columns(records: Sequence[dict]) -> list[str]:
    """Every key of every record: the usual ones first, then in the order they appear."""
    cols = dict.fromkeys(REPORT_FIRST)
    for rec in records:
        cols.update(dict.fromkeys(rec))
    return list(cols)


def write_report(path: Path, records: Sequence[dict]) -> None:
    """CSV (a header, then a row per input) or JSON (a list of the records), written atomically."""
    if path.suffix.lower() == ".json":
        text = json.dumps(list(records), indent=1) + "\n"
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=report_columns(records), restval="")
        writer.writeheader()
        for rec in records:
            writer.writerow({k: "" if v is None else json.dumps(v) if isinstance(v, (list, dict)) else v
                             for k, v in rec.items()})
        text = buf.getvalue()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, newline="")
    os.replace(tmp, path)


def summary(outcomes: Sequence[Outcome]):
    """A table of the batch: file, status, PSNR (when known), iterations, seconds, output."""
    from rich.table import Table
    from rich.text import Text

    colour = {"ok": "green", "skipped": "dim", "failed": "red", "interrupted": "yellow"}
    table = Table(title="dip batch")
    for col in ("file", "status", "PSNR", "iterations", "seconds", "output"):
        table.add_column(col, justify="right" if col in ("PSNR", "iterations", "seconds") else "left")
    for o in outcomes:
        r = o.record
        table.add_row(
            Text(r["input"]), Text(o.status, style=colour[o.status]),
            f"{r['psnr']:.2f}" if r.get("psnr") is not None else "",
            str(r.get("iterations", "")), f"{r['seconds']:.1f}" if "seconds" in r else "",
            Text(r["output"]) if o.status != "failed" else Text(r["error"], style="red"),
        )
    return table


def exit_code(outcomes: Sequence[Outcome], batch: bool, interrupted: bool) -> int:
    if interrupted or any(o.code == INTERRUPTED for o in outcomes):
        return INTERRUPTED
    if not batch:
        return outcomes[0].code if outcomes else OK
    return FAILURE if any(o.status == "failed" for o in outcomes) else OK


def run_batch(task: Task, args: Sequence[str | os.PathLike]) -> int:
    """Expand, plan and run every input; report; return the exit code (0, 1, 2 or 130)."""
    s = task.settings
    sources, batch = expand_inputs(args, s.recursive)
    items = plan(task, sources, batch)
    todo = sum(not i.skip for i in items)
    outcomes: list[Outcome] = []
    interrupted = False
    with make_display(len(items), batch, s.quiet) as display:
        if s.jobs > 1 and todo > 1:
            runs = run_parallel(task, items, display, s.jobs)
        elif s.group != "auto" and s.group > 1 and todo > 1:
            runs = run_grouped(task, items, display, batch)
        else:
            runs = run_sequential(task, items, display, batch)
        try:
            for outcome in runs:
                outcomes.append(outcome)
                announce(outcome, display, s, batch)
                if s.report is not None:  # after each input: a killed batch still leaves its report
                    write_report(s.report, [o.record for o in sorted(outcomes, key=lambda o: o.index)])
        except KeyboardInterrupt:
            interrupted = True
    outcomes.sort(key=lambda o: o.index)
    if s.report is not None:
        write_report(s.report, [o.record for o in outcomes])
    if interrupted:
        err.print(f"interrupted: {len(outcomes)} of {len(items)} inputs done"
                  + (f"; the report {s.report} has them" if s.report else ""), markup=False)
    if len(items) > 1 and outcomes and not s.quiet:
        err.print(summary(outcomes))
    return exit_code(outcomes, batch, interrupted)

