"""What the batch layer's ways of running (processes here, a Dask cluster) share about processes:
how many CPUs this process may use, and a moment in which Ctrl-C is held off while children start."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from dipcli import signals


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, which a container or ``taskset`` narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore Ctrl-C for a moment (processes started now inherit that); main thread only."""
    with signals.handling([signal.SIGINT], signal.SIG_IGN):
        yield
