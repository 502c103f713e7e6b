"""The `dip` command: signal handling first, then the command line, and an exit code always.

Kept apart from :mod:`dipcli.cli` so that the handlers are in place before torch and the rest
are imported: Ctrl-C in the first second (while imports run) exits 130 quietly, SIGTERM 143.
"""

from __future__ import annotations

import sys

from dipcli import signals

INTERRUPTED, TERMINATED = 130, 143


def run() -> None:
    """Console-script entry point."""
    signals.install()
    try:
        from dipcli.cli import main

        code = main()
    except KeyboardInterrupt:  # outside a fit (e.g. during imports or reading): nothing to save
        code = TERMINATED if signals.terminated() else INTERRUPTED
    sys.exit(code)
