"""dipcli: image restoration with a Deep Image Prior, from the command line and from Python.

    from dipcli import denoise
    result = denoise(noisy, sigma=25)     # result.image: same dtype and layout as ``noisy``

The task functions (:func:`denoise`, :func:`two_stage`, :func:`inpaint`, :func:`superres`,
:func:`select_width`) live in :mod:`dipcli.api.tasks`. Below them, the parts they are built from
are public too, for studies and other front ends: images (:func:`read_image`, :func:`write_image`),
metrics (:func:`psnr`, :func:`ssim`), the problems (:class:`Denoise`, :class:`Inpaint`,
:class:`SuperRes`), the nets (:class:`NetSpec`, :func:`build_net`) and the one fitting loop
(:func:`fit` with a :class:`FitConfig`). Every name is imported on first use, so that
``dip --help`` does not wait for torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_HOMES = {
    "dipcli.api.tasks": ("denoise", "two_stage", "inpaint", "superres", "select_width", "Result"),
    "dipcli.errors": ("Fail",),
    "dipcli.io": ("Image", "read_image", "write_image"),
    "dipcli.metrics": ("psnr", "ssim"),
    "dipcli.physics": ("Denoise", "Inpaint", "SuperRes", "bernoulli_mask", "load_mask"),
    "dipcli.nets": ("ARCHS", "UPSAMPLERS", "NetSpec", "build_net", "count_params"),
    "dipcli.optim": ("Check", "Event", "FitConfig", "StopRule", "fit", "resolve_device", "resolve_precision"),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}
__all__ = ["__version__", *_HOME]


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'dipcli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
