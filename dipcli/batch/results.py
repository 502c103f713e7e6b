"""A batch's results: one JSON line per input, the CSV/JSON report, the summary table, the exit code."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from dipcli.api import execute
from dipcli.api.plan import Plan
from dipcli.batch.settings import Item, Outcome, Settings, Task
from dipcli.errors import FAILURE, INTERRUPTED, OK
from dipcli.io import write_text_atomic
from dipcli.report.progress import Display, err


def make_record(task: Task, item: Item, plan: Plan, result) -> dict:
    """One input's record: what it is, where it went, and what the fit used and gave."""
    record = {"input": str(item.input), "output": str(item.output),
              "status": "interrupted" if result.fit.interrupted else "ok", "task": task.name,
              **execute.record(plan, result)}
    for key, path in (("plot", item.plot), ("gif", item.gif)):
        if path is not None:
            record[key] = str(path)
    return record


def failed(task: Task, item: Item, message: str, code: int) -> Outcome:
    return Outcome(item.index, {"input": str(item.input), "output": str(item.output),
                                "status": "failed", "task": task.name, "error": message}, code)


def skipped(task: Task, item: Item) -> Outcome:
    return Outcome(item.index, {"input": str(item.input), "output": str(item.output),
                                "status": "skipped", "task": task.name})


def finite(value):
    """``value`` with every NaN or infinity (a fit stopped before its first loss) as None.

    JSON has no NaN: ``JSON.parse`` and most parsers reject the ``NaN`` Python writes by default.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def to_json(value, **kw) -> str:
    """Strict JSON (null where a number is not finite)."""
    return json.dumps(finite(value), allow_nan=False, **kw)


_stdout = {"closed": False}  # set once a reader closed stdout (`dip ... --json | head -1`)


def emit_json(record: dict) -> None:
    """One result on stdout as a line of JSON: stdout carries results and nothing else.

    A reader may stop reading (``| head``) long before a batch ends; its outputs, its report
    and the exit code must not depend on that. So the first write to a closed pipe says so once
    on stderr, and no more lines are printed (:func:`stdout_closed`); the work goes on.
    """
    if _stdout["closed"]:
        return
    try:
        print(to_json(record), flush=True)
    except BrokenPipeError:
        stdout_closed()


def stdout_closed() -> None:
    """Stop printing results: point stdout at the null device and tell the user, once.

    The null device, not just a flag: Python flushes stdout again at exit, which would end the
    run with a second BrokenPipeError ("Exception ignored ...") after all went well.
    """
    _stdout["closed"] = True
    with suppress(AttributeError, OSError, ValueError):  # a stdout with no file (tests, notebooks)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    err.print("dip: stdout was closed by its reader; no more JSON lines are printed, the work goes on",
              markup=False, soft_wrap=True)


def describe(record: dict) -> str:
    """The line a user reads after a fit: what was written and how it went."""
    where = "stdout" if record["output"] == "-" else record["output"]
    msg = (f"wrote {where} ({record['iterations']} iterations, kept {record['best_iteration']}, "
           f"stopped by {record['stop_reason']}, {record['seconds']:.1f} s")
    if record.get("psnr") is not None:
        msg += f", PSNR {record['psnr']:.2f} dB, SSIM {record['ssim']:.4f}"
    lines = [msg + ")"]
    if record.get("noise"):  # what the fit took the noise to be, "noise σ …" (dipcli.physics: readout)
        lines.append(f"  {record['noise']}")
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
        where = "stdout" if rec["output"] == "-" else rec["output"]
        err.print(f"interrupted: wrote the result so far to {where}", markup=False)
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
        text = to_json(list(records), indent=1) + "\n"
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=report_columns(records), restval="")
        writer.writeheader()
        for rec in map(finite, records):
            writer.writerow({k: "" if v is None else to_json(v) if isinstance(v, (list, dict)) else v
                             for k, v in rec.items()})
        text = buf.getvalue()
    write_text_atomic(path, text)


class Extras:
    """The files a batch writes about itself (--report, --html), as inputs finish.

    Writing one can fail (a full disk, a quota) where the images are written elsewhere, or
    when the next write would have room again. So a failure costs no image: it is said once,
    in one line, the batch goes on (and tries again at each input), and it ends with exit 1 if
    the file is still not whole.
    """

    NAMES = {"--report": "the report", "--html": "the page"}

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.broken: set[str] = set()  # the options whose file's last write failed
        self.told: set[str] = set()

    def write(self, option: str, path: Path, action: Callable[[], None]) -> None:
        """Run ``action`` (which writes ``path``, the file of ``option``); a failure is noted."""
        try:
            action()
        except OSError as exc:
            self.broken.add(option)
            if option not in self.told:
                self.told.add(option)
                self.say(f"{option} {path}: cannot write ({exc.strerror or exc.__class__.__name__}); "
                         f"the images are still written, {self.NAMES[option]} is not")
        else:
            self.broken.discard(option)


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
