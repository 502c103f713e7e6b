"""Signals and process settings that must be in place before torch is imported.

* **SIGTERM** (what ``kill``, ``timeout``, systemd, Slurm and Kubernetes send) is raised as
  :class:`Terminated`, a kind of KeyboardInterrupt, so every path that serves Ctrl-C serves it
  too: the fit keeps its best result so far, the batch writes its report and restores the
  terminal, and the command exits 143 instead of 130.
* **Idle OpenMP threads wait passively** (``OMP_WAIT_POLICY=PASSIVE``) unless the user chose a
  policy: by default they spin for a while after each parallel region, which costs nothing on
  an idle machine but steals most of the CPU from a second process sharing the cores (two
  `dip` runs under ``xargs -P 2``; benchmarks/sharing.py measures it). OpenMP reads the
  variable once, when torch loads it, so this must run first.
"""

from __future__ import annotations

import os
import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as for Ctrl-C, then exit 143."""


received: list[int] = []  # the termination signals seen, in order


def _on_sigterm(signum: int, frame: object) -> None:
    received.append(signum)
    raise Terminated()


def install() -> None:
    """Set the OpenMP wait policy (if unset) and route SIGTERM to :class:`Terminated` (main thread)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    signal.signal(signal.SIGTERM, _on_sigterm)


def terminated() -> bool:
    """Whether this process was asked to terminate (SIGTERM) rather than interrupted (Ctrl-C)."""
    return bool(received)
