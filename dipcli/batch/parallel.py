"""``--jobs N``: N inputs at once, each fitted in a worker process with its share of the cores.

A worker that dies (killed, out of memory, a crash in a native library) breaks Python's process
pool: the pool fails every input it holds and ends its other workers. A batch must outlive
that, as ``--cluster`` does (:mod:`dipcli.batch.cluster`). So inputs run in rounds: each round a
new pool takes the inputs still to do; when its pool breaks, the inputs it never began go to the
next round as they are, and those it was fitting go again :data:`RETRIES` time(s) each — which of
them took the worker down cannot be told apart from those the pool ended, so each counts the
death. An input fitting during more deaths than that is a ``failed`` record; the batch goes on.
A restarted fit repeats bit for bit (each fit is seeded by ``--seed`` alone).

Each round has its own queue and GPU counter: a worker killed while it held the lock of a shared
one would leave it locked for the next round's workers. The stop flag has no lock at all
(:class:`Flag`): the main process sets and reads it after a death too.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import resource_tracker

from dipcli import signals
from dipcli.batch.processes import usable_cpus
from dipcli.batch.results import failed, skipped
from dipcli.batch.runners import attempt
from dipcli.batch.settings import Item, Outcome, Task
from dipcli.errors import FAILURE, INTERRUPTED
from dipcli.report.progress import Display, Sink

RETRIES = 1  # runs more of an input whose fit was cut short by a worker's death

_worker: dict = {}  # the worker process's queue, stop flag, started flags and whether it is fitting


def threads_per_job(jobs: int) -> int:
    """A fair share of the cores, or fewer if OMP_NUM_THREADS says so (as it does for one fit)."""
    share = max(1, usable_cpus() // jobs)
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return min(share, int(limit)) if limit.isdigit() and int(limit) > 0 else share


def _init_worker(threads: int, queue, stop, counter, started, gpus: int) -> None:
    """Each worker: its share of the cores, its own GPU when there are several, Ctrl-C in fits only.

    A hangup (SIGHUP: the terminal closed) reaches the workers of the terminal's jobs too; it
    stops a fit as Ctrl-C does, so that the fit keeps its best result so far.
    """
    _worker.update(queue=queue, stop=stop, started=started, busy=False)
    signal.signal(signal.SIGINT, _on_sigint)  # first: ignored until now (interruptions_ignored)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, _on_sigint)
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


def _work(task: Task, item: Item, slot: int) -> Outcome | None:
    """Run one input in a worker; None if the batch was stopped before it began."""
    if _worker["stop"].is_set():
        return None
    _worker["started"][slot] = 1  # if this worker dies now, the input was cut short, not just queued
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


class Flag:
    """A flag the main process sets and its workers read, shared without a lock.

    Not a ``multiprocessing.Event``: a worker killed while it looked at one holds the Event's
    lock for ever, and the main process would hang on setting or reading it. A byte needs none.
    """

    def __init__(self, ctx) -> None:
        self.byte = ctx.RawValue("b", 0)

    def set(self) -> None:
        self.byte.value = 1

    def is_set(self) -> bool:
        return bool(self.byte.value)


@dataclass
class Round:
    """What one pool leaves for the next: inputs to run again, and whether the batch was stopped."""

    again: list[Item] = field(default_factory=list)
    cut_short: list[Item] = field(default_factory=list)  # of ``again``: those a death stopped mid-run
    interrupted: bool = False


def run_parallel(task: Task, items: list[Item], display: Display, jobs: int) -> Iterator[Outcome]:
    """``jobs`` inputs at once in spawned processes, outcomes as they finish.

    Each fit is seeded by --seed alone (fit() seeds its own RNG, build_net forks it), so an
    input's result does not depend on which worker ran it or what ran there before. Ctrl-C
    (or a stop) lets running fits write their best so far, starts nothing new, and is raised
    again once they are in. A worker's death costs a new pool, not the batch (see the module).
    """
    for item in items:
        if item.skip:
            yield skipped(task, item)
    todo = [i for i in items if not i.skip]
    gpus = 0
    if task.fit.device in ("auto", "cuda"):
        import torch

        gpus = torch.cuda.device_count()
    deaths = {item.index: 0 for item in todo}  # worker deaths each input's fit has seen
    while todo:
        result = yield from run_round(task, todo, display, jobs, gpus, deaths)
        if result.interrupted:
            raise KeyboardInterrupt
        todo = sorted(result.again, key=lambda item: item.index)
        if todo:
            display.say(f"a worker process died (killed, or out of memory?); a new pool goes on with "
                        f"{len(todo)} input{'s' if len(todo) > 1 else ''}"
                        + (f", {len(result.cut_short)} of them from the start" if result.cut_short else ""))


def run_round(task: Task, todo: list[Item], display: Display, jobs: int, gpus: int,
              deaths: dict[int, int]) -> Generator[Outcome, None, Round]:
    """Run ``todo`` in one new pool; yield the outcomes, return what its breaking left to do."""
    ctx = multiprocessing.get_context("spawn")
    with interruptions_ignored():
        resource_tracker.ensure_running()  # before the locks below, which would start it
    queue, stop, counter = ctx.SimpleQueue(), Flag(ctx), ctx.Value("i", 0)
    started = ctx.Array("b", len(todo), lock=False)
    pool = ProcessPoolExecutor(min(jobs, len(todo)), mp_context=ctx, initializer=_init_worker,
                               initargs=(threads_per_job(jobs), queue, stop, counter, started, gpus))
    result, finished = Round(), False
    try:
        with interruptions_ignored():
            futures: dict[Future, tuple[int, Item]] = {pool.submit(_work, task, item, slot): (slot, item)
                                                       for slot, item in enumerate(todo)}
        pending = set(futures)
        with stop_requests(stop) as asked:
            while pending:
                # Nothing is cancelled on a stop: queued inputs see it and return at once
                # (cancelling futures of a pool whose worker died can hang Python 3.11's executor).
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                result.interrupted = result.interrupted or bool(asked)
                relay(queue, display)
                for f in sorted(done, key=lambda f: futures[f][1].index):
                    slot, item = futures[f]
                    outcome = collect(task, f, item, bool(started[slot]), stop.is_set(), deaths, result)
                    if outcome is not None:
                        yield outcome
            result.interrupted = result.interrupted or bool(asked)
        finished = True
    finally:
        if not finished:  # the batch stopped reading (an error, a closed generator): stop the fits
            stop.set()
        pool.shutdown(wait=True)
        relay(queue, display)
    for item in result.cut_short:  # after the last relay: a dead fit's bar posts nothing more
        display.end(item.index)
    return result


def collect(task: Task, f: Future, item: Item, began: bool, stopping: bool, deaths: dict[int, int],
            result: Round) -> Outcome | None:
    """A finished future's outcome; None if the input was never begun or goes to the next round."""
    try:
        return f.result()
    except BrokenProcessPool as exc:
        if stopping:
            return failed(task, item, f"worker failed: {exc.__class__.__name__}: {exc}", FAILURE)
        if began:
            deaths[item.index] += 1
            if deaths[item.index] > RETRIES:
                return failed(task, item, f"its worker process died {deaths[item.index]} times while "
                              "fitting it (killed, or out of memory?)", FAILURE)
            result.cut_short.append(item)
        result.again.append(item)
        return None
    except Exception as exc:  # the worker could not run it at all (e.g. it failed to start)
        return failed(task, item, f"worker failed: {exc.__class__.__name__}: {exc}", FAILURE)


