"""Running a batch on a Dask cluster (``--cluster ADDRESS``): each input a task on some worker.

What runs where, and why:

* The client (this process) expands, names and checks the inputs as for any batch, reads each
  input's files (image, reference, mask) and submits them, decoded, with the task. Workers
  therefore need the package but not the client's file system.
* A worker plans the input with the task's planner, fits it, and builds its record with the very
  functions the local runners use (:func:`~dipcli.api.execute.run_plan`,
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
* A worker's heap is made roomy again (:func:`~dipcli.batch.worker.roomy_heap`): Dask's nanny
  starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which halves a fit's speed.

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

import queue
import time
import uuid
from collections.abc import Callable, Iterator

from dipcli.api.inputs import TaskInput
from dipcli.batch.address import connect
from dipcli.batch.inputs import check_type
from dipcli.batch.results import failed, skipped
from dipcli.batch.runners import (
    draw,
    guarded,
    load_input,
    write_output,
)
from dipcli.batch.settings import Item, Outcome, Task
from dipcli.batch.worker import TOPIC, Shipped, fit_shared, fit_shipped
from dipcli.errors import FAILURE
from dipcli.extras import have
from dipcli.report.progress import Display, Sink

ALLOWED_FAILURES = 3  # --cluster local: worker deaths one task may see before it counts as failed
RETRIES = 2  # reruns of a task that raised (an input's own failure is its record, not a raise)
POLL = 0.1  # seconds between looks at the finished tasks and the workers' progress


def have_distributed() -> bool:
    """Whether Dask's distributed, from the ``cluster`` extra, can be imported."""
    return have("distributed")


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
