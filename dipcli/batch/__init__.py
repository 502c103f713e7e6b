"""Many inputs in one call: expand them, name and pair their files, run each, report on all.

The CLI describes a task once, as a :class:`Task`; this package does everything else:
:mod:`~dipcli.batch.inputs` (expanding files, folders and globs; naming outputs; pairing masks
and references; refusing what cannot work before any fit), :mod:`~dipcli.batch.runners` (one at
a time, ``--group``), :mod:`~dipcli.batch.parallel` (``--jobs``), :mod:`~dipcli.batch.cluster`
(``--cluster``) and :mod:`~dipcli.batch.results` (JSON lines, the report, the summary, the exit
code). A single input takes the same path as each input of a batch, so the two cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial

from dipcli.batch.inputs import Source, expand_inputs, glob_base, plan
from dipcli.batch.parallel import run_parallel
from dipcli.batch.results import Extras, announce, emit_json, exit_code, summary, write_report
from dipcli.batch.runners import run_grouped, run_sequential
from dipcli.batch.settings import Item, Outcome, Settings, Task
from dipcli.errors import FAILURE
from dipcli.report.progress import err, make_display, print_error

__all__ = ["Item", "Outcome", "Settings", "Source", "Task", "emit_json", "expand_inputs", "glob_base",
           "run_batch"]


def run_batch(task: Task, args: Sequence[str | os.PathLike]) -> int:
    """Expand, plan and run every input; report; return the exit code (0, 1, 2 or 130).

    The report and the page (--report, --html) are written as inputs finish; one that cannot be
    written (a full disk) costs no image (:class:`~dipcli.batch.results.Extras`).
    """
    s = task.settings
    sources, batch = expand_inputs(args, s.recursive)
    items = plan(task, sources, batch)
    todo = sum(not i.skip for i in items)
    outcomes: list[Outcome] = []
    interrupted = False
    page = None
    extras = Extras(print_error)
    if s.html is not None:  # an empty page now: even a batch stopped before its first result has one
        from dipcli.report.html import Entry, HtmlReport

        page = HtmlReport(s.html, command=s.command, title=f"dip {task.name}")
        extras.write("--html", s.html, page.write)
    with make_display(len(items), batch, s.quiet) as display:
        extras.say = display.error
        if s.cluster is not None and todo:  # --cluster: each input a task on a Dask cluster
            from dipcli.batch.cluster import run_cluster

            runs = run_cluster(task, items, display, batch)
        elif s.jobs > 1 and todo > 1:
            runs = run_parallel(task, items, display, s.jobs)
        elif not task.fit.group.auto and task.fit.group.size > 1 and todo > 1:
            runs = run_grouped(task, items, display, batch)
        else:
            runs = run_sequential(task, items, display, batch)
        try:
            for outcome in runs:
                outcomes.append(outcome)
                announce(outcome, display, s, batch)
                if s.report is not None:  # after each input: a killed batch still leaves its report
                    records = [o.record for o in sorted(outcomes, key=lambda o: o.index)]
                    extras.write("--report", s.report, partial(write_report, s.report, records))
                if page is not None:
                    entry = outcome.view or Entry(outcome.record, None, None)
                    extras.write("--html", s.html, partial(page.add, entry))
                    outcome.view = None  # the page has its pictures; free the arrays
        except KeyboardInterrupt:
            interrupted = True
    outcomes.sort(key=lambda o: o.index)
    extras.say = print_error
    if s.report is not None:
        extras.write("--report", s.report, partial(write_report, s.report, [o.record for o in outcomes]))
    if interrupted:
        err.print(f"interrupted: {len(outcomes)} of {len(items)} inputs done"
                  + (f"; the report {s.report} has them" if s.report else ""), markup=False)
    if len(items) > 1 and outcomes and not s.quiet:
        err.print(summary(outcomes))
    code = exit_code(outcomes, batch, interrupted)
    return FAILURE if code == 0 and extras.broken else code
