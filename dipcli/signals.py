"""Signals and process settings that must be in place before torch is imported.

* **SIGTERM** (what ``kill``, ``timeout``, systemd, Slurm and Kubernetes send) and **SIGHUP**
  (the terminal or ssh session closed) are raised as :class:`Terminated`, a kind of
  KeyboardInterrupt, so every path that serves Ctrl-C serves them too: the fit keeps its best
  result so far, the batch writes its report and restores the terminal, and the command exits
  128 + the signal's number (143, 129) instead of 130. After a hangup the terminal is gone and
  writing to it fails (EIO), which would cost the result its report: output that went to the
  terminal goes to the null device from then on.
* **Idle OpenMP threads spin briefly, then sleep** unless the user chose a policy
  (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``). OpenMP's default lets them spin for about 3 ms
  after each parallel region: on an idle machine the next region starts at once, but a second
  process sharing the cores (two `dip` runs under ``xargs -P 2``) loses most of its CPU to the
  spinning. Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) shares the cores fairly but wakes
  the threads for every region, which costs a lone fit on 2 cores about a tenth of its time.
  ``dip`` sets the passive policy and, for PyTorch's own OpenMP (libgomp, whose
  ``GOMP_SPINCOUNT`` overrides the policy's spin count of zero), :data:`SPIN_COUNT` spins, about
  30 µs: benchmarks/sharing.py measures both sides. OpenMP reads these once, when torch loads
  it, so this must run first.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: stop as for Ctrl-C, then exit 128 + the signal's number."""


STOPPING = (signal.SIGTERM, signal.SIGHUP) if hasattr(signal, "SIGHUP") else (signal.SIGTERM,)
received: list[int] = []  # the termination signals seen, in order


def _on_signal(signum: int, frame: object) -> None:
    note(signum)
    raise Terminated()


def note(signum: int) -> None:
    """Record a stopping signal (for :func:`exit_code`) and, after a hangup, leave the terminal.

    For handlers that stop a run without raising (:func:`dipcli.batch.parallel.stop_requests`)."""
    if signum in STOPPING:
        received.append(signum)
    if signum == getattr(signal, "SIGHUP", None):
        _leave_terminal()


def _leave_terminal() -> None:
    """Point stdout and stderr that are a terminal at the null device: after a hangup, a write
    to the terminal fails with EIO and would stop the batch before it writes its report."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            if os.isatty(fd):
                os.dup2(null, fd)
    finally:
        os.close(null)


# Spins of an idle OpenMP thread before it sleeps (libgomp: about 0.01 µs each), unless the user
# set a policy: benchmarks/results/sharing/README.md (alone and two processes at once, against the spin).
SPIN_COUNT = 3000


def install() -> None:
    """Set the OpenMP wait policy (unless the user set one: module docstring) and route SIGTERM
    and SIGHUP to :class:`Terminated` (main thread)."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    for signum in STOPPING:
        signal.signal(signum, _on_signal)


def terminated() -> bool:
    """Whether this process was asked to terminate (SIGTERM, SIGHUP) rather than interrupted (Ctrl-C)."""
    return bool(received)


def exit_code() -> int:
    """The exit code of a run that stopped early: 128 + the first stopping signal, 130 for Ctrl-C."""
    return 128 + received[0] if received else 128 + signal.SIGINT


@contextmanager
def handling(signums: list[int], handler: Callable | int) -> Iterator[None]:
    """Set ``handler`` (a function, or ``signal.SIG_IGN``) for ``signums`` during the block, then put
    the previous handlers back. Only the main thread may set handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = [signal.signal(signum, handler) for signum in signums]
    try:
        yield
    finally:
        for signum, old in zip(signums, previous, strict=True):
            signal.signal(signum, old)
