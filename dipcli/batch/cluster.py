"""Running a batch on a Dask cluster (``--cluster ADDRESS``): each input a task on some worker.

What runs where, and why:

* The client (this process) expands, names and checks the inputs as for any batch, reads each
  input's files (image, reference, mask) and submits them, decoded, with the task. Workers
  therefore need the package but not the client's file system.
* A worker plans the input with the task's planner, fits it, and builds its record with the very
  functions the local runners use (:func:`~dipcli.api.plan.run_plan`,
  :func:`~dipcli.batch.results.make_record`); it returns the record (with a ``worker`` field)
  and the restored image. Planning there, not here, lets the machine that fits decide what
  depends on it (a GPU's net and tiles), exactly as `dip` run on that machine would.
* The client writes the image atomically (:func:`dipcli.io.write_image`, as every runner does),
  draws ``--plot`` from the shipped curves, and hands the outcome on as it arrives
  (``distributed.as_completed``), so the report and ``--json`` grow as results come in. The
  workers' progress (each fit's start, its numbers about once a second, its end) comes back as
  Dask events and drives the same display as a local batch.
* With ``--shared-fs`` the workers see the same paths as the client, and each task is simply
  :func:`~dipcli.batch.runners.attempt` on its input: the worker reads and writes the files,
  and no pixels cross the network (``--snapshots`` and ``--gif`` need this mode).
* ``--group N`` sends up to N inputs of one size in one task, fitted together there.
* A CPU fit gets one thread: a worker of T threads runs T tasks at once, so T fits of one
  thread use its T cores (T fits of T threads would oversubscribe them T-fold). A fit that
  holds a GPU shares the worker's threads only with the fits on the worker's other GPUs.
* A worker's heap is made roomy again (:func:`roomy_heap`): Dask's nanny starts workers with
  ``MALLOC_TRIM_THRESHOLD_=65536``, which halves a fit's speed.

Faults: a worker that dies mid-fit takes no result with it. The scheduler hands its tasks to
other workers, up to ``distributed.scheduler.allowed-failures`` deaths per task (set to
:data:`ALLOWED_FAILURES` for ``--cluster local``; a scheduler you start has its own setting);
after that the input is a ``failed`` record and the batch goes on. A task that raises outside
the fit's own error handling (which turns an input's failure into its record, as locally) is
rerun :data:`RETRIES` times. Ctrl-C (or SIGTERM) cancels every task not yet in: running fits
notice at their next check and stop without writing; what has arrived is written and reported,
and ``--skip-existing`` resumes the rest.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import queue
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from dipcli.api.plan import Plan, TaskInput, resolve, run_plan, run_plans
from dipcli.batch.address import connect
from dipcli.batch.inputs import check_type
from dipcli.batch.results import failed, make_record, skipped
from dipcli.batch.runners import (
    announcer,
    attempt,
    draw,
    group_key,
    guarded,
    load_input,
    plan_input,
    run_grouped,
    view,
    write_output,
)
from dipcli.batch.settings import Item, Outcome, Task
from dipcli.engine.run import group_capacity
from dipcli.errors import FAILURE, INTERRUPTED, OK
from dipcli.extras import have, needs
from dipcli.io import Image
from dipcli.report.progress import Display, Sink, err

ALLOWED_FAILURES = 3  # --cluster local: worker deaths one task may see before it counts as failed
RETRIES = 2  # reruns of a task that raised (an input's own failure is its record, not a raise)
TOPIC = "dipcli-progress"  # one topic for every batch: the scheduler keeps one bounded log of it
POLL = 0.1  # seconds between looks at the finished tasks and the workers' progress
PROGRESS_EVERY = 1.0  # seconds between a remote fit's progress updates (each crosses the network)


def have_distributed() -> bool:
    """Whether Dask's distributed, from the ``cluster`` extra, can be imported."""
    return have("distributed")


def missing_distributed() -> str:
    """The one line that refuses ``--cluster`` without distributed, naming the extra that installs it."""
    return needs("distributed", "--cluster")


