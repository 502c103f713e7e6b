"""Running a batch's inputs: one after another, or several as one batched net (``--group``); the
worker processes of ``--jobs`` (:mod:`dipcli.batch.parallel`) run each input here too. Every
runner takes each input through the same steps: read its files, plan it with its task's planner
(:mod:`dipcli.api.plan`), fit, write, draw, and record; a failure becomes that input's outcome
and the batch goes on.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from dipcli.api.execute import run_plan, run_plans
from dipcli.api.inputs import TaskInput
from dipcli.api.plan import Plan, make_plan
from dipcli.batch.inputs import check_type
from dipcli.batch.results import failed, make_record, skipped
from dipcli.batch.settings import STDIO, Item, Outcome, Task
from dipcli.engine.run import group_capacity
from dipcli.errors import FAILURE, INTERRUPTED, OK, USAGE, Fail
from dipcli.io import Image, ImageError, output_plan, read_image, write_image
from dipcli.io.formats import WRITABLE
from dipcli.io.image import scale_of
from dipcli.io.metadata import NONE
from dipcli.optim import SHARED
from dipcli.report.plots import needs_matplotlib, plot_curves, write_curves_csv, write_gif
from dipcli.report.progress import Display, Sink, Snapshots

# ---- one input -------------------------------------------------------------------------------------

def load(path: Path, what: str = "input", max_pixels: int | None = None) -> Image:
    """Read one of an input's files (``-``: stdin): a missing file is a usage error, an unreadable
    one a failure."""
    if path == STDIO and what == "input":
        from dipcli.io.streams import read_stdin

        try:
            return read_stdin(max_pixels)
        except ImageError as exc:
            raise Fail(str(exc), FAILURE) from None
    if not path.exists():
        raise Fail(f"{path}: no such file; check the {what} path", USAGE)
    try:
        return read_image(path, max_pixels=max_pixels)
    except ImageError as exc:
        raise Fail(str(exc), FAILURE) from None


def load_input(task: Task, item: Item) -> TaskInput:
    """An input's image, and its reference and mask when it has them, read from their files."""
    limit = task.settings.max_pixels
    image = load(item.input, max_pixels=limit)
    if task.settings.strip_metadata:
        image = replace(image, meta=NONE)
    clean = load(item.clean, "--clean", limit) if item.clean is not None else None
    mask = None
    if item.mask is not None:
        if not item.mask.exists():
            how = "check the --mask path" if task.settings.mask is not None else \
                f"no mask for {item.input.name} by --mask-pattern {task.settings.mask_pattern!r}"
            raise Fail(f"{item.mask}: no such file; {how}")
        mask = load(item.mask, "--mask", limit)
    return TaskInput(image, str(item.input), clean, str(item.clean), mask, str(item.mask))


def prepare_one(task: Task, item: Item, sink: Sink) -> Plan:
    """Read one input and plan its fit (problem, net, configuration, tiles); tell the user the notes."""
    return plan_input(task, item, load_input(task, item), sink)


def plan_input(task: Task, item: Item, src: TaskInput, sink: Sink) -> Plan:
    """Plan an input whose files are read; tell the user the notes (``--cluster``'s client too)."""
    planned = make_plan(task.spec, src)
    kind = item.output_type(planned.image)
    if item.to_stdout and kind not in WRITABLE:
        raise Fail(f"-o -: the input is a {kind} file, a type dip does not write; name one with --format "
                   f"({', '.join(t.lstrip('.') for t in WRITABLE)})")
    if not item.to_stdout:
        check_type(item.output, batch=False)  # an output named after a readable but unwritable input
    try:  # a format that cannot hold the image (16-bit or alpha into JPEG/BMP): say so before the fit
        conversion = output_plan(planned.image, kind)
    except ImageError as exc:
        raise Fail(str(exc)) from None
    if not task.settings.json_out:
        for note in planned.notes + ([f"{item.output.name}: {conversion}"] if conversion else []):
            sink.note(note)
    return planned


def announcer(task: Task, item: Item, plan: Plan, sink: Sink) -> Callable[[str], None]:
    """What to call before each fit of an input (the image: "", or each tile: ", tile 2/6"): a fresh bar."""
    h, w = plan.image.shape
    spec, config = plan.net, plan.config
    title = (f"dip {task.name} {item.input.name}: {w}×{h}{plan.header}, {spec.arch} net (width "
             f"{spec.width}, {spec.scales} scales, {spec.upsample}), stop: {config.stop.name}")

    def begin(part: str) -> None:
        sink.end()  # the previous fit's; ending before any began is harmless
        sink.begin(item.input.name, title + part, config.iters)

    return begin


