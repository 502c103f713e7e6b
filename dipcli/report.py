"""Reporters: subscribers to the fitting loop's events. The loop itself never prints."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dipcli.fit import Event


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


class RichProgress:
    """A live bar on stderr: iteration/total, it/s, elapsed, ETA and the current metrics."""

    def __init__(self, header: str, total: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=self.console,
            transient=False,
        )
        self.header = header
        self.total = total
        self.task = None

    def __enter__(self) -> RichProgress:
        self.console.print(self.header)
        self.progress.start()
        self.task = self.progress.add_task("fit", total=self.total, speed="", metrics="")
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_event(self, e: Event) -> None:
        speed = f"{e.iteration / e.elapsed:.1f} it/s" if e.elapsed > 0 else ""
        self.progress.update(self.task, completed=e.iteration, speed=speed, metrics=metrics_text(e))


class PlainProgress:
    """Line-based progress for logs (stderr is not a terminal): a line every ``every`` seconds."""

    def __init__(self, header: str, total: int, every: float = 10.0, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.header = header
        self.total = total
        self.every = every
        self.last = -1e9

    def __enter__(self) -> PlainProgress:
        print(self.header, file=self.stream, flush=True)
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def on_event(self, e: Event) -> None:
        now = time.monotonic()
        if now - self.last >= self.every or e.iteration == e.total:
            self.last = now
            print(f"[{e.iteration}/{e.total} {e.elapsed:.0f}s] {metrics_text(e)}",
                  file=self.stream, flush=True)


class Quiet:
    def __enter__(self) -> Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def on_event(self, e: Event) -> None:
        pass


class Snapshots:
    """Writes the averaged output every ``every`` iterations as numbered PNGs in ``folder``."""

    def __init__(self, folder: Path, every: int, template) -> None:
        self.folder = folder
        self.every = every
        self.template = template  # an io.Image whose dtype/alpha the snapshots take
        folder.mkdir(parents=True, exist_ok=True)

    def on_event(self, e: Event) -> None:
        from dipcli.io import write_image

        if e.iteration % self.every:
            return
        pixels = e.ema[0].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy().astype(np.float32)
        write_image(self.folder / f"iter_{e.iteration:06d}.png", self.template.with_pixels(pixels))


def progress_for(header: str, total: int, quiet: bool):
    """Rich on a terminal, plain lines in a log, nothing with --quiet."""
    if quiet:
        return Quiet()
    if sys.stderr.isatty():
        return RichProgress(header, total)
    return PlainProgress(header, total)
