"""The worker's side of a ``--cluster`` batch (:mod:`dipcli.batch.cluster` is the client's): plan and fit
the inputs a task carries, send the fit's progress back as Dask events, and return what the client
writes (the record and the restored image), or, with ``--shared-fs``, attempt the input as a local
batch would.

A CPU fit gets one thread: a worker of T threads runs T tasks at once, so T fits of one thread use
its T cores. A worker's heap is made roomy again (:func:`roomy_heap`): Dask's nanny starts workers
with ``MALLOC_TRIM_THRESHOLD_=65536``, which halves a fit's speed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from dipcli.api.execute import run_plan, run_plans
from dipcli.api.inputs import TaskInput
from dipcli.api.plan import Plan
from dipcli.api.spec import resolve
from dipcli.batch.results import make_record
from dipcli.batch.runners import (
    announcer,
    attempt,
    group_key,
    guarded,
    plan_input,
    run_grouped,
    view,
)
from dipcli.batch.settings import Item, Outcome, Task
from dipcli.engine.run import group_capacity
from dipcli.errors import INTERRUPTED, OK
from dipcli.io import Image
from dipcli.report.progress import Display, Sink, err

TOPIC = "dipcli-progress"  # one topic for every batch: the scheduler keeps one bounded log of it
PROGRESS_EVERY = 1.0  # seconds between a remote fit's progress updates (each crosses the network)


@dataclass
class Shipped:
    """What a worker sends back for one input: its outcome, and the image and curves to write."""

    outcome: Outcome
    image: Image | None = None  # None: nothing to write (a failure, or --shared-fs wrote it)
    history: list[dict] | None = None  # the fit's curves, for --plot (drawn by the client)


class Abandoned(BaseException):
    """The scheduler no longer wants this task (Ctrl-C on the client, the client gone): stop now.

    A BaseException, so that no handler on the way out takes it for the input's failure, and no
    fit keeps it for an interruption whose result is written: an abandoned fit writes nothing
    (a half-fitted output would pass for a finished one to --skip-existing).
    """


class Cancelled:
    """Whether the scheduler has cancelled the task this worker thread runs.

    Dask cannot interrupt a running task, but it marks it cancelled on its worker when the
    client cancels it or goes away; a fit looks at every check (a local read, no network) and
    stops, so the worker is free at once instead of finishing a fit nobody will read.
    """

    def __init__(self, worker, key) -> None:
        self.worker, self.key = worker, key

    def is_set(self) -> bool:
        try:
            state = self.worker.state.tasks.get(self.key)
        except Exception:  # another version's internals: never stop a fit on a guess
            return False
        return state is None or state.state == "cancelled"


class RemoteSink(Sink):
    """A sink on a worker: progress posted to the client, and an abandoned task's fit stopped."""

    def __init__(self, post: Callable[..., None], cancelled: Cancelled) -> None:
        super().__init__(post, every=PROGRESS_EVERY)
        self.cancelled = cancelled

    def on_event(self, e) -> None:
        if self.cancelled.is_set():
            raise Abandoned
        super().on_event(e)