@contextmanager
def stop_requests(stop: Flag) -> Iterator[list[int]]:
    """While a pool runs, Ctrl-C, SIGTERM and SIGHUP ask the batch to stop instead of raising.

    The workers get the signal too and stop their fits, which keep their best so far and come
    back as outcomes. Raised in the main process at whatever point it had reached (showing
    progress, writing an earlier outcome), the interrupt would leave the round before those
    outcomes arrive and lose them; so here it only sets the stop flag, and the round raises it
    once every running fit is in. Yields the signals received (main thread only; else none).
    """
    asked: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        asked.append(signum)
        stop.set()
        signals.note(signum)

    with signals.handling([signal.SIGINT, *signals.STOPPING], on_signal):
        yield asked


@contextmanager
def interruptions_ignored() -> Iterator[None]:
    """Ignore Ctrl-C and hangups for a moment (main thread only), so that processes started now do.

    A worker sets its own handlers first thing (:func:`_init_worker`); until then neither signal
    can end it. Multiprocessing's resource tracker keeps ignoring SIGHUP (it ignores SIGINT and
    SIGTERM itself): killed by a hangup, it would be started again without the names it tracked
    and print a traceback for each of them as the batch ends.
    """
    signums = [signal.SIGINT] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    with signals.handling(signums, signal.SIG_IGN):
        yield


def relay(queue, display: Display) -> None:
    """Show what the workers have posted: ``(method, key, args)`` calls on the display."""
    while not queue.empty():
        method, key, args = queue.get()
        getattr(display, method)(key, *args)
