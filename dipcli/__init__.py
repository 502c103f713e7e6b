"""dipcli: image restoration with a Deep Image Prior, from the command line and from Python.

    from dipcli import denoise
    result = denoise(noisy, sigma=25)     # result.image: same dtype and layout as ``noisy``

The task functions (:func:`denoise`, :func:`two_stage`, :func:`inpaint`, :func:`superres`,
:func:`select_width`) live in :mod:`dipcli.api.tasks`; they are imported on first use, so that
``dip --help`` does not wait for torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = ("denoise", "two_stage", "inpaint", "superres", "select_width", "Result", "Fail")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name == "Fail":
        from dipcli.errors import Fail

        return Fail
    if name in _API:
        from dipcli.api import tasks

        return getattr(tasks, name)
    raise AttributeError(f"module 'dipcli' has no attribute {name!r}")
