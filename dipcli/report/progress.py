"""Progress: what the user sees on stderr while inputs are fitted. The fitting loop never prints.

A :class:`Display` shows one input or a whole batch: a live Rich view on a terminal (an overall
bar above one bar per image being fitted), plain lines in a log, or nothing but errors with
``--quiet``. Each input talks to it through a :class:`Sink`, a fit subscriber bound to that
input; with ``--jobs`` the sink lives in a worker process and forwards through a queue, so the
display code is the same either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from dipcli.optim import Event
from dipcli.tensors import to_hwc

# Colour is left to Rich: it honours NO_COLOR and plain (non-terminal) streams on its own. Rich
# would also turn ":abc:" in a message into an emoji (a path, `--cluster local:abc`): never here.
err = Console(stderr=True, highlight=False, emoji=False)


def print_error(message: str, console: Console | None = None) -> None:
    """The one-line error format every failure uses: ``dip: error: <what and what to do>``.

    The message is user text (paths, option values): a :class:`~rich.text.Text`, so that Rich
    reads neither markup (``[red]``) nor emoji codes (``:abc:``) in it, whatever the console.
    """
    (console or err).print(Text.assemble(("dip: error:", "bold red"), " ", message), soft_wrap=True)


def metrics_text(e: Event) -> str:
    """One short line of the numbers a user watches: loss, PSNR, stop rule, stage weight."""
    parts = [f"loss {e.loss:.5f}"]
    if e.psnr_ema is not None:
        parts.append(f"PSNR {e.psnr_raw:.2f}/{e.psnr_ema:.2f} dB (raw/avg)")
        parts.append(f"best {e.best_psnr:.2f} @ {e.best_iteration}")
    if e.reg_weight is not None:
        parts.append(f"stage 1, TV λ {e.reg_weight:.2g}" if e.reg_weight else "stage 2")
    if e.backtracks:
        parts.append(f"backtracks {e.backtracks}")
    parts.append(e.stop_state)
    return " · ".join(parts)


class Sink:
    """One input's progress, posted to a display as ``post(method, *args)``.

    A fit subscriber too. ``every`` thins the updates (a worker should not flood its queue);
    ``stop``, an event shared with the main process, ends the fit early — the loop treats the
    raised KeyboardInterrupt as Ctrl-C and returns the best result so far.
    """

    def __init__(self, post: Callable[..., None], every: float = 0.0, stop=None) -> None:
        self.post = post
        self.every = every
        self.stop = stop
        self.last = -1e9

    def note(self, text: str) -> None:
        self.post("note", text)

    def begin(self, name: str, header: str, total: int) -> None:
        self.post("begin", name, header, total)

    def on_event(self, e: Event) -> None:
        if self.stop is not None and self.stop.is_set():
            raise KeyboardInterrupt
        now = time.monotonic()
        if now - self.last < self.every and e.iteration < e.total:
            return
        self.last = now
        self.post("update", e.iteration, e.total, e.elapsed, metrics_text(e))

    def end(self) -> None:
        self.post("end")


class Display:
    """Shows nothing but errors (``--quiet``); the base of the displays that show more.

    Methods that concern one input take its ``key`` first (its index in the batch).
    """

    def __init__(self, console: Console, count: int, batch: bool) -> None:
        self.console = console
        self.count = count  # inputs in the batch
        self.batch = batch
        self.done = 0
        self.failed = 0

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def sink(self, key: int) -> Sink:
        """A sink that updates this display directly (the input runs in this process)."""
        return Sink(lambda method, *args: getattr(self, method)(key, *args))

    def note(self, key: int, text: str) -> None:
        """Something the user should know about an input before its fit (e.g. estimated σ)."""

    def begin(self, key: int, name: str, header: str, total: int) -> None:
        """An input's fit starts: ``header`` describes it, ``total`` is its iteration budget."""

    def update(self, key: int, iteration: int, total: int, elapsed: float, metrics: str) -> None:
        """An input's fit reached ``iteration``."""

    def end(self, key: int) -> None:
        """An input's fit is over."""

    def say(self, text: str) -> None:
        """A result line (``wrote ...``)."""

    def error(self, text: str) -> None:
        print_error(text, self.console)

    def advance(self, failed: bool) -> None:
        """One more input finished (or failed, or was skipped)."""
        self.done += 1
        self.failed += failed


