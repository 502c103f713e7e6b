"""The Python API's arguments, checked at the door of each task function (:mod:`dipcli.api.tasks`).

The command line's parser refuses ``--iters 5.5`` before anything runs; a script calling
``denoise(img, iters=5.5)`` deserves the same: one line that names the argument and says what to
give, as a :class:`dipcli.Fail` (usage, code 2), instead of a ``TypeError`` from deep inside the
fit, a "failed fit" for ``seed=1.5``, or "4 is not offered" for ``factor='4'``. Only the *kind*
of each value (and the ranges no later check covers) is checked here; the values' meaning (a
known architecture, a σ within 0–255) is checked once for the API and the command line alike by
:mod:`dipcli.api.plan`. A bool is not taken for a number: ``iters=True`` is a mistake, not 1.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping

import numpy as np

from dipcli.errors import Fail
from dipcli.physics import SR_FACTORS

# Seeds go to torch (which takes up to 2**64 - 1) and numpy (any non-negative integer), with an
# offset for each further fit of an ensemble; the common 32-bit range is safe for both.
MAX_SEED = 2**32 - 1

# --fits: averaging n fits shrinks their disagreement as 1/n, so each more fit gains less while
# costing a whole fit; at σ = 50 one, two, four and five fits were 0.45, 0.36, 0.30 and 0.29 dB
# below BM3D (dipcli.api.presets). Every fit is planned before the first starts, so an unbounded
# count would only plan for minutes and fit for days.
MAX_FITS = 16


def _is_bool(value: object) -> bool:
    return isinstance(value, (bool, np.bool_))


def _whole(low: int, high: int | None = None, what: str = "", *, alternative: str = ""
           ) -> Callable[[str, object], None]:
    """A whole number from ``low`` to ``high`` (numpy integers too; never a bool or a float)."""
    span = f"{low} or more" if high is None else f"from {low} to {high}"

    def check(name: str, value: object) -> None:
        if (_is_bool(value) or not isinstance(value, numbers.Integral)
                or not (low <= value and (high is None or value <= high))):
            raise Fail(f"{name}={value!r}: give a whole number{what}, {span}{alternative}")
    return check


def _real(what: str) -> Callable[[str, object], None]:
    """A real number (an int, a float or a numpy scalar; never a bool or a string)."""

    def check(name: str, value: object) -> None:
        if _is_bool(value) or not isinstance(value, numbers.Real):
            raise Fail(f"{name}={value!r}: give {what}")
    return check


def _name(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise Fail(f"{name}={value!r}: give a name as a string (see the function's help for the choices)")


def _flag(name: str, value: object) -> None:
    if not _is_bool(value):
        raise Fail(f"{name}={value!r}: give True or False")


def _width(name: str, value: object) -> None:
    if value != "auto" and not isinstance(value, str):
        _whole(1, what=" of channels", alternative=", or 'auto'")(name, value)


def _tile(name: str, value: object) -> None:
    if not isinstance(value, str):  # a string ("auto", "256") is Tile.parse's to judge
        _whole(0, what=" of pixels", alternative=" (0: never tile), or 'auto'")(name, value)


def _factor(name: str, value: object) -> None:
    offered = ", ".join(map(str, SR_FACTORS))
    if _is_bool(value) or not isinstance(value, numbers.Integral) or value not in SR_FACTORS:
        raise Fail(f"{name}={value!r}: give a whole number, one of {offered}")


def _callable(name: str, value: object) -> None:
    if not callable(value):
        raise Fail(f"{name}={value!r}: give a function that takes a dipcli.optim.loop.Event, or None")


# Each argument of the task functions by name, and how to check it when it is not None (None
# means "the default" wherever it is allowed; where it is not, the later checks say so).
CHECKS: dict[str, Callable[[str, object], None]] = {
    "iters": _whole(1, what=" of iterations"),
    "fits": _whole(1, MAX_FITS, what=" of fits"),
    "scales": _whole(1, what=" of scales"),
    "seed": _whole(0, MAX_SEED),
    "factor": _factor,
    "width": _width,
    "tile": _tile,
    "sigma": _real("the noise level as a number on the 0–255 scale (e.g. 25), or None to estimate it"),
    "lr": _real("the learning rate as a positive number (the default is 0.01)"),
    "tv_weight": _real("the weight of the TV term as a number (the default is 0.79)"),
    "stage1_frac": _real("the fraction of iterations in stage 1 as a number between 0 and 1"),
    "drop": _real("the fraction of pixels to drop as a number between 0 and 1"),
    **dict.fromkeys(("arch", "upsample", "stop", "precision", "device", "preset", "schedule", "tv",
                     "stage1", "mask_known", "kernel", "noise"), _name),
    **dict.fromkeys(("add_noise", "composite", "make_lr", "raw", "wiener"), _flag),
    "progress": _callable,
}


def check_arguments(arguments: Mapping[str, object]) -> None:
    """Refuse the first argument of a task function whose value is of the wrong kind: a
    :class:`Fail` naming it (``arguments``: the function's ``locals()`` on entry)."""
    for name, value in arguments.items():
        check = CHECKS.get(name)
        if check is not None and value is not None:
            check(name, value)
