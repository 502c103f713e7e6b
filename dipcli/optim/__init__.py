"""The one optimisation loop and its parts: configuration, losses, the loop, stop rules, regularisers.

:func:`fit` (and :func:`fit_group` for several images at once) is the loop every task runs;
:class:`FitConfig` configures it, :class:`Event` s report it, :class:`FitResult` is what it gives.
"""

from dipcli.optim.config import (
           SHARED,
           Check,
           Event,
           FitConfig,
           FitResult,
           FixedStop,
           Member,
           StopRule,
           Subscriber,
)
from dipcli.optim.device import PRECISIONS, resolve_device, resolve_precision
from dipcli.optim.loop import fit, fit_group
from dipcli.optim.parts import FitDiverged

__all__ = ["PRECISIONS", "SHARED", "Check", "Event", "FitConfig", "FitDiverged", "FitResult", "FixedStop",
           "Member", "StopRule", "Subscriber", "fit", "fit_group", "resolve_device", "resolve_precision"]