def fit_threads(worker, gpu: bool) -> int:
    """Threads for one fit: the worker's threads shared among the fits it runs at once.

    A worker with T threads runs T tasks at once, so a CPU fit gets one thread (T fits × T
    threads would oversubscribe the cores T-fold); a fit holding a GPU runs beside at most as
    many others as the worker declares GPUs, and shares the worker's threads with those.
    """
    threads = max(1, worker.state.nthreads)
    if not gpu:
        return 1
    gpus = int(worker.state.total_resources.get("GPU", 1)) or 1
    return max(1, threads // min(threads, gpus))


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Set this thread's torch threads for one fit, and put them back after.

    Torch keeps the count per calling thread (OpenMP), so tasks running side by side in one
    worker do not overwrite each other's.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt(3) parameters, <malloc.h>


@functools.cache
def roomy_heap() -> None:
    """Let glibc keep a fit's big buffers in the heap, as it does by default.

    Dask's nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its
    ``distributed.nanny.pre-spawn-environ``) so that workers hand memory back to the system. Setting
    any malloc threshold also switches off glibc's dynamic mmap threshold (mallopt(3)), so every
    buffer over 128 KiB, which is every activation of a fit, is mapped and unmapped at each step,
    and its pages faulted in afresh: a 256² fit on such a worker ran 2× slower than in `dip`
    (7.3 M page faults instead of 0.8 M). The thresholds set here are the ceilings glibc's dynamic
    adjustment would reach (mmap 32 MiB on 64-bit, trim twice that). Once per worker process; a
    no-op where there is no glibc.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):  # no glibc (musl, macOS, Windows)
        return
    mallopt(M_MMAP_THRESHOLD, 32 << 20)
    mallopt(M_TRIM_THRESHOLD, 64 << 20)


class RemoteDisplay(Display):
    """The display a worker's runner talks to: each sink posts to the client as a Dask event."""

    def __init__(self, worker, batch_id: str, cancelled: Cancelled) -> None:
        super().__init__(err, 0, True)
        self.worker, self.batch_id, self.cancelled = worker, batch_id, cancelled

    def sink(self, key: int) -> Sink:
        def post(method: str, *args) -> None:
            try:
                self.worker.log_event(TOPIC, [self.batch_id, key, method, list(args)])
            except Exception:  # progress is a courtesy: it never fails a fit
                pass

        return RemoteSink(post, self.cancelled)


@contextmanager
def on_worker(batch_id: str, gpu: bool) -> Iterator[tuple[RemoteDisplay, str]]:
    """The worker running this task, with its thread share set: (its progress display, its address)."""
    from distributed import get_worker

    worker = get_worker()
    roomy_heap()
    display = RemoteDisplay(worker, batch_id, Cancelled(worker, worker.get_current_task()))
    with torch_threads(fit_threads(worker, gpu)):
        yield display, worker.address


def on_this_machine(task: Task, items: list[Item]) -> Task | list[Outcome]:
    """The task with its spec resolved here, on the worker, whose device picks the net as `dip`
    run here would (a GPU's net on a GPU worker); or, if this worker cannot run it (``--device
    cuda`` without one), that failure as each input's outcome."""
    spec = task.spec
    got = guarded(task, items, True,
                  lambda: [replace(task, spec=resolve(spec.name, spec.options, spec.params))])
    return got if isinstance(got[0], Outcome) else got[0]


def grouping(task: Task) -> bool:
    """Whether inputs go to the workers N at a time, to be fitted together (``--group N``)."""
    return not task.fit.group.auto and task.fit.group.size > 1


def fit_shipped(task: Task, entries: list[tuple[Item, TaskInput]], batch_id: str, gpu: bool) -> list[Shipped]:
    """A worker's task: plan and fit inputs the client has read; return their records and images."""
    try:
        with on_worker(batch_id, gpu) as (display, address):
            here = on_this_machine(task, [item for item, _ in entries])
            if isinstance(here, list):
                shipped = [Shipped(o) for o in here]
            else:
                shipped = fit_inputs(here, entries, display)
    except Abandoned:
        return []
    for s in shipped:
        s.outcome.record["worker"] = address
    return shipped


def fit_inputs(task: Task, entries: list[tuple[Item, TaskInput]], display: RemoteDisplay) -> list[Shipped]:
    """Plan each input, then fit it: alone, or with ``--group N`` together with those that can go
    together (one size, net and loop, untiled, drawing nothing), as ``run_grouped`` does locally."""
    shipped: list[Shipped] = []
    planned: dict[tuple, list[tuple[Item, Plan, Sink]]] = {}
    for item, src in entries:
        sink = display.sink(item.index)
        got = guarded(task, [item], True,
                      lambda item=item, src=src, sink=sink: [plan_input(task, item, src, sink)])
        if isinstance(got[0], Outcome):
            shipped.append(Shipped(got[0]))
        elif not grouping(task) or got[0].tile or item.pictures:
            shipped += fit_planned(task, [(item, got[0], sink)], together=False)
        else:
            planned.setdefault(group_key(got[0]), []).append((item, got[0], sink))
    for members in planned.values():
        p = members[0][1]
        size = group_capacity(p.problem, p.image.pixels.shape, p.net, p.config, task.fit.device,
                              task.fit.group.size)
        for start in range(0, len(members), size):
            shipped += fit_planned(task, members[start:start + size], together=True)
    return shipped


def fit_planned(task: Task, members: list[tuple[Item, Plan, Sink]], together: bool) -> list[Shipped]:
    """Fit planned inputs (alone, or as one group like ``--group``) and make their records.

    The same steps as :func:`~dipcli.batch.runners.run_prepared` and ``run_together``, less the
    writing, which the client does.
    """
    def work() -> list[Shipped]:
        try:
            if together:
                results = run_plans([p for _, p, _ in members], [[s] for _, _, s in members],
                                    [announcer(task, i, p, s) for i, p, s in members])
            else:
                (item, plan, sink), = members
                results = [run_plan(plan, [sink], announcer(task, item, plan, sink))]
        finally:
            for _, _, sink in members:
                sink.end()
        out = []
        for (item, plan, _), result in zip(members, results, strict=True):
            record = make_record(task, item, plan, result)
            if together:
                record["group"] = len(members)
            outcome = Outcome(item.index, record, INTERRUPTED if result.fit.interrupted else OK,
                              view(task, plan, result, record))
            out.append(Shipped(outcome, result.image, result.fit.history if item.plot else None))
        return out

    got = guarded(task, [i for i, _, _ in members], True, work)
    return [g if isinstance(g, Shipped) else Shipped(g) for g in got]


def fit_shared(task: Task, items: list[Item], batch_id: str, gpu: bool) -> list[Shipped]:
    """A worker's task with ``--shared-fs``: the local runner itself, reading and writing the paths."""
    try:
        with on_worker(batch_id, gpu) as (display, address):
            here = on_this_machine(task, items)
            if isinstance(here, list):
                outcomes = here
            elif grouping(here):
                outcomes = list(run_grouped(here, items, display, batch=True))
            else:
                outcomes = [attempt(here, item, display.sink(item.index), batch=True) for item in items]
    except Abandoned:
        return []
    for o in outcomes:
        o.record["worker"] = address
    return [Shipped(o) for o in outcomes]
