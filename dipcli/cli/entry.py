"""The `dip` command: signal handling first, then the command line, and an exit code always.

Kept apart from :mod:`dipcli.cli.app` so that the handlers are in place before torch and the rest
are imported: Ctrl-C in the first second (while imports run) exits 130 quietly, SIGTERM 143,
SIGHUP 129.
"""

from __future__ import annotations

import sys

from dipcli import signals


def run() -> None:
    """Console-script entry point."""
    signals.install()
    try:
        from dipcli.cli.app import main

        code = main()
    except KeyboardInterrupt:  # outside a fit (e.g. during imports or reading): nothing to save
        code = signals.exit_code()
    sys.exit(code)
