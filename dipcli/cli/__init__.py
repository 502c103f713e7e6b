"""The `dip` command line: parsing, messages and exit codes (:mod:`dipcli.cli.app`).

:mod:`dipcli.cli.entry` starts the program and must stay light (it sets up the signals before
torch is imported), so the app is imported here only when asked for.
"""

from __future__ import annotations

__all__ = ["app", "main"]


def __getattr__(name: str):
    if name in __all__:
        import importlib

        return getattr(importlib.import_module("dipcli.cli.app"), name)
    raise AttributeError(f"module 'dipcli.cli' has no attribute {name!r}")