class PlainDisplay(Display):
    """Line-based progress for logs (stderr is not a terminal): a line every ``every`` seconds."""

    def __init__(self, console: Console, count: int, batch: bool, every: float = 10.0) -> None:
        super().__init__(console, count, batch)
        self.every = every
        self.last: dict[int, float] = {}
        self.names: dict[int, str] = {}

    def line(self, text: str) -> None:
        print(text, file=self.console.file, flush=True)

    def note(self, key: int, text: str) -> None:
        self.line(text)

    def begin(self, key: int, name: str, header: str, total: int) -> None:
        self.names[key], self.last[key] = name, -1e9
        self.line(header)

    def update(self, key: int, iteration: int, total: int, elapsed: float, metrics: str) -> None:
        now = time.monotonic()
        if now - self.last.get(key, -1e9) >= self.every or iteration == total:
            self.last[key] = now
            prefix = f"{self.names.get(key, '')} " if self.batch else ""
            self.line(f"{prefix}[{iteration}/{total} {elapsed:.0f}s] {metrics}")

    def say(self, text: str) -> None:
        self.line(text)

    def advance(self, failed: bool) -> None:
        super().advance(failed)
        if self.batch:
            failed_text = f", {self.failed} failed" if self.failed else ""
            self.line(f"batch: {self.done}/{self.count} done{failed_text}")


class _FitLines:
    """Each running fit as two lines: its bar, and its numbers beneath, cut to the terminal's width.

    On one line the numbers (loss, PSNR, the stop rule's state) crowd the bar out of an
    80-column terminal; beneath it they can be cut with an ellipsis and the bar keeps its room.
    """

    def __init__(self, bars: Progress) -> None:
        self.bars = bars

    def __rich_console__(self, console: Console, options):
        for task in self.bars.tasks:
            yield self.bars.make_tasks_table([task])
            metrics = task.fields.get("metrics", "")
            if metrics:
                yield Text("  " + metrics, style="dim", no_wrap=True, overflow="ellipsis")


def _bar_columns(first: TextColumn) -> tuple:
    """Name, bar (it takes the width left), done/total, the rest: legible from 80 columns up."""
    return (first, BarColumn(bar_width=None), MofNCompleteColumn(), TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())


class RichDisplay(Display):
    """Live bars on a terminal: the batch's overall bar above two lines per image being fitted."""

    def __init__(self, console: Console, count: int, batch: bool) -> None:
        super().__init__(console, count, batch)
        name = TextColumn("{task.description}", style="bold", markup=False,
                          table_column=Column(max_width=24, no_wrap=True, overflow="ellipsis"))
        self.bars = Progress(*_bar_columns(name), console=console, expand=True)
        self.overall = Progress(*_bar_columns(TextColumn("[bold]batch", table_column=Column(width=5))),
                                TextColumn("{task.fields[failed]}"), console=console, expand=True)
        self.overall_task = self.overall.add_task("batch", total=count, failed="", speed="")
        # stdout is left alone: it carries the results (--json), never progress.
        view = _FitLines(self.bars)
        self.live = Live(Group(self.overall, view) if batch else view, console=console,
                         redirect_stdout=False, redirect_stderr=False)
        self.tasks: dict[int, int] = {}

    def __enter__(self) -> RichDisplay:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def print(self, text: str) -> None:
        """A line above the bars, wrapped at spaces (not mid-word) to the terminal's width."""
        self.console.print(text, markup=False, highlight=False)

    def note(self, key: int, text: str) -> None:
        self.print(text)

    def begin(self, key: int, name: str, header: str, total: int) -> None:
        self.print(header)
        self.tasks[key] = self.bars.add_task(name if self.batch else "fit", total=total, speed="",
                                             metrics="")

    def update(self, key: int, iteration: int, total: int, elapsed: float, metrics: str) -> None:
        speed = f"{iteration / elapsed:.1f} it/s" if elapsed > 0 else ""
        self.bars.update(self.tasks[key], completed=iteration, total=total, speed=speed, metrics=metrics)

    def end(self, key: int) -> None:
        task = self.tasks.pop(key, None)
        if task is not None and self.batch:  # a finished image's bar makes room for the next
            self.bars.remove_task(task)

    def say(self, text: str) -> None:
        self.print(text)

    def advance(self, failed: bool) -> None:
        super().advance(failed)
        self.overall.update(self.overall_task, completed=self.done,
                            failed=f"[red]{self.failed} failed[/]" if self.failed else "")


def make_display(count: int, batch: bool, quiet: bool, console: Console | None = None) -> Display:
    """Rich on a terminal, plain lines in a log, errors only with --quiet."""
    console = console or err
    if quiet:
        return Display(console, count, batch)
    if console.is_terminal:
        return RichDisplay(console, count, batch)
    return PlainDisplay(console, count, batch)


class Snapshots:
    """Writes the averaged output every ``every`` iterations as numbered PNGs in ``folder``.

    ``written`` lists this run's frames, so a GIF never picks up a previous run's leftovers.
    """

    def __init__(self, folder: Path, every: int, template) -> None:
        self.folder = folder
        self.every = every
        self.template = template  # an io.Image whose dtype/alpha the snapshots take
        self.written: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)

    def on_event(self, e: Event) -> None:
        from dipcli.engine.run import resized_like
        from dipcli.io import write_image

        if e.iteration % self.every:
            return
        pixels = to_hwc(e.ema)
        path = self.folder / f"iter_{e.iteration:06d}.png"
        write_image(path, resized_like(self.template, pixels))  # super-resolution: a larger frame
        self.written.append(path)