# ---- on a worker ------------------------------------------------------------------------------------

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
    """The task with its setup resolved here, on the worker, whose device picks the net as `dip`
    run here would (a GPU's net on a GPU worker); or, if this worker cannot run it (``--device
    cuda`` without one), that failure as each input's outcome."""
    got = guarded(task, items, True, lambda: [replace(task, setup=resolve(task.name, task.fit))])
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
        size = group_capacity(p.problem, p.image.pixels.shape, p.spec, p.config, task.fit.device,
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


# ---- on the client ----------------------------------------------------------------------------------

def workers_of(client) -> dict[str, dict]:
    """Every worker the scheduler knows, with its threads and resources."""
    try:
        info = client.scheduler_info(n_workers=-1)
    except TypeError:  # a version before the argument: it returned every worker anyway
        info = client.scheduler_info()
    return info.get("workers", {})


class Progress:
    """The workers' progress events, shown on the display from the main thread.

    Events arrive on Dask's thread and wait in a queue; :meth:`show` passes them on. A fit that
    is retried elsewhere begins again (its old bar ends first), and late events of an input
    whose result is in are dropped, so no bar outlives its input.
    """

    def __init__(self, display: Display, batch_id: str) -> None:
        self.display, self.batch_id = display, batch_id
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.open: set[int] = set()
        self.finished: set[int] = set()

    def receive(self, event) -> None:
        _, msg = event
        if isinstance(msg, (list, tuple)) and len(msg) == 4 and msg[0] == self.batch_id:
            self.events.put(msg[1:])

    def show(self) -> None:
        while not self.events.empty():
            key, method, args = self.events.get()
            if key in self.finished:
                continue
            if method == "begin":
                if key in self.open:
                    self.display.end(key)
                self.open.add(key)
            elif method in ("update", "end") and key not in self.open:
                continue
            elif method == "end":
                self.open.discard(key)
            getattr(self.display, method)(key, *args)

    def finish(self, key: int) -> None:
        self.finished.add(key)
        if key in self.open:
            self.open.discard(key)
            self.display.end(key)


def chunks(task: Task, todo: list[Item], size: int, shared: bool) -> Iterator[Outcome | list]:
    """The batch's tasks in the order to submit them: lists of inputs, or an input's failure to read.

    Shipped inputs are read here, one task ahead of need. With ``--group N``, inputs of one
    image size wait until N are in (as ``--group`` does locally), so that a task can fit them
    together; ``--shared-fs`` groups N inputs in order, as the workers read them.
    """
    waiting: dict[tuple, list[tuple[Item, TaskInput]]] = {}
    for index in range(0, len(todo), size if shared else 1):
        if shared:
            yield todo[index:index + size]
            continue
        item = todo[index]
        got = guarded(task, [item], True, lambda item=item: [read(task, item)])
        if isinstance(got[0], Outcome):
            yield got[0]
            continue
        shape = got[0].image.pixels.shape
        waiting.setdefault(shape, []).append((item, got[0]))
        if len(waiting[shape]) >= size:
            yield waiting.pop(shape)
    yield from waiting.values()


def read(task: Task, item: Item) -> TaskInput:
    """An input's files, read and checked here so that a worker never needs this file system."""
    src = load_input(task, item)
    if not item.to_stdout:
        check_type(item.output, batch=False)  # an output named after a readable but unwritable input
    return src


def finish(task: Task, item: Item, shipped: Shipped, sink: Sink) -> Outcome:
    """Write what a worker fitted (atomically) and draw its curves: the input's final outcome."""
    outcome = shipped.outcome
    if shipped.image is None:
        return outcome

    def work() -> list[Outcome]:
        item.output.parent.mkdir(parents=True, exist_ok=True)  # --output-dir and its mirrored folders
        write_output(item, shipped.image, overwrite=task.settings.force)
        draw(task, item, outcome.record, shipped.history or [], None, sink)
        return [outcome]

    final = guarded(task, [item], True, work)[0]
    if final is not outcome:
        final.record["worker"] = outcome.record.get("worker")
    return final


def lost(task: Task, item: Item, exc: BaseException) -> Outcome:
    """The record of an input whose task the cluster gave up on (its workers died, it kept raising)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return failed(task, item, f"lost on the cluster: {exc.__class__.__name__}: {first}", FAILURE)


def run_cluster(task: Task, items: list[Item], display: Display, batch: bool) -> Iterator[Outcome]:
    """``--cluster``: every input a task on the cluster's workers, outcomes as they finish.

    At most a few tasks per worker slot are out at a time, so the client reads (and holds)
    inputs only a little ahead of the workers, however long the batch. Each fit is seeded by
    --seed alone: an input's result does not depend on which worker fitted it.
    """
    from distributed import as_completed

    s = task.settings
    size = 1 if task.fit.group.auto else task.fit.group.size
    with connect(s.cluster, display) as client:
        for item in items:
            if item.skip:
                yield skipped(task, item)
        todo = [i for i in items if not i.skip]
        gpu = wants_gpu(task, client, display)
        batch_id = uuid.uuid4().hex
        progress = Progress(display, batch_id)
        client.subscribe_topic(TOPIC, progress.receive)
        fit = fit_shared if s.shared_fs else fit_shipped
        source = chunks(task, todo, size, s.shared_fs)
        in_flight: dict = {}  # future → its inputs
        finished = as_completed()
        slots = Slots(client, gpu)
        try:
            more = True
            while more or in_flight:
                while more and len(in_flight) < slots.window():
                    chunk = next(source, None)
                    if chunk is None:
                        more = False
                    elif isinstance(chunk, Outcome):
                        progress.finish(chunk.index)
                        yield chunk
                    else:
                        future = submit(client, fit, task, chunk, batch_id, gpu)
                        in_flight[future] = [c[0] if isinstance(c, tuple) else c for c in chunk]
                        finished.add(future)
                done = finished.next_batch(block=False) if in_flight else []
                progress.show()
                if not done:
                    time.sleep(POLL)
                for future in sorted(done, key=lambda f: in_flight[f][0].index):
                    yield from collect(task, future, in_flight.pop(future), display, progress)
        except KeyboardInterrupt:
            cancel(client, in_flight)
            raise  # the same exception: SIGTERM's stays itself, for its exit code
        finally:
            cancel(client, in_flight)  # also when the consumer stops early (the generator closes)
            try:
                client.unsubscribe_topic(TOPIC)
            except Exception:
                pass


def submit(client, fit: Callable, task: Task, chunk: list, batch_id: str, gpu: bool):
    """One task on the cluster, named after its first input, asking for a GPU where there are any."""
    first = chunk[0][0] if isinstance(chunk[0], tuple) else chunk[0]
    key = f"dip-{task.name}-{first.input.name}-{uuid.uuid4().hex[:8]}"
    return client.submit(fit, task, chunk, batch_id, gpu, key=key, pure=False, retries=RETRIES,
                         resources={"GPU": 1} if gpu else None)


def collect(task: Task, future, inputs: list[Item], display: Display,
            progress: Progress) -> Iterator[Outcome]:
    """The outcomes of one finished task: written here (unless --shared-fs wrote them), or lost."""
    try:
        shipped = future.result()
    except Exception as exc:  # KilledWorker after too many deaths, a task that kept raising
        shipped = [Shipped(lost(task, item, exc)) for item in inputs]
    by_index = {item.index: item for item in inputs}
    for s in sorted(shipped, key=lambda s: s.outcome.index):
        item = by_index[s.outcome.index]
        progress.finish(item.index)
        yield finish(task, item, s, display.sink(item.index))


def cancel(client, in_flight: dict) -> None:
    """Cancel the tasks not yet in; their running fits stop at their next check."""
    if in_flight:
        try:
            client.cancel(list(in_flight))
        except Exception:  # the client is going away anyway
            pass
        in_flight.clear()


def wants_gpu(task: Task, client, display: Display) -> bool:
    """Whether fits ask for a ``GPU`` resource: when some worker declares one and --device allows.

    Then each fit holds one of a worker's GPUs (``dask worker --resources GPU=1``), so no two
    fits share a card; workers without the resource get no fits.
    """
    workers = workers_of(client)
    address = client.scheduler.address
    if not workers:
        display.say(f"cluster {address}: no workers yet; the inputs wait for some to join (Ctrl-C to stop)")
        return False
    gpus = sum(w.get("resources", {}).get("GPU", 0) for w in workers.values())
    threads = sum(w.get("nthreads", 1) for w in workers.values())
    gpu = gpus > 0 and task.fit.device != "cpu"
    display.say(f"cluster {address}: {len(workers)} worker(s), {threads} thread(s)"
                + (f", {gpus:g} GPU(s), one fit per GPU" if gpu else ""))
    return gpu


class Slots:
    """How many tasks to keep out at once: a few per fit the cluster can run, as it grows or shrinks."""

    AHEAD = 2  # tasks per slot: the next one is there when a fit ends
    REFRESH = 2.0  # seconds between looks at the workers

    def __init__(self, client, gpu: bool) -> None:
        self.client, self.gpu = client, gpu
        self.count, self.checked = 1, -1e9

    def window(self) -> int:
        now = time.monotonic()
        if now - self.checked >= self.REFRESH:
            self.checked = now
            workers = workers_of(self.client)
            if self.gpu:
                self.count = int(sum(w.get("resources", {}).get("GPU", 0) for w in workers.values()))
            else:
                self.count = sum(w.get("nthreads", 1) for w in workers.values())
        return self.AHEAD * max(1, self.count)
