"""Where a ``--cluster`` is: its address checked before any work, and a client connected to it.

An address is a Dask scheduler's (``tcp://HOST:8786``), a scheduler file (``.json``), or
``local[:N]`` for a cluster of N worker processes started here. What cannot be one is refused
in one line before anything is read or fitted: ``local:0``, an address Dask cannot parse
(``bogus`` has no port), or a web address (the dashboard's, ``http://HOST:8787``, which users
copy from their browser). A server that is not a scheduler is found out by a handshake with a
time limit, since Dask's own connect waits for its answer without end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from dipcli.batch.processes import sigint_ignored, usable_cpus
from dipcli.errors import FAILURE, Fail
from dipcli.report.progress import Display

ALLOWED_FAILURES = 3  # --cluster local: worker deaths one task may see before it counts as failed
DASHBOARD_SCHEMES = ("http", "https")  # what a user copies from the dashboard's address bar


def local_workers(address: str) -> int | None:
    """``local`` → a worker per usable core, ``local:N`` → N; None for a real scheduler's address."""
    if address == "local":
        return usable_cpus()
    if address.startswith("local:"):
        count = address.removeprefix("local:")
        return int(count) if count.isdigit() else 0
    return None


def check_address(address: str) -> None:
    """Refuse what cannot be a cluster before any work: ``local:0``, ``local:x``, an empty address,
    a web address (the dashboard's), or one Dask cannot parse (``bogus``: no port)."""
    named = f"--cluster {address}" + (" (DIP_CLUSTER)" if os.environ.get("DIP_CLUSTER") == address else "")
    if not address.strip():
        raise Fail("--cluster: give a scheduler address (tcp://HOST:8786), a scheduler file "
                   "(scheduler.json) or local[:N]")
    n = local_workers(address)
    if n is not None:
        if n < 1:
            raise Fail(f"{named}: give local (a worker per core) or local:N with N ≥ 1 workers")
        return
    if address.endswith(".json"):
        if not Path(address).is_file():
            raise Fail(f"{named}: no such scheduler file; give the file the scheduler wrote "
                       "(dask scheduler --scheduler-file FILE) or its address")
        return
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    scheme, location = parse_address(address)
    if scheme in DASHBOARD_SCHEMES:
        host = urlsplit(address).hostname or "HOST"
        raise Fail(f"{named}: a web address, such as the dashboard's; give the scheduler's, "
                   f"tcp://{host}:8786 by default (its log says \"Scheduler at\")")
    try:
        get_backend(scheme)
        if scheme in ("tcp", "tls", "ws", "wss"):
            parse_host_port(location)
    except ValueError as exc:
        raise Fail(f"{named}: not a Dask scheduler's address ({exc}); give tcp://HOST:8786, a scheduler "
                   "file (.json) or local[:N]") from None


def connect_timeout() -> float:
    """Seconds to reach a scheduler: Dask's own setting (``distributed.comm.timeouts.connect``, 30 s
    unless ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT`` or a Dask config file says otherwise)."""
    import dask
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds"))


def greet(address: str, timeout: float) -> None:
    """Refuse an address where nothing answers Dask's handshake within ``timeout`` seconds.

    Dask's own connect waits without end for the handshake once a connection is open, so a
    server that is not a scheduler (a web server, the dashboard's port) left ``dip`` hanging.
    """
    from distributed.comm import connect as open_comm

    async def handshake() -> None:
        comm = await asyncio.wait_for(open_comm(address, timeout=timeout), timeout + 1)
        await comm.close()

    try:
        asyncio.run(handshake())
    except asyncio.TimeoutError:
        raise Fail(f"--cluster {address}: something listens there but did not answer as a Dask scheduler "
                   f"within {timeout:g} s; give the scheduler's address (tcp://HOST:8786), not a "
                   "dashboard's or another service's", FAILURE) from None


def scheduler_in(file: str) -> str:
    """The address a scheduler file (``dask scheduler --scheduler-file FILE``) holds."""
    try:
        return str(json.loads(Path(file).read_text())["address"])
    except (OSError, ValueError, KeyError, TypeError):
        raise Fail(f"--cluster {file}: not a scheduler file (no \"address\" in it); give the file "
                   "dask scheduler --scheduler-file FILE wrote, or the scheduler's address") from None


@contextmanager
def connect(address: str, display: Display) -> Iterator:
    """A Dask client for ``--cluster``: of a scheduler's address or file, or of a local cluster."""
    import dask
    from distributed import Client, LocalCluster

    count = local_workers(address)
    cluster = None
    timeout = connect_timeout()
    try:
        if count is not None:
            settings = {"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}
            # Ctrl-C reaches every process of the terminal: the workers ignore it (they start with
            # it ignored) and this process cancels their tasks and closes them.
            with dask.config.set(settings), sigint_ignored():
                cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                       silence_logs=logging.ERROR)
            client = Client(cluster)
        elif address.endswith(".json") and Path(address).is_file():
            greet(scheduler_in(address), timeout)
            client = Client(scheduler_file=address, timeout=timeout)
        else:
            greet(address, timeout)
            client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise Fail(f"--cluster {address}: cannot reach a Dask scheduler there ({exc}); start one "
                   "(dask scheduler) or check the address", FAILURE) from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