def run_one(task: Task, item: Item, sink: Sink) -> Outcome:
    """Read, fit and write one input, then draw its pictures; a :class:`Fail` says what went wrong.

    The same for a single input and for each input of a batch, in this process or a worker.
    """
    return run_prepared(task, item, prepare_one(task, item, sink), sink)


def run_prepared(task: Task, item: Item, plan: Plan, sink: Sink) -> Outcome:
    """Fit and write one planned input on its own (whole or in tiles), then draw its pictures."""
    with ExitStack() as stack:
        frames = item.snapshots
        if frames is None and item.gif is not None:
            frames = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dip-frames-")))
        snaps = Snapshots(frames, task.fit.save_every, plan.image) if frames is not None else None
        item.output.parent.mkdir(parents=True, exist_ok=True)  # --output-dir and its mirrored folders
        try:
            result = run_plan(plan, [sink, *([snaps] if snaps else [])], announcer(task, item, plan, sink))
        finally:
            sink.end()
        write_output(item, result.image, overwrite=task.settings.force)
        record = make_record(task, item, plan, result)
        draw(task, item, record, result.fit.history, snaps, sink)
    return Outcome(item.index, record, INTERRUPTED if result.fit.interrupted else OK,
                   view(task, plan, result, record))


def write_output(item: Item, image: Image, overwrite: bool) -> None:
    """Write an input's restored image to its output file (never over one that appeared during
    the fit unless ``overwrite``: :class:`dipcli.io.OutputAppeared`), or to stdout (``-o -``)."""
    if item.to_stdout:
        from dipcli.io.streams import write_stdout

        write_stdout(image, item.output_type(image))
    else:
        write_image(item.output, image, overwrite=overwrite)


def run_together(task: Task, members: list[tuple[Item, Plan, Sink]]) -> list[Outcome]:
    """Fit planned inputs of one size as one group (``--group``) and write each."""
    for item, _, _ in members:
        item.output.parent.mkdir(parents=True, exist_ok=True)
    try:
        results = run_plans([plan for _, plan, _ in members], [[sink] for _, _, sink in members],
                            [announcer(task, item, plan, sink) for item, plan, sink in members])
    finally:
        for _, _, sink in members:
            sink.end()
    outcomes = []
    for (item, plan, _), result in zip(members, results, strict=True):
        write_output(item, result.image, overwrite=task.settings.force)
        record = make_record(task, item, plan, result)
        record["group"] = len(members)
        outcomes.append(Outcome(item.index, record, INTERRUPTED if result.fit.interrupted else OK,
                                view(task, plan, result, record)))
    return outcomes


def view(task: Task, plan: Plan, result, record: dict):
    """What the HTML report shows of a fitted input (``--html``), or None without it."""
    if task.settings.html is None:
        return None
    from dipcli.report.html import Entry

    alpha = plan.image.alpha
    if alpha is not None:
        alpha = alpha.astype("float32") / scale_of(alpha.dtype)
    return Entry(record, plan.image.pixels, result.image.pixels, plan.reference, plan.problem.known_mask(),
                 alpha, result.fit.history)


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


def attempt(task: Task, item: Item, sink: Sink, batch: bool) -> Outcome:
    """:func:`run_one`, with every expected failure (and, in a batch, any failure) as an outcome."""
    return guarded(task, [item], batch, lambda: [run_one(task, item, sink)])[0]


def guarded(task: Task, items: list[Item], batch: bool, work: Callable[[], list]) -> list:
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


def group_key(p: Plan) -> tuple:
    """Inputs with equal keys can be fitted as one group: one size, net, problem kind and loop."""
    return (p.image.pixels.shape, p.net.resolved(), type(p.problem).__name__,
            p.problem.out_size(p.image.shape), tuple(getattr(p.config, k) for k in SHARED))


def run_grouped(task: Task, items: list[Item], display: Display, batch: bool) -> Iterator[Outcome]:
    """``--group N``: inputs of one size fitted N at a time as one batched net, in this process.

    Inputs are read in order and held back until N of a kind are in (or memory allows no more,
    or the inputs run out). An input that is tiled, draws pictures or is fitted several times
    (a preset's ensemble, e.g. `dip inpaint`'s default) is fitted on its own.
    """
    fit = task.fit
    waiting: dict[tuple, list[tuple[Item, Plan, Sink]]] = {}
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
        p = prepared[0]
        if p.tile or item.pictures or p.ensemble:
            alone = functools.partial(run_prepared, task, item, p, sink)
            outcomes = guarded(task, [item], batch, lambda alone=alone: [alone()])
        else:
            key = group_key(p)
            if key not in capacity:
                capacity[key] = group_capacity(p.problem, p.image.pixels.shape, p.net, p.config, fit.device,
                                                fit.group.size)
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

